"""The API's JSON renderer writes orjson's bytes, identical to what DRF's own encoder (with
datetimes as iso_z) writes for every kind of value a view hands it."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from messaging.models import Message
from system.kernel.timefmt import IsoZJSONRenderer, _DRFIsoZJSONEncoder

pytestmark = pytest.mark.embedded


class ReferenceRenderer(JSONRenderer):
    """DRF's renderer with the same encoder: what IsoZJSONRenderer wrote before orjson."""

    encoder_class = _DRFIsoZJSONEncoder


AWARE = dt.datetime(2025, 9, 13, 17, 28, 17, 400123, tzinfo=dt.UTC)
PAYLOADS = [
    {"ok": True},
    {
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "when": AWARE,
        "naive": dt.datetime(2025, 1, 2, 3, 4, 5),
        "other_zone": AWARE.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "day": dt.date(2025, 1, 2),
        "clock": dt.time(3, 4, 5, 678000),
        "span": dt.timedelta(minutes=90),
        "money": Decimal("12.50"),
        "lazy": gettext_lazy("Not found."),
        "text": "ünïcödé ✓ \u2028 line \u2029 para </script>",
        "numbers": [0, -1, 2**53, 1.5, 0.1, 123456.789, None, False],
        "nested": {"a": [{"b": {"c": []}}], "empty": {}},
        "choice": Message.SenderType.AGENT,
    },
    ReturnDict({"k": "v", "l": ReturnList([1, 2], serializer=None)}, serializer=None),
    [AWARE, "x"],
    {"huge": 2**70},  # beyond 64 bits: DRF's encoder writes it
    {1: "non-string key"},  # DRF's encoder turns the key into "1"
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_bytes_are_drfs(payload):
    ours = IsoZJSONRenderer().render(payload, "application/json")
    assert ours == ReferenceRenderer().render(payload, "application/json")
    json.loads(ours)


def test_floats_in_exponent_form_read_back_the_same():
    """The one difference: orjson writes an exponent without padding (1e-7, not 1e-07)."""
    values = [1e-7, 1e22, 2.5e-12, -3.0e300]
    assert json.loads(IsoZJSONRenderer().render(values)) == values


def test_datetimes_are_iso_z_with_milliseconds():
    body = json.loads(IsoZJSONRenderer().render({"at": AWARE}))
    assert body == {"at": "2025-09-13T17:28:17.400Z"}


def test_an_indent_asked_for_in_the_media_type_is_honoured():
    body = IsoZJSONRenderer().render({"a": 1}, "application/json; indent=2")
    assert body == b'{\n  "a": 1\n}'
