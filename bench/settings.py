"""The project's settings with the benchmark's URLconf (the auth-floor view mounted)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
