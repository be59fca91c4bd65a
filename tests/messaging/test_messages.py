"""Posting, editing and reading messages; the history contract; idempotency."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from agents.services import agent_create
from messaging.models import Channel, Message
from messaging.services import channel_create
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def channel(make_user):
    return channel_create(name="ops", type="public", members=[], actor=make_user("creator"))


def url(channel) -> str:
    return f"/api/v1/channels/{channel.channel_id}/messages"


def post(client, channel, key: str | None = None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        url(channel), {"sender_id": "user-1", "content": "hello", **body}, format="json", **headers
    )


def test_post_returns_201_with_the_spec_shape_and_emits_new_message(client_as, channel):
    response = post(client_as("messaging"), channel, metadata={"topic": "q4"})

    assert response.status_code == 201
    body = response.json()
    assert {"message_id", "channel_id", "sender_id", "content", "sent_at"} <= set(body)
    assert (body["sender_id"], body["sender_type"], body["content"]) == ("user-1", "user", "hello")
    event = EventLogEntry.objects.get(event_type="new_message")
    assert event.channel_id == channel.channel_id
    assert event.payload["message"]["message_id"] == body["message_id"]
    assert set(event.payload["message"]) >= {
        "message_id",
        "sender_id",
        "sender_type",
        "content",
        "sent_at",
    }


@pytest.mark.parametrize("content", ["", "   \n ", "x" * 32_001, 42, None])
def test_bad_content_is_400_invalid_message_content(client_as, channel, content):
    response = post(client_as("messaging"), channel, content=content)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_message_content"
    assert not Message.objects.exists()


def test_content_of_exactly_32000_characters_is_accepted(client_as, channel):
    assert post(client_as("messaging"), channel, content="x" * 32_000).status_code == 201


@pytest.mark.parametrize("metadata", [["a list"], {"blob": "x" * 17_000}])
def test_bad_metadata_is_400(client_as, channel, metadata):
    response = post(client_as("messaging"), channel, metadata=metadata)

    assert response.status_code == 400
    assert "metadata" in response.json()["error"]["details"]


def test_sending_as_an_agent_needs_agent_manager_or_admin(client_as, channel):
    agent_create(name="cfo_cash", type="cfo_cash")

    as_messaging = post(client_as("messaging"), channel, sender_id="cfo_cash")
    as_manager = post(client_as("agent_manager"), channel, sender_id="cfo_cash")

    assert as_messaging.status_code == 403
    assert as_manager.status_code == 201
    assert as_manager.json()["sender_type"] == "agent"
    assert uuid.UUID(as_manager.json()["sender_id"])


def test_in_private_channels_the_sender_must_be_a_member(client_as, make_user):
    client = client_as("admin")
    private = channel_create(name="p", type="private", members=["user-1"], actor=make_user("x"))

    stranger = post(client, private, sender_id="user-2")
    member = post(client, private, sender_id="user-1")

    assert stranger.status_code == 400
    assert "sender_id" in stranger.json()["error"]["details"]
    assert member.status_code == 201


def test_the_poster_can_edit_and_others_cannot(client_as, channel):
    author = client_as("messaging")
    message_id = post(author, channel).json()["message_id"]

    edited = author.patch(f"{url(channel)}/{message_id}", {"content": "fixed"}, format="json")
    foreign = client_as("messaging").patch(
        f"{url(channel)}/{message_id}", {"content": "hijack"}, format="json"
    )
    empty = author.patch(f"{url(channel)}/{message_id}", {"content": " "}, format="json")

    assert edited.status_code == 200
    assert edited.json()["content"] == "fixed"
    assert edited.json()["edited_at"] is not None
    assert foreign.status_code == 403
    assert empty.status_code == 400
    assert Message.objects.get(pk=message_id).content == "fixed"


def test_editing_an_unknown_message_is_404(client_as, channel):
    response = client_as("messaging").patch(
        f"{url(channel)}/{uuid.uuid4()}", {"content": "x"}, format="json"
    )

    assert response.status_code == 404


# --- History -------------------------------------------------------------------------------


@pytest.fixture
def history(channel):
    """25 messages, in groups of five sharing one timestamp."""
    base = timezone.now() - timedelta(hours=1)
    messages = [
        Message(channel=channel, sender_id="u", sender_type="user", content=f"m{i}",
                sent_at=base + timedelta(seconds=i // 5))
        for i in range(25)
    ]  # fmt: skip
    Message.objects.bulk_create(messages)
    ordered = sorted(messages, key=lambda m: (m.sent_at, m.message_id))
    return [str(m.message_id) for m in ordered]


def ids(body) -> list[str]:
    return [m["message_id"] for m in body["messages"]]


def test_no_cursor_returns_the_newest_page_oldest_first(client_as, channel, history):
    body = client_as("messaging").get(f"{url(channel)}?limit=10").json()

    assert ids(body) == history[-10:]
    assert body["has_more"] is True
    assert body["next_before"] == history[-10]
    assert body["next_after"] == history[-1]


def test_walking_backwards_with_before_visits_every_message_once(client_as, channel, history):
    client = client_as("messaging")
    seen: list[str] = []
    body = client.get(f"{url(channel)}?limit=7").json()
    while True:
        seen = ids(body) + seen
        if not body["has_more"]:
            break
        body = client.get(f"{url(channel)}?limit=7&before={body['next_before']}").json()

    assert seen == history


def test_walking_forwards_with_after_visits_every_message_once(client_as, channel, history):
    client = client_as("messaging")
    body = client.get(f"{url(channel)}?limit=4&after={history[0]}").json()
    seen = [history[0]]
    while True:
        seen += ids(body)
        if not body["has_more"]:
            break
        body = client.get(f"{url(channel)}?limit=4&after={body['next_after']}").json()

    assert seen == history


def test_timestamp_cursors_are_strict(client_as, channel, history):
    client = client_as("messaging")
    pivot = Message.objects.get(pk=history[10]).sent_at.isoformat()  # messages 10..14 share it

    before = client.get(url(channel), {"before": pivot, "limit": 200}).json()
    after = client.get(url(channel), {"after": pivot, "limit": 200}).json()

    assert ids(before) == history[:10]
    assert ids(after) == history[15:]
    assert before["has_more"] is after["has_more"] is False


def test_after_the_millisecond_sent_at_a_client_read_excludes_that_message(client_as, channel):
    client = client_as("messaging")
    first = post(client, channel, content="first").json()
    newest = post(client, channel, content="second").json()
    later = (timezone.now() + timedelta(seconds=5)).replace(microsecond=400_999)
    Message.objects.filter(pk=newest["message_id"]).update(sent_at=later)
    shown = client.get(url(channel)).json()["messages"][-1]["sent_at"]

    assert shown.endswith(".400Z")
    assert ids(client.get(url(channel), {"after": shown}).json()) == []
    assert ids(client.get(url(channel), {"before": shown}).json()) == [first["message_id"]]


def test_a_full_last_page_does_not_claim_more(client_as, channel, history):
    body = client_as("messaging").get(f"{url(channel)}?limit=25").json()

    assert len(body["messages"]) == 25
    assert body["has_more"] is False


def test_limit_defaults_to_50_and_is_capped_at_200(client_as, channel):
    Message.objects.bulk_create(
        Message(channel=channel, sender_id="u", sender_type="user", content=str(i))
        for i in range(210)
    )
    client = client_as("messaging")

    assert len(client.get(url(channel)).json()["messages"]) == 50
    assert len(client.get(f"{url(channel)}?limit=1000").json()["messages"]) == 200


@pytest.mark.parametrize(("name", "value"), [("before", "yesterday"), ("after", str(uuid.uuid4()))])
def test_bad_cursor_is_400_naming_the_parameter(client_as, channel, name, value):
    response = client_as("messaging").get(url(channel), {name: value})

    assert response.status_code == 400
    assert name in response.json()["error"]["details"]


def test_a_message_id_of_another_channel_is_not_a_cursor(client_as, channel, make_user):
    other = channel_create(name="other", type="public", members=[], actor=make_user("o"))
    foreign = Message.objects.create(channel=other, sender_id="u", sender_type="user", content="x")

    response = client_as("messaging").get(url(channel), {"before": str(foreign.message_id)})

    assert response.status_code == 400


def test_history_etag_changes_as_soon_as_a_message_arrives(
    client_as, channel, django_capture_on_commit_callbacks
):
    client = client_as("messaging")
    first = client.get(url(channel))
    assert first["Cache-Control"] == "private, max-age=20"
    assert client.get(url(channel), HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    with django_capture_on_commit_callbacks(execute=True):
        post(client, channel)

    assert client.get(url(channel), HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_newest_page_reads_a_fixed_number_of_queries(
    client_as, channel, django_assert_max_num_queries
):
    Message.objects.bulk_create(
        Message(channel=channel, sender_id="u", sender_type="user", content=str(i))
        for i in range(120)
    )
    client = client_as("messaging")

    with django_assert_max_num_queries(5):
        client.get(url(channel))


# --- Idempotency ----------------------------------------------------------------------------


def test_same_key_same_body_replays_the_first_response(client_as, channel):
    client = client_as("messaging")

    first = post(client, channel, key="abc")
    second = post(client, channel, key="abc")

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Message.objects.count() == 1


def test_same_key_other_body_is_422(client_as, channel):
    client = client_as("messaging")
    post(client, channel, key="abc")

    response = post(client, channel, content="something else", key="abc")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_mismatch"


def test_keys_belong_to_their_principal(client_as, channel):
    post(client_as("messaging"), channel, key="abc")
    post(client_as("messaging"), channel, key="abc")

    assert Message.objects.count() == 2


def test_overlong_key_is_400(client_as, channel):
    assert post(client_as("messaging"), channel, key="k" * 256).status_code == 400


def test_a_failed_request_releases_its_key(client_as, channel):
    client = client_as("messaging")

    failed = post(client, channel, content="", key="abc")
    retried = post(client, channel, content="", key="abc")

    assert failed.status_code == retried.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_one_message(live_server, make_api_key, make_user):
    channel = channel_create(name="race", type="public", members=[], actor=make_user("c"))
    key = make_api_key(["messaging"])

    def send(_: int) -> int:
        return httpx.post(
            f"{live_server.url}{url(channel)}",
            json={"sender_id": "user-1", "content": "once"},
            headers={"X-API-KEY": key, "Idempotency-Key": "race-1"},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(send, range(10)))

    assert Message.objects.filter(channel=channel).count() == 1
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}


# --- ElizaOS central messaging --------------------------------------------------------------


def eliza_body(channel, **overrides):
    return {
        "channel_id": str(channel.channel_id),
        "message_server_id": str(uuid.uuid4()),
        "author_id": str(uuid.uuid4()),
        "content": "hi from eliza",
        "source_type": "eliza_gui",
        "raw_message": {"text": "hi from eliza"},
        **overrides,
    }


def test_eliza_submit_stores_the_message_and_answers_in_elizas_shape(client_as, channel):
    body = eliza_body(channel, metadata={"a": 1})

    response = client_as("messaging").post("/api/messaging/submit", body, format="json")

    assert response.status_code == 201
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    assert {
        "id",
        "channelId",
        "authorId",
        "content",
        "rawMessage",
        "sourceType",
        "metadata",
        "createdAt",
        "updatedAt",
    } <= set(data)
    assert (data["channelId"], data["authorId"], data["sourceType"]) == (
        str(channel.channel_id),
        body["author_id"],
        "eliza_gui",
    )
    assert data["rawMessage"] == {"text": "hi from eliza"}
    assert Message.objects.get(pk=data["id"]).content == "hi from eliza"


def test_eliza_submit_with_missing_fields_answers_elizas_400(client_as, channel):
    body = eliza_body(channel)
    del body["author_id"], body["raw_message"]

    response = client_as("messaging").post("/api/messaging/submit", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "Missing required fields: author_id, raw_message",
    }


def test_eliza_submit_to_an_unknown_channel_is_404(client_as, channel):
    body = eliza_body(channel, channel_id=str(uuid.uuid4()))

    assert (
        client_as("messaging").post("/api/messaging/submit", body, format="json").status_code == 404
    )


def test_eliza_submit_with_a_known_message_id_does_not_store_twice(client_as, channel):
    client = client_as("messaging")
    body = eliza_body(channel, messageId=str(uuid.uuid4()))

    client.post("/api/messaging/submit", body, format="json")
    client.post("/api/messaging/submit", body, format="json")

    assert Message.objects.filter(channel=channel).count() == 1
    assert Channel.objects.count() == 1


def test_message_data_renders_exactly_what_the_serializer_documents(channel, mimi):
    """The history and post responses build messages without DRF's field machinery: the
    result must stay what MessageSerializer (the schema) renders, field for field."""
    from rest_framework.renderers import JSONRenderer

    from messaging.serializers import MessageSerializer, message_data
    from system.kernel.timefmt import IsoZJSONRenderer

    question = Message.objects.create(
        channel=channel, sender_id="user-1", sender_type="user", content="ü ✓", metadata={"a": 1}
    )
    answer = Message.objects.create(
        channel=channel,
        sender_id=str(mimi.agent_id),
        sender_type=Message.SenderType.AGENT,
        content="reply",
        in_reply_to=question,
        edited_at=timezone.now(),
    )

    for message in (question, answer, Message.objects.get(pk=answer.pk)):
        for renderer in (IsoZJSONRenderer(), JSONRenderer()):
            assert renderer.render(message_data(message)) == renderer.render(
                MessageSerializer(message).data
            )
