from utilities.api.routers import ApiRouter

from .views import DeploymentViewSet

router = ApiRouter()
router.register("deployments", DeploymentViewSet)

urlpatterns = router.urls
