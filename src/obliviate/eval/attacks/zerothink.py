"""ZeroThink: make a reasoning-trained model answer with an empty reasoning block.

TRU teaches a model to reason its way to a refusal inside `<think>...</think>`. Forcing the
assistant turn to start with an already-closed, empty block skips that trace, and with it possibly
the refusal: R-TOFU (arXiv 2505.15214) reports that this decoding variant can leak forgotten
content. The block is written right after the chat template's generation prompt, as the start of
the assistant turn (once only, when the template itself already opens `<think>`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import chat_prompt, generate
from obliviate.eval.attacks.base import ATTACKS, AttackedPrompt, append_prefix, item_id, question_answer

EMPTY_THINK = "<think>\n\n</think>"
EMPTY_THINK_COMPACT = "<think></think>"


def _check_block(block: str) -> None:
    if not block.strip():
        raise ValueError("the forced reasoning block must not be empty text (use EMPTY_THINK or EMPTY_THINK_COMPACT)")


def zerothink_prompt(
    tokenizer: PreTrainedTokenizerBase, question: str, block: str = EMPTY_THINK, system: str | None = None
) -> str:
    """The chat prompt for `question` with `block` opening the assistant turn."""
    _check_block(block)
    return append_prefix(chat_prompt(tokenizer, question, system), block)


def zerothink_generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    max_new_tokens: int = 32,
    block: str = EMPTY_THINK,
    system: str | None = None,
) -> list[str]:
    """Greedy answers decoded after the forced empty reasoning block (the block is not repeated)."""
    prompts = [zerothink_prompt(tokenizer, q, block, system) for q in questions]
    return generate(model, tokenizer, prompts, max_new_tokens)


@ATTACKS.register("zerothink")
def zerothink(items: Sequence[Any], block: str = EMPTY_THINK) -> list[AttackedPrompt]:
    """Each forget question unchanged, with `block` as the forced assistant prefix.

    Items may themselves be attacked prompts, to combine attacks: `zerothink(paraphrase(...))` gives
    attack "paraphrase+zerothink" (any earlier forced prefix is replaced by the block).
    """
    _check_block(block)
    prompts = []
    for i, item in enumerate(items):
        question, answer = question_answer(item, i)
        source = item_id(item, i)
        attack = f"{item.attack}+zerothink" if isinstance(item, AttackedPrompt) else "zerothink"
        prompts.append(AttackedPrompt(f"{source}/zerothink", source, question, answer, attack, block))
    return prompts
