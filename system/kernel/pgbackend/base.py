"""PostgreSQL with the connection health check done on error, not before every request.

Django's CONN_HEALTH_CHECKS sends `SELECT 1` before the first query of every request that
reuses a persistent connection: one more round trip per request (18 % of a session read's
samples under load, bench/README.md). Here that first statement is sent at once; if it fails
because the connection turned out dead (the server restarted, the backend was terminated) and
no transaction is open, the connection is replaced and the statement sent again, once. A dead
connection still fails no request, and a live one costs nothing.
"""

from django.db import InterfaceError, OperationalError
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _RetryOnceOnDeadConnection:
    db: "DatabaseWrapper"

    def _execute(self, sql, params, *ignored_wrapper_args):
        db = self.db
        if not db.verify_on_error:
            return super()._execute(sql, params, *ignored_wrapper_args)
        db.verify_on_error = False
        try:
            return super()._execute(sql, params, *ignored_wrapper_args)
        except (OperationalError, InterfaceError):
            # Inside a transaction the statements before this one are gone with the
            # connection: only the caller can decide. A live connection means a real error.
            if not db.get_autocommit() or getattr(self.cursor, "name", None) or db.is_usable():
                raise
        db.close()
        db.ensure_connection()
        self.cursor = db.create_cursor()
        return super()._execute(sql, params, *ignored_wrapper_args)


class _CursorWrapper(_RetryOnceOnDeadConnection, CursorWrapper):
    pass


class _CursorDebugWrapper(_RetryOnceOnDeadConnection, CursorDebugWrapper):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    # Set before the first statement of a request on a reused connection (where Django would
    # run its health check), cleared by that statement.
    verify_on_error = False

    def close_if_health_check_failed(self):
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        self.health_check_done = True
        if self.connection.closed or self.connection.broken:
            self.close()  # known dead without asking the server
        else:
            self.verify_on_error = True

    def make_cursor(self, cursor):
        return _CursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return _CursorDebugWrapper(cursor, self)
