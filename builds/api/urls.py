from utilities.api.routers import ApiRouter

from .views import BuildViewSet

router = ApiRouter()
router.register("builds", BuildViewSet)

urlpatterns = router.urls
