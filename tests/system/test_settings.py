"""Settings are read from the environment: each case runs in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

BASE_DIR = Path(__file__).resolve().parents[2]
KEYS = {"DJANGO_SECRET_KEY": "k", "JWT_SIGNING_KEY": "j"}
_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "JWT_SIGNING_KEY",
    "DJANGO_DEBUG",
    "VAR_DIR",
)


def load_settings(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    code = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        f"from django.conf import settings as s; print(json.dumps({expression}, default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_database_url_selects_sqlite_in_var_with_wal_and_busy_timeout(tmp_path):
    result = load_settings({**KEYS, "VAR_DIR": str(tmp_path)}, "s.DATABASES['default']")

    db = json.loads(result.stdout)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "db.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["timeout"] == 20


def test_database_url_selects_postgresql_with_persistent_checked_connections(tmp_path):
    result = load_settings(
        {
            **KEYS,
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://app:s3cret@db.internal:5433/platform",
        },
        "s.DATABASES['default']",
    )

    db = json.loads(result.stdout)
    # Django's PostgreSQL backend, health check on error (tests/system/test_db_backend.py).
    assert db["ENGINE"] == "system.kernel.pgbackend"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "db.internal",
        5433,
        "platform",
        "app",
    )
    assert db["CONN_MAX_AGE"] == 60
    assert db["CONN_HEALTH_CHECKS"] is True


def test_asgi_process_uses_a_connection_pool_instead_of_persistent_connections(tmp_path):
    result = load_settings(
        {
            **KEYS,
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://app@db.internal/platform",
            "DJANGO_SERVER_INTERFACE": "asgi",
        },
        "s.DATABASES['default']",
    )

    db = json.loads(result.stdout)
    assert db["CONN_MAX_AGE"] == 0
    assert "pool" in db["OPTIONS"]


def test_redis_url_feeds_cache_live_events_and_celery(tmp_path):
    url = "redis://cache.internal:6379/3"
    result = load_settings(
        {**KEYS, "VAR_DIR": str(tmp_path), "REDIS_URL": url},
        "[s.CACHES['default']['LOCATION'], s.WS_EVENTS_CHANNEL,"
        " s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND]",
    )

    # Pub/sub ignores DB numbers: the live-events channel carries REDIS_URL's.
    assert json.loads(result.stdout) == [url, "371os:events:db3", url, url]


def test_debug_off_without_secret_key_fails_with_one_line_naming_the_variable(tmp_path):
    result = load_settings({"DJANGO_DEBUG": "off", "VAR_DIR": str(tmp_path)}, "s.SECRET_KEY")

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off"
    ]


def test_debug_on_without_secret_key_starts_with_a_development_key(tmp_path):
    result = load_settings({"DJANGO_DEBUG": "on", "VAR_DIR": str(tmp_path)}, "s.DEBUG")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) is True


def test_debug_off_without_jwt_signing_key_fails_naming_it(tmp_path):
    result = load_settings(
        {"DJANGO_DEBUG": "off", "DJANGO_SECRET_KEY": "k", "VAR_DIR": str(tmp_path)}, "s.DEBUG"
    )

    assert result.returncode != 0
    assert result.stderr.strip() == "error: JWT_SIGNING_KEY must be set when DJANGO_DEBUG is off"


def test_secrets_written_by_make_run_are_read_from_var(tmp_path):
    (tmp_path / "secret_key").write_text("from-the-file\n")
    (tmp_path / "jwt_signing_key").write_text("jwt-from-the-file\n")

    result = load_settings({"VAR_DIR": str(tmp_path)}, "[s.SECRET_KEY, s.JWT_SIGNING_KEY]")

    assert json.loads(result.stdout) == ["from-the-file", "jwt-from-the-file"]
