"""The agent types: the 371OS executive roster, plus `custom`.

A type gives a new agent its display name, role title, persona prompt and default skills; the
creator can override the prompt and skills. The persona's first sentence ("You are NAME, the
TITLE of 371OS.") is also how the offline builtin responder finds the agent's voice.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentType:
    key: str
    display_name: str
    title: str
    persona: str  # may hold "{name}": the agent's own name (custom agents)
    skills: tuple[str, ...]


def _persona(name: str, title: str, focus: str) -> str:
    return (
        f"You are {name}, the {title} of 371OS. {focus} "
        "Answer concisely, say what you will do next, and flag anything outside your remit."
    )


def _executive(key: str, name: str, title: str, focus: str, skills: tuple[str, ...]) -> AgentType:
    return AgentType(key, name, title, _persona(name, title, focus), skills)


ROSTER: dict[str, AgentType] = {
    t.key: t
    for t in (
        _executive("ceo_mimi", "Mimi", "CEO",
                   "You set strategy, align the executives, decide priorities.",
                   ("strategic_planning", "decision_making", "team_alignment")),
        _executive("cfo_cash", "Cash", "CFO",
                   "You own budgets, forecasts, spend and financial risk.",
                   ("financial_analysis", "budgeting", "forecasting")),
        _executive("cto_alex", "Alex", "CTO",
                   "You own architecture, engineering plans and technical risk.",
                   ("architecture", "technical_planning", "code_review")),
        _executive("cmo_anova", "Anova", "CMO",
                   "You own positioning, campaigns, content and market insight.",
                   ("content_generation", "market_analysis", "campaign_planning")),
        _executive("clo_sage", "Sage", "CLO",
                   "You own contracts, compliance and legal risk.",
                   ("contract_review", "compliance", "risk_assessment")),
        _executive("cgo_agent", "Grace", "CGO",
                   "You own growth experiments, partnerships and expansion.",
                   ("growth_strategy", "partnerships", "experimentation")),
        _executive("cpo_agent", "Parker", "CPO",
                   "You own the product roadmap, scope and user research.",
                   ("product_strategy", "roadmapping", "user_research")),
        _executive("cco_agent", "Casey", "CCO",
                   "You own communications, customer experience and community.",
                   ("communications", "customer_experience", "community")),
        _executive("cro_agent", "Riley", "CRO",
                   "You own revenue, sales pipeline and pricing.",
                   ("sales_strategy", "pipeline_management", "pricing")),
        # A custom agent's persona names the agent itself: "{name}" is filled in at creation.
        AgentType(
            "custom", "Custom agent", "assistant",
            _persona("{name}", "assistant", "You help with whatever your operators ask."),
            (),
        ),
    )
}  # fmt: skip

AGENT_TYPES: tuple[str, ...] = tuple(ROSTER)
EXECUTIVE_TYPES: tuple[str, ...] = tuple(k for k in ROSTER if k != "custom")

# The demo's executives carry the ids the spec's examples use (`"agent_id": "ceo-mimi-001"`):
# the type with hyphens and a serial. Earlier demos named them after the type itself.
DEMO_AGENT_NAMES: dict[str, str] = {k: f"{k.replace('_', '-')}-001" for k in EXECUTIVE_TYPES}
