"""The one session-owner rule: the QuerySet (REST), the yes/no lookup (the WebSocket's
subscribe) and the predicate on a logged event's owner (the WebSocket's delivery) agree."""

import uuid

import pytest

from sessions_app import timeouts
from sessions_app.selectors import session_owned_by, session_visible_to, sessions_visible
from sessions_app.services import session_create
from system.kernel.principal import Principal

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

CASES = [("owner", True), ("other", False), ("admin", True)]


@pytest.fixture
def session_and_principals(make_user, mimi):
    owner, other, admin = make_user("owner"), make_user("other"), make_user("root")
    session = session_create(agent=mimi, user_id="user-1", owner=owner, config=timeouts.defaults())
    principals = {
        "owner": Principal(user_id=owner.pk, username="owner", roles=frozenset({"messaging"})),
        "other": Principal(user_id=other.pk, username="other", roles=frozenset({"messaging"})),
        "admin": Principal(user_id=admin.pk, username="root", roles=frozenset({"admin"})),
    }
    return session, principals


@pytest.mark.parametrize(("who", "visible"), CASES)
def test_the_queryset_and_the_lookup_agree(session_and_principals, who, visible):
    session, principals = session_and_principals

    in_queryset = sessions_visible(principal=principals[who]).filter(pk=session.pk).exists()

    assert in_queryset is visible
    assert session_owned_by(principal=principals[who], session_id=session.pk) is visible


@pytest.mark.parametrize(("who", "visible"), CASES)
def test_the_event_predicate_agrees(session_and_principals, who, visible):
    session, principals = session_and_principals

    assert session_visible_to(principal=principals[who], owner_id=session.owner_id) is visible


def test_a_session_that_does_not_exist_is_nobodys(session_and_principals):
    _, principals = session_and_principals

    assert session_owned_by(principal=principals["owner"], session_id=uuid.uuid4()) is False
