"""/api/v1/webhooks/{id}: rotate-secret, test, the delivery log in keyset pages, one delivery
with its attempts, and retry."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from system.models import OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/webhooks"
KICK = "notify.webhooks_deliver"


@pytest.fixture(autouse=True)
def loopback_receivers(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def client(make_api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=make_api_key(["messaging"]))
    return client


@pytest.fixture
def endpoint(client) -> WebhookEndpoint:
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
    response = client.post(URL, body, format="json")
    assert response.status_code == 201
    return WebhookEndpoint.objects.get(pk=response.json()["id"])


def delivery_rows(endpoint: WebhookEndpoint, count: int, **fields) -> list[WebhookDelivery]:
    """Deliveries of events 1..count, as the dispatcher writes them (in event-id order)."""
    fields.setdefault("status", WebhookDelivery.Status.FAILED)
    return [
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=event_id,
            event_type="new_message",
            message_id=f"msg_{event_id}_{endpoint.pk.hex[:12]}",
            payload={"id": event_id, "type": "new_message", "timestamp": "", "data": {}},
            **fields,
        )
        for event_id in range(1, count + 1)
    ]


def kicks(endpoint: WebhookEndpoint) -> int:
    return OutboxMessage.objects.filter(task_name=KICK, args=[str(endpoint.pk)]).count()


def test_rotate_answers_the_new_secret_and_keeps_the_old_one_signing_for_the_grace(
    client, endpoint, settings
):
    old = endpoint.secret
    before = timezone.now()

    response = client.post(f"{URL}/{endpoint.pk}/rotate-secret")

    assert response.status_code == 200
    body = response.json()
    endpoint.refresh_from_db()
    assert body["secret"] == endpoint.secret != old
    assert endpoint.previous_secret == old
    grace_end = endpoint.previous_secret_expires_at
    assert before + settings.WEBHOOK_SECRET_GRACE <= grace_end
    assert grace_end <= timezone.now() + settings.WEBHOOK_SECRET_GRACE
    assert body["previous_secret_expires_at"] is not None
    read = client.get(f"{URL}/{endpoint.pk}").content.decode()
    assert endpoint.secret not in read
    assert old not in read


def test_test_queues_a_webhook_test_delivery_and_wakes_the_endpoint(client, endpoint):
    response = client.post(f"{URL}/{endpoint.pk}/test")

    assert response.status_code == 202
    body = response.json()
    delivery = WebhookDelivery.objects.get(pk=body["id"])
    assert body["event_type"] == "webhook.test"
    assert body["status"] == "pending"
    assert body["event_id"] is None
    assert body["next_retry_at"] is not None
    assert delivery.message_id.startswith("msg_test_")
    assert delivery.payload["type"] == "webhook.test"
    assert delivery.payload["id"] is None
    assert delivery.payload["data"]["endpoint_id"] == str(endpoint.pk)
    assert set(delivery.payload) == {"id", "type", "timestamp", "data"}
    assert kicks(endpoint) == 1


def test_deliveries_read_newest_first_in_keyset_pages(client, endpoint):
    rows = delivery_rows(endpoint, 5)
    ids = [row.pk for row in rows]
    page_url = f"{URL}/{endpoint.pk}/deliveries"

    first = client.get(page_url, {"limit": 2}).json()
    second = client.get(page_url, {"limit": 2, "before": first["pagination"]["next_before"]})
    second = second.json()
    last = client.get(page_url, {"limit": 2, "before": second["pagination"]["next_before"]})
    last = last.json()

    assert [d["id"] for d in first["deliveries"]] == ids[:2:-1][:2]
    assert first["pagination"] == {
        "limit": 2,
        "has_more": True,
        "next_after": None,
        "next_before": ids[3],
    }
    assert [d["id"] for d in second["deliveries"]] == [ids[2], ids[1]]
    assert [d["id"] for d in last["deliveries"]] == [ids[0]]
    assert last["pagination"]["has_more"] is False
    assert last["pagination"]["next_before"] is None


def test_after_reads_forward_oldest_first(client, endpoint):
    ids = [row.pk for row in delivery_rows(endpoint, 4)]

    page = client.get(f"{URL}/{endpoint.pk}/deliveries", {"after": ids[0], "limit": 2}).json()

    assert [d["id"] for d in page["deliveries"]] == ids[1:3]
    assert page["pagination"]["next_after"] == ids[2]
    assert page["pagination"]["has_more"] is True


def test_deliveries_filter_by_status_and_show_a_delivery_as_the_log_has_it(client, endpoint):
    _failed, succeeded = delivery_rows(endpoint, 2)
    WebhookDelivery.objects.filter(pk=succeeded.pk).update(
        status="succeeded",
        attempts=1,
        last_status_code=204,
        last_latency_ms=12.5,
        finished_at=timezone.now(),
    )

    page = client.get(f"{URL}/{endpoint.pk}/deliveries", {"status": "succeeded"}).json()

    (item,) = page["deliveries"]
    assert item["id"] == succeeded.pk
    assert item["event_id"] == succeeded.event_id
    assert item["message_id"] == succeeded.message_id
    assert item["last_status_code"] == 204
    assert item["last_latency_ms"] == 12.5
    assert item["next_retry_at"] is None
    assert item["finished_at"] is not None
    assert "payload" not in item


def test_a_bad_cursor_or_status_is_400(client, endpoint):
    page_url = f"{URL}/{endpoint.pk}/deliveries"

    assert client.get(page_url, {"before": "x"}).status_code == 400
    assert client.get(page_url, {"status": "lost"}).status_code == 400
    assert client.get(page_url, {"limit": 0}).status_code == 400


def test_the_limit_is_capped_at_100(client, endpoint):
    page = client.get(f"{URL}/{endpoint.pk}/deliveries", {"limit": 1000}).json()

    assert page["pagination"]["limit"] == 100


def test_one_delivery_lists_its_attempts(client, endpoint):
    (delivery,) = delivery_rows(endpoint, 1, attempts=2)
    started = timezone.now() - timedelta(minutes=5)
    WebhookAttempt.objects.create(
        delivery=delivery, number=1, started_at=started, status_code=500, latency_ms=40
    )
    WebhookAttempt.objects.create(
        delivery=delivery, number=2, started_at=started, error="connection refused"
    )

    body = client.get(f"{URL}/{endpoint.pk}/deliveries/{delivery.pk}").json()

    assert body["id"] == delivery.pk
    assert [(a["number"], a["status_code"], a["error"]) for a in body["attempt_log"]] == [
        (1, 500, ""),
        (2, None, "connection refused"),
    ]


def test_a_delivery_of_another_endpoint_is_404(client, endpoint, make_user):
    other = WebhookEndpoint.objects.create(
        owner=make_user(), url="http://127.0.0.1:9/x", event_types=["*"], secret="whsec_x"
    )
    (foreign,) = delivery_rows(other, 1)

    response = client.get(f"{URL}/{endpoint.pk}/deliveries/{foreign.pk}")
    retry = client.post(f"{URL}/{endpoint.pk}/deliveries/{foreign.pk}/retry")

    assert response.status_code == retry.status_code == 404
    assert response.json()["error"]["code"] == "delivery_not_found"
    assert WebhookDelivery.objects.get(pk=foreign.pk).status == "failed"


def test_retry_makes_a_failed_delivery_pending_now_keeping_its_attempts(client, endpoint):
    (delivery,) = delivery_rows(endpoint, 1, attempts=8, finished_at=timezone.now())
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(days=1)
    )

    response = client.post(f"{URL}/{endpoint.pk}/deliveries/{delivery.pk}/retry")

    assert response.status_code == 202
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.attempts == 8
    assert delivery.finished_at is None
    assert delivery.next_attempt_at > timezone.now() - timedelta(minutes=1)
    assert response.json()["status"] == "pending"
    assert kicks(endpoint) == 1


def test_retrying_a_pending_delivery_is_409_already_scheduled(client, endpoint):
    (delivery,) = delivery_rows(endpoint, 1, status=WebhookDelivery.Status.PENDING)

    response = client.post(f"{URL}/{endpoint.pk}/deliveries/{delivery.pk}/retry")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delivery_already_scheduled"
    assert kicks(endpoint) == 0


def test_the_delivery_log_is_read_in_a_bounded_number_of_queries(
    client, endpoint, django_assert_max_num_queries
):
    delivery_rows(endpoint, 30)

    with django_assert_max_num_queries(12):
        response = client.get(f"{URL}/{endpoint.pk}/deliveries", {"limit": 30})

    assert len(response.json()["deliveries"]) == 30
