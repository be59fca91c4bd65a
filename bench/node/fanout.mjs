// make bench: the WebSocket fan-out client, one design for both servers.
//
//   node bench/node/fanout.mjs '<json config>'      (bench/fanout_node.py builds the config)
//
// One process opens `sockets` sockets (at most `concurrency` handshakes in flight), waits until
// every socket is subscribed (ours) or has joined the channel (ElizaOS), then posts `events`
// messages over HTTP (keep-alive), `interval` seconds apart on a fixed schedule, each content
// being "fanout TAG SEQ SEND_MS" where SEND_MS is the wall clock (ms, sub-ms precision) just
// before the POST. Every socket stamps the wall clock on receipt of a frame *before* anything
// in it is parsed; parsing happens when the run is over. Latency = receipt - SEND_MS. It prints
// one JSON line: {"result": {...}}.
//
// Only the transport adapter differs between the two targets:
//   ours     the `ws` package: ws_url?token=KEY, wait for {"event":"connection_established"},
//            send a subscribe command, wait for {"event":"subscribed"}; events are
//            {"event":"new_message","data":{"message":{"content":...}}}; posts go to
//            POST api_url/api/v1/channels/ID/messages (X-API-KEY), 201 expected.
//   elizaos  `socket.io-client`, websocket transport only (no polling upgrade), auth
//            {entityId, apiKey}; joins the session's channel the way ElizaOS's own web client
//            does (a "message" event {type: 1 (ROOM_JOINING), payload}), waits for
//            "channel_joined"; events are "messageBroadcast" {text, ...}; posts go to
//            POST base_url/api/messaging/submit (X-API-KEY), 201 expected.
//
// The packages are loaded from BENCH_NODE_MODULES (default var/peers/node_modules), where
// bench/fanout_node.py installs the versions pinned in bench/node/package.json.

import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const modules =
  process.env.BENCH_NODE_MODULES ??
  path.join(path.dirname(fileURLToPath(import.meta.url)), "../../var/peers/node_modules");
const require = createRequire(path.join(path.resolve(modules), "noop.js"));
const config = JSON.parse(process.argv[2]);
const marker = `fanout ${config.tag} `;
const RECEIVED = Symbol("received"); // receipt stamp carried by a decoded socket.io payload

