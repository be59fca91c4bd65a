"""URLconf for the caching and deprecation tests: small views built on the kernel's
mechanisms, next to the real project URLs."""

from datetime import UTC, datetime

from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from system.kernel.caching import cached_read, resource_version_bump
from system.kernel.deprecation import Deprecation, DeprecationMixin


class GroupsView(APIView):
    policy_actions = {"get": "agents.list", "post": "agents.create"}

    @cached_read(max_age=30, resources=lambda view, request: ["groups"])
    def get(self, request):
        return Response({"groups": sorted(Group.objects.values_list("name", flat=True))})

    def post(self, request):
        with transaction.atomic():
            Group.objects.create(name=request.data["name"])
            resource_version_bump("groups")
        return Response(status=201)


class OldView(DeprecationMixin, APIView):
    policy_action = "agents.list"
    deprecations = {"get": Deprecation(datetime(2026, 8, 31, tzinfo=UTC), "/docs/migration#old")}

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("api/test/groups", GroupsView.as_view()),
    path("api/test/old", OldView.as_view()),
    *project_urlpatterns,
]
