"""The bare framework ceiling: the fastest answer a DRF view can give on this machine.

`GET /bare` returns `{"ok": true}` from a DRF `APIView` with no authentication, no permission,
no throttle and DRF's plain `JSONRenderer`, in a project with no middleware and no database
(bench/bare_settings.py). The harness serves it with exactly the Procfile's `api` command
(granian, same flags and worker count) pointed at bench/bare_wsgi.py, on a port of its own, and
measures it with the same wrk script as every scenario: every row's `ours/bare` says what our
stack costs on top of the framework itself. Product code never mounts it.
"""

from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

PATH = "/bare"  # also bench.stack.BARE_PATH (importable before Django is set up)


class BareCeilingView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})