/** Wall clock in milliseconds with sub-millisecond precision. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const describe = (error) => String(error?.message ?? error).slice(0, 300);

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- transport adapters ----------------------------------------------------------------------
// Each adapter: open(slot) -> Promise<close function>, resolved once subscribed/joined; every
// event received after that goes to slot.frames as [receipt_ms, raw], and slot.onFrame(raw)
// counts the tagged ones. warm() opens the HTTP connection. post(content) -> Promise<null, or
// what went wrong>. extract(raw) -> the content string of an event, or null.

function oursAdapter({ ws_url, api_url, api_key, channel_id }) {
  const WebSocket = require("ws");
  const url = `${api_url}/api/v1/channels/${channel_id}/messages`;
  return {
    open(slot) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(`${ws_url}?token=${encodeURIComponent(api_key)}`, {
          perMessageDeflate: false,
          maxPayload: 2 ** 22,
        });
        let state = "connecting";
        ws.on("message", (data) => {
          const stamp = now();
          if (state === "ready") {
            slot.frames.push([stamp, data]);
            slot.onFrame(data);
            return;
          }
          const message = JSON.parse(data.toString());
          if (message.event === "error" || message.event === "resync_required") {
            reject(new Error(`${message.event}: ${JSON.stringify(message.data)}`));
            ws.terminate();
          } else if (state === "connecting" && message.event === "connection_established") {
            state = "subscribing";
            ws.send(
              JSON.stringify({
                command: "subscribe",
                event_type: "message",
                filter: { channel_id },
              }),
            );
          } else if (state === "subscribing" && message.event === "subscribed") {
            state = "ready";
            resolve(() => ws.close());
          }
        });
        ws.on("error", (error) => {
          if (state === "ready") slot.errors.push(describe(error));
          else reject(error);
        });
        ws.on("close", (code) => {
          if (state !== "ready") reject(new Error(`closed during the handshake (${code})`));
          else if (!slot.done()) slot.errors.push(`closed early (${code})`);
        });
      });
    },
    async warm() {
      await fetch(`${api_url}/healthz`).then((r) => r.arrayBuffer());
    },
    async post(content) {
      const response = await fetch(url, {
        method: "POST",
        headers: { "X-API-KEY": api_key, "Content-Type": "application/json" },
        body: JSON.stringify({ sender_id: "bench-user", content }),
      });
      await response.arrayBuffer();
      return response.status === 201 ? null : `POST answered ${response.status}`;
    },
    extract(raw) {
      const message = JSON.parse(raw.toString());
      if (message.event !== "new_message") return null;
      return message.data?.message?.content ?? message.data?.content ?? null;
    },
  };
}

function elizaAdapter({ base_url, api_key, channel_id, message_server_id, author_id }) {
  const { io } = require("socket.io-client");
  const url = `${base_url}/api/messaging/submit`;
  const headers = { "Content-Type": "application/json" };
  if (api_key) headers["X-API-KEY"] = api_key;
  return {
    open(slot) {
      return new Promise((resolve, reject) => {
        const entityId = randomUUID();
        const socket = io(base_url, {
          transports: ["websocket"],
          upgrade: false,
          reconnection: false,
          forceNew: true,
          autoConnect: false,
          perMessageDeflate: false,
          timeout: 30000,
          auth: { entityId, apiKey: api_key },
        });
        // Stamp each frame as it arrives, before socket.io decodes it. The manager's ondata()
        // decodes synchronously and hands every decoded packet to ondecoded(), which defers the
        // dispatch to the event handler (process.nextTick): the stamp rides on the packet's
        // payload so that it stays with its own frame. Both are bound when the connection
        // opens, hence autoConnect: false and connect() below. Should a socket.io-client
        // version lack them, the handler stamps instead (after decoding).
        const manager = socket.io;
        if (typeof manager.ondata === "function" && typeof manager.ondecoded === "function") {
          const { ondata, ondecoded } = manager;
          let arrival = 0;
          manager.ondata = function (data) {
            arrival = now();
            return ondata.call(this, data);
          };
          manager.ondecoded = function (packet) {
            const [name, payload] = Array.isArray(packet?.data) ? packet.data : [];
            if (name === "messageBroadcast" && payload && typeof payload === "object") {
              payload[RECEIVED] = arrival;
            }
            return ondecoded.call(this, packet);
          };
        }
        let state = "connecting";
        socket.on("messageBroadcast", (payload) => {
          const stamp = payload?.[RECEIVED] ?? now();
          if (state !== "ready") return;
          slot.frames.push([stamp, payload]);
          slot.onFrame(payload?.text ?? "");
        });
        socket.on("connect", () => {
          state = "joining";
          socket.emit("message", {
            type: 1, // SOCKET_MESSAGE_TYPE.ROOM_JOINING
            payload: {
              channelId: channel_id,
              roomId: channel_id,
              entityId,
              messageServerId: message_server_id,
            },
          });
        });
        socket.on("channel_joined", (payload) => {
          if (state === "joining" && payload?.channelId === channel_id) {
            state = "ready";
            resolve(() => socket.disconnect());
          }
        });
        socket.on("messageError", (payload) => {
          if (state !== "ready") reject(new Error(`messageError: ${JSON.stringify(payload)}`));
        });
        socket.on("connect_error", (error) => reject(error));
        socket.on("disconnect", (reason) => {
          if (state !== "ready") reject(new Error(`disconnected during the join (${reason})`));
          else if (!slot.done()) slot.errors.push(`disconnected early (${reason})`);
        });
        socket.connect();
      });
    },
    async warm() {
      await fetch(`${base_url}/api/server/ping`, { headers }).then((r) => r.arrayBuffer());
    },
    async post(content) {
      const response = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({
          channel_id,
          message_server_id,
          author_id,
          content,
          source_type: "user",
          raw_message: { text: content },
          metadata: {},
        }),
      });
      await response.arrayBuffer();
      return response.status === 201 ? null : `POST answered ${response.status}`;
    },
    extract(payload) {
      return typeof payload?.text === "string" ? payload.text : null;
    },
  };
}

// --- the run -----------------------------------------------------------------------------------

function percentile(values, q) {
  // Nearest rank, as bench/ws_client.percentile (q in 0..100).
  if (values.length === 0) return null;
  const ordered = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.min(ordered.length, Math.round((q / 100) * ordered.length + 0.5)));
  return ordered[rank - 1];
}

async function run() {
  const adapter = (config.target === "ours" ? oursAdapter : elizaAdapter)(config.args);
  const events = config.events;
  const slots = [];
  const connectErrors = [];
  const closers = [];
  let allDone;
  const finished = new Promise((resolve) => {
    allDone = resolve;
  });
  let complete = 0;

  // Connect with limited concurrency.
  let next = 0;
  async function opener() {
    while (next < config.sockets) {
      next += 1;
      const slot = { frames: [], errors: [], tagged: 0 };
      slot.done = () => slot.tagged >= events;
      slot.onFrame = (raw) => {
        if (slot.tagged < events && raw.includes(marker)) {
          slot.tagged += 1;
          if (slot.tagged === events) {
            complete += 1;
            if (complete === slots.length) allDone();
          }
        }
      };
      try {
        closers.push(await withTimeout(adapter.open(slot), 30000, "handshake"));
        slots.push(slot);
      } catch (error) {
        connectErrors.push(describe(error));
      }
    }
  }
  const connectStarted = now();
  await Promise.all(Array.from({ length: Math.min(config.concurrency, config.sockets) }, opener));
  const connectSeconds = (now() - connectStarted) / 1000;

  // Post the events on a fixed schedule from this process, over one keep-alive connection.
  const postErrors = [];
  const readyAt = now();
  if (slots.length > 0) {
    await adapter.warm().catch((error) => postErrors.push(`warm-up: ${describe(error)}`));
    const start = now() + 500;
    for (let seq = 0; seq < events; seq += 1) {
      await sleep(start + seq * config.interval * 1000 - now());
      const sent = now();
      try {
        const problem = await adapter.post(`${marker}${seq} ${sent.toFixed(3)}`);
        if (problem) postErrors.push(problem);
      } catch (error) {
        postErrors.push(describe(error));
      }
    }
    // Wait for every socket to have every event, or the deadline (from ready).
    const left = readyAt + config.deadline * 1000 - now();
    if (complete < slots.length) await Promise.race([finished, sleep(left)]);
  }
  for (const close of closers) {
    try {
      close();
    } catch {
      // already closed
    }
  }

  // Parse what was received.
  const latencies = [];
  let delivered = 0;
  let duplicates = 0;
  const socketErrors = [];
  for (const slot of slots) {
    socketErrors.push(...slot.errors);
    const seen = new Set();
    for (const [stamp, raw] of slot.frames) {
      const content = adapter.extract(raw);
      if (typeof content !== "string" || !content.startsWith(marker)) continue;
      const [seq, sent] = content.slice(marker.length).split(" ");
      if (seen.has(seq)) {
        duplicates += 1;
        continue;
      }
      seen.add(seq);
      delivered += 1;
      latencies.push(stamp - Number(sent));
    }
  }
  const round3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    target: config.target,
    sockets: config.sockets,
    connected: slots.length,
    events,
    expected: config.sockets * events,
    delivered,
    duplicates,
    p50_ms: round3(percentile(latencies, 50)),
    p90_ms: round3(percentile(latencies, 90)),
    p99_ms: round3(percentile(latencies, 99)),
    max_ms: round3(latencies.length ? Math.max(...latencies) : null),
    connect_seconds: round3(connectSeconds),
    connect_errors: connectErrors.slice(0, 5),
    connect_error_count: connectErrors.length,
    socket_errors: socketErrors.slice(0, 5),
    socket_error_count: socketErrors.length,
    post_errors: postErrors.slice(0, 5),
    post_error_count: postErrors.length,
  };
}

try {
  const result = await run();
  process.stdout.write(`${JSON.stringify({ result })}\n`);
  process.exit(0);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: describe(error) })}\n`);
  process.exit(1);
}
