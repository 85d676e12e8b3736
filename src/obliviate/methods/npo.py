"""NPO (negative preference optimisation) on the forget set, plus retain NLL.

Unlike GA its forget term saturates once an answer is much less likely than under the starting
(reference) model, which slows the collapse into gibberish.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.losses import npo_loss, sequence_nll
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer


@dataclasses.dataclass
class NPOConfig(GradDiffConfig):
    """`beta` is NPO's inverse temperature; `gamma`/`alpha` weigh forget and retain terms."""

    beta: float = 0.1


@METHODS.register("npo")
class NPO(ForgetRetainTrainer):
    """Loss = gamma * NPO(log P(y_f|x_f) vs reference, summed over tokens) + alpha * retain NLL."""

    config_class = NPOConfig
    needs_reference = True

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        return npo_loss(
            -sequence_nll(*self.answer_logits(model, forget)),
            -sequence_nll(*self.reference_answer_logits(forget)),
            self.hparams.beta,
        )
