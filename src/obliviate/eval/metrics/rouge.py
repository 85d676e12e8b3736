"""ROUGE-L between generated and gold answers, with the `rouge_score` library as TOFU uses it.

TOFU and OpenUnlearning report ROUGE-L *recall* (how much of the gold answer the generation
reproduces: a leak measure that does not punish verbose answers); MUSE reports ROUGE-L F1. Both
use `RougeScorer(["rougeL"], use_stemmer=True)`. Note that the library's tokenizer keeps only
ASCII letters and digits, so accented letters split words; scores on non-English text are rough.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rouge_score import rouge_scorer

from obliviate.eval.metrics.base import METRICS, MetricResult, averaged, check_same_length


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_scores(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """Per sample `{"rougeL_f1", "rougeL_recall", "rougeL_precision"}` of prediction vs reference."""
    check_same_length(predictions=predictions, references=references)
    out = []
    for prediction, reference in zip(predictions, references):
        score = _scorer().score(reference, prediction)["rougeL"]  # score(target, prediction)
        out.append({"rougeL_f1": score.fmeasure, "rougeL_recall": score.recall, "rougeL_precision": score.precision})
    return out


def _rouge_metric(predictions: Sequence[str], references: Sequence[str], key: str) -> MetricResult:
    return averaged([s[key] for s in rouge_l_scores(predictions, references)])


@METRICS.register("rouge_l_recall")
def rouge_l_recall(predictions: Sequence[str], references: Sequence[str]) -> MetricResult:
    """Mean ROUGE-L recall (TOFU's `*_ROUGE`)."""
    return _rouge_metric(predictions, references, "rougeL_recall")


@METRICS.register("rouge_l_f1")
def rouge_l_f1(predictions: Sequence[str], references: Sequence[str]) -> MetricResult:
    """Mean ROUGE-L F1 (MUSE's knowledge-memorisation ROUGE)."""
    return _rouge_metric(predictions, references, "rougeL_f1")
