"""The benchmark ceiling: the cheapest authenticated DRF endpoint the `api` process can serve.

`GET /bench/ceiling` is mounted by bench/urls.py, the URLconf of bench/settings.py, which
`make bench` sets for the stack it starts (bench/README.md); product code never mounts it. It goes
through the same middleware, authentication, rate limiting and policy check as every API
view (action `bench.ceiling`) and then does nothing, so every other endpoint's requests per
second are measured as a fraction of it.
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
