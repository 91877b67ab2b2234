"""The admin's own views: create a batch, start a stage or cancel it, switch a release's tag,
and the page that says which permission is missing.

Each takes the model admin it serves (for its site, options and permissions), validates the
input, calls one service, records it in the admin log (`history`) and reports the result.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from applications.models import Application
from applications.permissions import DEPLOY_BATCH, SWITCH_VERSION, permission_name
from utilities.admin import status_badge
from utilities.errors import REFUSALS, DomainError, refusal
from utilities.live import region_id

from .. import rules, selectors, services
from ..choices import BatchStatus
from ..forms import BatchCreateForm, NoteForm, SwitchVersionForm
from ..models import Batch
from .display import is_closed

# What each permission the admin checks lets a person do, in their words.
PERMISSION_WORDS = {
    permission_name(SWITCH_VERSION): _("switch a release to another tag"),
    permission_name(DEPLOY_BATCH): _("start or cancel a batch's rollouts"),
    rules.ADD_BATCH_PERMISSION: _("create a batch"),
}


def forbidden(
    model_admin, request, *, permission: str, back_url: str, detail: str = ""
) -> TemplateResponse:
    """An admin page, answered 403, naming the permission that is missing and the way back;
    `detail` says for which applications (a blocker's words)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": gettext("You may not do this"),
        "permission": permission,
        "what": PERMISSION_WORDS.get(permission, ""),
        "detail": detail,
        "back_url": back_url,
    }
    return TemplateResponse(request, "admin/releases/forbidden.html", context, status=403)


