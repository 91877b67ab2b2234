import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from applications.models import Application
from builds.choices import BuildStatus
from builds.models import Build, BuildImage
from deployments.models import Deployment
from releases.models import Batch, ReleaseApp


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        """`UserFactory(permissions=["applications.switch_version"])`."""
        for perm in extracted or []:
            app_label, codename = perm.split(".")
            self.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"app-{n}")


class BuildFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Build

    repo = "org/repo"
    number = factory.Sequence(lambda n: n + 1)
    status = BuildStatus.SUCCESS
    succeeded_at = factory.Maybe(
        factory.LazyAttribute(lambda b: b.status == BuildStatus.SUCCESS),
        yes_declaration=factory.LazyFunction(timezone.now),
        no_declaration=None,
    )


class BuildImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BuildImage

    build = factory.SubFactory(BuildFactory)
    repo = factory.SelfAttribute("build.repo")
    build_number = factory.SelfAttribute("build.number")
    succeeded_at = factory.SelfAttribute("build.succeeded_at")
    application = factory.SubFactory(ApplicationFactory)
    image_tag = factory.Sequence(lambda n: f"v1.0.{n}")


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    name = factory.Sequence(lambda n: f"batch {n}")


class ReleaseAppFactory(factory.django.DjangoModelFactory):
    """A release at the tag of a successful build; status starts `pending` as in real life."""

    class Meta:
        model = ReleaseApp

    batch = factory.SubFactory(BatchFactory)
    application = factory.SubFactory(ApplicationFactory)
    image_tag = factory.LazyAttribute(lambda o: o.build.images.get().image_tag if o.build else "v1")
    build = factory.LazyAttribute(lambda o: BuildImageFactory(application=o.application).build)


class DeploymentFactory(factory.django.DjangoModelFactory):
    """A pre deployment of a release, made by hand (a row the services would not make, or not
    in one step); its application is the release's, as the services record it."""

    class Meta:
        model = Deployment

    release_app = factory.SubFactory(ReleaseAppFactory)
    application_id = factory.LazyAttribute(lambda o: o.release_app.application_id)
    environment = "pre"
    image_tag = "v1"
