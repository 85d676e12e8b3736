"""KL: gradient ascent on the forget set, retain predictions held to the starting model by KL."""

from __future__ import annotations

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiff
from obliviate.methods.losses import answer_mask, kl_to_reference
from obliviate.methods.trainer import METHODS, Part


@METHODS.register("kl")
class KLMinimization(GradDiff):
    """Loss = -gamma * forget NLL + alpha * KL(reference || model) on the retain answer positions."""

    needs_reference = True

    def retain_loss(self, model: nn.Module, retain: Part) -> torch.Tensor:
        logits, labels = self.answer_logits(model, retain)
        return kl_to_reference(logits, self.reference_answer_logits(retain).logits, answer_mask(labels))
