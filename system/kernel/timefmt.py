"""The one way a client reads time on our API: ISO 8601, UTC, milliseconds, "Z"
(`2025-09-13T17:28:17.400Z`, as the spec's examples).

`iso_z` for hand-built bodies; `IsoZJSONEncoder` for JSON written outside DRF (the event log's
payloads, WebSocket frames); `IsoZJSONRenderer` for DRF responses, whose serializers hand it
datetimes untouched (`REST_FRAMEWORK["DATETIME_FORMAT"] = None`): strftime has no millisecond
directive, so the format cannot be a DRF format string. The ElizaOS-compatible routes keep
ElizaOS's own formats and do not use this module.
"""

from datetime import UTC, datetime
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder

ISO_Z_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def iso_z(moment: datetime) -> str:
    """`moment` in UTC with exactly three fractional digits and "Z". Naive datetimes are
    taken as UTC (USE_TZ is on, so only hand-made ones are naive)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_z_or_none(moment: datetime | None) -> str | None:
    return iso_z(moment) if moment is not None else None


class IsoZJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder (UUIDs, decimals, durations, lazy strings) with datetimes as iso_z."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return iso_z(o)
        return super().default(o)


class _DRFIsoZJSONEncoder(DRFJSONEncoder):
    def default(self, obj: Any) -> Any:
        if isinstance(obj, datetime):
            return iso_z(obj)
        return super().default(obj)


_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class IsoZJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, datetimes written as iso_z, encoded by orjson: the same compact
    UTF-8 bytes as DRF's (U+2028/2029 escaped as DRF does; a float's exponent unpadded, 1e-7
    where Python writes 1e-07), several times faster on a page of rows. What orjson cannot
    write natively goes through DRF's encoder (`default`), datetimes and dates included, so
    every value is written as before; anything orjson refuses (keys that are not strings,
    integers beyond 64 bits) and indented output fall back to DRF."""

    encoder_class = _DRFIsoZJSONEncoder
    _default = staticmethod(_DRFIsoZJSONEncoder().default)

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=self._default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in body:
                body = body.replace(raw, escaped)
        return body
