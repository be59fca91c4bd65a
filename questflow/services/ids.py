"""The spec's ids of meetings and deployments: "<prefix>-<milliseconds>"."""

import time


def unique_id(prefix: str, model: type) -> str:
    """The spec's "<prefix>-<milliseconds>", bumped by a millisecond on a clash."""
    millis = int(time.time() * 1000)
    while model.objects.filter(pk=f"{prefix}-{millis}").exists():
        millis += 1
    return f"{prefix}-{millis}"
