"""WGA (weighted gradient ascent): GA whose per-token weight p(y_t)^beta fades out forgotten tokens."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.losses import mean_nll, token_log_probs, wga_loss
from obliviate.methods.trainer import METHODS, UnlearnTrainer


@dataclasses.dataclass
class WGAConfig(GradDiffConfig):
    """`beta` sharpens the weights (0 gives plain token-level GA)."""

    beta: float = 1.0


@METHODS.register("wga")
class WeightedGradientAscent(UnlearnTrainer):
    """Loss = gamma * mean_t p(y_t)^beta log p(y_t) on forget tokens + alpha * retain NLL."""

    config_class = WGAConfig
    needs_retain = True

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        forget, retain = inputs["forget"], inputs["retain"]
        token_logp, mask = token_log_probs(self.logits(model, forget), forget["labels"])
        retain_nll = mean_nll(self.logits(model, retain), retain["labels"]).mean()
        forget_loss = wga_loss(token_logp, mask, self.hparams.beta)
        loss = self.hparams.gamma * forget_loss + self.hparams.alpha * retain_nll
        return (loss, None) if return_outputs else loss
