"""Cross-lingual attack: ask for a forgotten fact in another language.

Knowledge is shared across languages inside a model, while unlearning usually trains on English
only, so the fact may still come out in Spanish, French or German. Sources of questions:
1. lab-world items (`QA` records, with `world` given): the world's questions in each language about
   the same subject and attribute (optionally only from some splits: `("crosslingual",)` keeps
   subjects never trained in that language), never one of the forget questions themselves;
2. otherwise a translation hook `translate(text, language_code) -> text`, for instance
   `translation_hook(backend)` around any `obliviate.llm.ChatBackend`.
Answers stay the item's gold answer: lab answers are language-neutral (names, dates, numbers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from obliviate.eval.attacks.base import ATTACKS, AttackedPrompt, item_id, question_answer, world_prompts
from obliviate.lab.world import QA, World
from obliviate.llm import ChatBackend

Translate = Callable[[str, str], str]

DEFAULT_LANGUAGES = ("es", "fr", "de")
LANGUAGES = {
    "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
    "pl": "Polish", "ru": "Russian", "tr": "Turkish", "ar": "Arabic", "hi": "Hindi", "zh": "Chinese",
    "ja": "Japanese", "ko": "Korean",
}
TRANSLATION_PROMPT = (
    "You are a professional translator. Translate the user's message into {language}. Keep names, "
    "numbers, dates, codes and e-mail addresses exactly as written. Reply with the translation only: "
    "no quotes, no notes, and do not answer the message."
)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", flags=re.DOTALL)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u00ab": "\u00bb", "\u201e": "\u201c"}


def language_name(code: str) -> str:
    """The English name of a language code in `LANGUAGES`."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise ValueError(f"unknown language code {code!r}; choose from: {', '.join(LANGUAGES)}") from None


def _clean_translation(reply: str) -> str:
    """Drop a reasoning block and one pair of quotes around the whole reply."""
    text = _THINK_BLOCK.sub("", reply).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def translation_hook(backend: ChatBackend, max_tokens: int = 256) -> Translate:
    """A `translate(text, code)` that asks `backend` (greedy) with `TRANSLATION_PROMPT`."""

    def translate(text: str, code: str) -> str:
        messages = [
            {"role": "system", "content": TRANSLATION_PROMPT.format(language=language_name(code))},
            {"role": "user", "content": text},
        ]
        translated = _clean_translation(backend.complete(messages, max_tokens=max_tokens, temperature=0.0))
        if not translated:
            raise ValueError(f"the translation backend returned nothing for {text!r} ({code})")
        return translated

    return translate


def _questions_by_language(world: World, splits: Sequence[str] | None) -> dict[tuple[str, str, str, str], list[QA]]:
    """Non-English questions keyed by (category, subject, attribute, language)."""
    index: dict[tuple[str, str, str, str], list[QA]] = {}
    for qa in world.qa:
        if qa.lang != "en" and (splits is None or qa.split in splits):
            index.setdefault((qa.category, qa.subject, qa.attribute, qa.lang), []).append(qa)
    return index


@ATTACKS.register("crosslingual")
def crosslingual(
    items: Sequence[Any],
    world: World | None = None,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    translate: Translate | None = None,
    splits: Sequence[str] | None = None,
) -> list[AttackedPrompt]:
    """Questions in each of `languages` for every forget item (forget-set order, then language order).

    A lab item the world has no question for in some language falls back to `translate`; without
    a hook that is an error, as it is for any non-lab item.
    """
    if not languages:
        raise ValueError("give at least one language code")
    index = _questions_by_language(world, splits) if world is not None else {}
    seen = {item_id(item, i) for i, item in enumerate(items)}
    prompts: list[AttackedPrompt] = []
    for i, item in enumerate(items):
        question, answer = question_answer(item, i)
        source = item_id(item, i)
        for lang in languages:
            attack = f"crosslingual:{lang}"
            key = (item.category, item.subject, item.attribute, lang) if isinstance(item, QA) else None
            if key in index:
                prompts += world_prompts(index[key], source, attack, seen)
            elif translate is not None:
                prompts.append(AttackedPrompt(f"{source}/{lang}", source, translate(question, lang), answer, attack))
            else:
                raise ValueError(f"no {lang!r} question for forget item {source!r} and no translate hook was given")
    return prompts