def create_batch(model_admin, request):
    """Name a batch and tick its apps, each at its latest successful tag unless another is
    chosen; `services.create_batch` decides, with the API's rules."""
    changelist_url = reverse("admin:releases_batch_changelist")
    if not request.user.has_perm(rules.ADD_BATCH_PERMISSION):
        return forbidden(
            model_admin, request, permission=rules.ADD_BATCH_PERMISSION, back_url=changelist_url
        )
    applications = list(Application.objects.order_by("name"))
    form = BatchCreateForm(
        request.POST or None,
        applications=applications,
        menu=selectors.application_tag_menu(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            result = services.create_batch(
                name=form.cleaned_data["name"], apps=form.app_choices(), user=request.user
            )
        except REFUSALS as error:
            refused = refusal(error)
            details = [str(v) for values in refused.fields.values() for v in values]
            form.add_error(None, " ".join([refused.message, *details]))
        else:
            batch = result.batch
            if result.changed:
                count = batch.releases.count()
                messages.success(
                    request,
                    ngettext(
                        "Batch %(name)s created with %(count)d application.",
                        "Batch %(name)s created with %(count)d applications.",
                        count,
                    )
                    % {"name": batch.name, "count": count},
                )
            else:
                messages.info(
                    request,
                    gettext("Batch %(name)s already exists with these tags.")
                    % {"name": batch.name},
                )
            return HttpResponseRedirect(reverse("admin:releases_batch_change", args=[batch.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": gettext("Create a batch"),
        "form": form,
        "changelist_url": changelist_url,
    }
    return TemplateResponse(request, "admin/releases/batch/create.html", context)


# Batch transitions a person may start, in button order; the rest follow from deployments.
ROLLOUTS = {
    "start_pre_deploy": (_("Start pre rollout"), services.start_pre_deploy),
    "start_prod_deploy": (_("Start prod rollout"), services.start_prod_deploy),
    "cancel": (_("Cancel batch"), services.cancel_batch),
}
# The big ones ask first (GET shows the question, POST acts); pre stays one click.
CONFIRMED_ROLLOUTS = {
    "start_prod_deploy": "admin/releases/batch/start_prod_confirm.html",
    "cancel": "admin/releases/batch/cancel_confirm.html",
}
CONFIRM_TITLES = {
    "start_prod_deploy": _("Start the prod rollout of batch %(name)s?"),
    "cancel": _("Cancel batch %(name)s?"),
}


def rollout(model_admin, request, object_id: int, transition: str):
    """Start a stage or cancel, through the service. POST; cancel asks first on GET."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if transition not in ROLLOUTS:
        raise Http404
    batch = get_object_or_404(Batch, pk=object_id)
    applications = Application.objects.filter(releases__batch=batch)
    if blocker := rules.deploy_blocker(request.user, applications):
        return forbidden(
            model_admin,
            request,
            permission=permission_name(DEPLOY_BATCH),
            back_url=reverse("admin:releases_batch_change", args=[batch.pk]),
            detail=blocker.detail,
        )
    service = ROLLOUTS[transition][1]
    change_url = reverse("admin:releases_batch_change", args=[batch.pk])
    form = NoteForm(request.POST if request.method == "POST" else None)
    confirmed = transition in CONFIRMED_ROLLOUTS
    if request.method not in ("GET", "POST") or (request.method == "GET" and not confirmed):
        return HttpResponseNotAllowed(["POST"])
    if not form.is_valid() and confirmed:
        # GET asks; a POST with a bad note asks again, its error beside the note.
        releases = list(batch.releases.select_related("application").order_by("application__name"))
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": CONFIRM_TITLES[transition] % {"name": batch.name},
            "batch": batch,
            "releases": releases,
            # Shipping a tag while a newer one waits is rarely meant: say so, and offer the switch.
            "newer": [
                (
                    release,
                    reverse("admin:releases_releaseapp_switch", args=[release.pk])
                    + "?"
                    + urlencode({"next": change_url}),
                )
                for release in releases
                if release.has_new_tag
            ],
            "change_url": change_url,
            "form": form,
        }
        return TemplateResponse(request, CONFIRMED_ROLLOUTS[transition], context)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["note"]))
        return HttpResponseRedirect(change_url)
    try:
        result = service(batch_id=batch.pk, user=request.user, note=form.cleaned_data["note"])
    except REFUSALS as error:
        messages.error(request, refusal(error).message)
    else:
        _report_rollout(request, transition, result)
    return HttpResponseRedirect(change_url)


def _report_rollout(request, transition, result) -> None:
    # Lowercase mid-sentence ("the batch is now deploying to prod"). The message is tagged with
    # the status it announces: the live page drops it once the batch has moved on (base_site.html).
    status = result.batch.get_status_display().lower()
    announces = f"rt-while rt-while-{region_id(result.batch, 'batch_status')}-{result.batch.status}"
    if not result.changed:
        messages.info(
            request,
            gettext("Nothing to do: the batch is already %(status)s.") % {"status": status},
            extra_tags=announces,
        )
    elif transition == "cancel":
        count = len(result.deployments)
        text = gettext("Batch cancelled.")
        if count:
            text += " " + ngettext(
                "%(count)d unfinished deployment was cancelled; its Job is being deleted.",
                "%(count)d unfinished deployments were cancelled; their Jobs are being deleted.",
                count,
            ) % {"count": count}
        messages.success(request, text)
    elif result.deployments:
        count = len(result.deployments)
        messages.success(
            request,
            ngettext(
                "Rollout started: %(count)d deployment queued; the batch is now %(status)s.",
                "Rollout started: %(count)d deployments queued; the batch is now %(status)s.",
                count,
            )
            % {"count": count, "status": status},
            extra_tags=announces,
        )
    else:
        messages.success(
            request,
            gettext("No release needed this stage; the batch is now %(status)s.")
            % {"status": status},
            extra_tags=announces,
        )


def switch(model_admin, request, object_id: int):
    """Offer this app's successful tags and switch through `services.switch_version`."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        view = selectors.release_status(release_id=object_id, user=request.user)
    except DomainError:
        raise Http404 from None
    release = view.release
    change_url = reverse("admin:releases_releaseapp_change", args=[release.pk])
    if refused := [b for b in view.switch_blockers if b.code == "permission_denied"]:
        return forbidden(
            model_admin,
            request,
            permission=permission_name(SWITCH_VERSION),
            back_url=change_url,
            detail=refused[0].detail,
        )
    next_url = request.GET.get("next") or request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""

    options = selectors.application_tag_choices(application_id=release.application_id)
    form = SwitchVersionForm(request.POST or None, release=release, options=options)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.switch_version(
                release_id=release.pk,
                user=request.user,
                image_tag=form.cleaned_data["image_tag"],
                expected_image_tag=form.cleaned_data["expected_image_tag"],
                note=form.cleaned_data["note"],
            )
        except REFUSALS as error:
            messages.error(request, refusal(error).message)
            return HttpResponseRedirect(request.get_full_path())
        _report_switch(request, result, batch_status_before=release.batch.status)
        return HttpResponseRedirect(next_url or change_url)

    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": gettext("Switch %(app)s to another tag") % {"app": release.application.name},
        "release": release,
        "batch_badge": status_badge(release.batch.status, release.batch.get_status_display()),
        "form": form,
        "blockers": view.switch_blockers,
        "closed": is_closed(release.batch),
        "change_url": change_url,
        "next_url": next_url,
    }
    return TemplateResponse(request, "admin/releases/releaseapp/switch.html", context)


def _report_switch(request, result, *, batch_status_before: str) -> None:
    app = result.release.application.name
    if not result.changed:
        messages.info(
            request,
            gettext("%(app)s is already at %(tag)s; nothing changed.")
            % {"app": app, "tag": result.release.image_tag},
        )
        return
    messages.success(
        request,
        gettext(
            "Switched %(app)s from %(old)s to %(new)s. A new pre deployment waits for the "
            "next pre rollout."
        )
        % {"app": app, "old": result.previous_image_tag, "new": result.release.image_tag},
    )
    if batch_status_before == BatchStatus.PROD_WAITING != result.batch_status:
        messages.info(
            request,
            gettext("The batch went back to waiting for pre: the new tag must pass pre first."),
        )
