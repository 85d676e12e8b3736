"""Gradient ascent (GA): maximise the forget answers' NLL, nothing else.

The simplest baseline and the one that most visibly breaks the model (gibberish), which the
benchmarks are meant to show.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from obliviate.methods.losses import mean_nll
from obliviate.methods.trainer import METHODS, UnlearnTrainer


@METHODS.register("ga")
class GradientAscent(UnlearnTrainer):
    """Loss = -mean forget NLL (per-token mean per sequence, averaged over the batch)."""

    def objective(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        return -mean_nll(*self.answer_logits(model, forget)).mean()
