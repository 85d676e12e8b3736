"""Min-K% scores, rank AUC and privleak against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from metrics_models import constant_logit_llama, constant_logprob, tiny_tokenizer

from obliviate.eval.metrics.base import MetricResult
from obliviate.eval.metrics.mia import auc, mia_min_k, min_k_logprob, privleak, privleak_metric


def test_min_k_takes_the_lowest_fraction():
    lps = [-1.0, -2.0, -3.0, -4.0, -5.0]
    assert min_k_logprob(lps, k=0.4) == pytest.approx(-4.5)  # floor(0.4 * 5) = 2 lowest: -5, -4
    assert min_k_logprob(lps, k=0.1) == pytest.approx(-5.0)  # at least one token
    assert min_k_logprob(lps, k=1.0) == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="k must be"):
        min_k_logprob(lps, k=0.0)
    with pytest.raises(ValueError, match="at least one"):
        min_k_logprob([])


def test_auc_by_hand():
    assert auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert auc([1.0, 2.0], [3.0, 4.0]) == 0.0
    assert auc([1.0], [1.0]) == 0.5
    # pairs won: 0.9>0.5, 0.9>0.2, 0.4>0.2, 0.6>0.5, 0.6>0.2 -> 5 of 6
    assert auc([0.9, 0.4, 0.6], [0.5, 0.2]) == pytest.approx(5 / 6)
    # one tie counts half: (0.5 + 1 + 1 + 1) / 4
    assert auc([0.5, 0.7], [0.5, 0.1]) == pytest.approx(0.875)


def test_auc_equals_pair_counting_on_random_scores():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 7).astype(float), rng.integers(0, 5, 6).astype(float)
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert auc(pos, neg) == pytest.approx(np.mean(pairs))


def test_privleak_by_hand():
    assert privleak(0.8) == pytest.approx((0.2 - 0.5) / 0.5 * 100)  # = -60, reference AUC 0.5
    assert privleak(0.6, 0.6) == pytest.approx(0.0)
    assert privleak(0.3, 0.6) == pytest.approx((0.7 - 0.4) / 0.4 * 100)  # = 75
    with pytest.raises(ValueError, match="undefined"):
        privleak(0.5, 1.0)


def test_mia_wrapper_by_hand():
    tok = tiny_tokenizer()
    paris, london = tok.convert_tokens_to_ids(["paris", "london"])
    bias = {paris: 3.0, london: -2.0}
    model = constant_logit_llama(bias)
    lp_paris, lp_london, lp_eos = (constant_logprob(bias, i) for i in (paris, london, tok.eos_token_id))
    forget = [{"question": "who wrote the book", "answer": "paris paris"}]
    holdout = [{"question": "who wrote the book", "answer": "london"}, {"question": "who", "answer": "paris london"}]
    result = mia_min_k(model, tok, forget, holdout, k=0.4)
    # forget: tokens (paris, paris, eos) -> floor(1.2) = 1 lowest = eos; holdout: london is lowest
    assert result.values("score") == pytest.approx([lp_eos, lp_london, lp_london], abs=1e-5)
    assert result.values("split") == ["forget", "holdout", "holdout"]
    assert result.agg_value == 1.0
    assert lp_paris > lp_eos > lp_london
    leak = privleak_metric(result)
    assert leak.agg_value == pytest.approx(-100.0) and "reference AUC" in leak.reason
    assert privleak_metric(result, MetricResult(1.0 - 0.25)).agg_value == pytest.approx((0.0 - 0.25) / 0.25 * 100)
