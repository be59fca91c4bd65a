"""Careless HTTP input against the real api process (granian's WSGI): a chunked body
(`Transfer-Encoding: chunked`, no Content-Length) is read, and one past the body limit is
refused with 413 while it is being read (issue 19 item 5)."""

import contextlib
import http.client
import json
import select
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

CHUNK = 64 * 1024


def post_chunked(api_url: str, path: str, chunks: Iterator[bytes], headers: dict) -> tuple:
    """POST `chunks` with Transfer-Encoding: chunked. Like curl, stop sending once the server
    has answered early (it may close the connection on the rest of the body)."""
    address = urlsplit(api_url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)

    def body() -> Iterator[bytes]:
        for chunk in chunks:
            if conn.sock is not None and select.select([conn.sock], [], [], 0)[0]:
                return  # the answer is in: no point sending the rest
            yield chunk

    # The server may answer and close before the whole body was sent.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        conn.request("POST", path, body=body(), headers=headers, encode_chunked=True)
    response = conn.getresponse()
    try:
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def json_chunks(payload: dict) -> Iterator[bytes]:
    raw = json.dumps(payload).encode()
    return (raw[i : i + 7] for i in range(0, len(raw), 7))


def test_a_chunked_json_body_is_read_by_the_api(live_stack, transactional_db, make_api_key):
    headers = {"X-API-KEY": make_api_key(["admin"]), "Content-Type": "application/json"}

    status, body = post_chunked(
        live_stack.api_url,
        "/api/v1/auth/api-keys",
        json_chunks({"name": "sent in chunks", "roles": ["messaging"]}),
        headers,
    )

    assert status == 201, (body, live_stack.log_tail())
    assert body["name"] == "sent in chunks"


def test_a_2_mb_chunked_body_is_refused_with_413(live_stack, transactional_db, make_api_key):
    headers = {"X-API-KEY": make_api_key(["admin"]), "Content-Type": "application/json"}
    two_mb = (b"x" * CHUNK for _ in range(2 * 1024 * 1024 // CHUNK))

    status, body = post_chunked(live_stack.api_url, "/api/v1/auth/api-keys", two_mb, headers)

    assert status == 413, (body, live_stack.log_tail())
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"] == {"max_bytes": 1024 * 1024}
