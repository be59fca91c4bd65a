"""Where the benchmark runs: prerequisites, its own PostgreSQL databases and Redis DB.

The harness never touches the databases DATABASE_URL names: it uses the same server and
credentials with database names of its own (`bench_371os` by default, plus one per sweep
size), and a Redis DB number of its own on the REDIS_URL server, flushed at the start.
"""

import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "bench_371os"
DEFAULT_REDIS_DB = 14
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Refusal(SystemExit):
    """A prerequisite is missing: print what to do and stop (exit status 2)."""

    def __init__(self, message: str) -> None:
        print(f"make bench: {message}", file=sys.stderr)
        super().__init__(2)


def check_prerequisites() -> tuple[str, str]:
    """DATABASE_URL (PostgreSQL) and REDIS_URL, and wrk on PATH; returns the two URLs."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    scheme = urlsplit(database_url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "postgis"}:
        raise Refusal(
            "the benchmarks run on PostgreSQL and Redis only (the production topology), not "
            "on the embedded SQLite default.\n"
            "Set DATABASE_URL to a PostgreSQL server and REDIS_URL to a Redis server, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres "
            "REDIS_URL=redis://127.0.0.1:6379/0 make bench\n"
            "The harness creates and uses its own database (bench_371os) and Redis DB "
            f"({DEFAULT_REDIS_DB}) on those servers."
            + (f"\n(DATABASE_URL is {scheme or 'not a URL'}.)" if database_url else "")
        )
    if urlsplit(redis_url).scheme not in {"redis", "rediss"}:
        raise Refusal(
            "REDIS_URL must name a Redis server (redis://host:port/db): the benchmarks do not "
            "run on the embedded Redis."
        )
    if shutil.which("wrk") is None:
        raise Refusal(
            "wrk (the HTTP load generator) is not installed. On Debian/Ubuntu:\n"
            "  apt-get install -y wrk      (apt-get update first if the package is not found)"
        )
    return database_url, redis_url


def database_url_for(database_url: str, name: str) -> str:
    """The same server and credentials, another database."""
    if not _DB_NAME.match(name):
        raise Refusal(f"{name!r} is not a usable database name (lower case, digits, _)")
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def redis_url_for(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def _conninfo(database_url: str, dbname: str | None = None) -> str:
    parts = urlsplit(database_url)
    if dbname is not None:
        parts = parts._replace(path=f"/{dbname}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def database_ensure(database_url: str) -> bool:
    """Create the database if it does not exist; True if it was created."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(_conninfo(database_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def database_drop(database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(_conninfo(database_url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )


def raise_open_file_limit() -> int:
    """Children inherit it: 1000 WebSockets need more than the usual 1024 descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu_model: str
    kernel: str
    python: str
    versions: dict[str, str]

    def as_dict(self) -> dict:
        return {
            "cores": self.cores,
            "cpu_model": self.cpu_model,
            "kernel": self.kernel,
            "python": self.python,
            "versions": self.versions,
        }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command_version(*command: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    text = (result.stdout or result.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine(database_url: str, redis_url: str) -> Machine:
    from importlib.metadata import PackageNotFoundError, version

    import redis

    versions = {}
    for package in (
        "Django",
        "djangorestframework",
        "granian",
        "daphne",
        "channels",
        "celery",
        "psycopg",
        "websockets",
    ):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "missing"
    try:
        with psycopg.connect(_conninfo(database_url)) as conn:
            versions["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        versions["postgresql"] = "unknown"
    try:
        versions["redis"] = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    except redis.RedisError:
        versions["redis"] = "unknown"
    versions["wrk"] = _command_version("wrk", "--version").split(" [")[0]
    return Machine(
        cores=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        versions=versions,
    )
