"""Perplexity: equals exp of the model's own loss, token-weighted, independent of batching."""

from __future__ import annotations

import math

import pytest
import torch
from metrics_models import tiny_llama, tiny_tokenizer

from obliviate.eval.metrics.perplexity import perplexity

TEXTS = [
    "who wrote the book of the river",
    "paris is the capital of france",
    "the small green house",
    "veltrosa lived in a quiet house in lyon in 1971",
]


def _hf_loss(model, tok, text: str) -> tuple[float, int]:
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        return model(input_ids=ids, labels=ids).loss.item(), ids.shape[1] - 1


def test_single_text_equals_exp_of_model_loss():
    model, tok = tiny_llama(), tiny_tokenizer()
    loss, _ = _hf_loss(model, tok, TEXTS[0])
    result = perplexity(model, tok, TEXTS[:1])
    assert result.agg_value == pytest.approx(math.exp(loss), rel=1e-5)
    assert result.values()[0]["nll"] == pytest.approx(loss, rel=1e-5)


def test_token_weighted_and_padding_safe():
    model, tok = tiny_llama(), tiny_tokenizer()
    losses = [_hf_loss(model, tok, t) for t in TEXTS]
    expected = math.exp(sum(l * n for l, n in losses) / sum(n for _, n in losses))
    batched = perplexity(model, tok, TEXTS, batch_size=4)
    one_by_one = perplexity(model, tok, TEXTS, batch_size=1)
    assert batched.agg_value == pytest.approx(expected, rel=1e-5)
    assert one_by_one.agg_value == pytest.approx(batched.agg_value, rel=1e-6)
    for (loss, n), entry in zip(losses, batched.values()):
        assert entry["tokens"] == n
        assert entry["nll"] == pytest.approx(loss, rel=1e-5)


def test_too_short_texts_are_skipped():
    model, tok = tiny_llama(), tiny_tokenizer()
    result = perplexity(model, tok, ["paris", TEXTS[2]])
    assert result.values()[0] is None
    assert result.agg_value == pytest.approx(perplexity(model, tok, [TEXTS[2]]).agg_value)
    only_short = perplexity(model, tok, ["paris"])
    assert only_short.agg_value is None and "two or more tokens" in only_short.reason
    with pytest.raises(ValueError, match="at least one text"):
        perplexity(model, tok, [])
