from config.routers import ApiRouter

from .views import BatchViewSet, ReleaseViewSet

router = ApiRouter()
router.register("batches", BatchViewSet)
router.register("releases", ReleaseViewSet)

urlpatterns = router.urls
