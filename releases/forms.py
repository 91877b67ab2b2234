from dataclasses import dataclass

from django import forms
from django.utils.translation import gettext_lazy as _

from builds.models import Build, BuildImage
from utilities.errors import DomainError

from .history import NOTE_MAX_LENGTH, note_clean
from .models import ReleaseApp
from .services.batches import AppChoice


class NoteField(forms.CharField):
    """Why the change is made: optional; `history.note_clean` decides, as for the API."""

    def __init__(self, **kwargs):
        super().__init__(
            label=_("Note (optional)"),
            required=False,
            strip=False,  # note_clean refuses control characters before it trims
            widget=forms.Textarea(attrs={"rows": 2, "maxlength": NOTE_MAX_LENGTH}),
            help_text=_("Why: recorded in the batch's history."),
            **kwargs,
        )

    def clean(self, value):
        try:
            return note_clean(super().clean(value))
        except DomainError as error:
            raise forms.ValidationError(error.fields["note"]) from None


class NoteForm(forms.Form):
    """A stage start's or a cancel's note."""

    note = NoteField()


@dataclass(frozen=True)
class TagOption:
    image_tag: str
    build: Build
    is_current: bool
    is_latest: bool


class SwitchVersionForm(forms.Form):
    """Pick one of the app's successful tags; the tag seen as current guards against races.

    Whether the tag may be used is the service's decision (the "known tag" rule), not the form's:
    the form only carries the choice, so the admin and the API refuse the same requests.
    """

    image_tag = forms.CharField(label=_("tag"), max_length=128)
    expected_image_tag = forms.CharField(widget=forms.HiddenInput, max_length=128)
    note = NoteField()

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


class BatchCreateForm(forms.Form):
    """A name, the apps ticked, and each ticked app's tag (default: its latest successful one).

    The form only carries the choice; `create_batch` decides, as it does for the API.
    """

    name = forms.CharField(label=_("name"), max_length=200)
    apps = forms.MultipleChoiceField(
        label=_("applications"), widget=forms.CheckboxSelectMultiple, required=True
    )

    def __init__(self, *args, applications, menu: dict[int, list[BuildImage]], **kwargs):
        super().__init__(*args, **kwargs)
        self.applications = applications
        self.fields["apps"].choices = [(a.name, a.name) for a in applications]
        self.rows = []
        for application in applications:
            images = menu.get(application.pk, [])
            field_name = f"tag_{application.pk}"
            self.fields[field_name] = forms.ChoiceField(
                label=application.name,
                choices=[(i.image_tag, f"{i.image_tag} (#{i.build.number})") for i in images],
                required=False,
                initial=images[0].image_tag if images else None,
            )
            self.rows.append((application, self[field_name], images))

    def app_choices(self):
        """What the service takes, in the order the apps were listed."""
        chosen = set(self.cleaned_data["apps"])
        return [
            AppChoice(a.name, self.cleaned_data.get(f"tag_{a.pk}") or None)
            for a in self.applications
            if a.name in chosen
        ]
