"""What the OpenAPI hooks (`system.kernel.schema`) cannot read off a view: each operation's
summary, and the error statuses its services raise (domain exceptions' `http_status`, with
their codes), keyed by operationId. The generic statuses (400, 401, 403, 404, 413, 429) follow
from the operation's shape and are added by the hook; this table holds only what is specific.

Kept as data so the kernel imports no product app. The schema test requires a summary for
every operation, and Schemathesis (tests/e2e/test_schemathesis.py) fails on any status an
operation answers that is not documented, so a status missing here cannot go unnoticed.
"""

# Domain statuses shared by several operations.
_SESSION_GONE = {410: "`session_expired`"}
_SESSION_ACTION = {409: "`session_ended`", **_SESSION_GONE}
_AGENT_CALL = {
    402: "`agent_budget_exceeded`: the agent has spent its daily budget.",
    502: "`agent_runtime_error`: no language model provider could answer.",
    503: "`budget_unavailable`: spend cannot be counted right now; retry shortly.",
}
_IDEMPOTENT = {
    409: "`idempotency_key_in_use`: a request with this Idempotency-Key is still running.",
    422: "`idempotency_key_mismatch`: the Idempotency-Key was used with another body.",
}
_ELIZA_ACTION = {410: "`SESSION_EXPIRED`"}

