"""Perplexity of a model on held-out general text: does unlearning damage language modelling?

Aggregate perplexity is exp(total NLL / total predicted tokens), i.e. token-weighted, so a long
text counts in proportion to its length (the corpus perplexity, not a mean of per-text ones).
Each text is tokenised with the tokenizer's special tokens (BOS included when it adds one), and
every token after the first is predicted from its prefix. Batches are right-padded and padded
positions are masked out of both attention and loss, so the result does not depend on the batch
size. Sums are accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import pad_batch
from obliviate.eval.metrics.base import METRICS, MetricResult, by_index


@torch.no_grad()
def text_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 16,
    max_length: int | None = None,
) -> list[tuple[float, int]]:
    """Per text `(summed NLL in nats, number of predicted tokens)`; texts are truncated to `max_length`."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    out: list[tuple[float, int]] = []
    for start in range(0, len(texts), batch_size):
        encoded = [tokenizer(t)["input_ids"][:max_length] for t in texts[start : start + batch_size]]
        if all(len(ids) < 2 for ids in encoded):
            out.extend((0.0, 0) for _ in encoded)
            continue
        ids = pad_batch(encoded, pad_id).to(device)
        attention = pad_batch([[1] * len(e) for e in encoded], 0).to(device)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].double()
        targets = ids[:, 1:]
        nll = -torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = attention[:, 1:].bool()
        for row, row_mask in zip(nll, mask):
            out.append((float(row[row_mask].sum()), int(row_mask.sum())))
    return out


@METRICS.register("perplexity")
def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    batch_size: int = 16,
    max_length: int | None = None,
) -> MetricResult:
    """Token-weighted perplexity; per text `{"nll": mean NLL, "tokens": n, "perplexity": exp(nll)}`.

    Texts too short to predict any token get None and are left out of the aggregate.
    """
    if not texts:
        raise ValueError("perplexity needs at least one text")
    totals = text_nll(model, tokenizer, texts, batch_size, max_length)
    per_text = [
        None if n == 0 else {"nll": s / n, "tokens": n, "perplexity": math.exp(s / n)} for s, n in totals
    ]
    total_nll, total_tokens = sum(s for s, _ in totals), sum(n for _, n in totals)
    if total_tokens == 0:
        return MetricResult(None, by_index(per_text), "no text has two or more tokens")
    return MetricResult(math.exp(total_nll / total_tokens), by_index(per_text))
