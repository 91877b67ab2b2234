"""Holds in the admin: the list (active first), placing one, lifting one with a note, and the
banner every page a hold covers shows (live, like the rest of the page)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import parse_etags
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from applications.choices import Environment
from applications.models import Application
from utilities.admin import ReadOnlyMixin, status_badge
from utilities.compiled import CompiledQuery
from utilities.errors import REFUSALS, refusal
from utilities.live import (
    live_etag,
    live_not_modified,
    live_region,
    live_response,
    live_scope,
)

from .. import rules
from ..choices import OPEN_BATCH_STATUSES
from ..models import Batch, Hold
from ..selectors import holds_list
from ..services.holds import ADD_HOLD_PERMISSION, LIFT_HOLD_PERMISSION, hold_lift, hold_place

BANNER_REGION = "live-holds-banner"


def may_lift(user, hold: Hold) -> bool:
    return user.has_perm(LIFT_HOLD_PERMISSION) or (
        hold.application_id is not None and user.has_perm(LIFT_HOLD_PERMISSION, hold.application)
    )


def hold_banner(user, holds) -> str:
    """One line per active hold: what it stops, until when, why and who; a Lift link for those
    who may. A live region, present (empty) without holds so that one placed later appears."""
    lines = format_html_join(
        "",
        '<p class="rt-hold" role="status"><strong>{}</strong> {}{}</p>',
        (
            (
                gettext("On hold:"),
                rules.hold_detail(hold),
                format_html(
                    ' <a class="rt-button" href="{}">{}</a>',
                    reverse("admin:releases_hold_lift", args=[hold.pk]),
                    gettext("Lift"),
                )
                if may_lift(user, hold)
                else "",
            )
            for hold in holds
        ),
    )
    return live_region(BANNER_REGION, lines, tag="div", css_class="rt-holds")


_ACTIVE_HOLDS = CompiledQuery(
    lambda at: Hold.objects.active(at=at).order_by("pk").values_list("pk", flat=True)
)


def active_hold_ids() -> tuple[int, ...]:
    """The holds active now: one indexed query. They start, end and are lifted without any
    revision moving (a start or an end is only the clock passing), so a live page that shows
    holds counts them in its scope: when they change, the page's regions are sent again."""
    return tuple(_ACTIVE_HOLDS(timezone.now()))


class HeldPageMixin:
    """On a live admin page with a hold banner (before LiveAdminMixin in the bases)."""

    def live_scope(self, request, ids) -> str:
        return live_scope(super().live_scope(request, ids), active_hold_ids())


def index_banner(request) -> tuple[str, str]:
    """The index page's one live region, every active hold, and its ETag."""
    holds = list(holds_list().active().order_by("starts_at", "pk"))
    scope = live_scope("holds-banner", get_language(), request.user.pk)
    return hold_banner(request.user, holds), live_etag(scope, [0, *(h.pk for h in holds)])


def index_banner_live(request):
    banner, etag = index_banner(request)
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        return live_not_modified(etag)
    return live_response([banner], url=request.path, etag=etag)


class HoldForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=500, widget=forms.Textarea({"rows": 2}))
    environment = forms.ChoiceField(
        label=_("environment"),
        choices=[("", _("every environment")), *Environment.choices],
        required=False,
    )
    application = forms.ModelChoiceField(
        label=_("application"),
        queryset=Application.objects.order_by("name"),
        required=False,
        empty_label=_("every application"),
    )
    batch = forms.ModelChoiceField(
        label=_("batch"),
        queryset=Batch.objects.filter(status__in=OPEN_BATCH_STATUSES),
        required=False,
        empty_label=_("every batch"),
    )
    starts_at = forms.DateTimeField(
        label=_("starts at"),
        required=False,
        help_text=_("Empty: now. A later start plans a freeze window."),
        widget=forms.DateTimeInput({"type": "datetime-local"}),
    )
    ends_at = forms.DateTimeField(
        label=_("ends at"),
        required=False,
        help_text=_("Empty: until someone lifts it."),
        widget=forms.DateTimeInput({"type": "datetime-local"}),
    )


class LiftForm(forms.Form):
    note = forms.CharField(
        label=_("note"),
        max_length=500,
        required=False,
        help_text=_("Why it may go on now; kept with the hold."),
    )


