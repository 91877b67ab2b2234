from rest_framework import pagination
from rest_framework.exceptions import NotFound


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's, except that `?page=` empty or given twice is "Invalid page." (404), like
    `?page=abc`, rather than silently page 1: the schema's `page` is one integer."""

    def get_page_number(self, request, paginator):
        given = request.query_params.getlist(self.page_query_param)
        if len(given) > 1 or given == [""]:
            raise NotFound(self.invalid_page_message)
        return super().get_page_number(request, paginator)
