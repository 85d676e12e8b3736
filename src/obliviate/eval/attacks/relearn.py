"""Relearning attack: a few fine-tuning steps on part of the forget set, then test the rest.

Unlearning that only hides knowledge is undone by brief fine-tuning: training on some forgotten
facts brings back others it never touched (Hu et al., 2024; Lynch et al., 2024). The forget set is
split into facts used for relearning and facts held out; recovery is measured on the held-out ones
only (by the harness, with the usual metrics). Items that ask for the same fact in different words
(a lab `QA`'s subject and attribute) always fall on the same side, so a held-out fact is never
trained in another phrasing. Fine-tuning is the plain `finetune` method of `obliviate.methods`, on
a deep copy: the input model is never modified.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.eval.attacks.base import ATTACKS, item_field, question_answer
from obliviate.methods.trainer import MethodConfig, finetune

GroupKey = Callable[[Any, int], Hashable]


@dataclass
class RelearnConfig(MethodConfig):
    """The fine-tuning hyper-parameters (every `MethodConfig` field) plus the attack's own.

    `fraction` of the forget facts is trained on for `max_steps` steps; defaults suit the lab
    model (use a lower learning rate on billion-parameter models). `lora` trains LoRA adapters
    and merges them. The attack must not damage what it measures: on the lab model, 10 steps at
    5e-4 dropped the *base* model's held-out accuracy from 1.00 to 0.67 (the recovery metric
    then reads low for every method); at 2e-4 the base keeps 1.00.
    """

    max_steps: int = 10
    learning_rate: float = 2e-4
    batch_size: int = 4
    fraction: float = 0.5
    lora: bool = False

    def finetune_config(self) -> MethodConfig:
        """The plain `MethodConfig` the finetune method takes."""
        return MethodConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(MethodConfig)})


@dataclass
class RelearnResult:
    """The relearned copy and the forget-set indices trained on (`used`) and left for testing (`held_out`)."""

    model: nn.Module
    used: list[int]
    held_out: list[int]


def fact_key(item: Any, index: int) -> Hashable:
    """Same fact = same (subject, attribute) when the item has both, else each item is its own fact."""
    subject, attribute = item_field(item, "subject"), item_field(item, "attribute")
    if isinstance(subject, str) and isinstance(attribute, str):
        return ("fact", subject, attribute)
    return ("item", index)


def split_for_relearning(
    items: Sequence[Any], fraction: float, seed: int = 0, group: GroupKey = fact_key
) -> tuple[list[int], list[int]]:
    """Indices (ascending) of the items to train on and to hold out, whole facts at a time.

    The facts, in order of first appearance, are shuffled with `random.Random(seed)`; the first
    round(fraction * facts) of them (at least one, leaving at least one) are used.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    facts: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        facts.setdefault(group(item, i), []).append(i)
    if len(facts) < 2:
        raise ValueError(f"relearning needs at least two distinct forget facts to split, got {len(facts)}")
    order = list(facts)
    random.Random(seed).shuffle(order)
    n_used = min(len(order) - 1, max(1, round(fraction * len(order))))
    used = sorted(i for key in order[:n_used] for i in facts[key])
    held_out = sorted(i for key in order[n_used:] for i in facts[key])
    return used, held_out


def _resolve(config: RelearnConfig | Mapping[str, Any] | str | os.PathLike | None) -> RelearnConfig:
    if config is None:
        return RelearnConfig()
    if isinstance(config, RelearnConfig):
        return config
    if isinstance(config, Mapping):
        return RelearnConfig.from_dict(config)
    return RelearnConfig.from_yaml(config)


@ATTACKS.register("relearn")
def relearn(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[Any],
    config: RelearnConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    related: Sequence[Any] | None = None,
    group: GroupKey = fact_key,
    out_dir: str | os.PathLike | None = None,
) -> RelearnResult:
    """Fine-tune a copy of `model` on part of the forget set (or on `related` pairs) and return it.

    Without `related`, the split is `split_for_relearning(items, config.fraction, config.seed, group)`.
    With `related` (question/answer pairs such as public text about the same subjects), the copy is
    trained on those and every forget item is held out. `out_dir` keeps the training log and config.
    """
    hparams = _resolve(config)
    if not items:
        raise ValueError("the forget set is empty")
    for i, item in enumerate(items):
        question_answer(item, i)
    if related is not None:
        if not related:
            raise ValueError("related must hold at least one question/answer pair when given")
        used, held_out, train = [], list(range(len(items))), list(related)
    else:
        used, held_out = split_for_relearning(items, hparams.fraction, hparams.seed, group)
        train = [items[i] for i in used]
    attacked = copy.deepcopy(model)
    attacked.requires_grad_(True)
    attacked = finetune(attacked, tokenizer, train, hparams.finetune_config(), out_dir, lora=hparams.lora)
    return RelearnResult(attacked, used, held_out)
