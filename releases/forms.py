from dataclasses import dataclass

from django import forms
from django.utils.translation import gettext_lazy as _

from builds.models import Build, BuildImage

from .models import ReleaseApp


@dataclass(frozen=True)
class TagOption:
    image_tag: str
    build: Build
    is_current: bool
    is_latest: bool


class SwitchVersionForm(forms.Form):
    """Pick one of the app's successful tags; the tag seen as current guards against races.

    Whether the tag may be used is the service's decision (switch check 4), not the form's:
    the form only carries the choice, so the admin and the API refuse the same requests.
    """

    image_tag = forms.CharField(label=_("tag"), max_length=128)
    expected_image_tag = forms.CharField(widget=forms.HiddenInput, max_length=128)

    def __init__(self, *args, release: ReleaseApp, options: list[BuildImage], **kwargs):
        super().__init__(*args, **kwargs)
        self.options = self._tag_options(release, options)
        preselected = release.latest_image_tag or (
            self.options[0].image_tag if self.options else ""
        )
        self.fields["image_tag"].initial = preselected
        self.fields["expected_image_tag"].initial = release.image_tag

    @staticmethod
    def _tag_options(release: ReleaseApp, images: list[BuildImage]) -> list[TagOption]:
        """One option per tag, from the newest successful build that produced it."""
        seen: set[str] = set()
        options = []
        for image in images:
            if image.image_tag in seen:
                continue
            seen.add(image.image_tag)
            options.append(
                TagOption(
                    image_tag=image.image_tag,
                    build=image.build,
                    is_current=image.image_tag == release.image_tag,
                    is_latest=image.image_tag == release.latest_image_tag,
                )
            )
        return options

    @property
    def selected_tag(self) -> str:
        return self["image_tag"].value() or ""
