"""Akash deployments: validate and store the configuration, then submit its SDL on the worker."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from questflow import akash
from questflow.models import Deployment
from questflow.services.ids import unique_id
from system.kernel.exceptions import DomainError, ValidationFailed


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
        submit_deployment.delay_on_commit(deployment.deployment_id)
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
        submit_deployment.delay_on_commit(deployment.deployment_id)
    return deployment


def deployment_submit(*, deployment_id: str) -> Deployment | None:
    """Hand the SDL to the backend; idempotent (a deployment past `initiated` is left alone
    unless it failed and is being re-submitted)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None or deployment.status not in (
        Deployment.Status.INITIATED,
        Deployment.Status.FAILED,
    ):
        return deployment
    result = akash.submit(sdl=deployment.sdl)
    deployment.status, deployment.backend_output = result.status, result.output
    deployment.save(update_fields=["status", "backend_output", "updated_at"])
    return deployment
