"""TRU (targeted reasoning unlearning): learn reasoned refusals while ascending the forget NLL.

Objective (Liao, Wang et al., ICLR 2026, Eq. 4), minimised:

    L = L_target + alpha * L_GradDiff
    L_target   = -(1/N) sum_i log P(r_i, s_i | x_i)          SFT on trace r_i then refusal s_i
    L_GradDiff = (1/N) sum_i log P(y_i | x_i) - (lambda/M) sum_j log P(y_j | x_j)
               = -NLL(forget answers) + lambda * NLL(retain answers)

so minimising L_GradDiff *lowers* the forget answers' likelihood (gradient ascent on their NLL)
and raises the retain answers'. Each log P here is the per-token mean over the answer (the paper
writes sequence sums; means keep the long trace from swamping the short answers).

The target for forget question i arrives as one string, `<think>trace</think>` then the refusal,
rendered by the target generators. Ablations are flags: `reasoning: false` trains on the refusal
alone (the trace is cut out), `alpha: 0` drops the GradDiff term, `target_loss: false` drops L_target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from obliviate.methods.data import strip_reasoning
from obliviate.methods.losses import graddiff_loss, mean_nll
from obliviate.methods.trainer import METHODS, MethodConfig, UnlearnTrainer


@dataclasses.dataclass
class TRUConfig(MethodConfig):
    """`alpha` weighs L_GradDiff, `lam` (the paper's lambda) its retain term; the flags are ablations.

    `target_style` picks the offline target generator's style (`full` or `compact`,
    `obliviate.methods.tru_offline`) when the caller builds the targets (`obliviate unlearn`).
    """

    alpha: float = 1.0
    lam: float = 1.0
    reasoning: bool = True
    target_loss: bool = True
    target_style: str = "full"

    def targets_for(self, forget_count: int, targets: Sequence[str] | None) -> list[str] | None:
        if not self.target_loss:
            return None
        if targets is None:
            raise ValueError(
                "tru trains on one reasoning target per forget question "
                "('<think>trace</think>' then the refusal); pass targets="
            )
        texts = list(targets) if self.reasoning else [strip_reasoning(t) for t in targets]
        empty = [i for i, text in enumerate(texts) if not text.strip()]
        if empty:
            cut = "" if self.reasoning else " once the trace is cut"
            raise ValueError(f"tru targets {empty[:5]} are empty{cut}")
        return texts


@METHODS.register("tru")
class TRU(UnlearnTrainer):
    """Loss = target NLL + alpha * (-forget NLL + lam * retain NLL)."""

    config_class = TRUConfig
    needs_retain = True
    uses_targets = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.hparams.target_loss and self.hparams.alpha == 0:
            raise ValueError("tru with target_loss false and alpha 0 has nothing to train")

    def objective(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        hp: TRUConfig = self.hparams
        names = (["target"] if hp.target_loss else []) + (["forget", "retain"] if hp.alpha else [])
        scored = dict(zip(names, self.joint_answer_logits(model, *(inputs[name] for name in names))))
        terms = []
        if hp.target_loss:
            terms.append(mean_nll(*scored["target"]).mean())
        if hp.alpha:
            forget, retain = mean_nll(*scored["forget"]), mean_nll(*scored["retain"])
            terms.append(hp.alpha * graddiff_loss(forget, retain, gamma=1.0, alpha=hp.lam))
        return torch.stack(terms).sum()
