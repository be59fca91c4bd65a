"""The bare ceiling's only URL (bench/bare.py)."""

from django.urls import path

from bench.bare import PATH, BareCeilingView

urlpatterns = [path(PATH.lstrip("/"), BareCeilingView.as_view(), name="bench-bare")]
