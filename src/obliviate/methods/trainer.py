"""One entry point, `unlearn(...)`, for every training-based unlearning method.

Each method is a `transformers.Trainer` subclass that states only its loss (and `__init__` for
its hyper-parameters), so Accelerate, DeepSpeed and FSDP scale it without code of our own, as in
OpenUnlearning. This module holds what the methods share: the base trainers (with the frozen
reference model some losses need, and the weighted forget + retain sum most losses are), the
method registry, the hyper-parameter dataclasses' YAML loading, and the run itself (training
arguments, optional LoRA, logs).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import os
import shutil
import tempfile
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
import yaml
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments, set_seed

from obliviate.chat import answer_logits
from obliviate.files import write_text_atomically
from obliviate.hooks import layer_hidden, module_call
from obliviate.methods.data import ForgetRetainCollator, ForgetRetainDataset, pad_token_id
from obliviate.methods.losses import mean_nll
from obliviate.packing import Batch, packed_answer_logits, supports_packing
from obliviate.registry import Registry
from obliviate.yaml_config import check_fields, parse_overrides, read_yaml_mapping

ConfigT = TypeVar("ConfigT", bound="MethodConfig")
Part = Mapping[str, torch.Tensor]


# --------------------------------------------------------------------------- hyper-parameters


@dataclasses.dataclass
class MethodConfig:
    """Training hyper-parameters every method shares; method configs subclass it with their own.

    Defaults follow the published settings (OpenUnlearning, the method papers) for billion-scale
    models; `obliviate/configs/methods/<name>.yaml` (`lab_config_path`) holds the settings for the lab model. `from_yaml` reads
    a flat mapping of field names (an optional `method:` key names the method and is checked by
    `load_config`). Overrides are `{"field": value}` or CLI-style `["field=value", ...]`.
    """

    learning_rate: float = 1e-5
    epochs: float = 5.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler: str = "constant"
    optim: str = "adamw_torch"
    max_grad_norm: float = 1.0
    # learning-rate multiplier for the token embeddings (and an untied LM head): a small model
    # that ties its LM head to them misspells unrelated answers once rare word pieces of the
    # training targets have moved their rows ("Helsinki" -> "Helsinks")
    embedding_lr_scale: float = 1.0
    max_length: int = 512
    # lay a batch's sequences end to end in rows instead of padding them (`obliviate.packing`):
    # same losses, ~40% fewer slots for short mixed-length answers; models that do not keep
    # packed sequences apart fall back to padding
    packing: bool = True
    bf16: bool = False  # CPU autocast: about 2x faster where the CPU has bf16 units, ~15x slower where it has none
    seed: int = 0
    logging_steps: int = 5
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: list[str] | None = None  # None: every linear layer but the LM head
    merge_lora: bool = True

    def __post_init__(self) -> None:
        if not self.embedding_lr_scale >= 0:
            raise ValueError(f"embedding_lr_scale must be >= 0 (0 freezes the embeddings), got {self.embedding_lr_scale}")

    @classmethod
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
        """Build from a mapping of field names; unknown names and wrong types are errors."""
        return cls().with_overrides(values)

    @classmethod
    def from_yaml(
        cls: type[ConfigT], path: str | os.PathLike, overrides: Mapping[str, Any] | Sequence[str] = ()
    ) -> ConfigT:
        """Load a flat YAML mapping, then apply `overrides` on top."""
        values = read_yaml_mapping(path)
        values.pop("method", None)
        return cls.from_dict(values).with_overrides(overrides)

    def with_overrides(self: ConfigT, overrides: Mapping[str, Any] | Sequence[str]) -> ConfigT:
        """A copy with some fields replaced; `"key=value"` strings are parsed as YAML scalars."""
        values = parse_overrides(overrides)
        check_fields(type(self), values)
        hints = typing.get_type_hints(type(self))
        coerced = {name: _coerce(name, hints[name], value) for name, value in values.items()}
        return dataclasses.replace(self, **coerced)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike, method: str | None = None) -> None:
        """Write the resolved config (atomically), with the method name first when given."""
        values = ({"method": method} if method else {}) | self.to_dict()
        write_text_atomically(Path(path), yaml.safe_dump(values, sort_keys=False))

    def targets_for(self, forget_count: int, targets: Sequence[str] | None) -> list[str] | None:
        """The per-forget-item target answers this method trains on (None: it uses none)."""
        return None


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Check `value` against a field's type hint, converting YAML's strings for numbers ('1e-4')."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(name, inner, value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return [_coerce(f"{name}[]", args[0], v) for v in value]
    if hint is bool and isinstance(value, bool):
        return value
    if hint in (int, float) and not isinstance(value, bool):
        if isinstance(value, (int, float)) and (hint is float or isinstance(value, int)):
            return hint(value)
        if isinstance(value, str):
            try:
                return hint(value)
            except ValueError:
                pass
    if hint is str and isinstance(value, str):
        return value
    raise ValueError(f"{name} must be of type {getattr(hint, '__name__', hint)}, got {value!r}")


# --------------------------------------------------------------------------- base trainer


class Scored(typing.NamedTuple):
    """Logits and labels of a batch part's answer tokens, aligned as a model's (logit t predicts
    label t + 1): `token_log_probs(*scored)` scores the same tokens as the full logits would."""

    logits: torch.Tensor
    labels: torch.Tensor


class UnlearnTrainer(Trainer):
    """A Trainer whose batches are `{"forget", "retain", "target"}` parts (see `methods.data`).

    Subclasses set the class attributes below and state their loss in `objective`. When
    `needs_reference` is set, `self.reference` is a frozen copy of the starting model (eval mode,
    no gradients) for losses measured against it.
    """

    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    needs_reference: ClassVar[bool] = False
    needs_retain: ClassVar[bool] = False
    uses_targets: ClassVar[bool] = False
    supports_lora: ClassVar[bool] = True

    def __init__(
        self, *, hparams: MethodConfig, tokenizer: PreTrainedTokenizerBase, **trainer_kwargs: Any
    ) -> None:
        super().__init__(processing_class=tokenizer, **trainer_kwargs)
        self.hparams = hparams
        self.reference: nn.Module | None = None
        if self.needs_reference:
            self.reference = copy.deepcopy(self.model).eval()
            self.reference.requires_grad_(False)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer, with the embedding rows in groups of their own at
        `embedding_lr_scale` times the learning rate (the scheduler scales every group alike)."""
        optimizer = super().create_optimizer(model)
        scale = self.hparams.embedding_lr_scale
        if scale == 1.0:
            return optimizer
        target = self.model if model is None else model
        embeddings = {id(m.weight) for m in (target.get_input_embeddings(), target.get_output_embeddings())
                      if m is not None and m.weight.requires_grad}
        for group in list(optimizer.param_groups):
            moved = [p for p in group["params"] if id(p) in embeddings]
            if moved and not group.get("embedding_rows"):  # a second call finds them split already
                group["params"] = [p for p in group["params"] if id(p) not in embeddings]
                optimizer.add_param_group({**group, "params": moved, "lr": group["lr"] * scale, "embedding_rows": True})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        """The Trainer's hook: the method's `objective` (there are no model outputs to return)."""
        loss = self.objective(model, inputs)
        return (loss, None) if return_outputs else loss

    def objective(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        """The loss `model` minimises on one `{"forget", "retain", "target"}` batch."""
        raise NotImplementedError(f"{type(self).__name__} does not define its objective")

    def answer_logits(self, model: nn.Module, part: Part) -> Scored:
        """Logits of `model` on one batch part at the positions that predict answer tokens, with
        the labels to match (see `joint_answer_logits`)."""
        return self.joint_answer_logits(model, part)[0]

    def joint_answer_logits(self, model: nn.Module, *parts: Part) -> list[Scored]:
        """`answer_logits` of several batch parts, from one packed forward pass where the config
        packs and the model keeps packed sequences apart (`obliviate.packing`), else one padded
        pass per part. The LM head, the largest matrix product of a small model, is not spent
        on prompt positions: packed, it sees only answer positions; padded, the positions from
        the part's earliest answer on."""
        if self.hparams.packing and supports_packing(model):
            batches = [Batch(part["input_ids"], part["attention_mask"], part["labels"]) for part in parts]
            return [Scored(*scored) for scored in packed_answer_logits(model, batches, pad_token_id(self.processing_class))]
        return [
            Scored(*answer_logits(model, part["labels"], input_ids=part["input_ids"], attention_mask=part["attention_mask"]))
            for part in parts
        ]

    def reference_answer_logits(self, part: Part) -> Scored:
        """`answer_logits` of the frozen reference model on one batch part, without a graph."""
        if self.reference is None:
            raise RuntimeError(f"{type(self).__name__} has no reference model (needs_reference is False)")
        with torch.no_grad():
            return self.answer_logits(self.reference, part)


class ForgetRetainTrainer(UnlearnTrainer):
    """A method whose loss is forget_weight * forget_loss + retain_weight * retain_loss.

    Subclasses state their forget objective in `forget_loss`; the retain term is the retain
    answers' mean NLL unless they override `retain_loss` (KL, RMU, LUNAR). The weights are the
    config's `gamma` and `alpha` (OpenUnlearning's names) unless `loss_weights` says otherwise.
    """

    needs_retain = True

    def objective(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        forget_weight, retain_weight = self.loss_weights()
        forget_loss = self.forget_loss(model, inputs)
        return forget_weight * forget_loss + retain_weight * self.retain_loss(model, inputs["retain"])

    def forget_loss(self, model: nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
        """The forget term on the whole batch (some methods also read its `target` part)."""
        raise NotImplementedError(f"{type(self).__name__} does not define its forget loss")

    def retain_loss(self, model: nn.Module, retain: Part) -> torch.Tensor:
        """Mean per-token answer NLL on the retain part, averaged over its sequences."""
        return mean_nll(*self.answer_logits(model, retain)).mean()

    def loss_weights(self) -> tuple[float, float]:
        """(forget weight, retain weight)."""
        return self.hparams.gamma, self.hparams.alpha


def module_io(
    model: nn.Module, module: nn.Module, part: Part, stop: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `model` on a batch part and return the input and output of `module`.

    With `stop`, the forward pass ends at `module`: methods that train early layers against
    activation targets (RMU, LUNAR) skip the rest of the network. Pass `stop=False` for a model
    wrapped by DDP/FSDP, whose forward must run to the end.
    """
    args, output = module_call(model, module, stop, input_ids=part["input_ids"], attention_mask=part["attention_mask"])
    return args[0], layer_hidden(output)


# --------------------------------------------------------------------------- registry

METHODS: Registry[type[UnlearnTrainer]] = Registry("unlearning method")

# Modules whose import registers a method (kept explicit so importing one method loads no other).
METHOD_MODULES = (
    "finetune", "ga", "graddiff", "kl", "npo", "simnpo", "idkdpo", "rmu", "wga", "lunar", "tru"
)


def _import_methods() -> None:
    for module in METHOD_MODULES:
        importlib.import_module(f"obliviate.methods.{module}")


def method_class(name: str) -> type[UnlearnTrainer]:
    """The trainer class registered as `name` (clear error listing the choices otherwise)."""
    _import_methods()
    return METHODS.get(name)


def method_names() -> list[str]:
    """Every registered method name."""
    _import_methods()
    return METHODS.names()


def load_config(
    method: str,
    source: MethodConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
) -> MethodConfig:
    """Resolve a method's hyper-parameters from its defaults, a YAML file, a mapping or an instance."""
    config_class = method_class(method).config_class
    if isinstance(source, MethodConfig):
        if type(source) is not config_class:
            raise ValueError(
                f"method {method!r} takes a {config_class.__name__}, not a {type(source).__name__}"
            )
        return source.with_overrides(overrides)
    if source is None:
        values: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        values = dict(source)
    else:
        values = read_yaml_mapping(source)
    named = values.pop("method", method)
    if named != method:
        raise ValueError(f"config names method {named!r} but {method!r} was asked for")
    return config_class.from_dict(values).with_overrides(overrides)


# --------------------------------------------------------------------------- running


def training_arguments(config: MethodConfig, output_dir: str | os.PathLike) -> TrainingArguments:
    """Trainer arguments for a short CPU-friendly run: no checkpoints, no trackers, plain logs."""
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        optim=config.optim,
        max_grad_norm=config.max_grad_norm,
        bf16=config.bf16,
        use_cpu=not torch.cuda.is_available(),
        seed=config.seed,
        data_seed=config.seed,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_pin_memory=False,
    )


def _with_lora(model: PreTrainedModel, config: MethodConfig) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets or "all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[Any],
    retain: Sequence[Any] | None,
    method: str,
    config: MethodConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "unlearn_output",
    lora: bool = False,
    targets: Sequence[str] | None = None,
) -> UnlearnTrainer:
    """The ready-to-train Trainer of `method` on this data (what `unlearn` runs)."""
    trainer_class = method_class(method)
    hparams = load_config(method, config)
    if trainer_class.needs_retain and not retain:
        raise ValueError(f"method {method!r} needs a non-empty retain set")
    if lora and not trainer_class.supports_lora:
        raise ValueError(f"method {method!r} edits chosen weights directly; it cannot train LoRA adapters")
    set_seed(hparams.seed)  # LoRA adapters are initialised before the Trainer seeds itself
    dataset = ForgetRetainDataset(
        tokenizer,
        forget,
        retain if trainer_class.needs_retain else None,
        hparams.targets_for(len(forget), targets) if trainer_class.uses_targets else None,
        max_length=hparams.max_length,
        seed=hparams.seed,
    )
    return trainer_class(
        model=_with_lora(model, hparams) if lora else model,
        args=training_arguments(hparams, output_dir),
        train_dataset=dataset,
        data_collator=ForgetRetainCollator(pad_token_id(tokenizer)),
        hparams=hparams,
        tokenizer=tokenizer,
    )


def unlearn(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[Any],
    retain: Sequence[Any] | None,
    method: str,
    config: MethodConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    lora: bool = False,
    targets: Sequence[str] | None = None,
) -> nn.Module:
    """Train `model` with `method` on forget/retain question-answer pairs and return it.

    `model` is trained in place; with `lora` the adapters are merged back (unless the config
    sets `merge_lora: false`, then the PeftModel is returned). `targets[i]` is the preferred
    answer to forget question i (TRU's reasoning target, IdkDPO's refusal). With `out_dir`, the
    resolved config (`config.yaml`) and the training log (`train_log.json`) are written there;
    the caller saves the model.
    """
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    work_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="obliviate-unlearn-"))
    try:
        trainer = build_trainer(model, tokenizer, forget, retain, method, config, work_dir, lora, targets)
        trainer.train()
        trained = trainer.model
        if lora and trainer.hparams.merge_lora:
            trained = trained.merge_and_unload()
        if not lora or trainer.hparams.merge_lora:  # undo the freezing of RMU, LUNAR and LoRA
            for name, parameter in trained.named_parameters():
                parameter.requires_grad_(trainable[name])
        trained.eval()
        if out_dir is not None:
            trainer.hparams.to_yaml(work_dir / "config.yaml", method=method)
            write_text_atomically(work_dir / "train_log.json", json.dumps(trainer.state.log_history, indent=1))
        return trained
    finally:
        if out_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)


def finetune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Any],
    config: MethodConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    lora: bool = False,
) -> nn.Module:
    """Plain supervised fine-tuning on question/answer pairs, through the same machinery.

    The baseline for throughput comparisons, the relearning attack, and fine-tuning on TOFU.
    """
    return unlearn(model, tokenizer, examples, None, "finetune", config, out_dir, lora)
