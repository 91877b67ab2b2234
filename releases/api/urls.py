from config.routers import ApiRouter

from .views import ApplicationViewSet, BatchViewSet, HoldViewSet, ReleaseViewSet

router = ApiRouter()
router.register("batches", BatchViewSet)
router.register("releases", ReleaseViewSet)
router.register("applications", ApplicationViewSet)
router.register("holds", HoldViewSet)

urlpatterns = router.urls
