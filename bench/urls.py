"""The project's URLs plus the auth-floor view (bench/ceiling.py), for the stack `make bench`
starts."""

from django.urls import path

from bench.ceiling import BenchCeilingView
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("bench/ceiling", BenchCeilingView.as_view(), name="bench-ceiling"),
    *project_urlpatterns,
]
