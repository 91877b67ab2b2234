"""The product's URLs plus two bench-only "floor" views: the least a Django view can do."""

from django.urls import include, path

from bench import floor

urlpatterns = [
    path("bench/floor/select/<int:pk>", floor.select_one),
    path("bench/floor/insert", floor.insert_one),
    path("bench/floor/drf/select/<int:pk>", floor.DrfSelectOne.as_view()),
    path("bench/floor/drf/insert", floor.DrfInsertOne.as_view()),
    path("", include("config.urls")),
]
