"""TOFU metrics: the maths against hand-computed values, the model wrappers on a closed-form model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from metrics_models import constant_logit_llama, constant_logprob, tiny_tokenizer

from obliviate.eval.metrics.base import MetricResult
from obliviate.eval.metrics.tofu import (
    UTILITY_COMPONENTS,
    aggregate_truth_ratio,
    answer_probability,
    forget_quality,
    forget_quality_metric,
    harmonic_mean,
    model_utility,
    model_utility_metric,
    normalised_probability,
    probability_metric,
    probability_with_options_metric,
    rouge_metric,
    tofu_suite,
    truth_ratio_metric,
    truth_ratios,
)

E = math.e

# ------------------------------------------------------------------------------------ maths


def test_answer_probability_is_exp_of_minus_mean_nll():
    assert answer_probability([0.0, math.log(2)]).tolist() == pytest.approx([1.0, 0.5])


def test_normalised_probability_by_hand():
    # P(true) = 1/2, P(false) = 1/4 + 1/4 -> 0.5 / (0.5 + 0.5)
    assert normalised_probability([math.log(2)], [[math.log(4), math.log(4)]]).tolist() == pytest.approx([0.5])
    # P(true) = 1, P(false) = e^-1 -> 1 / (1 + e^-1)
    assert normalised_probability([0.0], [[1.0]]).tolist() == pytest.approx([1 / (1 + 1 / E)])


def test_truth_ratio_averages_perturbed_losses():
    ratios = truth_ratios([1.0, 2.0], [[2.0, 4.0], [1.0, 1.0]])
    # sample 0: P̄pert = exp(-3) (geometric mean of e^-2, e^-4), P̄para = e^-1 -> R = e^-2
    assert ratios.tolist() == pytest.approx([E**-2, E**1])
    assert math.exp(-3.0) == pytest.approx(math.sqrt(math.exp(-2.0) * math.exp(-4.0)))


def test_truth_ratio_aggregates_by_hand():
    r = [E**-2, E**1]
    assert aggregate_truth_ratio(r, "closer_to_1_better") == pytest.approx((E**-2 + E**-1) / 2)
    assert aggregate_truth_ratio(r, "true_better") == pytest.approx((1 - E**-2 + 0.0) / 2)
    assert aggregate_truth_ratio(r, "prob_mean") == pytest.approx((1 / (1 + E**-2) + 1 / (1 + E)) / 2)
    # the legacy TOFU code writes R' = exp(pert - para) = 1/R and mean(max(0, 1 - 1/R')): same number
    legacy = np.mean(np.maximum(0, 1 - 1 / (1 / np.array(r))))
    assert aggregate_truth_ratio(r, "true_better") == pytest.approx(legacy)
    with pytest.raises(ValueError, match="aggregator"):
        aggregate_truth_ratio(r, "median")


def _ks_p_by_enumeration(x: list[float], y: list[float]) -> float:
    """Exact two-sided KS p-value: share of all relabellings of the pooled data with D >= observed."""
    def stat(a, b):
        grid = sorted(a + b)
        return max(abs(sum(v <= t for v in a) / len(a) - sum(v <= t for v in b) / len(b)) for t in grid)

    pooled, observed = x + y, stat(x, y)
    splits = list(itertools.combinations(range(len(pooled)), len(x)))
    hits = 0
    for chosen in splits:
        a = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        hits += stat(a, b) >= observed - 1e-12
    return hits / len(splits)


def test_forget_quality_is_the_ks_p_value():
    # fully separated samples of 3: only 2 of the C(6,3) = 20 labellings are as extreme
    p, reason = forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert reason is None
    assert p == pytest.approx(2 / 20)
    assert p == pytest.approx(_ks_p_by_enumeration([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
    x, y = [0.1, 0.4, 0.7, 0.9], [0.3, 0.5, 0.6, 1.2]
    assert forget_quality(x, y)[0] == pytest.approx(_ks_p_by_enumeration(x, y))


def test_forget_quality_identical_distributions_and_missing_reference():
    same = [0.2, 0.5, 0.9, 1.3]
    assert forget_quality(same, list(same)) == (pytest.approx(1.0), None)
    p, reason = forget_quality(same, None)
    assert p is None and "retain model" in reason


def test_harmonic_mean_and_model_utility():
    assert harmonic_mean([1.0, 0.5, 0.25]) == pytest.approx(3 / 7)  # 3 / (1 + 2 + 4)
    assert harmonic_mean([0.5, 0.0]) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        harmonic_mean([0.5, -0.1])
    components = {name: 0.5 for name in UTILITY_COMPONENTS} | {"wf_Truth_Ratio": 0.25}
    assert model_utility(components) == pytest.approx(9 / (8 * 2 + 4))
    with pytest.raises(ValueError, match="ra_Q_A_ROUGE"):
        model_utility({k: v for k, v in components.items() if k != "ra_Q_A_ROUGE"})


def test_metric_level_forget_quality_and_utility():
    unlearned = MetricResult(0.5, {"0": {"score": 1.0}, "1": {"score": 2.0}, "2": {"score": 3.0}})
    retain = MetricResult(0.5, {"0": {"score": 4.0}, "1": {"score": 5.0}, "2": {"score": 6.0}})
    assert forget_quality_metric(unlearned, retain).agg_value == pytest.approx(0.1)
    absent = forget_quality_metric(unlearned, None)
    assert absent.agg_value is None and absent.reason
    parts = {name: MetricResult(0.5) for name in UTILITY_COMPONENTS}
    assert model_utility_metric(parts).agg_value == pytest.approx(0.5)
    parts["ra_Q_A_ROUGE"] = MetricResult(None, reason="not run")
    assert model_utility_metric(parts).agg_value is None


# ------------------------------------------------------------------- model-calling wrappers


@pytest.fixture(scope="module")
def closed_form():
    """Constant-logit model: paris 3, rome 2.5, london -2, everything else 0 (EOS included)."""
    tok = tiny_tokenizer()
    ids = dict(zip(["paris", "rome", "london"], tok.convert_tokens_to_ids(["paris", "rome", "london"])))
    bias = {ids["paris"]: 3.0, ids["rome"]: 2.5, ids["london"]: -2.0}
    lp = {w: constant_logprob(bias, i) for w, i in ids.items()} | {"<eos>": constant_logprob(bias, tok.eos_token_id)}
    return constant_logit_llama(bias), tok, lp


def _nll(lp: dict[str, float], answer: str) -> float:
    """Mean NLL of the answer's words plus EOS under the constant model."""
    tokens = answer.split() + ["<eos>"]
    return -sum(lp[t] for t in tokens) / len(tokens)


