"""The management commands: thin wrappers over the workflows, safe to run twice."""

import io
import json
import shlex

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from builds.models import Build, BuildImage
from releases.models import Batch, ReleaseApp
from releases.services import backfill_latest_tags, create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, record_unseen

pytestmark = pytest.mark.django_db


def run(*args, stderr=None, **options) -> tuple[str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def _latest(release_id: int) -> tuple[str, int | None, bool]:
    r = ReleaseApp.objects.get(pk=release_id)
    return r.latest_image_tag, r.latest_build_id, r.has_new_tag


def _snapshot() -> list[tuple]:
    return list(
        ReleaseApp.objects.order_by("pk").values_list(
            "pk", "latest_image_tag", "latest_build_id", "latest_seen_at"
        )
    )


# --- notify_build ---------------------------------------------------------------------------


def test_notify_build_from_options_detects_a_new_tag():
    notify(1, {"api": "v1"})
    batch = create_batch(name="b", apps=[AppChoice("api")], user=UserFactory()).batch

    out, _ = run(
        "notify_build", "--number", "2", "--app", "api=v2", "--repo", "org/repo", "--branch", "main"
    )

    body = json.loads(out)
    release = batch.releases.get()
    assert body["build"]["number"] == 2 and body["build"]["status"] == "success"
    assert (body["created"], body["duplicate"], body["stale"]) == (True, False, False)
    assert body["new_tags"] == [{"app": "api", "image_tag": "v2", "release_ids": [release.pk]}]
    assert _latest(release.pk)[0::2] == ("v2", True)
    assert Build.objects.get(number=2).branch == "main"


def test_notify_build_from_a_file_twice_is_a_duplicate(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(
        json.dumps(
            {
                "build_number": 7,
                "build_status": "success",
                "apps": [{"name": "api", "image_tag": "v7"}, {"name": "web", "image_tag": "w7"}],
                "repo": "org/repo",
                "unknown_field": "ignored",
            }
        )
    )

    first = json.loads(run("notify_build", "--file", str(path))[0])
    second = json.loads(run("notify_build", "--file", str(path))[0])

    assert (first["created"], first["duplicate"]) == (True, False)
    assert (second["created"], second["duplicate"]) == (False, True)
    assert Build.objects.count() == 1 and BuildImage.objects.count() == 2


def test_notify_build_rejects_bad_input_with_its_code_and_writes_nothing():
    with pytest.raises(CommandError) as caught:
        run("notify_build", "--number", "0", "--app", "api=not a tag")

    error = json.loads(str(caught.value))
    assert caught.value.returncode == 2
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"build_number", "apps"}
    assert not Build.objects.exists()


def test_notify_build_needs_a_body():
    with pytest.raises(CommandError, match="--number"):
        run("notify_build")
    with pytest.raises(CommandError, match="NAME=TAG"):
        run("notify_build", "--number", "3", "--app", "api")


# --- backfill_latest_tags -------------------------------------------------------------------


@pytest.fixture
def drifted():
    """Two open batches whose releases missed builds (as if notifications were lost)."""
    notify(1, {"api": "v1", "web": "w1"})
    user = UserFactory()
    first = create_batch(name="one", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    second = create_batch(name="two", apps=[AppChoice("api")], user=user).batch
    closed = create_batch(name="closed", apps=[AppChoice("api")], user=user).batch
    Batch.objects.filter(pk=closed.pk).update(status="cancelled")
    # Builds recorded while detection was not looking: no release learned of them.
    for number, apps in [(2, {"api": "v2"}), (4, {"api": "v4", "web": "w4"}), (3, {"api": "v3"})]:
        record_unseen(number, apps)
    record_unseen(9, {"api": "v9"}, status="failure")
    return {"one": first, "two": second, "closed": closed}


def test_backfill_dry_run_prints_the_changes_and_writes_nothing(drifted):
    before = _snapshot()

    out, _ = run("backfill_latest_tags", "--dry-run")

    assert _snapshot() == before
    assert out.count("(would change)") == 3
    assert "latest v1 -> v4" in out and "latest w1 -> w4" in out
    assert "3 of 3 releases would change. Dry run: nothing was written." in out


def test_backfill_takes_the_highest_successful_build_and_a_second_run_changes_nothing(drifted):
    closed_release = drifted["closed"].releases.get()
    closed_before = _latest(closed_release.pk)

    out, err = run("backfill_latest_tags", "--chunk-size", "2")

    v4 = Build.objects.get(number=4)
    for release in ReleaseApp.objects.filter(batch__in=[drifted["one"], drifted["two"]]):
        tag, build_id, has_new = _latest(release.pk)
        assert build_id == v4.pk and has_new
        assert tag == ("v4" if release.application.name == "api" else "w4")
        assert ReleaseApp.objects.get(pk=release.pk).latest_seen_at == v4.received_at
    assert _latest(closed_release.pk) == closed_before  # closed batches are history
    assert "3 of 3 releases changed." in out
    assert "examined 2/3 releases" in err and "examined 3/3 releases" in err

    after = _snapshot()
    out, _ = run("backfill_latest_tags")
    assert _snapshot() == after
    assert "0 of 3 releases changed." in out


class Terminal(io.StringIO):
    """What a command's stderr is when a person runs it at a terminal."""

    def isatty(self) -> bool:
        return True


def test_backfill_progress_is_a_line_per_chunk_when_not_on_a_terminal(drifted):
    _, err = run("backfill_latest_tags", "--chunk-size", "2")

    assert err.splitlines() == ["examined 2/3 releases", "examined 3/3 releases"]
    assert "\r" not in err


def test_backfill_progress_is_a_bar_on_a_terminal(drifted):
    terminal = Terminal()
    out, _ = run("backfill_latest_tags", "--chunk-size", "2", stderr=terminal)

    bar = terminal.getvalue()
    assert "\r" in bar and "examined releases: 100%" in bar and "3/3" in bar
    assert "examined 2/3 releases\n" not in bar
    assert "3 of 3 releases changed." in out


def test_backfill_progress_is_silent_at_verbosity_0(drifted):
    _, err = run("backfill_latest_tags", verbosity=0)

    assert err == ""


def test_backfill_of_one_batch_leaves_the_others(drifted):
    out, _ = run("backfill_latest_tags", "--batch", str(drifted["two"].pk))

    assert "1 of 1 releases changed." in out
    assert _latest(drifted["two"].releases.get().pk)[0] == "v4"
    assert {r.latest_image_tag for r in drifted["one"].releases.all()} == {"v1", "w1"}


def test_backfill_of_an_unknown_batch_fails():
    with pytest.raises(CommandError, match="does not exist"):
        run("backfill_latest_tags", "--batch", "999999")


# --- seed_demo ------------------------------------------------------------------------------


def _counts() -> dict[str, int]:
    from django.contrib.auth import get_user_model

    return {
        "users": get_user_model().objects.count(),
        "tokens": Token.objects.count(),
        "builds": Build.objects.count(),
        "batches": Batch.objects.count(),
        "releases": ReleaseApp.objects.count(),
    }


def test_seed_demo_is_idempotent_and_leaves_a_pending_new_tag():
    out, _ = run("seed_demo", "--force", "--base-url", "http://127.0.0.1:9999")
    counts = _counts()
    releases = list(ReleaseApp.objects.filter(batch__name="Demo release").order_by("pk"))

    run("seed_demo", "--force", verbosity=0)

    assert _counts() == counts
    assert list(ReleaseApp.objects.filter(batch__name="Demo release").order_by("pk")) == releases
    api = next(r for r in releases if r.application.name == "api")
    assert (api.image_tag, api.latest_image_tag, api.has_new_tag) == ("v1.4.1", "v1.5.0", True)
    assert "http://127.0.0.1:9999/api/v1/builds/notify" in out
    assert "http://127.0.0.1:9999/admin/" in out


def test_seed_demo_users_have_the_documented_permissions():
    from django.contrib.auth import get_user_model

    run("seed_demo", "--force", verbosity=0)
    users = {u.username: u for u in get_user_model().objects.all()}

    assert users["alice"].has_perm("applications.switch_version")
    assert users["alice"].check_password("alice-demo")
    assert not users["bob"].has_perm("applications.switch_version")
    assert users["bob"].has_perm("releases.view_releaseapp")
    assert users["drone"].has_perm("builds.notify_build")
    assert not users["drone"].has_usable_password()
    assert Token.objects.get(user=users["drone"]).key == "demo-token-drone"


def test_seed_demo_has_a_team_that_may_switch_api_only():
    from django.contrib.auth import get_user_model

    from applications.models import Application
    from applications.permissions import may

    out, _ = run("seed_demo", "--force")
    run("seed_demo", "--force", verbosity=0)  # a second run changes nothing
    carol = get_user_model().objects.get(username="carol")

    assert [g.name for g in carol.groups.all()] == ["Payments"]
    assert carol.check_password("carol-demo")
    assert may(carol, "switch_version", Application.objects.get(name="api"))
    carol = get_user_model().objects.get(username="carol")  # a new request's user
    assert not may(carol, "switch_version", Application.objects.get(name="web"))
    assert not carol.has_perm("applications.switch_version")
    assert "carol   carol-demo   demo-token-carol    team Payments: may switch api only" in out


def _printed_builds(out: str) -> list[dict]:
    """The JSON bodies of the printed curl commands that send a build."""
    commands = out.replace("\\\n", " ").splitlines()
    return [
        json.loads(words[words.index("-d") + 1])
        for words in (shlex.split(c) for c in commands if "/builds/notify" in c)
    ]


def test_seed_demo_prints_the_newest_build_and_two_builds_that_each_bring_a_new_tag():
    out, _ = run("seed_demo", "--force", "--base-url", "http://127.0.0.1:9999")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer demo-token-drone")
    web = ReleaseApp.objects.get(batch__name="Demo release", application__name="web")

    assert "Newest build: #104 of acme/shop (api v1.5.0)." in out
    first, second = _printed_builds(out)
    assert (first["build_number"], second["build_number"]) == (105, 106)
    seen = []
    for body in (first, second):
        assert api.post("/api/v1/builds/notify", body, format="json").status_code == 201
        web.refresh_from_db()
        seen.append((web.latest_image_tag, web.has_new_tag))
    assert seen == [("v2.4.0-b105", True), ("v2.4.0-b106", True)]
    assert "web gets the new tag v2.4.0-b105" in out
    assert "web's new tag becomes v2.4.0-b106" in out
    assert f"/api/v1/releases/{web.pk}/switch-version" in out

    # Run again (as `make run` does), the next two builds are the ones printed.
    again, _ = run("seed_demo", "--force")
    assert [b["build_number"] for b in _printed_builds(again)] == [107, 108]
    assert "Newest build: #106 of acme/shop (web v2.4.0-b106)." in again
    assert "/start-pre-deploy" in again

    # A demo played up to prod is offered the prod stage next.
    Batch.objects.filter(name="Demo release").update(status="prod_waiting")
    later, _ = run("seed_demo", "--force")
    assert "/start-prod-deploy" in later and "/start-pre-deploy" not in later


def test_seed_demo_again_after_the_demo_batch_closed_makes_no_second_one():
    run("seed_demo", "--force", verbosity=0)
    Batch.objects.filter(name="Demo release").update(status="completed")  # played through

    out, _ = run("seed_demo", "--force")

    assert Batch.objects.filter(name="Demo release").count() == 1
    assert "'Demo release' is completed." in out


@override_settings(DEBUG=False)
def test_seed_demo_refuses_without_debug_unless_forced():
    with pytest.raises(CommandError, match="--force"):
        run("seed_demo")
    assert not Batch.objects.exists()


def test_backfill_statements_do_not_grow_with_releases_or_history():
    def statements() -> int:
        with CaptureQueriesContext(connection) as ctx:
            result = backfill_latest_tags()
        assert result.changes
        return len(ctx.captured_queries)

    user = UserFactory()
    notify(1, {"a0": "v1"})
    create_batch(name="small", apps=[AppChoice("a0")], user=user)
    record_unseen(2, {"a0": "v2"})
    small = statements()

    apps = {f"a{i}": "v1" for i in range(1, 20)}
    notify(3, apps)
    for n in range(3):
        create_batch(name=f"big{n}", apps=[AppChoice(a) for a in apps], user=user)
    record_unseen(40, dict.fromkeys(apps, "v40"))
    for number in range(5, 30):  # older history the recomputation must not walk row by row
        record_unseen(number, {}, status="failure")
    big = statements()

    assert big == small


def test_backfill_agrees_with_detection_across_repos_and_late_deliveries():
    """Two apps get the same history: `api` through detection, `web` recorded without it. The
    backfill leaves `api` where detection put it and puts `web` at the same place: the app
    moved to a new repo (numbers from 1) and an older build of each repo came late."""
    user = UserFactory()
    notify(1, {"api": "v1", "web": "v1"}, repo="org/old")
    batch = create_batch(name="b", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    history = [
        ("org/shop", 41, "v41"),
        ("org/shop", 39, "v39"),  # late, within its repo
        ("org/monorepo", 1, "m1"),  # the move
        ("org/shop", 40, "v40"),  # late, from the old repo
        ("org/monorepo", 3, "m3"),
        ("org/monorepo", 2, "m2"),  # late
    ]
    for repo, number, tag in history:
        notify(number, {"api": tag}, repo=repo)
        record_unseen(number + 1000, {"web": tag}, repo=repo)

    result = backfill_latest_tags()

    assert [c.app for c in result.changes] == ["web"]
    latest = dict(batch.releases.values_list("application__name", "latest_image_tag"))
    assert latest == {"api": "m3", "web": "m3"}
