"""Min-K% membership inference as an attack: can the model still tell forget data from unseen data?

An attacker with the model's token probabilities scores every candidate text; if forget items
still score like training data (higher Min-K% than a holdout set never trained on), the model
betrays that it was trained on them even when it no longer says them. The statistic, the AUC and
privleak live in `obliviate.eval.metrics.mia`; this attack applies them to forget and holdout items
of any shape (lab `QA`, `QAExample`, TOFU rows) and keeps every item's score by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.eval.attacks.base import ATTACKS, item_id, question_answer
from obliviate.eval.metrics.mia import DEFAULT_K, auc, min_k_scores


@dataclass
class MembershipResult:
    """Min-K% score per item id (higher = more member-like) and the forget-vs-holdout AUC."""

    forget_scores: dict[str, float]
    holdout_scores: dict[str, float]
    auc: float


def _rows(items: Sequence[Any], name: str) -> tuple[list[str], list[dict[str, str]]]:
    if not items:
        raise ValueError(f"the {name} set is empty")
    ids = [item_id(item, i) for i, item in enumerate(items)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name} item ids must be unique")
    pairs = [question_answer(item, i) for i, item in enumerate(items)]
    return ids, [{"question": q, "answer": a} for q, a in pairs]


@ATTACKS.register("membership")
def membership(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[Any],
    holdout: Sequence[Any],
    k: float = DEFAULT_K,
    batch_size: int = 32,
) -> MembershipResult:
    """Score forget and holdout answers (given their questions) with Min-K% and separate them.

    AUC 1: the forget set is plainly recognised as training data; 0.5: indistinguishable from
    holdout (what a model never trained on it gives).
    """
    forget_ids, forget_rows = _rows(forget, "forget")
    holdout_ids, holdout_rows = _rows(holdout, "holdout")
    forget_scores = min_k_scores(model, tokenizer, forget_rows, k, batch_size)
    holdout_scores = min_k_scores(model, tokenizer, holdout_rows, k, batch_size)
    return MembershipResult(
        dict(zip(forget_ids, forget_scores)),
        dict(zip(holdout_ids, holdout_scores)),
        auc(forget_scores, holdout_scores),
    )
