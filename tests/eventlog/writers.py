"""Writers of the event log on connections of their own (threads), for the watermark tests:
one that keeps its transaction open until told to end it, one that must not block."""

import threading
from typing import Any

from django.db import connection, connections, transaction

from system.eventlog.events import EventScope
from system.eventlog.services import event_emit

WAIT = 10  # seconds: a deadlock guard, only ever reached when something is wrong


class _RollBack(Exception):
    pass


def emit_on_own_connection(event_type: str = "agent_status_update", **scope: Any) -> int:
    with transaction.atomic():
        return event_emit(event_type=event_type, data={}, scope=EventScope(**scope)).event_id


class HeldWriter:
    """Emits one event in a transaction of its own connection and keeps it open (in flight)
    until `end(commit=...)`; published after commit, as any writer."""

    def __init__(self, event_type: str = "agent_status_update", **scope: Any) -> None:
        self.event_type = event_type
        self.scope = scope
        self.event_id: int | None = None
        self.error: BaseException | None = None
        self._emitted = threading.Event()
        self._decided = threading.Event()
        self._commit = True
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> int:
        self._thread.start()
        assert self._emitted.wait(WAIT), "the held writer never emitted"
        if self.error is not None:
            raise self.error
        assert self.event_id is not None
        return self.event_id

    def end(self, *, commit: bool) -> None:
        self._commit = commit
        self._decided.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the held writer did not end"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.event_id = event_emit(
                    event_type=self.event_type, data={}, scope=EventScope(**self.scope)
                ).event_id
                self._emitted.set()
                self._decided.wait(WAIT * 3)
                if not self._commit:
                    raise _RollBack
        except _RollBack:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            self.error = exc
        finally:
            self._emitted.set()
            connections.close_all()


def emit_without_blocking(event_type: str = "new_message", **scope: Any) -> int:
    """Emit and commit one event on a connection of its own; fails if that blocks (on a lock
    a writer in flight holds) for WAIT seconds."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["id"] = emit_on_own_connection(event_type, **scope)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "a second writer blocked on the first one's open transaction"
    if "error" in result:
        raise result["error"]
    return result["id"]


def postgresql() -> bool:
    return connection.vendor == "postgresql"
