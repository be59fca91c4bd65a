"""The project's URLs plus a route that fails with a 500, for the error-rate counters."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def fail(request: HttpRequest) -> HttpResponse:
    return HttpResponse("failed", status=500)


urlpatterns = [path("test/fail", fail), *project_urlpatterns]
