"""ROUGE-L recall and F1 against hand-computed longest common subsequences."""

from __future__ import annotations

import pytest

from obliviate.eval.metrics.rouge import rouge_l_f1, rouge_l_recall, rouge_l_scores


def test_rouge_l_by_hand():
    # LCS("the cat sat on the mat", "the cat lay on the mat") = the cat on the mat (5 of 6 words)
    scores = rouge_l_scores(["the cat lay on the mat"], ["the cat sat on the mat"])[0]
    assert scores["rougeL_recall"] == pytest.approx(5 / 6)
    assert scores["rougeL_precision"] == pytest.approx(5 / 6)
    assert scores["rougeL_f1"] == pytest.approx(5 / 6)


def test_recall_ignores_verbosity_f1_does_not():
    # gold "paris" fully recalled; precision 1/4 -> F1 = 2 * 1 * 0.25 / 1.25 = 0.4
    assert rouge_l_recall(["Paris is the capital"], ["Paris"]).agg_value == pytest.approx(1.0)
    assert rouge_l_f1(["Paris is the capital"], ["Paris"]).agg_value == pytest.approx(0.4)


def test_stemming_matches_inflections():
    assert rouge_l_recall(["run dog"], ["running dogs"]).agg_value == pytest.approx(1.0)


def test_mean_over_samples_and_per_sample_values():
    result = rouge_l_recall(["paris", "rome"], ["paris", "london"])
    assert result.values() == [pytest.approx(1.0), pytest.approx(0.0)]
    assert result.agg_value == pytest.approx(0.5)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same length"):
        rouge_l_recall(["a", "b"], ["a"])
