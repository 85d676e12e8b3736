"""Packed forward passes: several sequences share a row, so no compute goes to padding.

A padded batch of short question/answer pairs of mixed lengths (TRU's forget and retain
answers: 14-23 and 16 tokens on average, padded to the longest of 16 rows) leaves ~40% of its
slots empty, and its LM head (the largest matrix product of a small model) runs on every
position after the earliest answer start. A packed pass lays the sequences end to end in rows
(first-fit decreasing, each row as long as the longest sequence), restarts the position ids at
each sequence and passes no attention mask: Hugging Face models then build a mask that keeps
attention inside each sequence. The LM head sees only the positions that predict an answer token.
Whether a model honours packed position ids is checked once per model (`supports_packing`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from obliviate.hooks import add_hooks
from obliviate.methods.losses import IGNORE_INDEX

_SUPPORTS_PACKING: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


class Batch(NamedTuple):
    """One right-padded batch part: ids, attention mask (1 for real tokens), labels (-100 unscored)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


def first_fit_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` grouped into rows of total length <= `capacity`, longest first
    (first-fit decreasing: within 22% of the fewest rows possible)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        length = lengths[index]
        if length > capacity:
            raise ValueError(f"a sequence of {length} tokens does not fit in rows of {capacity}")
        for row, free in enumerate(room):
            if length <= free:
                rows[row].append(index)
                room[row] -= length
                break
        else:
            rows.append([index])
            room.append(capacity - length)
    return rows


def _real_lengths(part: Batch) -> list[int]:
    lengths = part.attention_mask.sum(dim=1)
    if part.attention_mask.shape[1] and not bool(
        (part.attention_mask == (torch.arange(part.attention_mask.shape[1], device=lengths.device) < lengths[:, None]).to(part.attention_mask)).all()
    ):
        raise ValueError("packing needs right-padded rows (attention mask ones, then zeros)")
    return lengths.tolist()


def packed_answer_logits(
    model: nn.Module, parts: Sequence[Batch], pad_id: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each part, `(logits, labels)` of its answer tokens only, from one packed forward pass.

    Row b of a part keeps its order: `logits[b, j]` predicts `labels[b, j + 1]`, the j-th answer
    token of sequence b (labels -100 past its end), so `token_log_probs`, `mean_nll` and
    `answer_mask` read them as they read padded logits, with the same values.
    """
    sequences = [(p, b, n) for p, part in enumerate(parts) for b, n in enumerate(_real_lengths(part))]
    capacity = max((n for _, _, n in sequences), default=0)
    if capacity == 0:
        raise ValueError("nothing to pack: every sequence is empty")
    rows = first_fit_rows([n for _, _, n in sequences], capacity)
    device = parts[0].input_ids.device
    input_ids = torch.full((len(rows), capacity), pad_id, dtype=torch.long, device=device)
    position_ids = torch.zeros((len(rows), capacity), dtype=torch.long, device=device)
    scored: list[list[tuple[int, int, int]]] = [[] for _ in parts]  # per part: (row b, flat position, label)
    for r, members in enumerate(rows):
        offset = 0
        for s in members:
            p, b, n = sequences[s]
            input_ids[r, offset : offset + n] = parts[p].input_ids[b, :n]
            position_ids[r, offset : offset + n] = torch.arange(n)
            labels = parts[p].labels[b, 1:n].tolist()
            scored[p].extend((b, r * capacity + offset + t, label) for t, label in enumerate(labels) if label != IGNORE_INDEX)
            offset += n
        position_ids[r, offset:] = torch.arange(capacity - offset)  # the tail is a sequence of its own
    for p in range(len(parts)):
        scored[p].sort(key=lambda item: item[:2])
    flat = torch.tensor([pos for part in scored for _, pos, _ in part], dtype=torch.long, device=device)

    selected: list[bool] = []

    def keep_answer_positions(_module: nn.Module, args: tuple) -> tuple:
        selected.append(True)
        hidden = args[0]
        return (hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat).unsqueeze(0), *args[1:])

    head = _unwrapped(model).get_output_embeddings()
    hooks = [(head, keep_answer_positions)] if head is not None else []
    with add_hooks(module_forward_pre_hooks=hooks):
        logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
    # a model that applies its head without calling the module gives the logits of every position
    logits = logits[0] if selected else logits.reshape(-1, logits.shape[-1]).index_select(0, flat)

    results = []
    start = 0
    for p, part in enumerate(parts):
        rows_of = torch.tensor([b for b, _, _ in scored[p]], dtype=torch.long, device=device)
        counts = torch.bincount(rows_of, minlength=part.input_ids.shape[0])
        width = int(counts.max()) + 1 if len(rows_of) else 1
        columns = torch.arange(len(rows_of), device=device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        part_logits = logits.new_zeros((part.input_ids.shape[0], width, logits.shape[-1]))
        part_logits = part_logits.index_put((rows_of, columns), logits[start : start + len(rows_of)])
        labels = torch.full((part.input_ids.shape[0], width), IGNORE_INDEX, dtype=torch.long, device=device)
        labels[rows_of, columns + 1] = torch.tensor([label for _, _, label in scored[p]], dtype=torch.long, device=device)
        results.append((part_logits, labels))
        start += len(rows_of)
    return results


def _unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DDP / DeepSpeed / FSDP wrapper (which keep it as `.module`)."""
    return model if hasattr(model, "get_output_embeddings") else getattr(model, "module", model)


def supports_packing(model: nn.Module) -> bool:
    """Whether `model` keeps packed sequences apart: a packed pass over three short sequences (two
    of them sharing a row) gives the logits of separate passes. Checked once per model, in eval
    mode, without gradients."""
    model = _unwrapped(model)
    if model not in _SUPPORTS_PACKING:
        was_training = model.training
        model.eval()
        try:
            vocab = model.get_input_embeddings().num_embeddings
            device = next(model.parameters()).device
            sequences = [torch.arange(start, start + n, device=device) % vocab for start, n in ((3, 6), (11, 4), (17, 2))]
            with torch.no_grad():
                alone = [model(input_ids=ids[None], use_cache=False).logits[0, :-1].float() for ids in sequences]
                parts = [Batch(ids[None], torch.ones_like(ids)[None], ids[None]) for ids in sequences]
                packed = [logits[0, :-1].float() for logits, _ in packed_answer_logits(model, parts, pad_id=0)]
            tol = max(1e-3, 4 * torch.finfo(next(model.parameters()).dtype).eps)  # bf16 rounds at ~0.4%
            supported = all(
                a.shape == b.shape and torch.allclose(a, b, rtol=tol, atol=tol * float(a.abs().max()))
                for a, b in zip(alone, packed)
            )
        except (AttributeError, TypeError, ValueError, RuntimeError):  # no position ids taken, say
            supported = False
        finally:
            model.train(was_training)
        _SUPPORTS_PACKING[model] = supported
    return _SUPPORTS_PACKING[model]
