"""SimNPO: NPO without a reference model, on length-normalised forget NLL, plus retain NLL."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.losses import mean_nll, simnpo_loss
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer


@dataclasses.dataclass
class SimNPOConfig(GradDiffConfig):
    """`beta` is the inverse temperature, `delta` the NLL margin beyond which the forget term saturates."""

    beta: float = 4.5
    delta: float = 0.0


@METHODS.register("simnpo")
class SimNPO(ForgetRetainTrainer):
    """Loss = gamma * SimNPO(mean forget NLL) + alpha * retain NLL."""

    config_class = SimNPOConfig

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        return simnpo_loss(
            mean_nll(*self.answer_logits(model, forget)), self.hparams.beta, self.hparams.delta
        )
