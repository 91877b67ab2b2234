"""Every API route, under /api/. The REST API issue fills this in."""

urlpatterns: list = []
