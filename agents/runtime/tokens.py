"""A provider-independent token count, for the builtin responder and for OpenAI-compatible
servers that stream without reporting usage. It approximates, not reproduces, a provider's own
tokenizer: good enough for the usage ledger and budgets, and identical on every machine."""

import re

from agents.runtime.types import ChatMessage

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def count_prompt_tokens(messages: list[ChatMessage]) -> int:
    return sum(count_tokens(message.content) for message in messages)
