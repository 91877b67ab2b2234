"""The container and Kubernetes artifacts, and the production settings they run with."""

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").rglob("*.yaml"))


def _documents():
    for path in MANIFESTS:
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield pytest.param(doc, id=f"{path.relative_to(ROOT)}#{index}")


def _by_kind() -> dict[tuple[str, str], dict]:
    found = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[(doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"))] = (
                    doc
                )
    return found


@pytest.mark.parametrize("doc", list(_documents()))
def test_every_manifest_is_valid_against_the_kubernetes_schema(doc):
    kubernetes_validate.validate(doc, latest_version(), strict=True)


def test_the_manifests_hold_what_an_operator_needs():
    kinds = {(kind, name) for kind, name, _ in _by_kind()}
    assert {
        ("Deployment", "release-train-web"),
        ("Service", "release-train-web"),
        ("Deployment", "release-train-reconciler"),
        ("Job", "release-train-migrate"),
        ("ConfigMap", "release-train"),
        ("Secret", "release-train"),
        ("ServiceAccount", "release-train"),
        ("Role", "release-train-jobs"),
        ("RoleBinding", "release-train-jobs"),
    } <= kinds


def test_rbac_allows_jobs_only_and_only_in_the_target_namespaces():
    docs = _by_kind()
    roles = {ns: d for (kind, _, ns), d in docs.items() if kind == "Role"}
    config = docs[("ConfigMap", "release-train", "release-train")]["data"]
    assert set(roles) == {config["DEPLOY_NAMESPACE_PRE"], config["DEPLOY_NAMESPACE_PROD"]}
    for role in roles.values():
        assert role["rules"] == [
            {
                "apiGroups": ["batch"],
                "resources": ["jobs"],
                "verbs": ["create", "get", "list", "watch", "delete"],
            }
        ]
    assert not any(kind.startswith("Cluster") for kind, _, _ in docs)


def test_pods_run_as_the_images_non_root_user_with_a_read_only_root():
    docs = _by_kind()
    for kind, name, ns in docs:
        if kind not in ("Deployment", "Job"):
            continue
        pod = docs[(kind, name, ns)]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"release-train"}


def test_the_dockerfile_is_slim_non_root_and_collects_static_files():
    # No Docker engine here to build it; these are the properties the build relies on.
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "collectstatic --noinput" in text
    assert "USER 10001" in text
    assert '"gunicorn", "--config", "config/gunicorn.py", "config.wsgi"' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "db.sqlite3"} <= set(ignored)


def _manage(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE"))}
        | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "k7#Qz!p2" * 8,
    "DATABASE_URL": "postgres://release_train@127.0.0.1:5432/release_train",
    "DJANGO_ALLOWED_HOSTS": "release-train.example.com",
}


def test_check_deploy_reports_nothing_with_the_documented_production_environment():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
