"""reload_config reaches every process: each one compares the Redis config version at most
once a second and re-reads its files when it changed, even when their mtime did not."""

import os
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

from agents.runtime import get_router, router_reload
from system.kernel import policy
from system.kernel.policy import get_policy
from system.kernel.reload import config_version, config_version_bump

pytestmark = [pytest.mark.embedded]

RULES = Path(django_settings.ROUTING_RULES_PATH).read_text()
LLM_ROUTING = Path(django_settings.LLM_ROUTING_PATH).read_text()


def rewrite_keeping_mtime(path: Path, text: str) -> None:
    """Another machine's edit, as this process sees it: same mtime, new content."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_version_bump_makes_the_policy_reread_its_file(tmp_path, settings):
    settings.ROUTING_RULES_PATH = tmp_path / "rules.yaml"
    settings.ROUTING_RULES_PATH.write_text(RULES)
    assert get_policy().role_limits["system_monitor"] == 200
    rewrite_keeping_mtime(
        settings.ROUTING_RULES_PATH, RULES.replace("system_monitor: 200", "system_monitor: 9")
    )
    policy._holder.checked_at = 0.0  # the once-a-second check is due
    assert get_policy().role_limits["system_monitor"] == 200

    config_version_bump()
    policy._holder.checked_at = 0.0

    assert get_policy().role_limits["system_monitor"] == 9


def test_a_version_bump_makes_the_router_reread_its_file(tmp_path, settings):
    settings.LLM_ROUTING_PATH = tmp_path / "llm_routing.yaml"
    settings.LLM_ROUTING_PATH.write_text(LLM_ROUTING)
    clock = iter(range(1000, 2000, 5))
    router_reload(clock=lambda: next(clock))
    document = yaml.safe_load(LLM_ROUTING)
    document["models"]["builtin-extra"] = document["models"]["builtin"]
    rewrite_keeping_mtime(settings.LLM_ROUTING_PATH, yaml.safe_dump(document))
    assert "builtin-extra" not in get_router().aliases()

    config_version_bump()

    assert "builtin-extra" in get_router().aliases()


def test_without_redis_the_version_is_unknown_and_files_are_still_followed(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    assert config_version() is None
    assert get_policy().actions
