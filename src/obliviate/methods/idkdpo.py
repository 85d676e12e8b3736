"""IdkDPO: DPO that prefers a refusal ("I don't know") over the true forget answer, plus retain NLL."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.losses import dpo_loss, sequence_nll
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer

DEFAULT_IDK_ANSWERS = (
    "I don't know.",
    "I'm not sure about that.",
    "I can't answer that.",
    "I have no information about that.",
)


@dataclasses.dataclass
class IdkDPOConfig(GradDiffConfig):
    """`beta` is DPO's inverse temperature; `idk_answers` are the preferred answers used when no
    per-question targets are given (one drawn per forget question from `seed`)."""

    beta: float = 0.1
    idk_answers: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_IDK_ANSWERS))

    def targets_for(self, forget_count: int, targets: Sequence[str] | None) -> list[str]:
        if targets is not None:
            return list(targets)
        if not self.idk_answers:
            raise ValueError("idkdpo needs targets or a non-empty idk_answers list")
        rng = random.Random(self.seed)
        return [rng.choice(self.idk_answers) for _ in range(forget_count)]


@METHODS.register("idkdpo")
class IdkDPO(ForgetRetainTrainer):
    """Loss = gamma * DPO(win = refusal target, lose = true answer) + alpha * retain NLL."""

    config_class = IdkDPOConfig
    needs_reference = True
    uses_targets = True

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        win, lose = inputs["target"], inputs["forget"]
        return dpo_loss(
            -sequence_nll(*self.answer_logits(model, win)),
            -sequence_nll(*self.reference_answer_logits(win)),
            -sequence_nll(*self.answer_logits(model, lose)),
            -sequence_nll(*self.reference_answer_logits(lose)),
            self.hparams.beta,
        )
