"""Sessions in the back office: whose they are, which agent, and how long they have left, in
words staff read at a glance."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from sessions_app import timeouts
from sessions_app.models import Session
from sessions_app.services import session_create, session_expire_if_due

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def staff(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def new_session(mimi, make_user):
    def make(owner: str) -> Session:
        return session_create(
            agent=mimi, user_id="user-123", owner=make_user(owner), config=timeouts.defaults()
        )

    return make


def cells(page: str, field: str) -> list[str]:
    return re.findall(rf'<td class="field-{field}[^"]*">([^<]*)</td>', page)


def test_session_list_shows_owner_agent_and_minutes_left(staff, new_session, settings):
    new_session("alice")

    page = staff.get("/admin/sessions_app/session/").content.decode()

    assert cells(page, "owner") == ["alice"]
    assert cells(page, "agent_name") == ["ceo_mimi"]
    minutes = settings.SESSION_DEFAULT_TIMEOUT_MINUTES
    assert cells(page, "time_remaining")[0] in (f"{minutes - 1} min left", f"{minutes} min left")


def test_session_list_says_how_long_ago_a_session_expired(staff, new_session):
    session = new_session("bob")
    three_hours_ago = timezone.now() - timedelta(hours=3, minutes=1)
    Session.objects.filter(pk=session.pk).update(expires_at=three_hours_ago)
    session.refresh_from_db()
    session_expire_if_due(session)

    page = staff.get("/admin/sessions_app/session/").content.decode()

    assert cells(page, "time_remaining") == ["expired 3 h ago"]
    assert cells(page, "owner") == ["bob"]
