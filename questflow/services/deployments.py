"""Akash deployments: validate and store the configuration, then submit its SDL on the worker."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from questflow import akash
from questflow.models import Deployment
from questflow.services.ids import unique_id
from system.kernel.exceptions import DomainError, ValidationFailed
from system.kernel.outbox import enqueue


class DeploymentNotFailed(DomainError):
    code = "deployment_not_failed"
    http_status = 409
    message = "Only a failed deployment can be re-submitted."


def deployment_create(*, body: Any, actor: AbstractBaseUser) -> Deployment:
    try:
        config = akash.deployment_validate(body)
    except ValueError as exc:
        raise ValidationFailed(
            "The deployment configuration is invalid.", details=exc.args[0]
        ) from None
    from questflow.tasks import submit_deployment  # tasks import this module

    with transaction.atomic():
        deployment = Deployment.objects.create(
            deployment_id=unique_id("akash-deployment", Deployment),
            name=config.name,
            config=body["config"],
            sdl=akash.render_sdl(config),
            backend=settings.AKASH_BACKEND,
            created_by=actor,
        )
        enqueue(submit_deployment, deployment.deployment_id)
    return deployment


def deployment_resubmit(*, deployment_id: str) -> Deployment:
    """Queue a failed deployment for submission again, by the task deployment_create uses:
    the backend (the Akash CLI) never runs inside a request. Back to `initiated` at once, so
    a second re-submission before the worker runs is refused instead of queued twice."""
    from questflow.tasks import submit_deployment  # tasks import this module

    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        if deployment.status != Deployment.Status.FAILED:
            raise DeploymentNotFailed(details={"status": deployment.status})
        deployment.status = Deployment.Status.INITIATED
        deployment.save(update_fields=["status", "updated_at"])
        enqueue(submit_deployment, deployment.deployment_id)
    return deployment


def deployment_submit(*, deployment_id: str) -> Deployment | None:
    """Hand the SDL to the backend, at most once: the deployment is claimed (`initiated` ->
    `submitting`) by a conditional UPDATE, with no transaction open while the backend runs, so
    a redelivered task or a re-submission racing this one finds it claimed and does nothing."""
    claimed = Deployment.objects.filter(
        pk=deployment_id, status=Deployment.Status.INITIATED
    ).update(status=Deployment.Status.SUBMITTING, updated_at=timezone.now())
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if not claimed or deployment is None:
        return deployment
    result = akash.submit(sdl=deployment.sdl)
    Deployment.objects.filter(pk=deployment_id, status=Deployment.Status.SUBMITTING).update(
        status=result.status, backend_output=result.output, updated_at=timezone.now()
    )
    deployment.refresh_from_db()
    return deployment
