"""Short ways to drive the real workflows from tests."""

from builds.notifications import AppImage, BuildNotification
from deployments.models import Deployment
from deployments.services import deployment_mark_running
from releases.services import apply_deployment_outcome, ingest_build_notification


def notify(number: int, apps: dict[str, str], status: str = "success", repo: str = "org/repo"):
    """Ingest a notification of build `number` that produced `apps` ({name: tag})."""
    return ingest_build_notification(
        notification=BuildNotification(
            number=number,
            status=status,
            apps=tuple(AppImage(name, tag) for name, tag in apps.items()),
            repo=repo,
        )
    )


def run_deployment(deployment: Deployment, outcome: str = "succeeded", error: str = ""):
    """What the reconciler does for one deployment: its Job starts, then ends with `outcome`."""
    deployment_mark_running(
        deployment_id=deployment.pk,
        job_name=f"rt-deploy-{deployment.pk}",
        job_namespace=f"rt-{deployment.environment}",
    )
    return apply_deployment_outcome(deployment_id=deployment.pk, outcome=outcome, error=error)


def run_stage(result, outcomes: dict[str, str] | None = None):
    """Finish every deployment a stage start queued; `outcomes` maps app name to outcome."""
    outcomes = outcomes or {}
    last = None
    for deployment in result.deployments:
        app = deployment.release_app.application.name
        last = run_deployment(deployment, outcomes.get(app, "succeeded"))
    return last
