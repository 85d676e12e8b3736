"""WGA (weighted gradient ascent): GA whose per-token weight p(y_t)^beta fades out forgotten tokens."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.losses import token_log_probs, wga_loss
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer


@dataclasses.dataclass
class WGAConfig(GradDiffConfig):
    """`beta` sharpens the weights (0 gives plain token-level GA)."""

    beta: float = 1.0


@METHODS.register("wga")
class WeightedGradientAscent(ForgetRetainTrainer):
    """Loss = gamma * mean_t p(y_t)^beta log p(y_t) on forget tokens + alpha * retain NLL."""

    config_class = WGAConfig

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        token_logp, mask = token_log_probs(*self.answer_logits(model, forget))
        return wga_loss(token_logp, mask, self.hparams.beta)
