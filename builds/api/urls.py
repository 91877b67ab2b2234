from django.urls import path

from config.routers import ApiRouter

from .views import BuildNotifyView, BuildViewSet

router = ApiRouter()
router.register("builds", BuildViewSet)

urlpatterns = [
    path("builds/notify", BuildNotifyView.as_view(), name="build-notify"),
    *router.urls,
]
