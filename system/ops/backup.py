"""Database backups for the `backup_database` system task.

PostgreSQL: `pg_dump --format=custom` (restore with `pg_restore`), which needs the PostgreSQL
client tools of the server's major version on the worker's PATH. SQLite: the online backup API
(`sqlite3.Connection.backup`), a consistent copy taken while the database is in use.

Files go to settings.BACKUP_DIR as `371os-<vendor>-<UTC timestamp>.<ext>`, readable by their
owner only (they hold every row, password hashes included). A backup is written under a
`.partial` name and renamed when complete, so a file with the final name is always whole.
"""

import hashlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

INSTALL_HINT = (
    "pg_dump was not found on the worker's PATH: install the PostgreSQL client tools of the "
    "server's major version (Debian/Ubuntu: apt-get install postgresql-client) and run the "
    "task again."
)


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    sha256: str
    vendor: str
    format: str

    def as_result(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "vendor": self.vendor,
            "format": self.format,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _libpq_environment(db: dict[str, Any]) -> dict[str, str]:
    """Connection settings for the client tools, passed in the environment so that the
    password never appears in a process listing."""
    env = dict(os.environ)
    values = {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGPASSWORD": db.get("PASSWORD"),
        "PGDATABASE": db.get("NAME"),
        "PGSSLMODE": (db.get("OPTIONS") or {}).get("sslmode"),
    }
    env.update({name: str(value) for name, value in values.items() if value})
    return env


def _pg_dump(db: dict[str, Any], target: Path) -> None:
    binary = shutil.which("pg_dump")
    if binary is None:
        raise BackupError(INSTALL_HINT)
    completed = subprocess.run(
        [binary, "--format=custom", "--no-password", f"--file={target}"],
        env=_libpq_environment(db),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        message = completed.stderr.strip()[-1000:] or f"exit status {completed.returncode}"
        raise BackupError(f"pg_dump failed: {message}")


def _sqlite_backup(alias: str, target: Path) -> None:
    # Through Django's own connection: works for file and in-memory databases alike.
    connection = connections[alias]
    connection.ensure_connection()
    destination = sqlite3.connect(target)
    try:
        connection.connection.backup(destination)
    finally:
        destination.close()


def database_backup(
    *, directory: Path | None = None, alias: str = "default", now: datetime | None = None
) -> Backup:
    """Back up the database `alias` into `directory` (settings.BACKUP_DIR by default).

    Raises BackupError when the database's kind is not supported or its tool fails.
    """
    directory = Path(directory or settings.BACKUP_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    vendor = connections[alias].vendor
    stamp = (now or timezone.now()).strftime("%Y%m%dT%H%M%S%fZ")
    if vendor == "postgresql":
        path, fmt = directory / f"371os-postgresql-{stamp}.dump", "pg_dump custom"
    elif vendor == "sqlite":
        path, fmt = directory / f"371os-sqlite-{stamp}.sqlite3", "sqlite3"
    else:
        raise BackupError(f"backups of {vendor} databases are not supported")
    partial = path.with_name(path.name + ".partial")
    # Owner-only from the first byte: the file holds password hashes and API key hashes.
    partial.touch(mode=0o600)
    try:
        if vendor == "postgresql":
            _pg_dump(connections[alias].settings_dict, partial)
        else:
            _sqlite_backup(alias, partial)
        partial.rename(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Backup(
        path=path, bytes=path.stat().st_size, sha256=_sha256(path), vendor=vendor, format=fmt
    )
