"""An API key made in the back office, in a real headless Chromium against the live stack: the
secret is on the page the save redirects to, once; a reload shows that it is gone and makes
no second key. The page showing the key is saved as var/test-artifacts/api-key-once.png."""

import re

import pytest
from playwright.sync_api import Page

from system.models import ApiKey
from tests.e2e import test_admin_browser as admin_browser

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The browser and the logged-in staff member of the admin's browser tests, reused as they are.
page = admin_browser.page
staff_page = admin_browser.staff_page
ARTIFACTS = admin_browser.ARTIFACTS

KEY = re.compile(r"371os_[0-9a-f]+_[0-9a-f]+")


def test_staff_create_a_key_see_it_once_and_not_after_a_reload(staff_page: Page, live_stack):
    staff_page.goto(f"{live_stack.api_url}/admin/system/apikey/add/")
    owner = staff_page.locator("select[name=owner] option:checked").inner_text()
    staff_page.fill("input[name=name]", "key-from-the-browser")
    staff_page.check("input[name=role_choices][value=messaging]")
    staff_page.click("[name=_save]")

    api_key = ApiKey.objects.get(name="key-from-the-browser")
    staff_page.wait_for_url(f"{live_stack.api_url}/admin/system/apikey/{api_key.pk}/created/")
    shown = staff_page.inner_text("#api-key")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    staff_page.screenshot(path=ARTIFACTS / "api-key-once.png", full_page=True)
    staff_page.reload()

    assert owner == "staff-browser"
    assert KEY.fullmatch(shown)
    assert shown.split("_")[1] == api_key.prefix
    assert not KEY.search(staff_page.inner_text("body"))
    assert staff_page.locator("#api-key-gone").is_visible()
    assert ApiKey.objects.filter(name="key-from-the-browser").count() == 1
