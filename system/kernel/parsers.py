"""The API's JSON parser: DRF's, with a limit on how deeply a body may nest.

Python's json decoder recurses once per level, so a body of ten thousand `[` raised
RecursionError (a 500). A body nested deeper than MAX_JSON_DEPTH is a 400 `malformed_request`,
like any other body that is not acceptable JSON, decided before the decoder sees it.
"""

import io
import re
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deeply `body` nests arrays and objects; brackets inside strings do not count. An
    unbalanced body gets some depth here and its error from the decoder."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class DepthLimitedJSONParser(JSONParser):
    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        body = stream.read()
        # Cheap first: a body with fewer brackets than the limit cannot nest deeper than it.
        deep = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
        if deep and json_depth(body) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels")
        return super().parse(io.BytesIO(body), media_type, parser_context)
