"""The offline responder: answers in the agent's voice with no network and no cost.

It keeps agents usable (and the whole stack testable) on a machine with no LLM key. Its replies
are a pure function of the messages, so tests and demos are reproducible, and each reply says
plainly that no language model wrote it.
"""

import re
import time
from collections.abc import Generator
from decimal import Decimal

from agents.runtime.tokens import count_prompt_tokens, count_tokens
from agents.runtime.types import ChatMessage, Completion, ModelConfig

BUILTIN_MODEL = "builtin-responder"
OFFLINE_PREFIX = "[offline responder]"
OFFLINE_NOTICE = "This reply comes from the built-in offline responder, not from a language model."
RESTATE_LIMIT = 200
_WORDS_PER_DELTA = 6

# "You are Mimi, the CEO of 371OS." / "You are Alex - Chief Financial Officer at Acme." /
# "You are Sam." (re reads the \u escapes: typographic apostrophes and en/em dashes count too)
_PERSONA = re.compile(
    r"\b(?i:you\s+are)\s+(?P<name>[A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*)"
    r"(?:(?:\s*,\s*|\s+[-\u2013\u2014]\s+|\s+(?i:as|the)\s+)(?:(?i:the|an?|our)\s+)?"
    r"(?P<title>[^.,;:!?\n]+?))?"
    r"(?=\s+(?i:of|at|for)\b|[.,;:!?\n]|$)"
)
_CHIEF_TITLES = {
    "executive": "CEO",
    "financial": "CFO",
    "finance": "CFO",
    "technology": "CTO",
    "technical": "CTO",
    "marketing": "CMO",
    "legal": "CLO",
    "product": "CPO",
    "growth": "CGO",
    "communications": "CCO",
    "compliance": "CCO",
    "revenue": "CRO",
}
NEXT_STEPS = {
    "CEO": "align the team's priorities around this and decide who owns it",
    "CFO": "check the budget impact and how it fits our spending limits",
    "CTO": "draft a technical plan with the components, the risks and a first milestone",
    "CMO": "sketch the marketing angle: audience, message and the channels to reach them",
    "CLO": "run a legal review for contract, compliance and liability risks",
    "CPO": "pin down the product scope and the acceptance criteria",
    "CGO": "pick the growth lever to test first and how we will measure it",
    "CCO": "prepare the communications and check them for compliance",
    "CRO": "estimate the revenue impact and the deals in the pipeline it touches",
}
DEFAULT_NEXT_STEP = "break this into concrete tasks and come back with a first result"


def persona(messages: list[ChatMessage]) -> tuple[str, str | None]:
    """(name, title) from the first system message that introduces someone."""
    for message in messages:
        if message.role != "system":
            continue
        match = _PERSONA.search(message.content)
        if match:
            title = (match.group("title") or "").strip() or None
            return match.group("name").strip(), title
    return "the assistant", None


def role_key(title: str | None) -> str | None:
    """'CEO', 'the CTO', 'Chief Financial Officer' → the C-level abbreviation, if any."""
    if not title:
        return None
    for word in re.findall(r"[A-Za-z]+", title):
        if word.upper() in NEXT_STEPS:
            return word.upper()
    lowered = title.lower()
    if "chief" in lowered:
        for word, key in _CHIEF_TITLES.items():
            if word in lowered:
                return key
    return None


def _restate(messages: list[ChatMessage]) -> str:
    latest = next((m.content for m in reversed(messages) if m.role == "user"), "")
    text = " ".join(latest.split())
    if len(text) > RESTATE_LIMIT:
        text = text[: RESTATE_LIMIT - 1].rstrip() + "…"
    return text


def builtin_reply(messages: list[ChatMessage]) -> str:
    name, title = persona(messages)
    speaker = f"{name}, {title}" if title else name
    step = NEXT_STEPS.get(role_key(title) or "", DEFAULT_NEXT_STEP)
    restated = _restate(messages)
    heard = f'You asked: "{restated}".' if restated else "I have no message from you yet."
    return (
        f"{OFFLINE_PREFIX} {speaker} here. Understood. {heard} "
        f"My next step: {step}. {OFFLINE_NOTICE}"
    )


class BuiltinProvider:
    kind = "builtin"

    def __init__(self, *, name: str) -> None:
        self.name = name

    def complete(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Completion:
        started = time.perf_counter()
        text = builtin_reply(messages)
        return Completion(
            text=text,
            model=model,
            provider=self.name,
            prompt_tokens=count_prompt_tokens(messages),
            completion_tokens=count_tokens(text),
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=Decimal(0),
        )

    def stream(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Generator[str | Completion, None, None]:
        completion = self.complete(messages, config, model=model, timeout=timeout)
        words = re.findall(r"\S+\s*", completion.text)
        for start in range(0, len(words), _WORDS_PER_DELTA):
            yield "".join(words[start : start + _WORDS_PER_DELTA])
        yield completion
