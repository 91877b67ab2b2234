from django.db.models import Exists, OuterRef, QuerySet

from .models import BuildImage


def build_images_successful() -> QuerySet[BuildImage]:
    """Images of successful builds, the most recently successful first."""
    return BuildImage.objects.filter(succeeded_at__isnull=False).order_by(
        "-succeeded_at", "-build_id"
    )


def build_images_latest_first() -> QuerySet[BuildImage]:
    """Images of successful builds in "latest" order: the first one of an application
    is its latest build.

    Drone numbers builds per repo. Within one repo the highest number wins, however late its
    notification came, so only each repo's highest-numbered successful image of an app takes
    part; between repos (an app moved to a new repo restarts at 1) the one first seen
    successful most recently wins. Filter it by application (or an OuterRef to one).
    """
    higher_in_repo = BuildImage.objects.filter(
        application=OuterRef("application"),
        repo=OuterRef("repo"),
        build_number__gt=OuterRef("build_number"),
        succeeded_at__isnull=False,
    )
    return build_images_successful().filter(~Exists(higher_in_repo))
