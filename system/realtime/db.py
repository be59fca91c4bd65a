"""Database calls of a ws process, off the event loop and off each other.

`database_sync_to_async` runs every call of a process on one thread (asgiref's
thread-sensitive executor), so one socket's slow query or long replay holds up every other
socket's reads. `db_call(fn)` runs `fn` on one of WS_DB_THREADS threads instead. Django's
connections are per thread; each call closes its thread's connection when it is done, which
under the ws process (DJANGO_SERVER_INTERFACE=asgi) returns it to psycopg's pool (PostgreSQL)
or closes the SQLite file, so no connection outlives its call or is shared between threads.
The functions called must not rely on anything a previous call left on the thread (an open
transaction, a connection setting): every realtime read and `message_send` are plain calls
that open and commit their own transactions.
"""

import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _db_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(1, settings.WS_DB_THREADS), thread_name_prefix="ws-db"
            )
        return _executor


def _closing(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return run


def db_call(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` as a coroutine function run on the ws process's database threads. On SQLite (the
    embedded path, one writer at a time anyway) on channels' one database thread, as before:
    with several threads' connections to one SQLite file, an acknowledged `send_message`'s
    event sometimes never reached its socket (1 run in 4 of tests/realtime; not explained)."""
    if connections["default"].vendor == "sqlite":
        return database_sync_to_async(fn)
    return SyncToAsync(_closing(fn), thread_sensitive=False, executor=_db_executor())
