"""QA accuracy by normalised match, multiple-choice accuracy by option log-likelihood, result type."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metrics_models import constant_logit_llama, constant_logprob, tiny_tokenizer

from obliviate.eval.metrics import METRICS, MetricResult
from obliviate.eval.metrics.accuracy import (
    contains_gold,
    is_exact_match,
    multiple_choice_accuracy,
    normalize_answer,
    option_scores,
    qa_accuracy,
)


def test_normalize_answer_strips_case_punctuation_articles_and_spaces():
    assert normalize_answer("  The Eiffel-Tower, in PARIS!  ") == "eiffel tower in paris"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("¿Dónde? «Lyon»") == "dónde lyon"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_exact_and_contains_match():
    assert is_exact_match("Paris.", "paris")
    assert not is_exact_match("It is Paris", "Paris")
    assert contains_gold("It is Paris, of course", "Paris")
    assert contains_gold("She was born in 1971.", "1971")
    assert not contains_gold("Born in 19710", "1971")  # whole words only
    assert contains_gold("It is Roma", ["Rome", "Roma"])  # aliases


def test_qa_accuracy_per_sample_and_mean():
    predictions = ["Paris", "The capital is Rome.", "Berlin"]
    golds = ["paris", "Rome", "Madrid"]
    exact = qa_accuracy(predictions, golds, mode="exact")
    assert exact.values() == [1.0, 0.0, 0.0]
    assert exact.agg_value == pytest.approx(1 / 3)
    contains = qa_accuracy(predictions, golds, mode="contains")
    assert contains.values() == [1.0, 1.0, 0.0]
    assert contains.agg_value == pytest.approx(2 / 3)


def test_qa_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        qa_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="match mode"):
        qa_accuracy(["a"], ["a"], mode="fuzzy")
    with pytest.raises(ValueError, match="empty after normalisation"):
        qa_accuracy(["a"], ["the ..."])


def test_option_scores_sum_and_mean():
    lps = [[-1.0, -1.0, -1.0], [-2.5]]
    assert option_scores(lps, "sum").tolist() == [-3.0, -2.5]
    assert option_scores(lps, "mean").tolist() == [-1.0, -2.5]
    with pytest.raises(ValueError, match="no tokens"):
        option_scores([[]])


def test_multiple_choice_picks_highest_likelihood_option_by_hand():
    tok = tiny_tokenizer()
    paris, rome = tok.convert_tokens_to_ids(["paris", "rome"])
    bias = {paris: 3.0, rome: 2.5}
    model = constant_logit_llama(bias)
    lp_paris, lp_rome = constant_logprob(bias, paris), constant_logprob(bias, rome)
    options = [["rome", "paris paris"], ["london", "paris"]]
    # sum: rome (lp_rome) beats "paris paris" (2 lp_paris); mean: "paris paris" (lp_paris) wins
    assert lp_rome > 2 * lp_paris and lp_paris > lp_rome
    by_sum = multiple_choice_accuracy(model, tok, ["who wrote the book", "capital of france"], options, [0, 1], "sum")
    assert by_sum.values("choice") == [0, 1]
    assert by_sum.agg_value == 1.0
    assert by_sum.values("scores")[0] == pytest.approx([lp_rome, 2 * lp_paris], abs=1e-5)
    by_mean = multiple_choice_accuracy(model, tok, ["who wrote the book", "capital of france"], options, [0, 1], "mean")
    assert by_mean.values("choice") == [1, 1]
    assert by_mean.values("correct") == [0.0, 1.0]
    assert by_mean.agg_value == 0.5


def test_multiple_choice_rejects_out_of_range_answer():
    tok = tiny_tokenizer()
    model = constant_logit_llama({})
    with pytest.raises(ValueError, match="out of range"):
        multiple_choice_accuracy(model, tok, ["who"], [["paris", "rome"]], [2])


def test_metric_result_round_trip_and_json():
    result = MetricResult(np.float64(0.25), {"0": {"score": np.float32(0.5), "flag": np.bool_(True)}, "1": np.nan})
    data = result.to_dict()
    expected = {"agg_value": 0.25, "value_by_index": {"0": {"score": 0.5, "flag": True}, "1": None}}
    assert json.loads(json.dumps(data)) == expected
    assert MetricResult.from_dict(data).agg_value == 0.25
    missing = MetricResult(None, reason="no retain model").to_dict()
    assert missing == {"agg_value": None, "value_by_index": {}, "reason": "no retain model"}
    with pytest.raises(ValueError, match="agg_value"):
        MetricResult.from_dict({"value_by_index": {}})


def test_values_are_ordered_by_numeric_index():
    result = MetricResult(1.0, {"10": 3, "2": 2, "0": 1})
    assert result.values() == [1, 2, 3]


def test_registry_finds_metrics_by_name():
    for name in ("qa_accuracy", "mc_accuracy", "rouge_l_recall", "rouge_l_f1", "refusal_rate",
                 "gibberish_rate", "perplexity", "tofu_truth_ratio", "forget_quality",
                 "model_utility", "mia_min_k", "privleak"):
        assert name in METRICS
    assert METRICS.get("qa_accuracy") is qa_accuracy
    with pytest.raises(ValueError, match="unknown metric"):
        METRICS.get("bleu")
