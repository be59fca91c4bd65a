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


def estimate_prompt_tokens(messages: list[ChatMessage]) -> int:
    """An upper estimate of a prompt's tokens for budget reservations: real tokenizers split
    words that this counter keeps whole, so a third of the characters bounds it from above for
    ordinary text; a few tokens per message cover the chat framing."""
    counted = count_prompt_tokens(messages)
    characters = sum(len(message.content) for message in messages)
    return max(counted, -(-characters // 3)) + 4 * len(messages)


def conversation_capped(conversation: list[ChatMessage], max_chars: int) -> list[ChatMessage]:
    """The newest turns of `conversation` that fit in `max_chars` characters (oldest dropped
    first); a newest turn longer than that on its own keeps its first `max_chars`."""
    kept: list[ChatMessage] = []
    total = 0
    for turn in reversed(conversation):
        if total + len(turn.content) > max_chars:
            if not kept:
                kept.append(ChatMessage(role=turn.role, content=turn.content[:max_chars]))
            break
        kept.append(turn)
        total += len(turn.content)
    return kept[::-1]
