"""GradDiff: gradient ascent on the forget set plus ordinary NLL on the retain set."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.methods.losses import graddiff_loss, mean_nll
from obliviate.methods.trainer import METHODS, MethodConfig, UnlearnTrainer


@dataclasses.dataclass
class GradDiffConfig(MethodConfig):
    """`gamma` weighs the forget term, `alpha` the retain term (OpenUnlearning's names)."""

    gamma: float = 1.0
    alpha: float = 1.0


@METHODS.register("graddiff")
class GradDiff(UnlearnTrainer):
    """Loss = -gamma * forget NLL + alpha * retain NLL (per-token means per sequence)."""

    config_class = GradDiffConfig
    needs_retain = True

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        forget, retain = inputs["forget"], inputs["retain"]
        loss = graddiff_loss(
            mean_nll(self.logits(model, forget), forget["labels"]),
            mean_nll(self.logits(model, retain), retain["labels"]),
            self.hparams.gamma,
            self.hparams.alpha,
        )
        return (loss, None) if return_outputs else loss