ROWS = [
    {"question": "who wrote the book", "answer": "paris", "paraphrased_answer": "paris paris",
     "perturbed_answer": ["rome", "london"]},
    {"question": "where was veltrosa born", "answer": "london", "paraphrased_answer": "london",
     "perturbed_answer": ["paris", "rome"]},
]


def test_probability_wrapper_by_hand(closed_form):
    model, tok, lp = closed_form
    result = probability_metric(model, tok, ROWS)
    expected = [math.exp(-_nll(lp, r["answer"])) for r in ROWS]
    assert result.values("prob") == pytest.approx(expected, rel=1e-5)
    assert result.agg_value == pytest.approx(np.mean(expected), rel=1e-5)


def test_truth_ratio_wrapper_by_hand(closed_form):
    model, tok, lp = closed_form
    result = truth_ratio_metric(model, tok, ROWS, "closer_to_1_better")
    expected = [
        math.exp(_nll(lp, r["paraphrased_answer"]) - np.mean([_nll(lp, p) for p in r["perturbed_answer"]]))
        for r in ROWS
    ]
    assert result.values("score") == pytest.approx(expected, rel=1e-5)
    assert result.agg_value == pytest.approx(np.mean([min(r, 1 / r) for r in expected]), rel=1e-5)
    retain_style = truth_ratio_metric(model, tok, ROWS, "true_better", correct_key="answer")
    expected_answer = [
        math.exp(_nll(lp, r["answer"]) - np.mean([_nll(lp, p) for p in r["perturbed_answer"]])) for r in ROWS
    ]
    assert retain_style.agg_value == pytest.approx(np.mean([max(0, 1 - r) for r in expected_answer]), rel=1e-5)


def test_probability_with_options_by_hand(closed_form):
    model, tok, lp = closed_form
    result = probability_with_options_metric(model, tok, ROWS)
    expected = []
    for r in ROWS:
        true_p = math.exp(-_nll(lp, r["answer"]))
        expected.append(true_p / (true_p + sum(math.exp(-_nll(lp, p)) for p in r["perturbed_answer"])))
    assert result.values("prob") == pytest.approx(expected, rel=1e-5)


def test_rouge_wrapper_on_greedy_generation(closed_form):
    model, tok, _ = closed_form
    result = rouge_metric(model, tok, ROWS, max_new_tokens=3)  # greedy output: "paris paris paris"
    assert result.values("generation") == ["paris paris paris"] * 2
    assert result.values("rougeL_recall") == [1.0, 0.0]


def test_suite_keys_forget_quality_and_utility(closed_form):
    model, tok, _ = closed_form
    facts = [{k: r[k] for k in ("question", "answer", "perturbed_answer")} for r in ROWS]
    suite = tofu_suite(model, tok, ROWS, ROWS, facts, facts, max_new_tokens=2)
    assert set(UTILITY_COMPONENTS) <= set(suite)
    assert suite["forget_quality"].agg_value is None
    utility = harmonic_mean([suite[name].agg_value for name in UTILITY_COMPONENTS])
    assert suite["model_utility"].agg_value == pytest.approx(utility)
    with_reference = tofu_suite(model, tok, ROWS, ROWS, facts, facts, suite["forget_truth_ratio"], max_new_tokens=2)
    assert with_reference["forget_quality"].agg_value == pytest.approx(1.0)  # same model, same ratios


def test_wrappers_reject_rows_without_fields(closed_form):
    model, tok, _ = closed_form
    with pytest.raises(ValueError, match="perturbed_answer"):
        truth_ratio_metric(model, tok, [{"question": "who", "paraphrased_answer": "paris"}], "true_better")
