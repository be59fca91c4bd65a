"""The one channel-visibility rule: its predicate (what the WebSocket's cached directory
applies), its QuerySet form (the REST API's) and the per-channel lookup all agree."""

import pytest

from messaging.exceptions import ChannelNotFound
from messaging.selectors import (
    channel_audience,
    channel_get_visible,
    channel_visible_to,
    channels_visible,
)
from messaging.services import channel_create
from system.kernel.principal import Principal

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

CASES = [
    # (channel type, who asks, visible)
    ("public", "member", True),
    ("public", "stranger", True),
    ("public", "admin", True),
    ("private", "member", True),
    ("private", "stranger", False),
    ("private", "admin", True),
    ("direct", "member", True),
    ("direct", "stranger", False),
    ("direct", "admin", True),
]

PRINCIPALS = {
    "member": Principal(user_id=1, username="alice", roles=frozenset({"messaging"})),
    "stranger": Principal(user_id=2, username="mallory", roles=frozenset({"messaging"})),
    "admin": Principal(user_id=3, username="root", roles=frozenset({"admin"})),
}


@pytest.fixture
def make_channel(make_user):
    def make(channel_type: str):
        return channel_create(
            name=f"{channel_type} room",
            type=channel_type,
            members=["alice", "bob"],
            actor=make_user("bob"),
        )

    return make


@pytest.mark.parametrize(("channel_type", "who", "visible"), CASES)
def test_the_predicate_decides_as_the_rule_says(make_channel, channel_type, who, visible):
    channel = make_channel(channel_type)
    members = set(channel.members.values_list("member_type", "member_id"))

    assert (
        channel_visible_to(principal=PRINCIPALS[who], channel_type=channel.type, members=members)
        is visible
    )


@pytest.mark.parametrize(("channel_type", "who", "visible"), CASES)
def test_the_queryset_form_agrees_with_the_predicate(make_channel, channel_type, who, visible):
    channel = make_channel(channel_type)

    assert channels_visible(principal=PRINCIPALS[who]).filter(pk=channel.pk).exists() is visible


@pytest.mark.parametrize(("channel_type", "who", "visible"), CASES)
def test_the_cached_audience_agrees_with_the_predicate(make_channel, channel_type, who, visible):
    channel = make_channel(channel_type)

    audience = channel_audience(channel_id=str(channel.pk))

    assert audience.visible_to(PRINCIPALS[who]) is visible


@pytest.mark.parametrize(
    ("channel_type", "who"), [(t, w) for t, w, visible in CASES if not visible]
)
def test_a_channel_the_principal_may_not_see_is_not_found(make_channel, channel_type, who):
    channel = make_channel(channel_type)

    with pytest.raises(ChannelNotFound):
        channel_get_visible(principal=PRINCIPALS[who], channel_id=str(channel.pk))


@pytest.mark.parametrize(
    "channel_id", ["not-a-uuid", None, 42, "00000000-0000-0000-0000-000000000000"]
)
def test_an_id_that_names_no_channel_is_not_found_and_has_no_audience(channel_id):
    with pytest.raises(ChannelNotFound):
        channel_get_visible(principal=PRINCIPALS["admin"], channel_id=channel_id)
    assert channel_audience(channel_id=channel_id) is None
