"""The auth floor: the cheapest authenticated DRF endpoint the `api` process can serve.

`GET /bench/ceiling` (the path predates the bare ceiling; the scenario is `auth_floor`) is
mounted by bench/urls.py, the URLconf of bench/settings.py, which `make bench` sets for the
stack it starts (bench/README.md); product code never mounts it. It goes through the same
middleware, API-key authentication, rate limiting and policy check as every API view (action
`bench.ceiling`) and then does nothing: an ordinary scenario, measured against the bare
framework ceiling (bench/bare.py) like every other, it says what our common request path costs.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class BenchCeilingView(APIView):
    policy_action = "bench.ceiling"

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"ok": True})
