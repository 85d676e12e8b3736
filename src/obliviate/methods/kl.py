"""KL: gradient ascent on the forget set, retain predictions held to the starting model by KL."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.losses import answer_mask, kl_to_reference, mean_nll
from obliviate.methods.trainer import METHODS, UnlearnTrainer


@METHODS.register("kl")
class KLMinimization(UnlearnTrainer):
    """Loss = -gamma * forget NLL + alpha * KL(reference || model) on the retain answer positions."""

    config_class = GradDiffConfig
    needs_retain = True
    needs_reference = True

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        forget, retain = inputs["forget"], inputs["retain"]
        forget_nll = mean_nll(self.logits(model, forget), forget["labels"])
        retain_kl = kl_to_reference(
            self.logits(model, retain), self.reference_logits(retain), answer_mask(retain["labels"])
        )
        loss = -self.hparams.gamma * forget_nll.mean() + self.hparams.alpha * retain_kl
        return (loss, None) if return_outputs else loss
