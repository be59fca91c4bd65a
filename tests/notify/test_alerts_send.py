"""alert_send and the send task: one row and one email per recipient, kind, subject and day
even between concurrent callers; SMTP failures retried a bounded number of times, with no
credential in the log."""

import socket
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from system.models import AlertSent, EventLogEntry
from system.notify.alert_tasks import SEND_RETRIES, alerts_send
from system.notify.alerts import alert_send
from tests.notify import alerts_fixtures

pytestmark = [pytest.mark.embedded]

# Fixtures shared with the other alert tests (pytest finds them as module attributes).
locmem_email = alerts_fixtures.locmem_email

CONTEXT = {
    "endpoint_id": "e1",
    "url": "https://hooks.example.com/in",
    "reason": "failing for 72 hours",
    "failing_since": datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
}


@pytest.fixture
def frank(make_user):
    return make_user("frank", email="frank@example.com")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_callers_record_one_alert_and_send_one_email(locmem_email, frank):
    start = threading.Barrier(2)
    results: list[bool] = []

    def caller() -> None:
        try:
            start.wait()
            with transaction.atomic():
                results.append(
                    alert_send(
                        recipient_id=frank.pk,
                        kind="webhook_disabled",
                        subject_key="e1",
                        context=CONTEXT,
                    )
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [False, True]
    assert AlertSent.objects.count() == 1
    assert EventLogEntry.objects.filter(event_type="alert_sent").count() == 1
    assert [e.to for e in locmem_email] == [["frank@example.com"]]
    assert "https://hooks.example.com/in" in locmem_email[0].body
    assert "failing since 2026-03-01T08:30:00" in locmem_email[0].body


class RefusingSmtpServer:
    """A local SMTP server that greets every connection with 421 (service not available)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"421 4.3.2 Service not available\r\n")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def refusing_smtp(settings):
    server = RefusingSmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "alerts", "hunter2-smtp-secret"
    yield server
    server.close()


@pytest.mark.django_db
def test_an_smtp_failure_is_retried_a_bounded_number_of_times_without_leaking_the_password(
    refusing_smtp, frank, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        alert_send(
            recipient_id=frank.pk, kind="webhook_disabled", subject_key="e1", context=CONTEXT
        )
    alert = AlertSent.objects.get()

    result = alerts_send.apply(args=[alert.pk])

    assert result.failed()
    assert refusing_smtp.connections == 1 + SEND_RETRIES
    alert.refresh_from_db()
    assert alert.sent_at is None
    assert "hunter2-smtp-secret" not in caplog.text
    assert "SMTPConnectError" in caplog.text


@pytest.mark.django_db
def test_unknown_kinds_are_a_programming_error(frank):
    with pytest.raises(ValueError, match="unknown alert kind"), transaction.atomic():
        alert_send(recipient_id=frank.pk, kind="sms", subject_key="x", context={})
