"""The PostgreSQL backend checks a reused connection on error, not with a round trip before
every request (system.kernel.pgbackend), and a dead connection still fails no request."""

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connections, transaction
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoDatabaseWrapper

from system.kernel.pgbackend.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)
connection = connections["default"]


def request(client):
    """One request, ended as a server ends it (the test client leaves out Django's
    request_started handler, which is where a reused connection is marked for checking)."""
    close_old_connections()
    return client.get("/api/v1/agents")


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("the backend is PostgreSQL's: SQLite opens a file")


@pytest.fixture
def health_checks(monkeypatch):
    """Counts Django's health-check round trips (is_usable), still doing them."""
    calls = []
    original = DjangoDatabaseWrapper.is_usable

    def counted(self):
        calls.append(self.alias)
        return original(self)

    monkeypatch.setattr(DjangoDatabaseWrapper, "is_usable", counted)
    return calls


def test_the_settings_select_this_backend_with_health_checks(postgres):
    assert isinstance(connection, DatabaseWrapper)
    assert connection.health_check_enabled


def test_a_request_on_a_reused_connection_sends_no_health_check(postgres, client_as, health_checks):
    client = client_as("admin")
    assert request(client).status_code == 200
    backend = connection.connection.info.backend_pid

    assert request(client).status_code == 200
    assert request(client).status_code == 200

    assert connection.connection.info.backend_pid == backend  # the same connection, reused
    assert health_checks == []


def test_a_terminated_connection_is_replaced_and_the_request_answers(
    postgres, client_as, health_checks
):
    client = client_as("admin")
    assert request(client).status_code == 200
    backend = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])

    response = request(client)

    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != backend
    assert health_checks == ["default"]  # once, after the failure, not before every request


def test_an_error_inside_a_transaction_is_not_retried(postgres, client_as):
    """Statements before the failing one went with the connection: only the caller may
    decide, so the error reaches it."""
    request(client_as("admin"))
    close_old_connections()  # as at the start of the next request
    backend = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])

    with pytest.raises(OperationalError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
