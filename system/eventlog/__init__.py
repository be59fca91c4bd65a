"""The event log: durable first, then live.

Owns the `EventLogEntry` rows (model in `system.models`), `event_emit` and its batch forms
(appended in the caller's transaction, ids published after commit), the live-events channel
encoding, and pruning. It may import the kernel and `system.models`, nothing else: product
apps call it, it calls none of them.
"""
