"""Notes in the admin: the switch form, the pre button and the prod and cancel confirmations take
one; the History pages show it beside a message in the reader's language."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from releases.history import batch_history, entry_read
from releases.models import Batch
from releases.services import start_pre_deploy
from tests.helpers import run_stage
from tests.pages import messages_of, row, text

pytestmark = pytest.mark.django_db


def rollout_url(batch, transition):
    return reverse("admin:releases_batch_rollout", args=[batch.pk, transition])


def history_url(obj):
    return reverse(f"admin:releases_{obj._meta.model_name}_history", args=[obj.pk])


def latest_note() -> str:
    """The note of the batch's newest history entry."""
    return entry_read(batch_history(batch_id=Batch.objects.get().pk).first()).note


def test_the_switch_form_takes_a_note(client, engineer, batch):
    client.force_login(engineer)
    api = batch.releases.get(application__name="api")
    switch_url = reverse("admin:releases_releaseapp_switch", args=[api.pk])
    assert 'name="note"' in client.get(switch_url).content.decode()

    client.post(
        switch_url, {"image_tag": "v2", "expected_image_tag": "v1", "note": " INC-481 fix "}
    )

    api.refresh_from_db()
    assert api.image_tag == "v2"
    history = client.get(history_url(api))
    line = row(history, "Switched api")
    assert "INC-481 fix" in line
    assert "Switched api from v1 to v2; new pre deployment" in line


def test_a_bad_note_on_the_switch_form_is_shown_and_nothing_changes(client, engineer, batch):
    client.force_login(engineer)
    api = batch.releases.get(application__name="api")
    switch_url = reverse("admin:releases_releaseapp_switch", args=[api.pk])
    entries = LogEntry.objects.count()

    response = client.post(
        switch_url, {"image_tag": "v2", "expected_image_tag": "v1", "note": "x" * 501}
    )

    assert response.status_code == 200
    assert "At most 500 characters, not 501." in text(response)
    api.refresh_from_db()
    assert api.image_tag == "v1"
    assert LogEntry.objects.count() == entries


def test_the_pre_button_carries_a_note(client, deployer, batch):
    client.force_login(deployer)
    page = client.get(reverse("admin:releases_batch_change", args=[batch.pk])).content.decode()
    assert 'name="note" form="rt-rollout-form"' in page

    client.post(rollout_url(batch, "start_pre_deploy"), {"note": "Payments signed off."})

    batch.refresh_from_db()
    assert batch.status == "pre_deploying"
    assert latest_note() == "Payments signed off."


def test_the_pre_button_refuses_a_bad_note_and_starts_nothing(client, deployer, batch):
    client.force_login(deployer)

    response = client.post(
        rollout_url(batch, "start_pre_deploy"), {"note": "a\u0007bell"}, follow=True
    )

    assert "The note may not hold control characters." in messages_of(response)
    batch.refresh_from_db()
    assert batch.status == "pre_waiting"


@pytest.mark.parametrize("transition", ["start_prod_deploy", "cancel"])
def test_the_confirmation_pages_take_a_note(client, deployer, batch, transition):
    run_stage(start_pre_deploy(batch_id=batch.pk, user=deployer))
    client.force_login(deployer)
    confirm = client.get(rollout_url(batch, transition))
    assert 'name="note"' in confirm.content.decode()

    refused = client.post(rollout_url(batch, transition), {"note": "n" * 501})
    assert refused.status_code == 200
    assert "At most 500 characters, not 501." in text(refused)
    batch.refresh_from_db()
    assert batch.status == "prod_waiting"

    client.post(rollout_url(batch, transition), {"note": "Change CHG-7 approved."})
    batch.refresh_from_db()
    assert batch.status == ("prod_deploying" if transition == "start_prod_deploy" else "cancelled")
    assert latest_note() == "Change CHG-7 approved."


def test_the_history_page_reads_in_chinese_with_notes_and_old_entries(
    client, deployer, batch, settings
):
    LogEntry.objects.create(
        user=deployer,
        content_type=ContentType.objects.get_for_model(batch),
        object_id=str(batch.pk),
        object_repr=str(batch),
        action_flag=CHANGE,
        change_message="Cancelled the batch. 2 unfinished deployment(s) cancelled. "
        "The batch is now cancelled.",
    )
    start_pre_deploy(batch_id=batch.pk, user=deployer, note="Payments signed off.")
    client.force_login(deployer)

    english = client.get(history_url(batch), HTTP_ACCEPT_LANGUAGE="en")
    chinese = client.get(history_url(batch), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert "Started the pre rollout: 2 deployments queued." in text(english)
    assert "Payments signed off." in row(english, "Started the pre rollout")
    assert "Cancelled the batch and its 2 unfinished deployments." in text(english)
    assert "deployment(s)" not in text(english)
    assert "已开始预发布部署：已排队 2 个部署。" in text(chinese)  # noqa: RUF001
    assert "已取消批次及其 2 个未完成的部署。" in text(chinese)
    assert "Payments signed off." in text(chinese)
