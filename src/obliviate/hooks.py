"""Address modules by their Hugging Face paths and hook them safely.

One `add_hooks` context manager that always removes what it registered, and helpers that
find the MLP down-projection of a layer across architectures (Llama, Qwen2, Mistral, Phi-3,
GPT-2), so analysis code and weight-edit code address the same object.
"""

from __future__ import annotations

import contextlib
import weakref
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


def layer_hidden(output: object) -> torch.Tensor:
    """The hidden states a decoder layer returned (a tensor, or the first item of a tuple)."""
    return output[0] if isinstance(output, tuple) else output  # type: ignore[return-value]


def with_layer_hidden(output: object, hidden: torch.Tensor) -> object:
    """A decoder layer's output, shaped as `output` (tensor or tuple), carrying `hidden`."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


class _Replay(nn.Module):
    """Stands in for a decoder layer: returns `produce()` whatever it is given, or with no
    `produce` passes its hidden states on untouched (a layer below the replayed one)."""

    def __init__(self, produce: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.produce = produce

    def forward(self, *args: object, **kwargs: object) -> object:
        if self.produce is None:
            return args[0] if args else kwargs["hidden_states"]
        return self.produce()


@contextlib.contextmanager
def start_above_layer(model: nn.Module, layer: int, produce: Callable[[], object]) -> Iterator[None]:
    """Within the block, decoder layers 0..`layer` do not run: layer `layer` returns `produce()`,
    e.g. what it returned in an earlier pass, changed, and the layers below pass their input on.
    A forward pass then computes only the embeddings and the layers above; the original layers
    are always put back."""
    container_path, _ = _layout(model)
    container = model.get_submodule(container_path)
    n = len(container)
    top = layer % n
    originals = [container[i] for i in range(top + 1)]
    try:
        for i in range(top + 1):
            container[i] = _Replay(produce if i == top else None)
        yield
    finally:
        for i, original in enumerate(originals):
            container[i] = original


def module_call(model: nn.Module, module: nn.Module, stop: bool = True, **inputs: object) -> tuple[tuple, object]:
    """Run `model` on `inputs` and return the positional arguments and the output of `module`
    (its first call). With `stop`, the forward pass ends there; pass `stop=False` for a model
    wrapped by DDP/FSDP, whose forward must run to the end."""
    captured: list[tuple[tuple, object]] = []

    def grab(_module: nn.Module, args: tuple, output: object) -> None:
        if not captured:
            captured.append((args, output))
        if stop:
            raise StopForward

    with contextlib.suppress(StopForward), add_hooks(module_forward_hooks=[(module, grab)]):
        model(**inputs, use_cache=False)
    if not captured:
        raise RuntimeError(f"{type(module).__name__} was not called in the forward pass")
    return captured[0]


@torch.no_grad()
def layer_output(model: nn.Module, layer: int, **inputs: object) -> object:
    """What decoder layer `layer` returns on `inputs` (a tensor or a tuple); the layers above it
    are not run."""
    return module_call(model, model.get_submodule(layer_path(model, layer)), **inputs)[1]


_ADDS_TO_RESIDUAL: weakref.WeakKeyDictionary[nn.Module, dict[int, bool]] = weakref.WeakKeyDictionary()


@torch.no_grad()
def mlp_output_adds_to_layer_output(model: nn.Module, layer: int) -> bool:
    """Whether a change of layer `layer`'s down-projection output reaches the layer's output
    unchanged, as in Llama, Qwen2, Mistral, Phi-3 and GPT-2 (the MLP output is added to the
    residual stream), but not where a norm follows the MLP (Gemma 2). Checked once per model and
    layer, on a 4-token input in eval mode, with a random change."""
    known = _ADDS_TO_RESIDUAL.setdefault(model, {})
    if layer not in known:
        down = model.get_submodule(down_proj_path(model, layer))
        device = next(model.parameters()).device
        ids = torch.arange(1, 5, device=device).unsqueeze(0) % model.get_input_embeddings().num_embeddings
        change: list[torch.Tensor] = []

        def shift(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            if not change:
                generator = torch.Generator(device="cpu").manual_seed(0)
                scale = float(output.float().pow(2).mean().sqrt()) + 1e-3
                change.append((torch.randn(output.shape, generator=generator) * scale).to(output.device, output.dtype))
            return output + change[0]

        was_training = model.training
        model.eval()
        try:
            plain = layer_hidden(layer_output(model, layer, input_ids=ids)).float()
            with add_hooks(module_forward_hooks=[(down, shift)]):
                shifted = layer_hidden(layer_output(model, layer, input_ids=ids)).float()
        finally:
            model.train(was_training)
        expected = change[0].float()
        known[layer] = bool(torch.allclose(shifted - plain, expected, rtol=1e-2, atol=1e-3 * float(expected.abs().max())))
    return known[layer]
