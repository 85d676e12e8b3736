"""RMU (representation misdirection): scramble one layer's activations on forget data.

Forget-token activations at the output of decoder layer `layer` are pulled toward a fixed random
control vector c*u/|u|; retain activations are held to those of a frozen copy. Only the MLP
down-projections of `update_layers` (at or before `layer`) are trained, as in the WMDP code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from obliviate.hooks import down_proj_path, get_module, layer_path, num_layers
from obliviate.methods.losses import activation_mse, rmu_control_vector
from obliviate.methods.trainer import METHODS, ForgetRetainTrainer, MethodConfig, Part, module_io


@dataclasses.dataclass
class RMUConfig(MethodConfig):
    """`steering_coeff` is |c| (scale it with the model's activation norms); `alpha` weighs retain."""

    layer: int = 7  # the WMDP settings for Zephyr-7B
    update_layers: list[int] = dataclasses.field(default_factory=lambda: [5, 6, 7])
    steering_coeff: float = 20.0
    alpha: float = 100.0
    learning_rate: float = 5e-5


@METHODS.register("rmu")
class RMU(ForgetRetainTrainer):
    """Loss = MSE(h_forget, c) + alpha * MSE(h_retain, h_retain of the frozen copy), over real tokens."""

    config_class = RMUConfig
    needs_reference = True
    supports_lora = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        hp: RMUConfig = self.hparams
        n = num_layers(self.model)
        self.steered = get_module(self.model, layer_path(self.model, hp.layer))
        self.reference_steered = get_module(self.reference, layer_path(self.model, hp.layer))
        if not hp.update_layers:
            raise ValueError("rmu needs at least one layer in update_layers")
        late = [i for i in hp.update_layers if i % n > hp.layer % n]
        if late:
            raise ValueError(
                f"rmu update_layers {late} come after the steered layer {hp.layer}: they get no gradient"
            )
        trained = {id(get_module(self.model, down_proj_path(self.model, i)).weight) for i in hp.update_layers}
        for parameter in self.model.parameters():
            parameter.requires_grad_(id(parameter) in trained)
        self.control = rmu_control_vector(self.model.config.hidden_size, hp.steering_coeff, hp.seed)

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget = inputs["forget"]
        _, forget_act = module_io(model, self.steered, forget, stop=model is self.model)
        control = self.control.to(forget_act.device)
        return activation_mse(forget_act, control, forget["attention_mask"].bool())

    def retain_loss(self, model: nn.Module, retain: Part) -> torch.Tensor:
        _, retain_act = module_io(model, self.steered, retain, stop=model is self.model)
        with torch.no_grad():
            _, frozen_act = module_io(self.reference, self.reference_steered, retain)
        return activation_mse(retain_act, frozen_act, retain["attention_mask"].bool())

    def loss_weights(self) -> tuple[float, float]:
        return 1.0, self.hparams.alpha
