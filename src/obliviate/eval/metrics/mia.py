"""Min-K% membership inference and the privleak score built on it (MUSE / OpenUnlearning).

Min-K% (Shi et al., 2024): a text seen in training has few very unlikely tokens, so the mean of
its lowest k% token log-probabilities is high. `min_k_logprob` returns that mean (higher = more
member-like); OpenUnlearning stores its negation, which gives the same AUC.

AUC is that of separating the forget set (trained on, "members") from the holdout set (never
trained on) by this score: AUC = P(score(forget) > score(holdout)) + 0.5 P(tie), the
Mann-Whitney statistic, computed from average ranks. It is 1 when the model plainly remembers the
forget set, 0.5 when it cannot tell them apart.

privleak = (s - r) / r * 100 with s = 1 - AUC(unlearned model), r = 1 - AUC(retain model), or
r = 1 - 0.5 without a retain model (OpenUnlearning's `ref_value`). About 0 is ideal; negative
means under-unlearning (the unlearned model still separates forget from holdout more than a model
that never saw the forget set), positive means over-unlearning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import answer_logprobs, chat_prompt
from obliviate.eval.metrics.base import METRICS, MetricResult

DEFAULT_K = 0.4
REFERENCE_AUC = 0.5


def min_k_logprob(token_logprobs: Sequence[float], k: float = DEFAULT_K) -> float:
    """Mean of the lowest max(1, floor(k * n)) token log-probabilities."""
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    values = np.sort(np.asarray(token_logprobs, dtype=np.float64))
    if values.size == 0:
        raise ValueError("min-k needs at least one token log-probability")
    return float(values[: max(1, int(values.size * k))].mean())


def auc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float:
    """P(positive > negative) + 0.5 P(tie), by the rank-sum formula (ties get average ranks)."""
    pos = np.asarray(positive_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUC needs at least one score in each group")
    ranks = rankdata(np.concatenate([pos, neg]))
    rank_sum = ranks[: pos.size].sum()
    return float((rank_sum - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def privleak(auc_unlearned: float, auc_retain: float | None = None) -> float:
    """(s - r) / r * 100 with s = 1 - AUC_unlearned and r = 1 - AUC_retain (0.5 when absent)."""
    reference = REFERENCE_AUC if auc_retain is None else auc_retain
    r = 1.0 - reference
    if r == 0:
        raise ValueError("privleak is undefined when the reference AUC is 1")
    return (1.0 - auc_unlearned - r) / r * 100.0


def min_k_scores(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping[str, str]],
    k: float = DEFAULT_K,
    batch_size: int = 32,
) -> list[float]:
    """Min-K% score of each `{"question", "answer"}` row, over the answer tokens given the question."""
    prompts = [chat_prompt(tokenizer, r["question"]) for r in rows]
    logprobs = answer_logprobs(model, tokenizer, prompts, [r["answer"] for r in rows], batch_size)
    return [min_k_logprob(lp.double().numpy(), k) for lp in logprobs]


@METRICS.register("mia_min_k")
def mia_min_k(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget_rows: Sequence[Mapping[str, str]],
    holdout_rows: Sequence[Mapping[str, str]],
    k: float = DEFAULT_K,
    batch_size: int = 32,
) -> MetricResult:
    """Min-K% AUC of forget vs holdout; per sample `{"split": "forget"|"holdout", "score": ...}`."""
    forget = min_k_scores(model, tokenizer, forget_rows, k, batch_size)
    holdout = min_k_scores(model, tokenizer, holdout_rows, k, batch_size)
    per_sample = [{"split": "forget", "score": s} for s in forget] + [
        {"split": "holdout", "score": s} for s in holdout
    ]
    return MetricResult(auc(forget, holdout), {str(i): v for i, v in enumerate(per_sample)})


@METRICS.register("privleak")
def privleak_metric(unlearned: MetricResult, retain: MetricResult | None = None) -> MetricResult:
    """privleak from two `mia_min_k` results (the retain model's may be missing)."""
    if unlearned.agg_value is None:
        return MetricResult(None, reason="the unlearned model's MIA AUC is missing")
    retain_auc = None if retain is None else retain.agg_value
    reason = None if retain_auc is not None else f"no retain model: reference AUC {REFERENCE_AUC}"
    return MetricResult(privleak(unlearned.agg_value, retain_auc), reason=reason)
