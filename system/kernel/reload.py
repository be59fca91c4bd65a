"""Configuration files that take effect without a restart, and the cluster-wide config version.

A `HotReloaded` holds the value parsed from one file. It re-reads the file when its
modification time changes, at most once a second per process, and also when the cluster-wide
config version in Redis changed (`config_version_bump()`, called by the `reload_config` system
task), so that every process follows an edit made on another machine even where the file's
modification time did not change. An invalid edit is logged once and the last good value stays
in force; `load()` re-reads at once and raises instead.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import redis

from system.kernel.redis_client import get_redis

CHECK_INTERVAL = 1.0
CONFIG_VERSION_KEY = "371os:config-version"

T = TypeVar("T")
Clock = Callable[[], float]


def config_version() -> str | None:
    """The cluster-wide configuration version ("" before the first bump), or None when Redis
    cannot be reached (then only file modification times are followed)."""
    try:
        value = get_redis().get(CONFIG_VERSION_KEY)
    except redis.RedisError:
        return None
    return value.decode() if value is not None else ""


def config_version_bump() -> str:
    """Make every process re-read its configuration files within about a second of its next
    use of them. Raises redis.RedisError when Redis cannot be reached."""
    version = str(time.time_ns())
    get_redis().set(CONFIG_VERSION_KEY, version)
    return version


class HotReloaded(Generic[T]):
    """The value `parse` makes of the file at `path()`, kept current (see the module).

    `parse(path)` reads the file and raises one of `errors` (or OSError) when it is invalid; the
    message is logged on `logger` as "keeping the previous <what>: <message>". The path is
    looked up on every use: when it changes (a test's settings), the new file is read at once
    and its errors raise, as on first use.
    """

    def __init__(
        self,
        *,
        what: str,
        path: Callable[[], Path | str],
        parse: Callable[[Path], T],
        errors: tuple[type[Exception], ...],
        logger: logging.Logger,
    ) -> None:
        self.what, self.path_of, self.parse = what, path, parse
        self.errors = (OSError, *errors)
        self.logger = logger
        self.lock = threading.Lock()
        self.value: T | None = None
        self.path: Path | None = None
        self.raw_path: Path | str | None = None
        self.mtime_ns = 0
        self.version: str | None = None
        self.clock: Clock = time.monotonic
        self.checked_at = 0.0

    def load(self, *, clock: Clock = time.monotonic, version: str | None = None) -> T:
        """Read the file now. Raises (and keeps the previous value) when it is invalid.

        `clock` times the once-a-second checks from now on (tests pass a fake one); a value
        that keeps time may read `self.clock` too (the router's circuit breakers do).
        """
        raw_path = self.path_of()
        path = Path(raw_path)
        # The version is read before the file: a bump that lands while the file is being read
        # is seen at the next check and causes one more read, never a missed one.
        version = config_version() if version is None else version
        mtime_ns = os.stat(path).st_mtime_ns if path.exists() else 0
        value = self.parse(path)
        with self.lock:
            self.value, self.path, self.mtime_ns, self.clock = value, path, mtime_ns, clock
            self.raw_path = raw_path
            self.version = version
            self.checked_at = clock()
        return value

    def current(self) -> T:
        """The value, re-read first when the once-a-second check finds the file or the config
        version changed."""
        value, raw_path = self.value, self.path_of()
        # The setting itself, compared by identity first: no Path built on every use.
        if value is None or (raw_path is not self.raw_path and raw_path != self.raw_path):
            return self.load()
        path = self.path
        now = self.clock()
        if now - self.checked_at < CHECK_INTERVAL:
            return value
        self.checked_at = now
        try:
            version = config_version()
            if version is not None and version != self.version:
                # Noted before loading, like the modification time below: an invalid file
                # is then logged once per change, not every second.
                self.version = version
                return self.load(clock=self.clock, version=version)
            mtime_ns = os.stat(path).st_mtime_ns
            if mtime_ns != self.mtime_ns:
                self.mtime_ns = mtime_ns
                return self.load(clock=self.clock)
        except self.errors as exc:
            self.logger.error("keeping the previous %s: %s", self.what, exc)
        return value
