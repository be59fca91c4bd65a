"""The list endpoints' page/limit pagination (system.kernel.pagination)."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from system.kernel.pagination import PagePagination

pytestmark = pytest.mark.embedded


def request_with(**params: str) -> Request:
    return Request(APIRequestFactory().get("/", params))


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["1000001", "99999999999", "9" * 30])
def test_a_page_beyond_the_maximum_is_a_400_naming_it(client_as, page):
    response = client_as("admin").get(f"/api/v1/system/tasks?page={page}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]) == {"page"}


@pytest.mark.django_db
def test_a_page_that_is_not_an_integer_is_a_400_naming_it(client_as):
    response = client_as("admin").get("/api/v1/system/tasks?page=second")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "'page' must be an integer."
    assert error["details"] == {"page": ["Must be an integer."]}


@pytest.mark.django_db
def test_the_last_page_holds_the_remainder_and_the_envelope_counts_them_all():
    Group.objects.bulk_create(Group(name=f"group-{i}") for i in range(5))
    pagination = PagePagination(request_with(page="3", limit="2"), items_key="groups")

    rows = pagination.slice(Group.objects.filter(name__startswith="group-").order_by("name"))
    response = pagination.response([group.name for group in rows])

    assert response.data == {
        "groups": ["group-4"],
        "pagination": {"page": 3, "limit": 2, "total": 5},
    }


@pytest.mark.django_db
def test_the_total_counts_the_queryset_given_as_count():
    Group.objects.bulk_create(Group(name=f"group-{i}") for i in range(3))
    pagination = PagePagination(request_with(), items_key="groups")

    pagination.slice(Group.objects.order_by("name"), count=Group.objects.filter(name="group-1"))

    assert pagination.total == 1
