"""Admin HTML helpers every app's admin uses: status badges, tags, links, read-only admins."""

import functools
from urllib.parse import urlencode

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import get_language

from .compiled import CompiledQuery
from .live import (
    live_context,
    live_etag,
    live_not_modified,
    live_response,
    live_scope,
    live_seen,
)

# Every status value of every model, by the colour it is shown in.
TONES = {
    "waiting": ("pre_waiting", "prod_waiting", "pending", "blocked"),
    "active": ("pre_deploying", "prod_deploying", "running"),
    "ok": ("pre_deployed", "prod_deployed", "completed", "succeeded", "success"),
    "failed": ("pre_failed", "prod_failed", "failed", "failure", "error", "killed"),
    "muted": ("cancelled", "skipped", "declined"),
}
TONE_OF = {value: tone for tone, values in TONES.items() for value in values}


def status_badge(value: str, label) -> str:
    return format_html(
        '<span class="rt-badge rt-tone-{}" data-status="{}">{}</span>',
        TONE_OF.get(value, "muted"),
        value,
        label,
    )


def tag(value: str) -> str:
    return format_html('<code class="rt-tag">{}</code>', value) if value else "—"


def compact_datetime(value) -> str:
    """A date and time as every admin page shows one (2026-11-29 14:36; config/formats/)."""
    if value is None:
        return "—"
    return format_html(
        '<time datetime="{}">{}</time>',
        value.isoformat(),
        date_format(localtime(value), "DATETIME_FORMAT"),
    )


def admin_link(obj, text=None) -> str:
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


class ReadOnlyMixin:
    """Rows change only through the services; the admin shows them and offers their buttons."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LiveAdminMixin:
    """A model admin whose list and change pages refresh their live regions in place.

    Give `live_revision()`: an expression over the model's rows that grows with every change any
    region of a row shows (`live.revisions`). Mark cells and fields with
    `utilities.live.live_display`; name the list's in `live_list_fields`; return the change
    page's regions from `live_regions`, its other context from `live_page_context`; name in
    `live_permissions` the permissions that change what the regions show. The pages then poll
    `<object_id>/live/` and `live/?ids=…` (see `utilities/live.py`), which read the revisions in
    one query and render only the objects whose revision moved.
    """

    live_list_fields: tuple[str, ...] = ()
    live_permissions: tuple[str, ...] = ()

    def live_revision(self):
        raise NotImplementedError

    def live_annotate(self, queryset):
        """Rows with `live_seen`, their revision read in the same statement as their data."""
        return queryset.annotate(live_seen=self.live_revision())

    def get_queryset(self, request):
        return self.live_annotate(super().get_queryset(request))

    @functools.cached_property
    def _live_revision_of(self) -> CompiledQuery:
        return CompiledQuery(
            lambda pk: (
                self.model._default_manager.filter(pk=pk)
                .annotate(live_seen=self.live_revision())
                .values_list("live_seen", flat=True)
            )
        )

    def live_revision_of(self, pk: int) -> int | None:
        """The revision of one object, None if it is gone: the change page's poll, compiled once."""
        return next(iter(self._live_revision_of(pk)), None)

    def live_revisions(self, ids: list[int]) -> dict[int, int]:
        """The revision of each of these objects that exists: one query, nothing rendered."""
        rows = self.model._default_manager.filter(pk__in=ids).annotate(
            live_seen=self.live_revision()
        )
        return dict(rows.values_list("pk", "live_seen"))

    def live_scope(self, request, ids) -> str:
        who = tuple(request.user.has_perm(p) for p in self.live_permissions)
        return live_scope(self.opts.label, get_language(), who, tuple(ids))

    def live_regions(self, request, obj, *, since: int | None) -> list[str]:
        """The change page's regions whose data changed after revision `since` (None: all)."""
        return []

    def live_page_context(self, request, obj) -> dict:
        """More context for the change page of `obj`, read after its revision."""
        return {}

    def live_list_regions(self, request, objects) -> list[str]:
        """Every region of these rows of the list page."""
        return [getattr(self, name)(obj) for obj in objects for name in self.live_list_fields]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "live/",
                self.admin_site.admin_view(self.live_list_view),
                name="{}_{}_live_list".format(*info),
            ),
            path(
                "<path:object_id>/live/",
                self.admin_site.admin_view(self.live_change_view),
                name="{}_{}_live".format(*info),
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        if "cl" in context:
            rows = context["cl"].result_list  # already fetched, with `live_seen`: no query more
            ids = [o.pk for o in rows]
            url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_live_list")
            url += "?" + urlencode({"ids": ",".join(map(str, ids))})
            etag = live_etag(self.live_scope(request, ids), [o.live_seen for o in rows])
            context["live"] = live_context(url, etag)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The revision is read before any of the page's data: a change made while the page
        # renders is then sent by the first poll, never lost.
        pk = _pk(object_id)
        revision = self.live_revision_of(pk) if pk is not None else None
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, pk) if revision is not None else None
        if obj is not None:
            extra_context.update(self.live_page_context(request, obj))
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None) or {}
        if obj is not None and "original" in context:
            url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_live", args=[pk])
            etag = live_etag(self.live_scope(request, [pk]), [revision])
            context["live"] = live_context(url, etag)
        return response

    def live_change_view(self, request, object_id):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        pk = _pk(object_id)
        revision = self.live_revision_of(pk) if pk is not None else None
        if revision is None:
            raise Http404
        scope = self.live_scope(request, [pk])
        etag = live_etag(scope, [revision])
        seen = live_seen(request, scope)
        if seen == [revision]:
            return live_not_modified(etag)
        obj = self.get_object(request, pk)
        if obj is None:
            raise Http404
        since = seen[0] if seen and seen[0] is not None and seen[0] < revision else None
        return live_response(
            self.live_regions(request, obj, since=since), url=request.path, etag=etag
        )

    def live_list_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.isdigit()][:500]
        revisions = self.live_revisions(ids)
        scope = self.live_scope(request, ids)
        now = [revisions.get(pk) for pk in ids]
        etag = live_etag(scope, now)
        seen = live_seen(request, scope)
        if seen == now:
            return live_not_modified(etag)
        if seen is None or len(seen) != len(ids):
            seen = [None] * len(ids)
        changed = [
            pk
            for pk, old, new in zip(ids, seen, now, strict=True)
            if new is not None and old != new
        ]
        by_pk = {o.pk: o for o in self.get_queryset(request).filter(pk__in=changed)}
        rows = [by_pk[pk] for pk in changed if pk in by_pk]
        return live_response(
            self.live_list_regions(request, rows), url=request.get_full_path(), etag=etag
        )


def _pk(object_id) -> int | None:
    object_id = unquote(str(object_id))
    return int(object_id) if object_id.isdigit() else None
