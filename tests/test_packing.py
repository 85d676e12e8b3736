"""Packed forward passes give the losses and gradients of padded ones, on every supported architecture."""

from __future__ import annotations

import pytest
import torch
from tiny_architectures import ARCHITECTURES, VOCAB, make_model
from transformers import LlamaForCausalLM

from obliviate.chat import answer_logits
from obliviate.methods.losses import IGNORE_INDEX, mean_nll, sequence_nll
from obliviate.packing import Batch, first_fit_rows, packed_answer_logits, supports_packing

PAD = 0


def right_padded(rows: list[tuple[list[int], int]]) -> Batch:
    """A batch part from (token ids, prompt length) rows: the answer is what follows the prompt."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), PAD)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX)
    for b, (tokens, prompt) in enumerate(rows):
        ids[b, : len(tokens)] = torch.tensor(tokens)
        mask[b, : len(tokens)] = 1
        labels[b, prompt : len(tokens)] = torch.tensor(tokens[prompt:])
    return Batch(ids, mask, labels)


def mixed_parts() -> list[Batch]:
    """Three parts of mixed lengths (2 to 12 tokens, answers of 1 to 6), as a trainer's batch has."""
    generator = torch.Generator().manual_seed(1)

    def row(length: int, prompt: int) -> tuple[list[int], int]:
        return torch.randint(4, VOCAB, (length,), generator=generator).tolist(), prompt

    return [
        right_padded([row(12, 6), row(9, 5), row(11, 8)]),
        right_padded([row(5, 3), row(7, 6), row(2, 1), row(6, 2)]),
        right_padded([row(4, 2), row(8, 7)]),
    ]


def padded_nll(model, part: Batch) -> torch.Tensor:
    logits, labels = answer_logits(model, part.labels, input_ids=part.input_ids, attention_mask=part.attention_mask)
    return mean_nll(logits, labels)


def test_first_fit_rows_fill_rows_up_to_capacity_and_place_every_sequence_once():
    lengths = [5, 9, 2, 7, 3, 1, 4]
    rows = first_fit_rows(lengths, capacity=9)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 9 for row in rows)
    assert len(rows) == 4  # 31 tokens need at least 4 rows of 9
    with pytest.raises(ValueError, match="does not fit"):
        first_fit_rows([3, 10], capacity=9)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_packed_losses_and_gradients_equal_padded_ones(arch):
    model = make_model(arch)
    parts = mixed_parts()
    assert supports_packing(model)
    packed = packed_answer_logits(model, parts, PAD)
    for part, (logits, labels) in zip(parts, packed):
        assert logits.shape[1] == labels.shape[1] == int((part.labels != IGNORE_INDEX).sum(1).max()) + 1
        torch.testing.assert_close(mean_nll(logits, labels), padded_nll(model, part), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(sequence_nll(logits, labels).sum(), sequence_nll(
            *answer_logits(model, part.labels, input_ids=part.input_ids, attention_mask=part.attention_mask)).sum(),
            rtol=1e-4, atol=1e-5)

    def gradients(loss_of) -> list[torch.Tensor]:
        model.zero_grad()
        loss_of().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    weights = (1.0, -0.5, 2.0)  # a forget part ascended, as GradDiff does
    padded = gradients(lambda: sum(w * padded_nll(model, p).mean() for w, p in zip(weights, parts)))
    packed_grads = gradients(lambda: sum(w * mean_nll(*s).mean()
                                         for w, s in zip(weights, packed_answer_logits(model, parts, PAD))))
    assert len(packed_grads) == len(padded) > 0
    for a, b in zip(packed_grads, padded):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)


def test_packing_puts_several_sequences_in_a_row():
    lengths = [int(n) for part in mixed_parts() for n in part.attention_mask.sum(1)]
    rows = first_fit_rows(lengths, max(lengths))
    assert len(rows) < len(lengths)  # the test above exercised packed rows, not one sequence per row


class IgnoresPositionIds(LlamaForCausalLM):
    """A model that numbers positions itself and so lets packed sequences attend to each other."""

    def forward(self, input_ids=None, position_ids=None, **kwargs):
        return super().forward(input_ids=input_ids, **kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_model_that_ignores_position_ids_is_not_packed(dtype):
    config = make_model("llama").config
    torch.manual_seed(0)
    assert not supports_packing(IgnoresPositionIds(config).to(dtype).eval())
    assert supports_packing(make_model("llama", dtype))  # the same architecture honouring them is packed


def test_packing_refuses_left_padded_rows():
    part = mixed_parts()[1]
    flipped = Batch(part.input_ids.flip(1), part.attention_mask.flip(1), part.labels.flip(1))
    with pytest.raises(ValueError, match="right-padded"):
        packed_answer_logits(make_model("llama"), [flipped], PAD)


class Wrapped(torch.nn.Module):
    """What DDP, DeepSpeed and FSDP hand a Trainer's loss: the model kept as `.module`."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, **inputs):
        return self.module(**inputs)


def test_a_wrapped_model_is_packed_through_its_wrapper():
    model = make_model("qwen2")
    wrapped = Wrapped(model)
    assert supports_packing(wrapped)
    parts = mixed_parts()
    for (logits, labels), part in zip(packed_answer_logits(wrapped, parts, PAD), parts):
        assert logits.shape[1] == labels.shape[1] < part.labels.shape[1]  # the head saw answer positions only
        torch.testing.assert_close(mean_nll(logits, labels), padded_nll(model, part), rtol=1e-4, atol=1e-5)
