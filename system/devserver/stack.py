"""Run the whole stack: `python -m system.stack` (what `make run` does).

1. With no `REDIS_URL`, start the embedded Redis and export its URL to every process.
2. With `DJANGO_DEBUG` off and no `DJANGO_SECRET_KEY`/`JWT_SIGNING_KEY`, make each once in
   `var/secret_key`/`var/jwt_signing_key`.
3. Migrate and seed the demo (skipped with `--no-setup`), collect static files.
4. Start the Procfile's processes (api, ws, worker, webhooks, beat) under honcho, which stops
   them all, with SIGKILL after a grace period, on Ctrl-C, on SIGTERM, or when any one of them
   exits.
5. Stop the embedded Redis last, once nothing uses it.

Deliberately free of Django imports: settings must not be read before REDIS_URL is known.
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from system.devserver.embedded_redis import EmbeddedRedis, EmbeddedRedisError

BASE_DIR = Path(__file__).resolve().parents[2]
# Same defaults as config/settings.py.
DEFAULT_VAR_DIR = BASE_DIR / "var"
DEFAULT_EMBEDDED_REDIS_PORT = 6380
HONCHO_GRACE_SECONDS = 20


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _prepare_environment(env: dict[str, str], var_dir: Path) -> None:
    env["VAR_DIR"] = str(var_dir)
    env["API_PORT"] = env.get("PORT", "8000")
    env.setdefault("WS_PORT", "8001")
    env.setdefault("WEB_CONCURRENCY", str(os.cpu_count() or 1))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    if _truthy(env.get("DJANGO_DEBUG", "")):
        return
    for variable, file_name in (
        ("DJANGO_SECRET_KEY", "secret_key"),
        ("JWT_SIGNING_KEY", "jwt_signing_key"),
    ):
        if env.get(variable):
            continue
        secret_file = var_dir / file_name
        if not secret_file.exists():
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(50))
        env[variable] = secret_file.read_text().strip()


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def _banner(env: dict[str, str]) -> None:
    api = f"http://127.0.0.1:{env['API_PORT']}"
    print(
        "\n371OS control plane is starting:\n"
        f"  admin      {api}/admin/\n"
        f"  API docs   {api}/api/docs/\n"
        f"  readiness  {api}/readyz\n"
        f"  WebSocket  ws://127.0.0.1:{env['WS_PORT']}/v1/ws\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )


def _run_honcho(env: dict[str, str]) -> int:
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "-f", str(BASE_DIR / "Procfile"),
         "-d", str(BASE_DIR), "--no-colour"],
        env=env,
    )  # fmt: skip

    def forward(signum: int, _frame: object) -> None:
        # From a terminal, Ctrl-C reaches honcho directly (same process group); from a
        # supervisor or `kill`, only this process hears it. Honcho handles repeats.
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    return honcho.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m system.stack", description="Run the stack.")
    parser.add_argument(
        "--no-setup", action="store_true", help="skip the database setup (migrate, seed_demo)"
    )
    args = parser.parse_args(argv)

    env = dict(os.environ)
    var_dir = Path(env.get("VAR_DIR") or DEFAULT_VAR_DIR).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    _prepare_environment(env, var_dir)

    embedded: EmbeddedRedis | None = None
    if not env.get("REDIS_URL"):
        port = int(env.get("EMBEDDED_REDIS_PORT") or DEFAULT_EMBEDDED_REDIS_PORT)
        embedded = EmbeddedRedis(port=port, data_dir=var_dir / "redis", persist=True)
        try:
            env["REDIS_URL"] = embedded.start()
        except EmbeddedRedisError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"embedded Redis on {env['REDIS_URL']}", flush=True)
    try:
        if not args.no_setup:
            _manage(env, "migrate", "--noinput")
            _manage(env, "seed_demo")
        _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        _banner(env)
        return _run_honcho(env)
    except subprocess.CalledProcessError as exc:
        print(f"error: setup step failed: {' '.join(exc.cmd[1:])}", file=sys.stderr)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
