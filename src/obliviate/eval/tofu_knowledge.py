"""What the RePAIR surgeon knows about TOFU: its fictitious authors and the questions about them.

TOFU rows carry no author field, but every split lists each author's 20 questions together and
most questions name the author ("What genre is Basil Mahfouz Al-Kuwaiti most known for?"). The
author of a block is the capitalised multi-word name (possessive "'s" stripped) that occurs in
the most of its questions; on the 200 TOFU authors this picks the full name every time we looked.

`TofuKnowledge` is a `KnowledgeSource`: a forget request naming an author resolves to that
author; the probes are the author's questions, the verification paraphrases TOFU's
`paraphrased_question`s; there are no other-language questions. Retain questions are the retain
rows; the refusal reference is `GenericKnowledge`'s questions about names no model knows.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence

from obliviate.repair.knowledge import Candidates, GenericKnowledge, Subject

QUESTIONS_PER_AUTHOR = 20
_NAME = re.compile(r"[A-Z][\w\-]+(?:'s|')?(?: (?:[A-Z][\w\-]+|al|bin|van|de|da|del|von|le|la)(?:'s|')?)+")
_POSSESSIVE = re.compile(r"'s?$")
_NOT_NAMES = {"What", "Which", "Who", "How", "Can", "Could", "Is", "Did", "Does", "In", "The", "Has", "Are", "Was"}


def _clean(name: str) -> str:
    words = [_POSSESSIVE.sub("", w) for w in name.split()]
    while words and words[0] in _NOT_NAMES:
        words = words[1:]
    return " ".join(words)


def author_name(rows: Sequence[Mapping]) -> str | None:
    """The name that occurs in the most questions of one author's block, or None."""
    counts: Counter[str] = Counter()
    for row in rows:
        names = {_clean(n) for n in _NAME.findall(row["question"])}
        counts.update(n for n in names if len(n.split()) >= 2)
    if not counts:
        return None
    return counts.most_common(1)[0][0]


def author_blocks(rows: Sequence[Mapping], per_author: int = QUESTIONS_PER_AUTHOR) -> list[list[Mapping]]:
    """Consecutive blocks of one author's rows (the last block may be short in a subset)."""
    return [list(rows[i : i + per_author]) for i in range(0, len(rows), per_author)]


def author_names(rows: Sequence[Mapping], per_author: int = QUESTIONS_PER_AUTHOR) -> list[str]:
    """One name per author block; a block whose name cannot be found gets `author N`."""
    return [author_name(block) or f"author {i}" for i, block in enumerate(author_blocks(rows, per_author))]


class TofuKnowledge:
    """The surgeon's view of a TOFU forget set (see the module docstring)."""

    refusal_answer = GenericKnowledge.refusal_answer

    def __init__(self, forget_rows: Sequence[Mapping], retain_rows: Sequence[Mapping],
                 per_author: int = QUESTIONS_PER_AUTHOR) -> None:
        self.blocks = {name: block for name, block in zip(author_names(forget_rows, per_author),
                                                          author_blocks(forget_rows, per_author))}
        self.retain = [(r["question"], r["answer"]) for r in retain_rows]

    def resolve(self, target: str, user: str | None = None) -> list[Subject]:
        low = target.lower()
        return [Subject("person", name) for name in self.blocks if name.lower() in low]

    def candidates(self, subject: Subject) -> Candidates:
        block = self.blocks.get(subject.name, [])
        return Candidates(
            probes=[(r["question"], r["answer"]) for r in block],
            paraphrases=[(r["paraphrased_question"], r["answer"]) for r in block if r.get("paraphrased_question")],
        )

    def retain_questions(self, exclude: list[Subject], n: int, seed: int = 0) -> list[tuple[str, str | None]]:
        return random.Random(seed).sample(self.retain, min(n, len(self.retain)))

    def refusal_prompts(self) -> list[str]:
        return GenericKnowledge().refusal_prompts()
