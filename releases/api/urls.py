from config.routers import ApiRouter

from .views import ApplicationViewSet, BatchViewSet, ReleaseViewSet

router = ApiRouter()
router.register("batches", BatchViewSet)
router.register("releases", ReleaseViewSet)
router.register("applications", ApplicationViewSet)

urlpatterns = router.urls
