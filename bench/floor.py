"""Floor views: a bare Django view doing one indexed SELECT, and one doing one INSERT.

They run under the same settings, middleware and gunicorn as the product, so the product's
throughput divided by theirs is the cost of everything the product adds (auth, permissions,
serialisation, its own queries).
"""

import json

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


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
