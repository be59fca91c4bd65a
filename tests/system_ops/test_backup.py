"""backup_database: a file that restores, with its size and checksum; a clear failure when the
tool is missing."""

import hashlib
import stat
from pathlib import Path

import pytest
from django.db import connection

from agents.services import agent_create
from system.models import SystemTask
from system.ops.backup import BackupError, _pg_dump, database_backup
from system.ops.system_tasks import system_task_create
from tests.system_ops.restore import restored_rows

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_backup_result_names_the_file_its_size_and_sha256(tmp_path):
    backup = database_backup(directory=tmp_path)

    assert backup.path.parent == tmp_path
    assert backup.path.name.startswith(f"371os-{connection.vendor}-")
    assert backup.bytes == backup.path.stat().st_size > 0
    assert backup.sha256 == hashlib.sha256(backup.path.read_bytes()).hexdigest()
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o600
    assert list(tmp_path.glob("*.partial")) == []


def test_the_task_writes_under_backup_dir_and_records_path_bytes_and_sha256(
    tmp_path, settings, eager_celery
):
    settings.BACKUP_DIR = tmp_path / "backups"

    # Committed at once (transactional test): the eager task runs on commit.
    task = system_task_create(task_type="backup_database")

    task.refresh_from_db()
    assert task.status == SystemTask.Status.SUCCEEDED, task.error
    path = Path(task.result["path"])
    assert path.parent == settings.BACKUP_DIR
    assert task.result["bytes"] == path.stat().st_size
    assert task.result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_restores_into_a_scratch_database_with_the_rows(tmp_path):
    agent_create(name="ceo_mimi", type="ceo_mimi")

    backup = database_backup(directory=tmp_path)

    assert restored_rows(backup.path, "SELECT name FROM agents_agent") == [("ceo_mimi",)]


def test_without_pg_dump_the_backup_fails_saying_what_to_install(tmp_path, monkeypatch):
    # The PostgreSQL path, whatever database this run uses: it fails before connecting.
    monkeypatch.setenv("PATH", str(tmp_path))
    target = tmp_path / "backup.dump"

    with pytest.raises(BackupError, match="apt-get install postgresql-client"):
        _pg_dump({"NAME": "db", "USER": "u", "HOST": "127.0.0.1", "PORT": 5432}, target)
    assert not target.exists()
