"""Address modules by their Hugging Face paths and hook them safely.

One `add_hooks` context manager that always removes what it registered, and helpers that
find the MLP down-projection of a layer across architectures (Llama, Qwen2, Mistral, Phi-3,
GPT-2), so analysis code and weight-edit code address the same object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

PreHook = Callable[[nn.Module, tuple], object]
FwdHook = Callable[[nn.Module, tuple, object], object]

# (layers container, MLP down-projection relative to one layer) per architecture family.
_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("model.layers", "mlp.down_proj"),  # Llama, Qwen2, Mistral, Phi-3, Gemma
    ("transformer.h", "mlp.c_proj"),  # GPT-2 (Conv1D: weight stored as in x out)
    ("gpt_neox.layers", "mlp.dense_4h_to_h"),  # Pythia / GPT-NeoX
    ("model.decoder.layers", "fc2"),  # OPT
)


class StopForward(Exception):
    """Raised by a hook to end a forward pass once the activations it needs are in hand, so
    later layers are not computed; the caller catches it around the forward call."""


@contextlib.contextmanager
def add_hooks(
    module_forward_pre_hooks: Sequence[tuple[nn.Module, PreHook]] = (),
    module_forward_hooks: Sequence[tuple[nn.Module, FwdHook]] = (),
) -> Iterator[None]:
    """Register forward (pre-)hooks for the duration of the block; always remove them."""
    handles = []
    try:
        for module, hook in module_forward_pre_hooks:
            handles.append(module.register_forward_pre_hook(hook))
        for module, hook in module_forward_hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def get_module(model: nn.Module, path: str) -> nn.Module:
    """Return the submodule at a dotted Hugging Face path such as `model.layers.7.mlp.down_proj`."""
    try:
        return model.get_submodule(path)
    except AttributeError as err:
        raise ValueError(f"model {type(model).__name__} has no module {path!r}") from err


def _layout(model: nn.Module) -> tuple[str, str]:
    for layers, down in _LAYOUTS:
        try:
            model.get_submodule(layers)
        except AttributeError:
            continue
        return layers, down
    raise ValueError(
        f"unsupported architecture {type(model).__name__}: no decoder layers at any of "
        f"{[layers for layers, _ in _LAYOUTS]}"
    )


def num_layers(model: nn.Module) -> int:
    """Number of decoder layers."""
    return len(model.get_submodule(_layout(model)[0]))


def layer_path(model: nn.Module, layer: int) -> str:
    """Hugging Face path of decoder layer `layer` (negative indices count from the end)."""
    layers, _ = _layout(model)
    n = num_layers(model)
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} out of range for a {n}-layer model")
    return f"{layers}.{layer % n}"


def down_proj_path(model: nn.Module, layer: int) -> str:
    """Hugging Face path of the MLP down-projection of decoder layer `layer`."""
    return f"{layer_path(model, layer)}.{_layout(model)[1]}"


def down_proj_weight(module: nn.Module) -> torch.Tensor:
    """The down-projection weight as (d_out, d_in), whatever the storage (Linear or GPT-2 Conv1D)."""
    weight = module.weight
    return weight.T if is_transposed(module) else weight


def is_transposed(module: nn.Module) -> bool:
    """True for GPT-2 style Conv1D, which stores its weight as (d_in, d_out)."""
    return type(module).__name__ == "Conv1D"
