"""Plain supervised fine-tuning on question/answer pairs, under the unlearning API.

Not an unlearning method: the yardstick for training throughput, the relearning attack (fine-tune
an unlearned model on forget data) and TOFU fine-tuning. It minimises the answer NLL of the
anchor examples (the "forget" part of each batch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from obliviate.methods.losses import mean_nll
from obliviate.methods.trainer import METHODS, UnlearnTrainer


@METHODS.register("finetune")
class FineTune(UnlearnTrainer):
    """Minimise the mean per-token answer NLL of each example."""

    def objective(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        examples = inputs["forget"]
        return mean_nll(*self.answer_logits(model, examples)).mean()
