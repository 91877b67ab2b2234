"""Floor views: a bare Django view doing one indexed SELECT, and one doing one INSERT; and the
same two behind DRF with the API's token authentication and a permission check.

They run under the same settings, middleware and gunicorn as the product, so the product's
throughput divided by theirs is the cost of everything the product adds (auth, permissions,
serialisation, its own queries).
"""

import json

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView


def select_one(request, pk: int):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, image_tag, latest_image_tag, status FROM releases_releaseapp WHERE id = %s",
            [pk],
        )
        row = cursor.fetchone()
    return JsonResponse({"id": row[0], "image_tag": row[1], "latest": row[2], "status": row[3]})


@csrf_exempt
def insert_one(request):
    body = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_floor_row (payload) VALUES (%s) RETURNING id", [json.dumps(body)]
        )
        row_id = cursor.fetchone()[0]
    return JsonResponse({"id": row_id}, status=201)


class ReleaseReadPermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("releases.view_releaseapp")


class NotifyPermission(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("builds.notify_build")


class DrfSelectOne(APIView):
    """The same one SELECT behind the API's own authentication and a permission check: the
    floor of any authenticated API endpoint here."""

    permission_classes = [ReleaseReadPermission]

    def get(self, request, pk: int):
        return select_one(request._request, pk)


class DrfInsertOne(APIView):
    permission_classes = [NotifyPermission]

    def post(self, request):
        return insert_one(request._request)
