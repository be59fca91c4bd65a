"""Akash deployments: validate a request, render its SDL v2.0 manifest, hand it to a backend.

Backends (settings.AKASH_BACKEND): `manifest` needs no network (the SDL is made ready for
download); `cli` runs settings.AKASH_CLI_COMMAND with `{sdl}` replaced by the SDL file's path,
and its exit code decides `submitted` or `failed`.
"""

import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SIZE = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>Ki|Mi|Gi|Ti|KB|MB|GB|TB|K|M|G|T)$", re.I)
# SDL sizes are Kubernetes quantities: binary units as given, decimal ones as k/M/G/T.
_UNITS = {
    "ki": "Ki",
    "mi": "Mi",
    "gi": "Gi",
    "ti": "Ti",
    "kb": "k",
    "k": "k",
    "mb": "M",
    "m": "M",
    "gb": "G",
    "g": "G",
    "tb": "T",
    "t": "T",
}
DEFAULT_IMAGE = "nginx:1.27"
OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class DeploymentConfig:
    name: str
    cpu: float
    memory: str
    storage: str
    image: str
    port: int
    count: int


def _size(value: Any, field: str, errors: dict[str, list[str]]) -> str:
    match = SIZE.match(str(value).strip()) if isinstance(value, str) else None
    if match is None or float(match["amount"]) <= 0:
        errors[field] = ["A size with a unit, such as 512Mi, 1Gi or 1GB."]
        return ""
    amount = match["amount"].rstrip("0").rstrip(".") if "." in match["amount"] else match["amount"]
    return f"{amount}{_UNITS[match['unit'].lower()]}"


def deployment_validate(body: Any) -> DeploymentConfig:
    """Returns the normalised config or raises ValueError(details) with per-field messages."""
    errors: dict[str, list[str]] = {}
    body = body if isinstance(body, dict) else {}
    name = body.get("name")
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        errors["name"] = ["A DNS label: 1 to 63 lowercase letters, digits or '-', not at the ends."]
    config = body.get("config")
    if not isinstance(config, dict):
        errors["config"] = ["Required: an object with cpu, memory and storage."]
        raise ValueError(errors)
    cpu = config.get("cpu")
    if not isinstance(cpu, int | float) or isinstance(cpu, bool) or not 0.1 <= cpu <= 256:
        errors["config.cpu"] = ["A number of CPU units from 0.1 to 256."]
    memory = _size(config.get("memory"), "config.memory", errors)
    storage = _size(config.get("storage"), "config.storage", errors)
    image = config.get("image", DEFAULT_IMAGE)
    if not isinstance(image, str) or not image.strip() or len(image) > 255 or " " in image:
        errors["config.image"] = ["A container image reference, such as nginx:1.27."]
    port = config.get("port", 80)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors["config.port"] = ["A port from 1 to 65535."]
    count = config.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
        errors["config.count"] = ["An instance count from 1 to 100."]
    if errors:
        raise ValueError(errors)
    return DeploymentConfig(name, float(cpu), memory, storage, image, port, count)


def render_sdl(config: DeploymentConfig) -> str:
    """An Akash SDL v2.0 manifest for one service exposed globally on port 80."""
    service = config.name
    document = {
        "version": "2.0",
        "services": {
            service: {
                "image": config.image,
                "expose": [{"port": config.port, "as": 80, "to": [{"global": True}]}],
            }
        },
        "profiles": {
            "compute": {
                service: {
                    "resources": {
                        "cpu": {"units": config.cpu},
                        "memory": {"size": config.memory},
                        "storage": {"size": config.storage},
                    }
                }
            },
            "placement": {
                "dcloud": {
                    "pricing": {service: {"denom": "uakt", "amount": settings.AKASH_PRICE_UAKT}}
                }
            },
        },
        "deployment": {service: {"dcloud": {"profile": service, "count": config.count}}},
    }
    return "---\n" + yaml.safe_dump(document, sort_keys=False)


@dataclass(frozen=True)
class BackendResult:
    status: str  # manifest_ready | submitted | failed
    output: str


def submit(*, sdl: str) -> BackendResult:
    backend = settings.AKASH_BACKEND
    if backend == "manifest":
        return BackendResult(
            "manifest_ready", "SDL rendered; submit it with the Akash CLI or console."
        )
    if backend != "cli":
        return BackendResult(
            "failed", f"Unknown AKASH_BACKEND {backend!r}; use 'manifest' or 'cli'."
        )
    command = settings.AKASH_CLI_COMMAND
    if not command:
        return BackendResult("failed", "AKASH_BACKEND is 'cli' but AKASH_CLI_COMMAND is not set.")
    with tempfile.TemporaryDirectory(prefix="akash-") as directory:
        sdl_path = Path(directory) / "deploy.yaml"
        sdl_path.write_text(sdl)
        argv = [part.replace("{sdl}", str(sdl_path)) for part in shlex.split(command)]
        try:
            completed = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=settings.AKASH_CLI_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return BackendResult(
                "failed", f"The Akash CLI could not run: {type(exc).__name__}: {exc}"
            )
    output = (completed.stdout + completed.stderr)[-OUTPUT_LIMIT:]
    status = "submitted" if completed.returncode == 0 else "failed"
    return BackendResult(status, f"exit code {completed.returncode}\n{output}")
