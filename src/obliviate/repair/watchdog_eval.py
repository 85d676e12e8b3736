"""Score a watchdog on labelled messages (the shipped set is `obliviate/data/watchdog_eval.jsonl`).

Shared by `benchmarks/watchdog.py` (prints the figures) and the tests (assert the thresholds), so
both compute precision, recall and target matches the same way.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.repair.watchdog import Watchdog, same_target

EVAL_SET = Path(__file__).resolve().parent.parent / "data" / "watchdog_eval.jsonl"
FIELDS = {"message": str, "intent": bool, "lang": str}


@dataclass(frozen=True)
class LabelledMessage:
    message: str
    intent: bool
    target: str | None
    lang: str


def load_eval_set(path: str | os.PathLike = EVAL_SET) -> list[LabelledMessage]:
    """Read and validate a JSONL file of {message, intent, target, lang}."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"watchdog evaluation set not found: {path}")
    rows: list[LabelledMessage] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error})") from None
            for name, kind in FIELDS.items():
                if not isinstance(entry.get(name), kind):
                    raise ValueError(f"{path}:{number}: field {name!r} must be a {kind.__name__}")
            target = entry.get("target")
            if entry["intent"] != isinstance(target, str) or (isinstance(target, str) and not target.strip()):
                raise ValueError(f"{path}:{number}: a positive needs a non-empty target, a negative target null")
            rows.append(LabelledMessage(entry["message"], entry["intent"], target, entry["lang"]))
    if not rows:
        raise ValueError(f"{path} holds no messages")
    return rows


@dataclass
class Score:
    """Confusion counts, exact-target matches and per-message latencies for one slice of the set."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    exact: int = 0  # true positives whose target matches the label
    seconds: list[float] = field(default_factory=list)
    mistakes: list[tuple[str, LabelledMessage, str | None]] = field(default_factory=list)  # (kind, row, found)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def exact_rate(self) -> float:
        """Share of true positives whose extracted target equals the labelled one."""
        return self.exact / self.tp if self.tp else 0.0

    @property
    def mean_ms(self) -> float:
        return 1000 * sum(self.seconds) / len(self.seconds) if self.seconds else 0.0

    @property
    def p95_ms(self) -> float:
        if not self.seconds:
            return 0.0
        ordered = sorted(self.seconds)
        return 1000 * ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def evaluate(watchdog: Watchdog, rows: Iterable[LabelledMessage]) -> dict[str, Score]:
    """Run the watchdog on every message; scores under "all" and under each language code."""
    scores: dict[str, Score] = {"all": Score()}
    for row in rows:
        start = time.perf_counter()
        intent = watchdog.detect(row.message)
        elapsed = time.perf_counter() - start
        found = intent.target if intent else None
        for score in (scores["all"], scores.setdefault(row.lang, Score())):
            score.seconds.append(elapsed)
            if row.intent and intent:
                score.tp += 1
                if same_target(found, row.target):
                    score.exact += 1
                else:
                    score.mistakes.append(("target", row, found))
            elif row.intent:
                score.fn += 1
                score.mistakes.append(("missed", row, None))
            elif intent:
                score.fp += 1
                score.mistakes.append(("false alarm", row, found))
            else:
                score.tn += 1
    return scores
