"""GradDiff: gradient ascent on the forget set plus ordinary NLL on the retain set."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.methods.losses import mean_nll
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer, MethodConfig


@dataclasses.dataclass
class GradDiffConfig(MethodConfig):
    """`gamma` weighs the forget term, `alpha` the retain term (OpenUnlearning's names)."""

    gamma: float = 1.0
    alpha: float = 1.0


@METHODS.register("graddiff")
class GradDiff(ForgetRetainTrainer):
    """Loss = -gamma * forget NLL + alpha * retain NLL (per-token means per sequence)."""

    config_class = GradDiffConfig

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        return -mean_nll(*self.answer_logits(model, forget)).mean()
