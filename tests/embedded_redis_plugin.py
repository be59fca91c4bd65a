"""pytest plugin (loaded with `-p` from pyproject.toml, before pytest-django reads settings).

With no REDIS_URL in the environment, the suite gets its own embedded Redis on a free port, so
`make test` works on a fresh machine and never touches a Redis that `make run` is using.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from system.devserver.embedded_redis import EmbeddedRedis, free_port

_server_key = pytest.StashKey[EmbeddedRedis]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
    os.environ.setdefault("JWT_SIGNING_KEY", "test-only-jwt-signing-key-" + "y" * 40)
    if os.environ.get("REDIS_URL") or early_config.getoption("help"):
        return
    server = EmbeddedRedis(
        port=free_port(), data_dir=Path(tempfile.mkdtemp(prefix="371os-redis-")), persist=False
    )
    os.environ["REDIS_URL"] = server.start()
    early_config.stash[_server_key] = server


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_server_key, None)
    if server is not None:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
