from django.contrib import admin
from django.urls import include, path, re_path

from system.kernel.views import api_not_found, api_trailing_slash

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("system.kernel.urls")),
    path("", include("system.auth.urls")),
    path("", include("system.ops.urls")),
    path("", include("system.notify.urls")),
    path("", include("agents.urls")),
    path("", include("messaging.urls")),
    path("", include("sessions_app.urls")),
    path("", include("questflow.urls")),
    # A trailing slash names the same resource: 308 to the path without it.
    re_path(r"^api/v1/(?P<path>.*)/$", api_trailing_slash),
    # Last: anything else under /api/ is a 404 in the error envelope.
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]

handler404 = "system.kernel.errors.handler404"
handler500 = "system.kernel.errors.handler500"