# operationId → (summary, {status: the codes it carries}).
OPERATIONS: dict[str, tuple[str, dict[int, str]]] = {
    # Agents
    "v1_agents_list": ("List agents, filtered by status or type", {}),
    "v1_agents_create": ("Create an agent", {409: "`agent_name_taken`"}),
    "v1_agents_retrieve": ("Get an agent with its performance metrics", {}),
    "v1_agents_partial_update": (
        "Change an agent's name, config or skills",
        {
            409: "`agent_name_taken`",
        },
    ),
    "v1_agents_destroy": ("Delete an agent", {}),
    "v1_agents_start_create": ("Start an agent", {409: "`agent_already_running`"}),
    "v1_agents_stop_create": ("Stop an agent", {409: "`agent_not_running`"}),
    "v1_agents_restart_create": ("Restart an agent (deprecated: stop, then start)", {}),
    "v1_agents_active_retrieve": ("List running agents (deprecated: list with status)", {}),
    # Channels
    "v1_channels_list": ("List the channels the caller may see", {}),
    "v1_channels_create": ("Create a channel with its members", _IDEMPOTENT),
    "v1_channels_retrieve": ("Get a channel with its members", {}),
    "v1_channels_members_create": ("Add members to a channel", {}),
    "v1_channels_members_destroy": (
        "Remove members from a channel",
        {
            409: "`owner_not_removable`",
        },
    ),
    "v1_channels_member_remove": (
        "Remove one member from a channel",
        {
            409: "`owner_not_removable`",
        },
    ),
    "v1_channels_messages_retrieve": ("Read a channel's messages, one page at a time", {}),
    "v1_channels_messages_create": (
        "Post a message to a channel",
        {403: "`sender_not_allowed`", **_IDEMPOTENT},
    ),
    "v1_channels_messages_partial_update": ("Edit a message the caller posted", {}),
    "messaging_submit_create": (
        "Post a message, ElizaOS central-messaging shape",
        {
            403: "`sender_not_allowed`",
            404: "`channel_not_found`, `message_not_found` (in_reply_to_message_id)",
        },
    ),
    # Sessions
    "v1_sessions_list": ("List the caller's sessions", {404: "`agent_not_found` (agent_id)"}),
    "v1_sessions_create": (
        "Open a session with a running agent",
        {404: "`agent_not_found`", 409: "`agent_not_running`"},
    ),
    "v1_sessions_retrieve": ("Get a session and its time left", {}),
    "v1_sessions_message_create": (
        "Send a message in a session and get the agent's reply",
        {
            **_AGENT_CALL,
            409: "`session_ended`, `session_busy` (with Retry-After), `agent_not_running`",
            **_SESSION_GONE,
        },
    ),
    "v1_sessions_end_create": ("End a session", _SESSION_ACTION),
    "v1_sessions_heartbeat_create": ("Keep a session alive", _SESSION_ACTION),
    "v1_sessions_renew_create": (
        "Renew a session's timeout",
        {
            **_SESSION_ACTION,
            422: "`session_renewal_limit`: the session reached its maximum duration.",
        },
    ),
    "v1_sessions_timeout_partial_update": (
        "Change a session's timeout configuration",
        {
            **_SESSION_ACTION,
        },
    ),
    # ElizaOS-compatible sessions
    "messaging_sessions_health_retrieve": ("ElizaOS sessions service health", {}),
    "messaging_sessions_list": ("List sessions (ElizaOS shape)", {}),
    "messaging_sessions_create": (
        "Create a session (ElizaOS shape)",
        {404: "`AGENT_NOT_FOUND`: no running agent with this id"},
    ),
    "messaging_sessions_retrieve": ("Get a session (ElizaOS shape)", _ELIZA_ACTION),
    "messaging_sessions_destroy": ("Delete (end) a session (ElizaOS shape)", {}),
    "messaging_sessions_heartbeat_create": ("Keep a session alive (ElizaOS)", _ELIZA_ACTION),
    "messaging_sessions_renew_create": ("Renew a session (ElizaOS)", _ELIZA_ACTION),
    "messaging_sessions_timeout_partial_update": (
        "Change a session's timeout (ElizaOS)",
        {
            **_ELIZA_ACTION,
        },
    ),
    "messaging_sessions_messages_retrieve": (
        "Read a session's messages (ElizaOS)",
        {
            **_ELIZA_ACTION,
        },
    ),
    "messaging_sessions_messages_create": (
        "Send a message in a session (ElizaOS)",
        {
            **_AGENT_CALL,
            409: "`SESSION_BUSY` (with Retry-After)",
            **_ELIZA_ACTION,
        },
    ),
    # System
    "v1_system_status_retrieve": (
        "Health of every part and live metrics",
        {
            503: "`service_unavailable`: authentication cannot be checked (database away).",
        },
    ),
    "v1_system_config_retrieve": ("The running configuration (no secrets)", {}),
    "v1_system_events_list": ("Read the event log after an id", {}),
    "v1_system_tasks_list": ("List recent system tasks", {}),
    "v1_system_tasks_create": ("Run a system task (backup, cleanup, ...)", _IDEMPOTENT),
    "v1_system_tasks_read": ("Get a system task's state and result", {}),
    # Authentication
    "v1_auth_token_create": (
        "Log in: exchange username and password for a JWT pair",
        {
            401: "`invalid_credentials`",
        },
    ),
    "v1_auth_token_refresh_create": (
        "Exchange a refresh token for a new JWT pair",
        {
            401: "`invalid_token`, `token_expired`",
        },
    ),
    "v1_auth_token_revoke_create": (
        "Revoke a refresh token (log out)",
        {
            401: "`invalid_token`, `token_expired`",
        },
    ),
    "v1_auth_api_keys_retrieve": ("List API keys", {}),
    "v1_auth_api_keys_create": ("Create an API key (the secret is shown once)", {}),
    "v1_auth_api_keys_revoke_create": ("Revoke an API key", {}),
    # QuestFlow
    "workflows_create": ("Start a workflow from steps or a template", {}),
    "workflows_status_list": ("List active workflows", {}),
    "workflows_templates_retrieve": ("List workflow templates with their steps", {}),
    "workflows_retrieve": ("Get a workflow with its steps", {}),
    "workflows_cancel_create": ("Cancel a running workflow", {409: "`workflow_not_active`"}),
    "agents_csuite_meeting_create": (
        "Hold a C-suite meeting (sync, or async with 202)",
        {
            409: "`participants_not_running`",
            **_AGENT_CALL,
        },
    ),
    "agents_csuite_meetings_retrieve": ("Get a C-suite meeting and its minutes", {}),
    "deploy_akash_list": ("List Akash deployments", {}),
    "deploy_akash_create": ("Create an Akash deployment", {}),
    "deploy_akash_retrieve": ("Get an Akash deployment", {}),
}
