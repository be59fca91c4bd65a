from celery import shared_task

from sessions_app.sweep import sessions_sweep


@shared_task(name="sessions.sweep")
def sweep() -> dict[str, int]:
    """Run by beat every SESSION_SWEEP_SECONDS; idempotent and safe to overlap."""
    result = sessions_sweep()
    return {"expired": result.expired, "warned": result.warned}
