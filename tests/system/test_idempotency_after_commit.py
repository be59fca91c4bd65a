"""An idempotency claim whose work committed is kept, with its response, even when an
after-commit hook of that transaction fails: a retry replays instead of doing the work twice.
Real commits, so the hooks run as in production."""

import pytest
from django.contrib.auth.models import Group

from system.models import IdempotencyRecord

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.urls("tests.system.idempotency_views"),
]


def create(client, key: str):
    return client.post(
        "/api/test/groups", {"name": "finance"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_a_failing_hook_after_commit_keeps_the_claim_and_its_response(client_as):
    response = create(client_as("admin"), key="k-1")

    assert response.status_code == 201
    record = IdempotencyRecord.objects.get(key="k-1")
    assert (record.response_status, record.response_body) == (201, {"name": "finance"})


def test_a_retry_after_a_failing_hook_replays_and_does_the_work_once(client_as):
    client = client_as("admin")

    first = create(client, key="k-2")
    again = create(client, key="k-2")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert Group.objects.filter(name="finance").count() == 1
