from system.kernel.exceptions import Conflict, DomainError, NotFound


class AgentNotFound(NotFound):
    code = "agent_not_found"
    message = "Agent not found."


class InvalidAgentConfig(DomainError):
    code = "invalid_agent_config"
    http_status = 400
    message = "The agent configuration is invalid."


class AgentNameTaken(Conflict):
    code = "agent_name_taken"
    message = "An agent with this name already exists."


class AgentAlreadyRunning(Conflict):
    code = "agent_already_running"
    message = "The agent is already running."


class AgentNotRunning(Conflict):
    code = "agent_not_running"
    message = "The agent is not running."


class AgentBudgetExceeded(DomainError):
    code = "agent_budget_exceeded"
    http_status = 402
    message = "The agent has spent its daily budget."


class BudgetUnavailable(AgentBudgetExceeded):
    """Spend cannot be counted (Redis is unreachable), so no call is made."""

    code = "budget_unavailable"
    http_status = 503
    message = "Agent budgets cannot be checked right now; retry shortly."


class AgentRuntimeError(DomainError):
    code = "agent_runtime_error"
    http_status = 502
    message = "No language model provider could answer for this agent."
