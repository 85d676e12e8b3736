"""The patient: apply a repair plan with STAMP, verify it, escalate if needed, and keep a receipt.

Verification re-asks the forget probes, the held-out paraphrases and the other-language
questions, checks that answers are refusals (for a false claim: no longer asserting it) and not
gibberish, and measures how many retain answers changed. When verification fails, the edit is
undone and retried: with a stronger hold on the retain buffer when only retain answers moved;
otherwise on more layers or with a looser hold, then with v* targets fitted on every probe (an
attempt that fits v* on the same probes as the last starts from its shifts); the best attempt
is kept and recorded in the edit ledger. The patient remembers the keys of every edit in force so that
later edits hold them (undo releases them), and holds a retain buffer of questions with their
answers (the knowledge's, else the model's own), read at every answer token, so that other
answers neither start nor end in a refusal.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import answers_changed, ask, ask_expecting, chat_prompt, greedy_check
from obliviate.eval.metrics.gibberish import is_gibberish
from obliviate.eval.metrics.refusal import is_refusal
from obliviate.hooks import get_module, num_layers
from obliviate.jsonl_cache import JsonlCache
from obliviate.methods.stamp import (
    StampContext,
    StampEdit,
    StampHyperParams,
    StampRequest,
    add_delta,
    restore_weights,
    stamp_edit,
)
from obliviate.methods.stamp_cache import StampCache
from obliviate.repair.knowledge import KnowledgeSource
from obliviate.repair.ledger import EditLedger
from obliviate.repair.surgeon import RepairPlan

log = logging.getLogger(__name__)


@dataclass
class Verification:
    """How well an edit holds: refusal rates per question set, gibberish, retain drift.

    The held-out rates count the paraphrases and other-language questions the model answered,
    before the edit or after it, with something it said about the target (one of the probes'
    answers before the edit), and those it answered with nothing but a refusal. A held-out
    question the model answered before, and still answers, with none of that (on the lab model
    "How does Zalcite get dispersed?" -> "Tamber Foundry", an employer) was never knowledge of the
    target: it is counted in `off_target`, and an edit is not escalated for it."""

    probe_refusal: float
    paraphrase_refusal: float | None
    crosslingual_refusal: float | None
    gibberish_rate: float
    retain_changed: float
    off_target: int = 0  # held-out questions left out of the rates: answered from nothing known of the target
    answers: dict[str, str] = field(default_factory=dict)
    retain_answers: dict[str, str] = field(default_factory=dict)

    def forgotten(self, min_refusal: float) -> bool:
        """The forget side passes (whatever the retain answers did)."""
        return not self.shortfalls(min_refusal, max_retain_changed=float("inf"))

    def passes(self, min_refusal: float, max_retain_changed: float) -> bool:
        return not self.shortfalls(min_refusal, max_retain_changed)

    def shortfalls(self, min_refusal: float, max_retain_changed: float) -> list[str]:
        """What keeps the edit from passing, in words for the user (empty when it passes)."""
        found = [f"{name} refused {rate:.0%}, below {min_refusal:.0%}" for name, rate in (
            ("probes", self.probe_refusal), ("paraphrases", self.paraphrase_refusal),
            ("other-language questions", self.crosslingual_refusal)) if rate is not None and rate < min_refusal]
        if self.gibberish_rate:
            found.append(f"{self.gibberish_rate:.0%} of the forget answers are gibberish")
        if self.retain_changed > max_retain_changed:
            found.append(f"{self.retain_changed:.1%} of the retain answers changed, above {max_retain_changed:.0%}")
        return found

    def score(self) -> float:
        rates = [r for r in (self.probe_refusal, self.paraphrase_refusal, self.crosslingual_refusal) if r is not None]
        return sum(rates) / len(rates) - self.retain_changed - self.gibberish_rate


@dataclass
class Receipt:
    """What the patient did, for the user and for the ledger."""

    target: str
    verified: bool
    layers: list[int]
    parameters: list[str]
    probes: int
    attempts: int
    verification: dict
    delta_ratio: float
    timings_ms: dict[str, float]
    edit_id: int | None = None
    notes: list[str] = field(default_factory=list)
    shortfalls: list[str] = field(default_factory=list)  # why it is not verified (`Verification.shortfalls`)
    # share of the drift questions (`Patient.drift_checks`) answered otherwise than before the
    # session's first edit: the damage of every edit in force, which each edit's own check misses
    retain_changed_since_start: float | None = None
    # mean rise, in nats, of the log-probability that a drift question's answer starts as the
    # refusal does (its first token), since the session's first edit: the pull toward refusing
    # unrelated questions, which every edit adds to long before an answer flips (lab model,
    # sequential people: +1.4 / +3.4 / +8.7 after 10 / 30 / 100 edits, while the drift answers
    # read 0 / 0 / 25% changed)
    refusal_pressure_since_start: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _EditMemory:
    """What the patient keeps of an edit in force: its keys per layer (later solves hold them),
    the retain answers of the weights before it (true again once it is undone), and what it is
    about (its forget questions and subject names: no drift when those answers change)."""

    keys: dict[int, Tensor]
    answers_before: dict[str, str]
    about: frozenset[str]


def _compact(keys: Tensor, param_name: str, model: PreTrainedModel) -> Tensor:
    """Keys as the ledger keeps them: in the edited weight's dtype when that loses nothing (they
    were read from activations of that dtype), else in float64."""
    narrow = keys.to(model.get_parameter(param_name).dtype)
    return narrow if torch.equal(narrow.to(keys.dtype), keys) else keys


def _looser(hp: StampHyperParams) -> StampHyperParams:
    """The looser hold of the ridge solver: `lam` / 10 and `retain_weight` / 4."""
    return replace(hp, lam=hp.lam / 10, retain_weight=hp.retain_weight / 4)


def _rate(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


@dataclass
class Patient:
    """A model that can be repaired in place, with its edit ledger."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    knowledge: KnowledgeSource
    hparams: StampHyperParams = field(default_factory=StampHyperParams)
    ledger: EditLedger | None = None
    min_refusal: float = 0.95
    max_retain_changed: float = 0.05
    max_attempts: int = 3
    covariance_texts: list[str] | None = None
    answer_tokens: int = 12  # verification reads this many tokens of each answer (a refusal shows in 3)
    probe_checks: int = 32  # forget probes re-asked (evenly spaced); all paraphrases and other languages are
    retain_checks: int = 64  # retain questions re-asked to measure drift
    retain_prompts: int = 1024  # retain-buffer questions whose outputs every edit holds (~3% of the lab questions)
    drift_checks: int = 16  # questions outside the buffer asked before the first edit and after each (0: off; ~1.5 ms each)
    stats_dir: str | Path | None = None  # keep STAMP's reference statistics on disk here (None: memory only)
    remember_edits: bool = True  # hold earlier edits' keys in later solves (StampContext.prior_moments)
    # kinds of target whose first attempt already takes the looser hold (`_looser`): on the lab model
    # 6 of 8 hazard commands escalated to it (first attempts refused as few as 67% of the probes), 3 of 8 people
    loose_kinds: tuple[str, ...] = ("hazard",)
    # while earlier edits are in force, the retain buffer's prompt keys are held this many times
    # over (`retain_prompt_boost`; not for `loose_kinds`): the drift of many edits builds up where
    # other subjects' questions end. 100 sequential people on the lab model: retain -2.7 / -24.3 /
    # -49.8 after 10 / 50 / 100 against -4.7 / -36.3 / -62.5 (1.6 s a command against 1.2); a first
    # edit held so hard escalated every command (median 1.46 s against 0.9 s)
    retain_prompt_boost_after_edits: float = 5.0
    # and the hold's this many strongest directions are held stiffly (`protected_rank`, AlphaEdit's
    # null space made soft): 100 sequential people -34.3 retain points against -51.0 (earlier targets
    # refused 0.984 against 1.0; 256: -34.0, 0.958); 1.8 s a command against 1.7 (an eigh per hold)
    protected_rank_after_edits: int = 128
    # and the retain buffer grows to this many questions (the first buffer and more; ~7% of the lab
    # questions): 100 sequential people -23.7 retain points against -34.3 to -37.2 (4,000: -21.8 but
    # earlier targets refused 0.95 against 0.97); held from the first edit on, single person commands
    # refused paraphrases less (0.946 against 0.982) in 2.3 s. Its statistics are read when first
    # needed, with the edits in force taken off, as every statistic (`_statistics_cache`)
    retain_prompts_after_edits: int = 3000
    # the lowest layer an escalation widens to while no edit is in force (the first attempt's layers
    # are selected from STAMP's `min_layer` up; with edits in force escalations stop there too). Lab
    # model: a first attempt on layer 0 came out 4-5x the weight norm, but as a failing command's
    # second (layers 0-3 against 1-3) it verified 19 of 20 commands against 17 (8 people, 8 hazards,
    # 4 claims), the hazards' paraphrases refused 0.906 against 0.812 (no leak left against 0.031),
    # people 0.997 / 0.991 / 0.994 against 0.992 / 0.991 / 0.988, at 0.1-0.2 more retain points. In a
    # sequence it piled up: 100 people -19.8 / -37.0 after 50 / 100 against -9.2 / -21.0
    escalation_min_layer: int = 0
    _contexts: dict[tuple[str, bool], StampContext] = field(default_factory=dict, repr=False)
    _cache: StampCache | None = field(default=None, repr=False)  # one for every context: statistics by content
    _edits: dict[int, _EditMemory] = field(default_factory=dict, repr=False)  # the edits in force, oldest first
    _moments: dict[int, Tensor] = field(default_factory=dict, repr=False)  # layer -> sum of K K^T over _edits
    _answers: dict[str, str] = field(default_factory=dict, repr=False)  # retain answers of the current weights
    _baseline: dict[str, str] | None = field(default=None, repr=False)  # drift questions' answers before any edit
    # the refusal's first token and, per drift question, the log-probability that its answer
    # started with it before any edit
    _baseline_pressure: tuple[int, dict[str, float]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.retain_prompt_boost_after_edits >= 0:
            raise ValueError(f"retain_prompt_boost_after_edits must be >= 0, got {self.retain_prompt_boost_after_edits}")
        for name in ("protected_rank_after_edits", "retain_prompts_after_edits", "escalation_min_layer"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")

    def context(self, refusal_answer: str, after_edits: bool = False) -> StampContext:
        """Refusal reference and retain statistics, built once per buffer and reused by every edit
        (`after_edits`: the larger buffer held while earlier edits are in force)."""
        if (refusal_answer, after_edits) not in self._contexts:
            self._cache = self._cache or self._statistics_cache()
            refusal = [chat_prompt(self.tokenizer, q) for q in self.knowledge.refusal_prompts()]
            pairs = self.buffer(after_edits)
            own = self._unedited_answers([q for q, a in pairs if a is None])  # answers the knowledge lacks
            self._contexts[refusal_answer, after_edits] = StampContext(
                refusal_prompts=refusal, retain_prompts=[chat_prompt(self.tokenizer, q) for q, _ in pairs],
                retain_answers=[a if a is not None else own[q] for q, a in pairs], cache=self._cache,
                covariance_texts=self.covariance_texts, refusal_answer=refusal_answer)
        return self._contexts[refusal_answer, after_edits]

    def _statistics_cache(self) -> StampCache:
        """STAMP's statistics, all of the unedited model (read with the edits in force taken off)
        and named by its fingerprint: one set per base model, however many edited states."""
        cache = StampCache(self.stats_dir, unedited=self._unedited if self.ledger is not None else None)
        if self.ledger is not None and self.ledger.base_fingerprint is not None:
            cache.name_model(self.model, self.ledger.base_fingerprint)
        return cache

    def _unedited_answers(self, questions: list[str]) -> dict[str, str]:
        """The model's own answers to retain questions, which edits hold it to: those of the model
        before any edit (asked with the edits in force taken off for the while), kept in
        `stats_dir` under the unedited model's fingerprint, since a large model on a CPU takes
        minutes over the 2,100 of the generic knowledge's neighbours."""
        base = self.ledger.base_fingerprint if self.ledger is not None else None
        kept = (JsonlCache(Path(self.stats_dir) / f"answers-{base}-{self.answer_tokens}.jsonl",
                           lambda entry: entry["answer"], "answer cache") if base and self.stats_dir else None)
        missing = [q for q in dict.fromkeys(questions) if kept is None or q not in kept]
        asked: dict[str, str] = {}
        if missing:
            log.info("the model answers %d questions of the retain buffer: their answers are what edits hold",
                     len(missing))
            with self._unedited():
                asked = dict(zip(missing, ask(self.model, self.tokenizer, missing, max_new_tokens=self.answer_tokens)))
            if kept is not None:
                try:
                    kept.put_many([(q, a, {"answer": a}) for q, a in asked.items()])
                except OSError as error:  # the copy on disk only saves the next session the asking
                    log.warning("the retain answers are not kept (%s): the next session asks again", error)
        return {q: asked[q] if q in asked else kept[q] for q in questions}

    def _unedited(self) -> contextlib.AbstractContextManager:
        """The model without the edits in force for the length of a `with` block (`EditLedger.base_weights`)."""
        return self.ledger.base_weights(self.model) if self.ledger is not None else contextlib.nullcontext()

    def buffer(self, after_edits: bool = False) -> list[tuple[str, str | None]]:
        """The retain buffer's (question, answer) pairs; the larger one, held while earlier edits
        are in force, is the first and more."""
        pairs = self.knowledge.retain_questions([], self.retain_prompts, seed=1)
        size = max(self.retain_prompts, self.retain_prompts_after_edits) if after_edits else len(pairs)
        seen = {q for q, _ in pairs}
        more = [p for p in self.knowledge.retain_questions([], size, seed=1) if p[0] not in seen] if size > len(pairs) else []
        return pairs + more[: size - len(pairs)]

    def prior_moments(self) -> dict[int, Tensor]:
        """Per layer, the summed key second moments of the edits in force (kept as a running sum:
        one d x d matrix per edited layer, whatever the number of edits)."""
        return dict(self._moments)

    def _remember(self, edit_id: int, keys: dict[int, Tensor], answers_before: dict[str, str], about: frozenset[str]) -> None:
        self._edits[edit_id] = _EditMemory(keys, answers_before, about)
        for layer, K in keys.items():
            gram = K @ K.T
            self._moments[layer] = self._moments[layer] + gram if layer in self._moments else gram

    def resume(self) -> list[int]:
        """Take up the edits in force in the ledger (a saved model's, or one reopened): later edits
        hold their keys as if this session had made them, and they count as edits in force. Returns
        the ids of those recorded without keys (by other code): nothing holds them."""
        if self._edits:
            raise ValueError("resume() takes up a ledger's edits before this patient makes any")
        unheld = []
        for record in self.ledger.entries() if self.ledger is not None else []:
            keys = {int(name.removeprefix("keys/")): K.to(torch.float64)
                    for name, K in self.ledger.extra_tensors(record).items() if name.startswith("keys/")}
            if not keys:
                unheld.append(record.edit_id)
            self._remember(record.edit_id, keys, {}, frozenset(record.extra.get("about", ())))
        return unheld

    def forget_edits(self, edit_ids: Sequence[int]) -> None:
        """Drop undone edits from the memory later solves respect (and from the retain answers known)."""
        # Undoing the latest edits restores the weights bitwise from before the first of them, and
        # so the retain answers asked then; any other undo leaves no known answers.
        latest = list(self._edits)[-len(edit_ids):] if edit_ids else []
        self._answers = dict(self._edits[latest[0]].answers_before) if latest and set(latest) == set(edit_ids) else {}
        for edit_id in edit_ids:
            memory = self._edits.pop(edit_id, None)
            for layer, K in (memory.keys if memory else {}).items():
                if any(layer in other.keys for other in self._edits.values()):
                    self._moments[layer] = self._moments[layer] - K @ K.T
                else:  # no edit in force touches this layer any more: drop the sum, rounding and all
                    del self._moments[layer]

    def _take_baseline(self, refusal_answer: str) -> None:
        """Ask the drift questions once, before the session's first edit: retain-style questions
        that are in neither retain buffer (the edits hold those by construction). A knowledge
        source whose retain questions all fit in the buffer names others (`drift_questions`)."""
        held = {chat_prompt(self.tokenizer, q) for q, _ in self.buffer(after_edits=True)}
        n = self.drift_checks + len(held)
        named = getattr(self.knowledge, "drift_questions", None)  # a source may name them; else another sample
        pool = named(n) if named else [q for q, _ in self.knowledge.retain_questions([], n, seed=2)]
        questions = [q for q in pool if chat_prompt(self.tokenizer, q) not in held][: self.drift_checks]
        self._baseline = dict(zip(questions, ask(self.model, self.tokenizer, questions, max_new_tokens=self.answer_tokens)))
        refusal_ids = self.tokenizer(refusal_answer, add_special_tokens=False)["input_ids"]
        if questions and refusal_ids:  # the opening depends on the prompt alone: one pass reads every question's
            _, opening = greedy_check(self.model, self.tokenizer, [chat_prompt(self.tokenizer, q) for q in questions],
                                      list(self._baseline.values()))
            self._baseline_pressure = (refusal_ids[0], dict(zip(questions, opening[:, refusal_ids[0]].tolist())))

    def drift_since_start(self, about: frozenset[str] = frozenset()) -> tuple[float | None, float | None]:
        """Since the first edit: the share of the drift questions now answered otherwise, and the
        mean rise of the log-probability that their answers start as the refusal does (None where
        no drift question could be read so). Both leave out the questions about a target of an edit
        in force (or `about`): those holding one of its forget questions or subject names."""
        if not self._baseline:
            return None, None
        targets = [t.lower() for t in about.union(*(e.about for e in self._edits.values()))]
        questions = [q for q in self._baseline if not any(t in q.lower() for t in targets)]
        watch, opening_before = self._baseline_pressure or (None, {})
        changed, opening = answers_changed(self.model, self.tokenizer, questions, [self._baseline[q] for q in questions],
                                           max_new_tokens=self.answer_tokens, watch=watch)
        rises = [now - opening_before[q] for q, now in zip(questions, opening) if now is not None]
        return _rate(changed), round(sum(rises) / len(rises), 4) if rises else None

    def verify(self, plan: RepairPlan, retain_before: dict[str, str], misinfo: set[str]) -> Verification:
        probes = plan.probes[:: max(1, -(-len(plan.probes) // self.probe_checks))]
        forget_qs = probes + plan.paraphrases + plan.crosslingual
        questions = forget_qs + list(retain_before)
        # expected: the refusal for forget questions, the unchanged answer for retain ones (only the rest is decoded)
        expected = [plan.refusal_answer] * len(forget_qs) + list(retain_before.values())
        answers = dict(zip(questions, ask_expecting(self.model, self.tokenizer, questions, expected,
                                                    max_new_tokens=self.answer_tokens)))

        # What the model said about the target before the edit: its answers to the probes.
        facts = {a.strip().lower() for a in plan.answers_before.values() if a.strip() and not is_refusal(a)}

        def forgotten(q: str) -> bool:
            """Refused; for a false claim, also no longer asserted: a probe's own claim, for a
            held-out question any the probes asserted (its own earlier answer need not state one)."""
            a = answers[q]
            if is_refusal(a):
                return True
            if not misinfo:
                return False
            asserted = plan.answers_before.get(q)
            claims = {asserted.strip().lower()} if asserted else facts
            return bool(claims) and not any(c in a.lower() for c in claims)

        def on_target(q: str) -> bool:
            before = plan.held_out_before.get(q)
            if before is None or is_refusal(before) or is_refusal(answers[q]):
                return True
            return any(f in before.lower() or f in answers[q].lower() for f in facts)

        held_out = {name: [q for q in qs if on_target(q)] for name, qs in
                    (("paraphrases", plan.paraphrases), ("crosslingual", plan.crosslingual))}
        return Verification(
            probe_refusal=_rate([forgotten(q) for q in probes]),
            paraphrase_refusal=_rate([forgotten(q) for q in held_out["paraphrases"]]),
            crosslingual_refusal=_rate([forgotten(q) for q in held_out["crosslingual"]]),
            gibberish_rate=_rate([is_gibberish(answers[q]) for q in forget_qs]) or 0.0,
            retain_changed=_rate([answers[q] != a for q, a in retain_before.items()]) or 0.0,
            off_target=len(plan.paraphrases) + len(plan.crosslingual) - sum(map(len, held_out.values())),
            answers={q: answers[q] for q in forget_qs},
            retain_answers={q: answers[q] for q in retain_before},
        )

    def _layer_schedule(self, first: list[int], edits_in_force: bool = False) -> list[list[int]]:
        """Wider and wider layer sets around the first attempt's, down to `escalation_min_layer`
        first (to STAMP's `min_layer` while earlier edits are in force)."""
        n = num_layers(self.model)
        floor = min(self.hparams.min_layer if edits_in_force else self.escalation_min_layer, min(first))
        schedule = [first]
        low, high = min(first), max(first)
        while len(schedule) < self.max_attempts and (low > floor or high < n - 1):
            low, high = max(floor, low - 1), min(n - 1, high + (1 if low == floor else 0))
            schedule.append(list(range(low, high + 1)))
        return schedule

    def _escalate(self, hp: StampHyperParams, check: Verification, layers: list[int],
                  schedule: list[list[int]], probes: int) -> StampHyperParams | None:
        """The next attempt: when the forget side held but retain answers moved, the same layers
        with the retain side weighted 4x (ridge). When the forgetting fell short: first the next,
        wider layer set (if any) and, when no retain answer moved at all, a looser hold (`_looser`,
        once: the edit was too timid; a `loose_kinds` target starts with it); then more probes (v*
        shifts fitted on all `probes` forget prompts, not `vstar_prompts` of them). On the lab
        model the looser hold verified 4 of 11 commands that needed more than one attempt, while
        fitting v* on every probe first left 7 of the 11 where they were."""
        if check.forgotten(self.min_refusal) and hp.solver == "ridge":
            return replace(hp, layers=layers, lam=hp.lam * 4, retain_weight=hp.retain_weight * 4)
        wider = [s for s in schedule if len(s) > len(layers) or not set(s) <= set(layers)]
        loosen = hp.solver == "ridge" and check.retain_changed == 0 and hp.lam >= self.hparams.lam
        if wider or loosen:
            next_hp = replace(hp, layers=wider[0] if wider else layers)
            return _looser(next_hp) if loosen else next_hp
        if hp.target == "vstar" and 0 < hp.vstar_prompts < probes:
            return replace(hp, layers=layers, vstar_prompts=0)
        return None

    def repair(self, plan: RepairPlan, timings_ms: dict[str, float] | None = None,
               message_id: str | None = None) -> Receipt:
        """Apply `plan`, verify, escalate (`_escalate`) when verification fails, record the best
        (with `message_id`, the caller's name for the message it came from, if any)."""
        plan.validate()
        timings = dict(timings_ms or {})
        clock = time.perf_counter()
        ridge = plan.solver == "ridge"
        prior = self.prior_moments() if self.remember_edits and ridge else {}
        loose = ridge and any(s["kind"] in self.loose_kinds for s in plan.subjects)
        after_edits = bool(prior) and not loose  # held harder while earlier edits are in force
        ctx = replace(self.context(plan.refusal_answer, after_edits),  # this command's own: its prior edits and v* starts
                      prior_moments=prior)
        if self.drift_checks and self._baseline is None:  # taken once, even when it finds no questions, on the
            with self._unedited():  # unedited weights (a resumed ledger's edits taken off for the while)
                self._take_baseline(plan.refusal_answer)
        retain_qs = plan.retain[: self.retain_checks]
        missing = [q for q in retain_qs if q not in self._answers]  # asked once per weight state
        if missing:
            self._answers.update(zip(missing, ask(self.model, self.tokenizer, missing, max_new_tokens=self.answer_tokens)))
        retain_before = {q: self._answers[q] for q in retain_qs}
        misinfo = {s["name"] for s in plan.subjects if s["kind"] == "misinfo"}
        timings["prepare"] = (time.perf_counter() - clock) * 1000
        names = [s["name"] for s in plan.subjects]  # one subject: its name anchors key position "subject"
        request = StampRequest(tuple(chat_prompt(self.tokenizer, q) for q in plan.probes), plan.refusal_answer,
                               subject=names[0] if len(names) == 1 else None)
        hp = replace(self.hparams, solver=plan.solver, rank=plan.rank, layers=plan.layers or self.hparams.layers)
        if loose:
            hp = _looser(hp)
        elif after_edits:
            hp = replace(hp, retain_prompt_boost=max(hp.retain_prompt_boost, self.retain_prompt_boost_after_edits),
                         protected_rank=max(hp.protected_rank, self.protected_rank_after_edits))
        best: tuple[StampEdit, Verification] | None = None
        schedule: list[list[int]] = []
        attempt = 0
        while True:
            attempt += 1
            edit = stamp_edit(self.model, self.tokenizer, [request], hp, ctx)
            for phase, seconds in edit.timings.items():
                timings[f"stamp_{phase}"] = timings.get(f"stamp_{phase}", 0.0) + seconds * 1000
            clock = time.perf_counter()
            try:
                check = self.verify(plan, retain_before, misinfo)
            finally:  # an attempt never stays in force unrecorded, whatever happens while verifying
                restore_weights(self.model, edit.weights_copy)
            timings["verify"] = timings.get("verify", 0.0) + (time.perf_counter() - clock) * 1000
            if best is None or check.score() > best[1].score():
                best = (edit, check)
            schedule = schedule or self._layer_schedule(edit.layers, edits_in_force=bool(self._edits))
            if check.passes(self.min_refusal, self.max_retain_changed) or attempt >= self.max_attempts:
                break
            fitted_on = hp.vstar_prompts
            hp = self._escalate(hp, check, edit.layers, schedule, len(request.prompts))
            if hp is None:
                break
            # v* fitted on the same probes of the same weights: start where this attempt ended (a
            # fit on more probes starts afresh: from here it would stop at once, the same edit again)
            ctx.vstar_init = edit.vstar_shifts if hp.vstar_prompts == fitted_on else {}
        edit, check = best
        for layer_edit in edit.edits:  # re-apply the kept attempt: same deltas, same order, same weights
            add_delta(get_module(self.model, layer_edit.param_name.removesuffix(".weight")), layer_edit.delta)
        answers_before, self._answers = self._answers, dict(check.retain_answers)  # the next edit's "before"
        about = frozenset(plan.probes + plan.paraphrases + plan.crosslingual + [s["name"] for s in plan.subjects])
        clock = time.perf_counter()
        drift, pressure = self.drift_since_start(about)
        timings["drift"] = (time.perf_counter() - clock) * 1000
        receipt = Receipt(
            target=plan.target, verified=check.passes(self.min_refusal, self.max_retain_changed),
            layers=edit.layers, parameters=sorted(edit.weights_copy), probes=len(plan.probes), attempts=attempt,
            verification={k: v for k, v in asdict(check).items() if k not in ("answers", "retain_answers")},
            delta_ratio=max(e.delta_ratio for e in edit.edits), timings_ms={k: round(v, 2) for k, v in timings.items()},
            notes=list(plan.notes), retain_changed_since_start=drift, refusal_pressure_since_start=pressure,
            shortfalls=check.shortfalls(self.min_refusal, self.max_retain_changed),
        )
        if self.ledger is not None:  # with what a later session needs to hold this edit (`resume`)
            record = self.ledger.record(self.model, edit.weights_copy, f"forget {plan.target}", receipt.to_dict(),
                                        extra={"about": sorted(about), "message": message_id},
                                        extra_tensors={f"keys/{e.layer}": _compact(e.keys, e.param_name, self.model)
                                                       for e in edit.edits})
            receipt.edit_id = record.edit_id
        key = receipt.edit_id if receipt.edit_id is not None else -1 - len(self._edits)
        self._remember(key, {e.layer: e.keys for e in edit.edits}, answers_before, about)
        return receipt

