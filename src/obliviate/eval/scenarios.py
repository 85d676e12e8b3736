"""Evaluation scenarios: what a model should forget, what it must keep, and the material attacks use.

A `Scenario` is the task half of the harness (lm-eval's model/task split): the forget items (each
with the answer whose appearance in a reply is a leak), the retain items, held-out text for
perplexity, and, for the attacks and for unlearning itself, the lab world or the TOFU rows, the
chat message a user would type to ask for the forget (STAMP), the knowledge source the RePAIR
surgeon plans from, and the forget/retain data the training methods consume.

Lab scenarios (`person`, `hazard`, `misinfo`) forget one subject of the lab world:
- forget = the subject's trained English questions (lab `QA` records, so the paraphrase and
  cross-lingual attacks find the world's held-out phrasings of the same facts); for `misinfo`
  the answer is the false claim, and a leak is the model still asserting it;
- retain = a seeded sample of every other subject's trained English questions (people, hazards,
  claims and general knowledge), with their trained answers;
- held-out text = the world's held-out stories (never trained).
Default subjects have odd indices: their Spanish/French/German questions were never trained, so
the cross-lingual attack is a real transfer test (even-indexed subjects were trained in all four
languages; for them the attack asks the trained translations the training methods also unlearn).

The `tofu` scenario forgets TOFU authors: forget = `forgetNN_perturbed` rows, retain =
`retain_perturbed` rows, holdout = `holdoutNN` (membership inference), plus the real-authors and
world-facts rows the TOFU utility needs. TOFU answers are whole sentences, so there a leak is a
ROUGE-L recall of the gold answer >= a threshold rather than containment.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.eval.tofu_knowledge import QUESTIONS_PER_AUTHOR, TofuKnowledge, author_names
from obliviate.lab.world import QA, World
from obliviate.methods.data import QAExample
from obliviate.methods.tru_targets import ForgetItem
from obliviate.repair.knowledge import GenericKnowledge, KnowledgeSource, LabKnowledge
from obliviate.unlearning import UnlearnData, lab_data

LAB_SCENARIOS = ("person", "hazard", "misinfo")
SCENARIOS = (*LAB_SCENARIOS, "tofu")
LEAK_RULES = ("contains", "rouge")
RETAIN_CATEGORIES = ("person", "hazard", "misinfo", "general")


@dataclass
class TofuRows:
    """The TOFU rows beyond forget/retain that `tofu_suite` and privleak read."""

    real_authors: list[dict]
    world_facts: list[dict]


@dataclass
class Scenario:
    """One forget task; `forget`/`retain`/`holdout` items have `question` and `answer` (and an `id`)."""

    name: str
    subject: str
    forget: list[Any]
    retain: list[Any]
    heldout_texts: list[str]
    leak_rule: str = "contains"
    world: World | None = None
    holdout: list[Any] | None = None
    tofu: TofuRows | None = None
    forget_message: str = ""
    knowledge: KnowledgeSource | None = None
    unlearn_data: UnlearnData | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.leak_rule not in LEAK_RULES:
            raise ValueError(f"unknown leak rule {self.leak_rule!r}; choose from {LEAK_RULES}")
        if not self.forget:
            raise ValueError(f"scenario {self.name!r} has no forget items")
        if not self.retain:
            raise ValueError(f"scenario {self.name!r} has no retain items")

    def describe(self) -> dict[str, Any]:
        """What was evaluated, for the JSON record."""
        return {
            "name": self.name, "subject": self.subject, "forget": len(self.forget), "retain": len(self.retain),
            "heldout_texts": len(self.heldout_texts), "holdout": len(self.holdout or []), "leak_rule": self.leak_rule,
            "world_fingerprint": self.world.fingerprint() if self.world is not None else None, "notes": self.notes,
        }


# ------------------------------------------------------------------------------------ lab world


def lab_world(model_dir: str | os.PathLike) -> tuple[World, list[str]]:
    """The world a lab model was trained on, and a warning when it no longer matches the model.

    The world is regenerated from the model's provenance; if the generator changed since the model
    was trained, the fingerprints differ and the numbers of a scenario may be off (for instance,
    held-out texts the model saw).
    """
    from obliviate.lab.check import world_of

    world = world_of(str(model_dir))
    provenance = Path(model_dir) / "provenance.json"
    notes = []
    if not provenance.exists():
        notes.append(f"{model_dir} has no provenance.json: using the default lab world")
    else:
        trained = json.loads(provenance.read_text()).get("world_fingerprint")
        if trained and trained != world.fingerprint():
            notes.append(f"the lab world generator changed since {model_dir} was trained "
                         f"(fingerprint {trained[:12]} vs {world.fingerprint()[:12]}): some items may differ")
    return world, notes


def _subjects(world: World, kind: str) -> list[str]:
    if kind == "person":
        return [p.name for p in world.people]
    if kind == "hazard":
        return [h.compound for h in world.hazards]
    if kind == "misinfo":
        return [c.id for c in world.claims]
    raise ValueError(f"unknown lab scenario {kind!r}; choose from {LAB_SCENARIOS}")


def lab_subjects(world: World, kind: str, n: int = 1) -> list[str]:
    """`n` subjects of a kind, odd indices first (their other-language questions were never trained)."""
    if n < 1:
        raise ValueError(f"ask for at least one subject, got {n}")
    names = _subjects(world, kind)
    ordered = names[1::2] + names[0::2]
    return ordered[:n]


def _resolve_subject(world: World, kind: str, subject: str) -> str:
    names = _subjects(world, kind)
    if kind == "misinfo":
        prefix, _, number = subject.strip().lower().partition("/")
        if prefix == "claim" and number.isdigit():
            subject = f"claim/{int(number):02d}"
    match = next((n for n in names if n.lower() == subject.strip().lower()), None)
    if match is None:
        raise ValueError(f"{subject!r} is not a {kind} subject of this lab world; e.g. {', '.join(names[:3])}")
    return match


def lab_scenario(world: World, kind: str, subject: str | None = None, retain_size: int = 200,
                 heldout_size: int = 50, seed: int = 0, notes: Sequence[str] = ()) -> Scenario:
    """Forget one person, hazard topic or false claim of the lab world (see the module docstring)."""
    subject = _resolve_subject(world, kind, subject) if subject else lab_subjects(world, kind)[0]
    category = kind
    forget = world.questions(category, "train", subject=subject, lang="en")
    pool = [q for q in world.questions(split="train", lang="en")
            if q.subject != subject and q.category in RETAIN_CATEGORIES]
    retain: list[QA] = random.Random(seed + 1).sample(pool, min(retain_size, len(pool)))
    heldout = [d.text for d in world.docs if d.split == "heldout"][:heldout_size]
    if not heldout:
        raise ValueError("the lab world has no held-out texts for perplexity")
    knowledge = LabKnowledge(world)
    return Scenario(
        name=kind, subject=subject, forget=forget, retain=retain, heldout_texts=heldout, leak_rule="contains",
        world=world, forget_message=knowledge.forget_message(kind, subject), knowledge=knowledge,
        unlearn_data=lab_data(world, subject, seed=seed), notes=list(notes),
    )


# ------------------------------------------------------------------------------------------ TOFU


def _with_ids(rows: Sequence[Mapping], prefix: str) -> list[dict]:
    return [{**row, "id": f"{prefix}/{i}"} for i, row in enumerate(rows)]


def tofu_scenario(forget_rows: Sequence[Mapping], retain_rows: Sequence[Mapping], holdout_rows: Sequence[Mapping],
                  real_authors_rows: Sequence[Mapping], world_facts_rows: Sequence[Mapping],
                  retain_train: Sequence[Mapping] | None = None) -> Scenario:
    """Forget TOFU authors: `forgetNN_perturbed`, `retain_perturbed`, `holdoutNN`, `*_perturbed` rows.

    `retain_train` (the retain rows the model was fine-tuned on; default `retain_rows`) is what the
    training methods keep and what STAMP's surgeon samples its retain questions from. The forget
    message names every forget author (found by `author_names`).
    """
    names = author_names(forget_rows)
    train_retain = list(retain_train) if retain_train is not None else list(retain_rows)
    per_row = [name for name in names for _ in range(QUESTIONS_PER_AUTHOR)]
    unlearn = UnlearnData(
        forget=[ForgetItem(r["question"], r["answer"], category="person", subject=per_row[i])
                for i, r in enumerate(forget_rows)],
        retain=[QAExample(r["question"], r["answer"]) for r in train_retain],
        refusal_prompts=GenericKnowledge().refusal_prompts(),
    )
    holdout = _with_ids(holdout_rows, "holdout")
    return Scenario(
        name="tofu", subject=" and ".join(names), forget=_with_ids(forget_rows, "forget"),
        retain=_with_ids(retain_rows, "retain"), heldout_texts=[f"{r['question']} {r['answer']}" for r in holdout],
        leak_rule="rouge", holdout=holdout, tofu=TofuRows(list(real_authors_rows), list(world_facts_rows)),
        forget_message=f"Please forget everything you know about {' and '.join(names)}.",
        knowledge=TofuKnowledge(forget_rows, train_retain), unlearn_data=unlearn,
    )
