"""Paraphrase attack: ask for a forgotten fact in words the unlearning never trained on.

Unlearning that only suppresses the trained phrasings leaks under rewording. Sources of
rewordings, in order of preference:
1. lab-world items (`QA` records, with `world` given): the world's held-out English phrasings of the
   same subject and attribute (split `paraphrase`), each asked once even when several forget items
   share the fact, never one of the forget questions themselves;
2. a paraphrase the data provides, in the field `field` (TOFU's `paraphrased_question`);
3. `rewrite(question)`, by default `rule_based_paraphrase`: a documented, deterministic rewriter
   for data without paraphrases (and for lab items the world has no held-out phrasing of, such as
   general knowledge).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from obliviate.eval.attacks.base import ATTACKS, AttackedPrompt, item_field, item_id, question_answer, world_prompts
from obliviate.lab.world import QA, World

NAME = r"[A-Z][\w.-]*(?: [A-Z][\w.-]*)*"
# Sentence-level rewrites; the first that matches is applied.
RESTRUCTURE: tuple[tuple[re.Pattern[str], str], ...] = (
    # "What is Ana Brix's date of birth?" -> "What is the date of birth of Ana Brix?"
    (re.compile(rf"^(What|Which|Who) (is|are|was|were) ({NAME})'s ([^?]+)\?$"), r"\1 \2 the \4 of \3?"),
    # "What is the capital of France?" -> "What is France's capital?"
    (re.compile(rf"^(What|Which|Who) (is|are|was|were) the ([a-z][a-z -]*?) of ({NAME})\?$"), r"\1 \2 \4's \3?"),
    # "Where does Ana live?" -> "In which place does Ana live?"
    (re.compile(r"^Where (is|are|was|were|do|does|did) "), r"In which place \1 "),
    # "How many legs does a spider have?" -> "What number of legs does a spider have?"
    (re.compile(r"^How many "), "What number of "),
)

# Word-level substitutions, applied in one left-to-right pass (longest phrase first), so a
# replacement is never itself replaced. Chosen to keep the meaning of factual questions.
SYNONYMS: dict[str, str] = {
    "what is": "what's",
    "tell me": "let me know",
    "give me": "provide",
    "how can i": "how do I",
    "how do i": "how can I",
    "birthplace": "place of birth",
    "place of birth": "birthplace",
    "date of birth": "birth date",
    "birth date": "date of birth",
    "birthday": "date of birth",
    "job": "occupation",
    "occupation": "job",
    "profession": "occupation",
    "home address": "residential address",
    "phone number": "telephone number",
    "telephone number": "phone number",
    "email address": "e-mail address",
    "email": "e-mail",
    "lives": "resides",
    "live": "reside",
    "company": "firm",
    "city": "town",
    "town": "city",
    "author": "writer",
    "writer": "author",
    "wrote": "authored",
    "written": "authored",
    "largest": "biggest",
    "biggest": "largest",
    "tallest": "highest",
    "highest": "tallest",
    "synthesized": "produced",
    "make": "produce",
}
_SYNONYM_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(k) for k in sorted(SYNONYMS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
FRAME = "Please answer this question: {question}"


def _synonym(match: re.Match[str]) -> str:
    word = match.group()
    if match.start() > 0 and word[0].isupper():
        return word  # a capitalised word inside the sentence belongs to a name ("Kuwait City")
    replacement = SYNONYMS[word.lower()]
    return (str.upper if word[0].isupper() else str.lower)(replacement[0]) + replacement[1:]


def rule_based_paraphrase(question: str) -> str:
    """Reword an English question by fixed rules; the result always differs from the input.

    1. the first matching sentence rewrite of `RESTRUCTURE` (possessive <-> of-phrase around a
       capitalised name, "Where ..." -> "In which place ...", "How many" -> "What number of");
    2. synonyms from `SYNONYMS` (one pass, longest match first, first letter's case kept;
       capitalised words inside the sentence are names and left alone);
    3. if neither changed anything, the question wrapped in `FRAME`.
    """
    original = question.strip()
    text = original
    for pattern, replacement in RESTRUCTURE:
        if pattern.search(text):
            text = pattern.sub(replacement, text, count=1)
            break
    text = _SYNONYM_PATTERN.sub(_synonym, text)
    return text if text != original else FRAME.format(question=original)


def _held_out_phrasings(world: World) -> dict[tuple[str, str, str], list[QA]]:
    """English held-out questions keyed by (category, subject, attribute)."""
    index: dict[tuple[str, str, str], list[QA]] = {}
    for qa in world.questions(split="paraphrase", lang="en"):
        index.setdefault((qa.category, qa.subject, qa.attribute), []).append(qa)
    return index


@ATTACKS.register("paraphrase")
def paraphrase(
    items: Sequence[Any],
    world: World | None = None,
    field: str = "paraphrased_question",
    rewrite: Callable[[str], str] | None = rule_based_paraphrase,
) -> list[AttackedPrompt]:
    """Paraphrased prompts for the forget items, in forget-set order (see the module docstring).

    With `rewrite=None`, an item with neither a held-out phrasing nor a `field` value is an error.
    """
    index = _held_out_phrasings(world) if world is not None else {}
    seen = {item_id(item, i) for i, item in enumerate(items)}
    prompts: list[AttackedPrompt] = []
    for i, item in enumerate(items):
        question, answer = question_answer(item, i)
        source = item_id(item, i)
        if isinstance(item, QA) and (item.category, item.subject, item.attribute) in index:
            prompts += world_prompts(index[(item.category, item.subject, item.attribute)], source, "paraphrase", seen)
            continue
        provided = item_field(item, field)
        if isinstance(provided, str) and provided.strip():
            reworded = provided.strip()
        elif rewrite is not None:
            reworded = rewrite(question)
        else:
            raise ValueError(f"forget item {source!r} has no {field!r} paraphrase and no rewrite function was given")
        prompts.append(AttackedPrompt(f"{source}/paraphrase", source, reworded, answer, "paraphrase"))
    return prompts
