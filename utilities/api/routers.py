from rest_framework.routers import DynamicRoute, SimpleRouter


class ApiRouter(SimpleRouter):
    """Collections and objects end in a slash, actions do not, as the API contract spells them:
    `/batches/`, `/batches/{id}/`, `/batches/{id}/start-pre-deploy`."""

    routes = [
        route._replace(url=route.url.replace("{trailing_slash}", ""))
        if isinstance(route, DynamicRoute)
        else route
        for route in SimpleRouter.routes
    ]
