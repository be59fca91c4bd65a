"""The `/v1/ws` WebSocket: authenticated subscriptions to the event log, commands, and lossless
resume.

- `auth`: who is connecting (JWT or API key, from the query, a header or the `auth` command)
  and whether those credentials are still good.
- `origin`: which browser origins may open a socket.
- `guard`: limits on sockets per client address and per principal (failed authentications,
  counted like REST's; how many may wait to authenticate; how many may be open), across ws
  processes.
- `access`: which logged events a principal may see (the same rules as the REST API).
- `subscriptions`: the `subscribe` command's event types and filters, in Python and in SQL.
- `commands`: `send_message`, through the same checks and service as the REST API.
- `log`: reads of the event log, and the per-process window of its newest entries that lets
  every connection of a process fill gaps without a query of its own.
- `hub`: the one live-events subscription of a ws process and its local fan-out.
- `delivery`: one connection's events, without sockets: the cursor, catch-up of wake-ups it
  could not take at once, replay and resume, the ids already sent, its subscriptions and its
  hub groups. It writes each event's JSON (made once per process) through a `send` it is given.
- `consumer`: the connection itself, a JSON consumer over a `Delivery`: authentication,
  commands and their rate limit, error replies.
- `frames`: the close codes (which the transport sends, which the consumer), the command
  rate, and the parsing of a command's envelope.
- `db`: the database threads every read of a ws process runs on, so that one socket's slow
  read does not hold up the others.
- `routing`: the endpoint's paths; any other path is closed with 4404.

Delivery in one paragraph: live events reach a connection through the process's hub (`hub`:
one Redis pub/sub subscription per ws process, fanned out locally to the connections that
joined the event's groups), but only as a wake-up. The connection's `Delivery` keeps a cursor
(every event it may see up to that id has been delivered) and, on each live event, delivers
from the log window everything in (cursor, id] that matches its subscriptions, in id order,
through the public ASGI `send`. A wake-up that never came is therefore delivered when the next
one arrives, or by the periodic sync when none does. Event ids commit in id order
(event_emit's advisory lock; SQLite serialises writers), so once id N is visible every smaller
id is settled and the window never misses a late commit.

This room may import the kernel, the eventlog, auth, and the product apps' selectors and
services only.
"""
