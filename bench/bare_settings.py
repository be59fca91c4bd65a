"""Settings of the bare framework ceiling (bench/bare.py): Django and DRF, nothing of ours.

No middleware, no database, no authentication, DEBUG off. Served by the Procfile's `api`
command pointed at bench/bare_wsgi.py (bench/stack.py).
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "bench-bare-ceiling-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
INSTALLED_APPS = ["django.contrib.contenttypes", "rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.bare_urls"
DATABASES: dict = {}
USE_TZ = True
LOGGING_CONFIG = None
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,  # no django.contrib.auth: request.user is None
}
