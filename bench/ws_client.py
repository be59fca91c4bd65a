"""The WebSocket load client: a separate process (asyncio + `websockets`), one JSON line out.

    python -m bench.ws_client probe  --url WS --token KEY --channel ID
    python -m bench.ws_client fanout --url WS --token KEY --channel ID --sockets N --events E
                                     --tag TAG --deadline SECONDS
    python -m bench.ws_client resume --url WS --token KEY --channel ID --after N --expected M
                                     --runs R
    python -m bench.ws_client e2e    --url WS --api URL --token KEY --channel ID --samples S
                                     --gap SECONDS

`fanout` opens N sockets, subscribes each to the channel's `new_message` events, prints
{"ready": ...} and then records, per socket, the wall-clock receipt time of every event whose
content is "fanout TAG SEQ SEND_TIME" (the harness posts them, SEND_TIME being the wall clock
just before each POST). Receipt is stamped before anything is parsed; parsing happens at the
end. It prints the result when every socket has E events or at the deadline.
"""

import argparse
import asyncio
import json
import resource
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

OPEN_TIMEOUT = 30
REPLY_TIMEOUT = 30
CONNECT_CONCURRENCY = 25


class ProtocolError(RuntimeError):
    pass


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def _expect(ws: ClientConnection, event: str, timeout: float = REPLY_TIMEOUT) -> dict:
    """Read frames until one with this `event`; an `error` event fails."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolError(f"no {event!r} within {timeout:.0f}s")
        raw = await asyncio.wait_for(ws.recv(), remaining)
        message = json.loads(raw)
        if message.get("event") == event:
            return message
        if message.get("event") in {"error", "resync_required"}:
            raise ProtocolError(f"{message.get('event')}: {json.dumps(message.get('data'))}")


async def _open(url: str, token: str, channel: str) -> ClientConnection:
    ws = await connect(
        f"{url}?token={token}",
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,
        compression=None,
        max_size=2**22,
        max_queue=None,
    )
    try:
        await _expect(ws, "connection_established")
        await ws.send(
            json.dumps(
                {
                    "command": "subscribe",
                    "event_type": "message",
                    "filter": {"channel_id": channel},
                }
            )
        )
        await _expect(ws, "subscribed")
    except BaseException:
        await ws.close()
        raise
    return ws


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


async def probe(args: argparse.Namespace) -> dict:
    try:
        ws = await _open(args.url, args.token, args.channel)
    except BaseException as exc:  # noqa: BLE001 - reported, never raised
        return {"ok": False, "error": _describe(exc)}
    await ws.close()
    return {"ok": True}


# --- fan-out ------------------------------------------------------------------------------


async def fanout(args: argparse.Namespace) -> dict:
    marker = f"fanout {args.tag} "
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: list[str] = []

    async def open_one() -> ClientConnection | None:
        async with gate:
            try:
                return await _open(args.url, args.token, args.channel)
            except BaseException as exc:  # noqa: BLE001 - counted as a failed socket
                errors.append(_describe(exc))
                return None

    opened = await asyncio.gather(*(open_one() for _ in range(args.sockets)))
    sockets = [ws for ws in opened if ws is not None]
    received: list[list[tuple[float, str]]] = [[] for _ in sockets]
    socket_errors: list[str] = []
    _emit({"ready": True, "connected": len(sockets), "failed": args.sockets - len(sockets)})
    deadline = time.monotonic() + args.deadline

    async def read(index: int, ws: ClientConnection) -> None:
        got = received[index]
        tagged = 0
        while tagged < args.events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                return
            except BaseException as exc:  # noqa: BLE001 - a dropped socket is reported
                socket_errors.append(_describe(exc))
                return
            stamp = time.time()
            got.append((stamp, raw))
            if marker in raw:
                tagged += 1

    await asyncio.gather(*(read(i, ws) for i, ws in enumerate(sockets)))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    latencies: list[float] = []
    delivered = duplicates = 0
    for frames in received:
        seen: set[int] = set()
        for stamp, raw in frames:
            message = json.loads(raw)
            if message.get("event") != "new_message":
                continue
            content = message["data"]["message"]["content"]
            if not content.startswith(marker):
                continue
            _, _, seq, sent = content.split(" ")
            if int(seq) in seen:
                duplicates += 1
                continue
            seen.add(int(seq))
            delivered += 1
            latencies.append((stamp - float(sent)) * 1000)
    return {
        "sockets": args.sockets,
        "connected": len(sockets),
        "connect_errors": errors[:5],
        "connect_error_count": len(errors),
        "socket_errors": socket_errors[:5],
        "socket_error_count": len(socket_errors),
        "expected": len(sockets) * args.events,
        "delivered": delivered,
        "duplicates": duplicates,
        "latencies_ms": [round(x, 3) for x in latencies],
    }


# --- resume -------------------------------------------------------------------------------


async def resume_once(args: argparse.Namespace) -> dict:
    ws = await _open(args.url, args.token, args.channel)
    try:
        count = 0
        last_id = args.after
        started = time.perf_counter()
        finished = started
        await ws.send(json.dumps({"command": "resume", "last_event_id": args.after}))
        while True:
            raw = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
            message = json.loads(raw)
            event = message.get("event")
            if event == "new_message":
                event_id = message["event_id"]
                if event_id <= last_id:
                    raise ProtocolError(f"event {event_id} out of order after {last_id}")
                last_id = event_id
                count += 1
                finished = time.perf_counter()
            elif event == "resumed":
                break
            elif event in {"error", "resync_required"}:
                raise ProtocolError(f"{event}: {json.dumps(message.get('data'))}")
        seconds = finished - started
        return {
            "replayed": count,
            "seconds": round(seconds, 4),
            "events_per_second": round(count / seconds, 1) if seconds > 0 else None,
        }
    finally:
        await ws.close()


async def resume(args: argparse.Namespace) -> dict:
    runs = []
    try:
        for _ in range(args.runs):
            runs.append(await resume_once(args))
    except BaseException as exc:  # noqa: BLE001 - reported
        return {"runs": runs, "error": _describe(exc)}
    return {"runs": runs, "expected": args.expected}


# --- end-to-end agent reply latency ----------------------------------------------------------


async def e2e(args: argparse.Namespace) -> dict:
    ws = await _open(args.url, args.token, args.channel)
    inbox: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()

    async def read() -> None:
        async for raw in ws:
            stamp = time.time()
            await inbox.put((stamp, json.loads(raw)))

    reader = asyncio.create_task(read())
    latencies: list[float] = []
    errors: list[str] = []
    url = f"{args.api}/api/v1/channels/{args.channel}/messages"
    headers = {"X-API-KEY": args.token}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            # The first exchange is not recorded: it may find a worker process cold.
            for i in range(-1, args.samples):
                await asyncio.sleep(args.gap)
                response = await client.post(
                    url,
                    json={"sender_id": "bench-e2e-user", "content": f"e2e sample {i}: status?"},
                    headers=headers,
                )
                if response.status_code != 201:
                    errors.append(f"POST answered {response.status_code}: {response.text[:200]}")
                    continue
                message_id = response.json()["message_id"]
                committed: float | None = None
                deadline = time.monotonic() + REPLY_TIMEOUT
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        errors.append(f"no agent reply to sample {i} within {REPLY_TIMEOUT}s")
                        break
                    stamp, message = await asyncio.wait_for(inbox.get(), remaining)
                    if message.get("event") != "new_message":
                        continue
                    body = message["data"]["message"]
                    if body["message_id"] == message_id:
                        # The event-log row is the last write of the user's transaction.
                        committed = datetime.fromisoformat(message["timestamp"]).timestamp()
                    elif body.get("in_reply_to") == message_id and committed is not None:
                        if i >= 0:
                            latencies.append((stamp - committed) * 1000)
                        break
    except BaseException as exc:  # noqa: BLE001 - reported
        errors.append(_describe(exc))
    finally:
        reader.cancel()
        await ws.close()
    return {"samples": args.samples, "latencies_ms": latencies, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_client")
    parser.add_argument("mode", choices=["probe", "fanout", "resume", "e2e"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--api")
    parser.add_argument("--sockets", type=int, default=1)
    parser.add_argument("--events", type=int, default=1)
    parser.add_argument("--tag", default="")
    parser.add_argument("--deadline", type=float, default=30)
    parser.add_argument("--after", type=int, default=0)
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.3)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    handler = {"probe": probe, "fanout": fanout, "resume": resume, "e2e": e2e}[args.mode]
    _emit({"result": asyncio.run(handler(args))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
