"""The LOGGING setting: one line per request, the request id on every line, never a query
string (system.kernel.logging holds the filter and the JSON formatter)."""

import sys


def logging_config(*, level: str, fmt: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "system.kernel.logging.RequestIdFilter"}},
        "formatters": {
            "text": {
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            },
            "json": {"()": "system.kernel.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": sys.stderr,
                "filters": ["request_id"],
                "formatter": fmt,
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own request logger repeats each 4xx/5xx with the full URL: ours covers it.
            "django.request": {"level": "ERROR", "handlers": ["console"], "propagate": False},
            "django.server": {"level": "WARNING"},
        },
    }
