"""The surgeon: turn a forget intent into a validated, JSON-serialisable repair plan.

It resolves what the user's words refer to, probes the patient model for the questions it
actually answers about the target (those are the edit's forget probes), sets aside held-out
paraphrases and other-language questions for verification, and samples a small retain buffer.
Over-broad or empty requests are refused, and a target the model knows nothing about is
reported instead of edited.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import ask_expecting
from obliviate.eval.metrics.refusal import is_refusal
from obliviate.repair.knowledge import FIRST_PERSON, Candidates, KnowledgeSource, Subject, name_list
from obliviate.repair.watchdog import ForgetIntent

SOLVERS = ("exact", "ridge", "lowrank")

# Requests that would destroy the model rather than remove a piece of knowledge.
_TOO_BROAD = re.compile(
    r"^(everything|anything|all|it all|all of it|everyone|everybody|all people|all your knowledge|"
    r"english|spanish|french|german|language|languages|how to speak|how to talk|how to write|math|maths|"
    r"todo|toda|todos|tout|tous|alles|everything you know|all you know|the world|people|facts)$",
    re.I,
)


class PlanError(ValueError):
    """The request cannot become a safe repair plan; the message says why, for the user."""


@dataclass
class RepairPlan:
    """What to forget and how: everything the patient needs, and nothing it has to guess."""

    target: str
    subjects: list[dict]
    probes: list[str]
    paraphrases: list[str]
    crosslingual: list[str]
    retain: list[str]
    answers_before: dict[str, str]
    layers: list[int] | None
    rank: int
    solver: str
    refusal_answer: str
    notes: list[str] = field(default_factory=list)
    held_out_before: dict[str, str] = field(default_factory=dict)  # the model's answers to paraphrases and
    # other-language questions before the edit: which of them it answered from what it knows of the target

    def validate(self) -> RepairPlan:
        if not self.target.strip():
            raise PlanError("the plan has no target")
        if not self.probes:
            raise PlanError("the plan has no forget probes")
        if self.solver not in SOLVERS:
            raise PlanError(f"unknown solver {self.solver!r}; choose from {SOLVERS}")
        if self.rank < 1:
            raise PlanError(f"rank must be >= 1, got {self.rank}")
        if self.layers is not None and (not self.layers or any(not isinstance(i, int) for i in self.layers)):
            raise PlanError(f"layers must be a non-empty list of integers or null, got {self.layers!r}")
        if set(self.probes) & set(self.retain):
            raise PlanError("a question cannot be both forgotten and retained")
        if not self.refusal_answer.strip():
            raise PlanError("the plan needs a refusal answer")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> RepairPlan:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise PlanError(f"unknown plan fields: {sorted(unknown)}")
        missing = known - {"notes", "held_out_before"} - set(data)
        if missing:
            raise PlanError(f"missing plan fields: {sorted(missing)}")
        return cls(**data).validate()

    @classmethod
    def load(cls, path: str | Path) -> RepairPlan:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class Surgeon:
    """Plans repairs for one patient model using one knowledge source."""

    knowledge: KnowledgeSource
    layers: list[int] | None = None
    rank: int = 64
    solver: str = "ridge"
    retain_size: int = 96
    max_probes: int = 96
    # when the knowledge brings no paraphrases, this many of the probes (evenly spaced; only out of at
    # least 4x as many) are kept out of the edit and verified on as held-out questions, so that an
    # edit which does not generalise is escalated. Lab model with the world's paraphrases hidden
    # (`benchmarks/repair.py --blind`, 8 people): their unseen paraphrases refused 0.973 against
    # 0.955 (leaked 0 against 0.018), other languages 0.991 against 0.976, at -0.5 retain points
    # against 0. Out of the generic knowledge's 19 person probes (4 kept out, beside its own
    # paraphrases) it cost: 0.977 / 0.929 / 0.929 refused against 0.990 / 0.946 / 0.970
    holdout_probes: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.holdout_probes, int) and self.holdout_probes >= 0):
            raise ValueError(f"holdout_probes must be an integer >= 0, got {self.holdout_probes!r}")

    def check_scope(self, target: str) -> str:
        """The target without a leading "about" and edge punctuation (its commas kept: they separate
        the names of a list), or PlanError when it names nothing or something too broad."""
        named = re.sub(r"^(about|sobre|sur|über|de|of)[\s,:]+", "", target.strip(" \t\n.!?¿¡,;:"), flags=re.I)
        words = re.sub(r"[\s.!?¿¡,;:]+", " ", named).strip()
        if not words:
            raise PlanError("there is nothing to forget: the request names no target")
        if _TOO_BROAD.match(words) or len(words) < 2:
            raise PlanError(
                f"'{target}' is too broad to forget: it would erase general abilities, not one piece of "
                "knowledge. Name a person, a topic or a claim."
            )
        return named

    def plan(self, intent: ForgetIntent | str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
             user: str | None = None, seed: int = 0) -> RepairPlan:
        """One plan for everything the request names (one edit); with several subjects each gets
        an equal share of `max_probes`, so none is left out of the edit."""
        target, subjects = self._subjects(intent, user)
        found = [self.knowledge.candidates(s) for s in subjects]
        return self._plan(target, subjects, found, _answers(found, model, tokenizer), seed)

    def plans(self, intent: ForgetIntent | str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
              user: str | None = None, seed: int = 0) -> list[RepairPlan]:
        """One plan per person, hazard topic or named thing the request names (the claims one
        request matches stay together), for the patient to apply one after another: on the lab
        model ten people forgotten one edit each cost ~1 retain point, in one joint edit ~4 (and
        that edit did not verify). A subject the model knows nothing about is left out with a
        note; the request is refused only when that is true of all of them. The model is asked
        about every subject in one pass."""
        target, subjects = self._subjects(intent, user)
        found = [self.knowledge.candidates(s) for s in subjects]
        answers = _answers(found, model, tokenizer)
        groups = [[i] for i, s in enumerate(subjects) if s.kind != "misinfo"]
        claims = [i for i, s in enumerate(subjects) if s.kind == "misinfo"]
        groups += [claims] if claims else []
        unnamed = _unresolved_names(target, subjects)
        if len(groups) == 1 and not unnamed:
            return [self._plan(target, subjects, found, answers, seed)]
        plans, left_out = [], [f"I don't know anything about '{name}'" for name in unnamed]
        for group in groups:
            label = target if group is claims else subjects[group[0]].name
            try:
                plans.append(self._plan(label, [subjects[i] for i in group], [found[i] for i in group], answers, seed))
            except PlanError as err:
                left_out.append(str(err))
        if not plans:
            raise PlanError("; ".join(left_out))
        plans[0].notes += [f"left out: {reason}" for reason in left_out]
        return plans

    def _subjects(self, intent: ForgetIntent | str, user: str | None) -> tuple[str, list[Subject]]:
        target = self.check_scope(intent.target if isinstance(intent, ForgetIntent) else intent)
        subjects = self.knowledge.resolve(target, user)
        if not subjects and user is None and FIRST_PERSON.search(target):
            raise PlanError(f"'{target}' is about you, and I don't know who you are: name the person, or set the "
                            "session's user (obliviate forget/chat --user NAME).")
        if not subjects:
            raise PlanError(f"I don't know anything about '{target}', so there is nothing to forget.")
        return target, subjects

    def _plan(self, target: str, subjects: list[Subject], found: list[Candidates], answers: dict[str, str],
              seed: int) -> RepairPlan:
        """The plan for `subjects` from their candidates and the model's `answers` to them."""
        paraphrases = [qa for f in found for qa in f.paraphrases]
        crosslingual = [qa for f in found for qa in f.crosslingual]
        gold = dict(qa for f in found for qa in f.probes)
        known_of = [[(q, answers[q]) for q in dict(f.probes) if answers[q].strip() and not is_refusal(answers[q])]
                    for f in found]
        notes = []
        if not any(known_of):
            raise PlanError(
                f"the model knows nothing about '{target}': it already declines all {len(gold)} questions "
                "about it, so there is nothing to forget."
            )
        n_known = sum(map(len, known_of))
        if n_known < len(gold):
            notes.append(f"{len(gold) - n_known} of {len(gold)} candidate questions were already refused")
        share = max(1, self.max_probes // len(subjects))
        known = list(dict(qa for subject_known in known_of for qa in subject_known[:share]).items())
        edit_set = {q for q, _ in known}  # what the model answers about the target: retained nowhere
        kept_out = []
        if not paraphrases and self.holdout_probes and len(known) >= 4 * self.holdout_probes:
            step = len(known) // self.holdout_probes
            kept_out = known[step // 2 :: step][: self.holdout_probes]
            known = [qa for qa in known if qa not in kept_out]
            notes.append(f"{len(kept_out)} of the questions the model answers are kept out of the edit to verify "
                         "that it reaches wordings it was not made on (the knowledge has no paraphrases)")
        retain = [q for q, _ in self.knowledge.retain_questions(subjects, self.retain_size, seed) if q not in edit_set]
        held_out_qs = {name: [q for q in dict.fromkeys(q for q, _ in pairs) if q not in edit_set]
                       for name, pairs in (("paraphrases", paraphrases), ("crosslingual", crosslingual))}
        held_out_qs["paraphrases"] += [q for q, _ in kept_out]
        return RepairPlan(
            target=target,
            subjects=[{**asdict(s), "attributes": list(s.attributes)} for s in subjects],
            probes=[q for q, _ in known],
            paraphrases=held_out_qs["paraphrases"],
            crosslingual=held_out_qs["crosslingual"],
            retain=retain,
            answers_before=dict(known),
            layers=self.layers,
            rank=self.rank,
            solver=self.solver,
            refusal_answer=self.knowledge.refusal_answer,
            notes=notes,
            held_out_before={q: answers[q] for qs in held_out_qs.values() for q in qs},
        ).validate()


def _unresolved_names(target: str, subjects: list[Subject]) -> list[str]:
    """The names of a list in `target` ("A, B and C") that no resolved subject answers to (its
    name, within it or the other way round, or its surname): they are left out of the repair, and
    the user should hear so."""
    names = name_list(target)

    def resolved(name: str) -> bool:
        low = name.lower()
        return any(s.name.lower() in low or low in s.name.lower() or s.name.lower().split()[-1] == low.split()[-1]
                   for s in subjects)

    return [name for name in names if not resolved(name)] if len(names) > 1 else []


def _answers(found: list[Candidates], model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> dict[str, str]:
    """The model's answers to every probe and held-out question of `found`, in one pass (the held-out
    ones for a plan's `held_out_before`)."""
    asked = dict(qa for f in found for qa in f.probes)
    asked.update((q, a) for f in found for q, a in f.paraphrases + f.crosslingual if q not in asked)
    return dict(zip(asked, ask_expecting(model, tokenizer, list(asked), list(asked.values()), max_new_tokens=12)))


def subjects_of(plan: RepairPlan) -> list[Subject]:
    return [Subject(s["kind"], s["name"], tuple(s["attributes"])) for s in plan.subjects]
