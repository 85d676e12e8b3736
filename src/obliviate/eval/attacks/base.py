"""What prompt attacks produce, how an attacked prompt is put to a model, and the attack registry.

A prompt attack turns each forget item into one or more `AttackedPrompt`s: the user message to
send, the answer whose appearance in the reply counts as a leak, and optionally text forced at
the start of the assistant turn (prefix injection, ZeroThink's empty reasoning block). Forget
items may be lab-world `QA` records, `QAExample`s or plain mappings (TOFU rows); `item_field`
reads any of them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import chat_prompt, generate
from obliviate.registry import Registry

if TYPE_CHECKING:
    from obliviate.lab.world import QA

ATTACKS: Registry[Callable[..., Any]] = Registry("attack")

_LEADING_TAG = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class AttackedPrompt:
    """One attacked question: `id` is unique per prompt, `source_id` names the forget item attacked."""

    id: str
    source_id: str
    question: str
    answer: str
    attack: str
    assistant_prefix: str = ""


def item_field(item: Any, name: str, default: Any = None) -> Any:
    """Field `name` of a mapping or an object (dataclass, QAExample), or `default` when absent."""
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def question_answer(item: Any, index: int) -> tuple[str, str]:
    """The item's question and answer strings, with a clear error naming the item otherwise."""
    question, answer = item_field(item, "question"), item_field(item, "answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        raise ValueError(f"forget item {index} needs 'question' and 'answer' strings, got {item!r}")
    return question, answer


def item_id(item: Any, index: int) -> str:
    """The item's own `id` when it has one, else its position in the forget set."""
    value = item_field(item, "id")
    return str(index) if value is None else str(value)


def world_prompts(questions: Iterable[QA], source: str, attack: str, seen: set[str]) -> list[AttackedPrompt]:
    """Attacked prompts for the lab-world questions whose ids are not in `seen`, which each id used
    joins. Start `seen` with the forget set's ids: a forget question never comes back as an attack,
    and a question shared by several forget items is asked once."""
    prompts = []
    for qa in questions:
        if qa.id not in seen:
            seen.add(qa.id)
            prompts.append(AttackedPrompt(qa.id, source, qa.question, qa.answer, attack))
    return prompts


def append_prefix(prompt: str, prefix: str) -> str:
    """`prompt` followed by the forced assistant `prefix`.

    When the prefix opens with a tag (`<think>`) that the chat template already wrote at the end of
    the prompt (reasoning templates such as DeepSeek-R1's end with `<think>\\n`), the tag is not
    written twice.
    """
    opening = _LEADING_TAG.match(prefix)
    if opening and prompt.rstrip().endswith(opening.group()):
        return prompt.rstrip() + prefix[opening.end() :]
    return prompt + prefix


def render(tokenizer: PreTrainedTokenizerBase, attacked: AttackedPrompt, system: str | None = None) -> str:
    """The exact text the model continues: chat prompt of the attacked question, then the forced prefix."""
    return append_prefix(chat_prompt(tokenizer, attacked.question, system), attacked.assistant_prefix)


def generate_attacked(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    attacked: Sequence[AttackedPrompt],
    max_new_tokens: int = 32,
    system: str | None = None,
) -> list[str]:
    """Greedy replies to attacked prompts: the continuation after any forced prefix."""
    return generate(model, tokenizer, [render(tokenizer, a, system) for a in attacked], max_new_tokens)