@admin.register(Hold)
class HoldAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("reason", "scope", "state", "starts_at", "ends_at", "created_by", "lift")
    list_display_links = ("reason",)
    list_filter = ("environment",)
    search_fields = ("reason",)
    fields = (
        "reason",
        "scope",
        "state",
        "created_by",
        "created_at",
        "starts_at",
        "ends_at",
        "lifted_by",
        "lifted_at",
        "lift_note",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        now = timezone.now()
        active = Q(lifted_at__isnull=True, starts_at__lte=now) & (
            Q(ends_at__isnull=True) | Q(ends_at__gt=now)
        )
        return (
            holds_list()
            .annotate(
                active_now=Case(
                    When(active, then=Value(1)), default=Value(0), output_field=IntegerField()
                )
            )
            .order_by("-active_now", "-starts_at", "-pk")
        )

    @admin.display(description=_("stops"))
    def scope(self, obj):
        if obj.application_id:
            what = obj.application.name
        elif obj.batch_id:
            what = gettext("batch %(name)s") % {"name": obj.batch.name}
        else:
            what = gettext("every application")
        if obj.environment:
            return f"{what} · {obj.get_environment_display()}"
        return what

    @admin.display(description=_("state"))
    def state(self, obj):
        now = timezone.now()
        if obj.lifted_at is not None:
            return status_badge("cancelled", gettext("lifted"))
        if obj.ends_at is not None and obj.ends_at <= now:
            return status_badge("completed", gettext("ended"))
        if obj.starts_at > now:
            return status_badge("pre_waiting", gettext("planned"))
        return status_badge("failed", gettext("active"))

    @admin.display(description=_("lift"))
    def lift(self, obj):
        ended = obj.lifted_at is not None or (obj.ends_at and obj.ends_at <= timezone.now())
        if ended or not may_lift(self.request.user, obj):
            return "—"
        return format_html(
            '<a class="rt-button" href="{}">{}</a>',
            reverse("admin:releases_hold_lift", args=[obj.pk]),
            gettext("Lift"),
        )

    def changelist_view(self, request, extra_context=None):
        self.request = request  # the Lift column reads the user
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm(ADD_HOLD_PERMISSION)

    def get_urls(self):
        return [
            path(
                "banner/live/",
                self.admin_site.admin_view(index_banner_live),
                name="releases_hold_banner_live",
            ),
            path(
                "<path:object_id>/lift/",
                self.admin_site.admin_view(self.lift_view),
                name="releases_hold_lift",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """Placing a hold goes through `hold_place`, with the API's rules."""
        form = HoldForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = hold_place(
                    user=request.user,
                    reason=data["reason"],
                    environment=data["environment"],
                    application=data["application"].name if data["application"] else None,
                    batch_id=data["batch"].pk if data["batch"] else None,
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                )
            except REFUSALS as error:
                found = refusal(error)
                for field, problems in found.fields.items():
                    form.add_error(field if field in form.fields else None, problems)
                if not found.fields:
                    form.add_error(None, found.message)
            else:
                messages.success(request, rules.hold_detail(result.hold))
                return HttpResponseRedirect(reverse("admin:releases_hold_changelist"))
        return self._form_page(request, form, title=gettext("Place a hold"))

    def lift_view(self, request, object_id):
        hold = holds_list().filter(pk=unquote(object_id)).first()
        if hold is None:
            raise Http404
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = hold_lift(
                    hold_id=hold.pk, user=request.user, note=form.cleaned_data["note"]
                )
            except REFUSALS as error:
                form.add_error(None, refusal(error).message)
            else:
                if result.changed:
                    messages.success(request, gettext("Lifted: %(reason)s") % {"reason": hold})
                else:
                    messages.info(request, gettext("It was lifted or had ended already."))
                return HttpResponseRedirect(reverse("admin:releases_hold_changelist"))
        return self._form_page(
            request, form, title=gettext("Lift the hold"), hold=hold, detail=rules.hold_detail(hold)
        )

    def _form_page(self, request, form, *, title: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            **extra,
        }
        return TemplateResponse(request, "admin/releases/hold/form.html", context)
