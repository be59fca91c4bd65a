import os

from django.contrib import admin
from django.urls import include, path, re_path

from system.views import api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("system.urls")),
    path("", include("system.ops_urls")),
    path("", include("agents.urls")),
    path("", include("messaging.urls")),
    path("", include("sessions_app.urls")),
    path("", include("questflow.urls")),
    # Last: anything else under /api/ is a 404 in the error envelope.
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]

# The benchmark ceiling (system/bench_views.py): mounted only for `make bench`'s stack.
if os.environ.get("BENCH_CEILING", "").strip().lower() in {"1", "true", "yes", "on"}:
    from system.bench_views import BenchCeilingView

    urlpatterns.append(path("bench/ceiling", BenchCeilingView.as_view(), name="bench-ceiling"))

handler404 = "system.errors.handler404"
handler500 = "system.errors.handler500"
