from django.urls import path

from utilities.api.routers import ApiRouter

from .notify import BuildNotifyView
from .views import ApplicationViewSet, BatchViewSet, ReleaseViewSet

router = ApiRouter()
router.register("batches", BatchViewSet)
router.register("releases", ReleaseViewSet)
router.register("applications", ApplicationViewSet)

urlpatterns = [
    path("builds/notify", BuildNotifyView.as_view(), name="build-notify"),
    *router.urls,
]
