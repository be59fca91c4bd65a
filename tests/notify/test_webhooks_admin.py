"""Webhooks in the back office: endpoints with their delivery counts and recent deliveries,
never a secret; the delivery log read-only, with the retry action of the API."""

import pytest
from django.utils import timezone

from system.models import OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.notify.webhook_factories import endpoint_make

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ENDPOINTS = "/admin/system/webhookendpoint/"
DELIVERIES = "/admin/system/webhookdelivery/"


@pytest.fixture
def staff(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def endpoint(make_user) -> WebhookEndpoint:
    return endpoint_make(owner=make_user("owner"), url="https://hooks.example.com/in")


def deliveries(endpoint: WebhookEndpoint, *statuses: str) -> list[WebhookDelivery]:
    return [
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=event_id,
            event_type="new_message",
            message_id=f"msg_{event_id}",
            payload={"id": event_id, "type": "new_message", "timestamp": "", "data": {}},
            status=status,
            finished_at=None if status == "pending" else timezone.now(),
        )
        for event_id, status in enumerate(statuses, start=1)
    ]


def test_the_endpoint_list_shows_url_owner_and_delivery_counts(staff, endpoint):
    deliveries(endpoint, "pending", "failed", "failed", "succeeded")

    page = staff.get(ENDPOINTS)

    assert page.status_code == 200
    html = page.content.decode()
    assert "https://hooks.example.com/in" in html
    assert "owner" in html
    assert '<td class="field-pending_count">1</td>' in html
    assert '<td class="field-failed_count">2</td>' in html


def test_the_endpoint_list_costs_the_same_queries_for_many_endpoints(
    staff, make_user, django_assert_max_num_queries
):
    for number in range(15):
        hook = endpoint_make(owner=make_user(), url=f"https://hooks.example.com/{number}")
        deliveries(hook, "pending", "failed")

    with django_assert_max_num_queries(12):
        assert staff.get(ENDPOINTS).status_code == 200


def test_no_secret_is_shown_on_the_change_page(staff, endpoint):
    endpoint.previous_secret = "whsec_cHJldmlvdXMtc2VjcmV0LXZhbHVlLXRoYXQtaXMtb2xk"
    endpoint.save()
    deliveries(endpoint, "failed")

    html = staff.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()

    assert endpoint.secret not in html
    assert endpoint.previous_secret not in html
    assert 'name="secret"' not in html
    assert "hooks.example.com" in html


def test_the_change_page_lists_recent_deliveries_and_links_the_rest(staff, endpoint):
    (delivery,) = deliveries(endpoint, "failed")

    html = staff.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()

    assert f"{DELIVERIES}{delivery.pk}/change/" in html
    assert f"{DELIVERIES}?endpoint={endpoint.pk}" in html


def test_re_enabling_in_the_admin_goes_through_the_service(staff, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason="Failing for 3 days.", failing_since=timezone.now()
    )

    response = staff.post(
        f"{ENDPOINTS}{endpoint.pk}/change/", {"enabled": "on", "description": "back"}
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled is True
    assert endpoint.disabled_reason == ""
    assert endpoint.failing_since is None
    assert endpoint.description == "back"


def test_endpoints_are_not_added_in_the_admin(staff):
    assert staff.get(f"{ENDPOINTS}add/").status_code == 403


def test_the_delivery_list_filters_by_status_and_endpoint(staff, endpoint, make_user):
    other = endpoint_make(owner=make_user(), url="https://elsewhere.example.com/in")
    pending, failed = deliveries(endpoint, "pending", "failed")
    (foreign,) = deliveries(other, "failed")

    by_status = staff.get(DELIVERIES, {"status__exact": "failed"}).content.decode()
    by_endpoint = staff.get(DELIVERIES, {"endpoint__endpoint_id__exact": str(endpoint.pk)})

    assert f"{DELIVERIES}{failed.pk}/change/" in by_status
    assert f"{DELIVERIES}{foreign.pk}/change/" in by_status
    assert f"{DELIVERIES}{pending.pk}/change/" not in by_status
    assert f"{DELIVERIES}{foreign.pk}/change/" not in by_endpoint.content.decode()


def test_a_delivery_page_is_read_only_with_its_attempts(staff, endpoint):
    (delivery,) = deliveries(endpoint, "failed")
    WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=503, error="down")

    page = staff.get(f"{DELIVERIES}{delivery.pk}/change/").content.decode()

    assert "down" in page
    assert 'name="_save"' not in page
    assert staff.get(f"{DELIVERIES}add/").status_code == 403


def test_retry_selected_deliveries_makes_finished_ones_pending(staff, endpoint):
    pending, failed, succeeded = deliveries(endpoint, "pending", "failed", "succeeded")

    response = staff.post(
        DELIVERIES,
        {"action": "retry_selected", "_selected_action": [pending.pk, failed.pk, succeeded.pk]},
        follow=True,
    )

    assert response.status_code == 200
    statuses = set(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == {"pending"}
    assert WebhookDelivery.objects.get(pk=failed.pk).finished_at is None
    assert "Retrying 2 delivery(ies)." in response.content.decode()
    kicks = OutboxMessage.objects.filter(task_name="notify.webhooks_deliver").count()
    assert kicks == 2
