import re
from datetime import UTC, datetime

import pytest

from system.kernel.deprecation import add_months

pytestmark = pytest.mark.embedded


@pytest.mark.urls("tests.system.kernel_views")
@pytest.mark.django_db
def test_deprecated_endpoint_sends_deprecation_sunset_and_link(client_as):
    response = client_as("messaging").get("/api/test/old")

    assert response.status_code == 200
    assert response["Deprecation"] == f"@{int(datetime(2026, 8, 31, tzinfo=UTC).timestamp())}"
    assert response["Sunset"] == "Sun, 28 Feb 2027 00:00:00 GMT"
    assert response["Link"] == '</docs/migration#old>; rel="deprecation"'


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)),
        (datetime(2026, 8, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2027, 8, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_sunset_is_six_calendar_months_later(start, expected):
    assert add_months(start, 6) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/agents/active"])
def test_the_deprecation_link_points_at_a_section_of_the_served_docs(client_as, path):
    client = client_as("agent_manager")
    link = client.get(path)["Link"]
    target = re.fullmatch(r'<([^>#]+)#([^>]+)>; rel="deprecation"', link)

    page = client.get(target.group(1))

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert f'id="{target.group(2)}"' in page.content.decode()


@pytest.mark.django_db
def test_the_deprecations_page_lists_each_deprecated_operation_under_its_own_anchor(api_client):
    page = api_client.get("/api/docs/deprecations").content.decode()

    assert '<li id="v1_agents_restart_create"><code>POST /api/v1/agents/{agent_id}/restart' in page
    assert '<li id="v1_agents_active_retrieve"><code>GET /api/v1/agents/active</code>' in page
