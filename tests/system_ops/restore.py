"""Restoring a backup made by system.backup somewhere it can be read, for the tests."""

import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import psycopg
from django.db import connection


def _dsn(dbname: str) -> dict:
    db = connection.settings_dict
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "dbname": dbname,
    }


def _pg_restore(path: Path, dbname: str) -> None:
    dsn = _dsn(dbname)
    env = {
        **os.environ,
        "PGHOST": str(dsn["host"]),
        "PGPORT": str(dsn["port"]),
        "PGUSER": dsn["user"] or "",
        "PGPASSWORD": dsn["password"] or "",
    }
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", dbname, str(path)],
        env=env,
        check=True,
        capture_output=True,
    )


def restored_rows(path: Path, query: str) -> list[tuple]:
    """Restore the backup into a scratch database (PostgreSQL: a freshly created one, with
    pg_restore, dropped afterwards; SQLite: the file itself, opened with sqlite3), run `query`
    there and return its rows."""
    if connection.vendor == "sqlite":
        with sqlite3.connect(path) as restored:
            return list(restored.execute(query))
    scratch = f"scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        _pg_restore(path, scratch)
        with psycopg.connect(**_dsn(scratch)) as restored:
            return list(restored.execute(query))
    finally:
        with psycopg.connect(**_dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
