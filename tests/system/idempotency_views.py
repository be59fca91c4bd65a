"""URLconf for the idempotency tests: a create view whose transaction registers an
after-commit hook that fails (not robust), next to the real project URLs."""

from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from system.kernel.idempotency import idempotent


def _failing_hook() -> None:
    raise ConnectionError("the broker is gone")


class GroupCreateView(APIView):
    policy_actions = {"post": "agents.create"}

    def post(self, request):
        def handler() -> Response:
            with transaction.atomic():
                Group.objects.create(name=request.data["name"])
                transaction.on_commit(_failing_hook)
            return Response({"name": request.data["name"]}, status=201)

        return idempotent(request, handler)


urlpatterns = [path("api/test/groups", GroupCreateView.as_view()), *project_urlpatterns]
