"""LUNAR: redirect forget activations along a refusal direction by refitting one down-projection.

The refusal direction is mean(layer output at the last prompt token of prompts the model already
refuses) - mean(the same on the forget prompts). The layer's `down_proj` is then fitted by
gradient descent so that, at forget-prompt positions, its output equals the original output +
coeff * direction, while at retain positions it keeps its original output. Nothing else changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from obliviate.chat import chat_prompt, pad_batch
from obliviate.hooks import down_proj_path, down_proj_weight, get_module, layer_path
from obliviate.methods.data import pad_token_id
from obliviate.methods.losses import IGNORE_INDEX, activation_mse, lunar_target, refusal_direction
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer, MethodConfig, Part, module_io


@dataclasses.dataclass
class LunarConfig(MethodConfig):
    """`refusal_prompts` are questions the model already refuses (required); `coeff` scales the
    direction; `retain_weight` weighs keeping retain outputs."""

    layer: int = -10  # counts from the end: LUNAR's layer 22 of Llama-3-8B's 32
    coeff: float = 2.0
    retain_weight: float = 1.0
    refusal_prompts: list[str] = dataclasses.field(default_factory=list)
    learning_rate: float = 1e-2
    epochs: float = 20.0


@torch.no_grad()
def last_prompt_activations(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    module: nn.Module,
    questions: Sequence[str],
    batch_size: int = 64,
) -> torch.Tensor:
    """(n, d) output of `module` at the last token of each chat-formatted question."""
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(questions), batch_size):
        prompts = [chat_prompt(tokenizer, q) for q in questions[start : start + batch_size]]
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        part = {
            "input_ids": pad_batch(ids, pad_token_id(tokenizer)).to(device),
            "attention_mask": pad_batch([[1] * len(i) for i in ids], 0).to(device),
        }
        _, output = module_io(model, module, part)
        last = torch.tensor([len(i) - 1 for i in ids], device=output.device)
        rows.append(output[torch.arange(len(ids), device=output.device), last])
    return torch.cat(rows)


@METHODS.register("lunar")
class Lunar(ForgetRetainTrainer):
    """Loss = MSE(down_proj(k_f), W0 k_f + coeff*direction) on forget prompt tokens
    + retain_weight * MSE(down_proj(k_r), W0 k_r) on retain tokens; only that weight trains."""

    config_class = LunarConfig
    supports_lora = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        hp: LunarConfig = self.hparams
        if not hp.refusal_prompts:
            raise ValueError(
                "lunar needs refusal_prompts: questions the model already refuses "
                "(the refusal direction is measured on them)"
            )
        self.down_proj = get_module(self.model, down_proj_path(self.model, hp.layer))
        block = get_module(self.model, layer_path(self.model, hp.layer))
        for parameter in self.model.parameters():
            parameter.requires_grad_(parameter is self.down_proj.weight)
        self.original_weight = down_proj_weight(self.down_proj).detach().clone()
        bias = getattr(self.down_proj, "bias", None)
        self.original_bias = None if bias is None else bias.detach().clone()
        tokenizer = self.processing_class
        self.direction = refusal_direction(
            last_prompt_activations(self.model, tokenizer, block, hp.refusal_prompts),
            last_prompt_activations(self.model, tokenizer, block, self.train_dataset.forget_questions),
        )

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        keys, outputs = module_io(model, self.down_proj, forget, stop=model is self.model)
        target = lunar_target(self._original_output(keys), self.direction, self.hparams.coeff)
        prompt_tokens = forget["attention_mask"].bool() & (forget["labels"] == IGNORE_INDEX)
        return activation_mse(outputs, target, prompt_tokens)

    def retain_loss(self, model: nn.Module, retain: Part) -> torch.Tensor:
        keys, outputs = module_io(model, self.down_proj, retain, stop=model is self.model)
        return activation_mse(outputs, self._original_output(keys), retain["attention_mask"].bool())

    def loss_weights(self) -> tuple[float, float]:
        return 1.0, self.hparams.retain_weight

    def _original_output(self, keys: torch.Tensor) -> torch.Tensor:
        """What the down-projection returned for `keys` before training."""
        bias = None if self.original_bias is None else self.original_bias.to(keys.dtype)
        return F.linear(keys.detach(), self.original_weight.to(keys.dtype), bias)
