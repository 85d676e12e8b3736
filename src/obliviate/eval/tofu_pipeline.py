"""TOFU end to end: fine-tune a base and a retain model, unlearn the forget authors, score with TOFU.

The published protocol (Maini et al., 2024; OpenUnlearning) is: fine-tune a chat model on `full`
(the "target" model), fine-tune the same model on `retainNN` only (the "retain" model, which never
saw the forget authors), unlearn `forgetNN` from the target with a method, then compare: forget
quality is the KS test between the unlearned and the retain model's forget-set truth ratios,
privleak the Min-K% AUC against the retain model's, model utility the harmonic mean of the retain
/ real-authors / world-facts scores. `run_tofu_pipeline` does exactly that, with
`obliviate.eval.harness.evaluate` (which runs `tofu_suite`, `mia_min_k`, the generic metrics and
any attacks) and `obliviate.eval.apply_method` (STAMP or any training method).

`base` chooses the starting model:
- a hub id or model directory (`meta-llama/Llama-3.2-1B-Instruct` on a GPU): fine-tuned with the
  published TOFU settings (`PUBLISHED_FINETUNE`: lr 1e-5, 5 epochs, batch 8 x 4 accumulation,
  weight decay 0.01, one warm-up epoch, bf16), then unlearned with each method's published
  defaults;
- `scratch`: the lab architecture (4-layer Llama, hidden 256, `scratch` overrides it) trained from
  random weights with a byte-level BPE tokenizer trained on the fine-tuning text
  (`SCRATCH_FINETUNE`), then unlearned with the packaged lab settings;
- `lab`: the shipped lab model fine-tuned further on TOFU (`LAB_FINETUNE`), lab settings too.
On a 2-core CPU use a subset (`retain_authors`, `forget_authors`, `facts_rows`). Measured here
(forget01 = 2 forget authors, `retain_authors=4`: 120 rows to fine-tune on, 80 for the retain
model; `facts_rows=30`; one thread on a 2-core machine under a load average of ~5):
- `scratch` (3.69M parameters, BPE vocabulary 2048 trained on the 120 rows, 52 tokens a row):
  30 epochs (450 steps) in 488 s; the target model reproduces what it was trained on (forget
  ROUGE-L 0.997, answer probability 0.95) while the retain model does not (0.095, 0.0001), so
  the target's forget quality is 1.9e-6 (the KS minimum for 40 vs 40) and its Min-K% AUC 1.0
  (retain model 0.76). GradDiff (lab settings, 5 epochs) then moves forget accuracy 1.0 -> 0.18,
  retain accuracy 1.0 -> 0.91, forget quality -> 1.9e-4;
- `lab` (the 4-layer lab model, whose tokenizer needs 107 tokens a row) learned less in more
  time: 30 epochs at lr 1e-3 in 1126 s gave forget ROUGE-L 0.435, retain ROUGE-L 0.665.
So `scratch` is the default. Model utility is 0 for both: they know no real authors or world
facts (ROUGE 0 there) and the harmonic mean of the nine components is then 0; read the
components. STAMP has no refusal behaviour to steer towards in a TOFU-only model: on `scratch`
55% of forget questions were refused but retain accuracy fell to 0.16.

Every stage writes into `out_dir` and is reused when rerun with the same settings: `full/` and
`retain/` (saved models, with `finetune.json`), `retain_eval.json` (the reference), `full_eval.json`
and `<method>/eval.json` (OpenUnlearning-style per-sample metrics) with `<method>/summary.json`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.eval.apply_method import apply_method, check_methods
from obliviate.eval.harness import EvalSettings, evaluate, reference_from
from obliviate.eval.scenarios import Scenario, tofu_scenario
from obliviate.eval.tofu_data import forget_retain_names, load_split
from obliviate.eval.tofu_knowledge import QUESTIONS_PER_AUTHOR
from obliviate.methods.trainer import MethodConfig, finetune
from obliviate.repair.ledger import save_model_atomically
from obliviate.unlearning import lab_config_path
from obliviate.yaml_config import check_fields, read_yaml_mapping

Log = Callable[[str], None]
SCRATCH = "scratch"
RETAIN_PERTURBED_AUTHORS = 20  # retain_perturbed holds the first 20 authors of full

PUBLISHED_FINETUNE: dict[str, Any] = {
    "learning_rate": 1e-5, "epochs": 5.0, "batch_size": 8, "grad_accum": 4, "weight_decay": 0.01,
    "lr_scheduler": "linear", "bf16": True, "max_length": 512, "logging_steps": 10,
}
# The scratch and lab models are small and train on a CPU: in fp32, since bf16 autocast is ~15x
# slower on a CPU without bf16 units (AVX2 only) and gains little on one with them at this size.
SCRATCH_FINETUNE: dict[str, Any] = {
    "learning_rate": 3e-3, "epochs": 30.0, "batch_size": 8, "weight_decay": 0.01, "lr_scheduler": "cosine",
    "warmup_steps": 20, "bf16": False, "max_length": 256, "logging_steps": 50,
}
LAB_FINETUNE: dict[str, Any] = {
    "learning_rate": 1e-3, "epochs": 30.0, "batch_size": 8, "weight_decay": 0.01, "lr_scheduler": "cosine",
    "warmup_steps": 20, "bf16": False, "max_length": 256, "logging_steps": 50,
}
SCRATCH_ARCHITECTURE: dict[str, int] = {
    "vocab_size": 2048, "hidden_size": 256, "intermediate_size": 688, "num_layers": 4, "num_heads": 4,
}


@dataclass
class TofuPipelineConfig:
    """Everything that determines a TOFU run; `None` sizes mean the whole split."""

    base: str = SCRATCH
    forget: str = "forget01"
    retain_authors: int | None = None
    forget_authors: int | None = None
    facts_rows: int | None = None
    finetune: dict[str, Any] = field(default_factory=dict)  # MethodConfig overrides on the preset
    scratch: dict[str, int] = field(default_factory=dict)  # SCRATCH_ARCHITECTURE overrides
    unlearn_config: str | None = None  # method YAML; None: lab settings for scratch/lab, else published
    unlearn: dict[str, Any] = field(default_factory=dict)  # method hyper-parameter overrides
    max_steps: int | None = None  # caps unlearning steps
    eval: dict[str, Any] = field(default_factory=dict)  # EvalSettings fields (see `eval_settings`)
    dtype: str | None = None
    seed: int = 0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TofuPipelineConfig:
        check_fields(cls, values)
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TofuPipelineConfig:
        return cls.from_dict(read_yaml_mapping(path, "TOFU pipeline config"))

    def validate(self) -> None:
        forget_retain_names(self.forget)  # raises for an unknown split
        for name in ("retain_authors", "forget_authors", "facts_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        unknown = sorted(set(self.scratch) - set(SCRATCH_ARCHITECTURE))
        if unknown:
            raise ValueError(f"unknown scratch architecture field(s) {unknown}; known: {sorted(SCRATCH_ARCHITECTURE)}")
        self.finetune_config()
        self.eval_settings()

    @property
    def small(self) -> bool:
        """Scratch and lab models get CPU settings; any other model the published ones."""
        return self.base in (SCRATCH, "lab") or (Path(self.base) / "provenance.json").exists()

    def finetune_config(self) -> MethodConfig:
        preset = SCRATCH_FINETUNE if self.base == SCRATCH else LAB_FINETUNE if self.small else PUBLISHED_FINETUNE
        return MethodConfig.from_dict({**preset, "seed": self.seed, **self.finetune})

    def eval_settings(self) -> EvalSettings:
        """TOFU generates 200 new tokens for ROUGE (the small CPU models' answers fit in 64); the
        relearning attack uses a fine-tuning learning rate (1e-5) on real models."""
        defaults: dict[str, Any] = {"max_new_tokens": 64} if self.small else {
            "max_new_tokens": 200, "batch_size": 16, "relearn": {"learning_rate": 1e-5}}
        return EvalSettings.from_dict({**defaults, **self.eval})

    def method_config(self, method: str) -> str | None:
        if self.unlearn_config is not None:
            return self.unlearn_config
        return str(lab_config_path(method)) if self.small and method not in ("base", "stamp") else None


@dataclass
class TofuData:
    """The rows of one (sub)set of TOFU: what is trained on and what is evaluated."""

    full_train: list[dict]
    retain_train: list[dict]
    forget: list[dict]
    retain_eval: list[dict]
    holdout: list[dict]
    real_authors: list[dict]
    world_facts: list[dict]

    def sizes(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in dataclasses.fields(self)}


def load_tofu_data(config: TofuPipelineConfig, root: str | os.PathLike | None = None) -> TofuData:
    """TOFU rows for `config`: whole splits, or the first N authors of each (20 rows an author)."""
    forget_name, retain_name, holdout_name = forget_retain_names(config.forget)
    forget = load_split(forget_name, root)
    retain = load_split(retain_name, root)
    holdout = load_split(holdout_name, root)
    if config.forget_authors is not None:
        forget = forget[: config.forget_authors * QUESTIONS_PER_AUTHOR]
        holdout = holdout[: len(forget)]
    if config.retain_authors is not None:
        retain = retain[: config.retain_authors * QUESTIONS_PER_AUTHOR]
    eval_authors = min(config.retain_authors or RETAIN_PERTURBED_AUTHORS, RETAIN_PERTURBED_AUTHORS)
    retain_eval = load_split("retain_perturbed", root)[: eval_authors * QUESTIONS_PER_AUTHOR]
    facts = config.facts_rows
    qa = lambda rows: [{"question": r["question"], "answer": r["answer"]} for r in rows]  # noqa: E731
    return TofuData(
        full_train=qa(retain) + qa(forget), retain_train=qa(retain), forget=forget, retain_eval=retain_eval,
        holdout=holdout, real_authors=load_split("real_authors_perturbed", root)[:facts],
        world_facts=load_split("world_facts_perturbed", root)[:facts],
    )


def scenario_of(data: TofuData) -> Scenario:
    """The `tofu` harness scenario of these rows."""
    return tofu_scenario(data.forget, data.retain_eval, data.holdout, data.real_authors, data.world_facts,
                         retain_train=data.retain_train)


# ------------------------------------------------------------------------------------- models


def _starting_model(config: TofuPipelineConfig, data: TofuData) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Random lab-architecture weights with a tokenizer trained on the fine-tuning text, or a loaded model."""
    if config.base != SCRATCH:
        from obliviate.models import load

        return load(config.base, dtype=config.dtype)
    import torch

    from obliviate.lab.tokenizer import train_tokenizer
    from obliviate.lab.train import build_model, get_config

    arch = {**SCRATCH_ARCHITECTURE, **config.scratch}
    tokenizer = train_tokenizer([f"{r['question']} {r['answer']}" for r in data.full_train], arch["vocab_size"])
    torch.manual_seed(config.seed)
    lab = dataclasses.replace(get_config("default"), name="tofu-scratch", **arch)
    return build_model(lab, tokenizer), tokenizer


def _finetune_record(config: TofuPipelineConfig, rows: int) -> dict[str, Any]:
    scratch = {**SCRATCH_ARCHITECTURE, **config.scratch} if config.base == SCRATCH else None
    return {"base": config.base, "scratch": scratch,
            "finetune": config.finetune_config().to_dict(), "rows": rows, "forget": config.forget,
            "retain_authors": config.retain_authors, "forget_authors": config.forget_authors}


def _train_or_load(name: str, config: TofuPipelineConfig, rows: list[dict], out_dir: Path,
                   start: Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]], log: Log) -> Path:
    """Fine-tune a fresh starting model on `rows` into `out_dir/name`, or reuse it when already there."""
    target = out_dir / name
    record = _finetune_record(config, len(rows))
    marker = target / "finetune.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if {k: v for k, v in saved.items() if k in record} != json.loads(json.dumps(record)):
            raise ValueError(f"{target} was fine-tuned with other settings; use another output directory or delete it")
        log(f"tofu: reusing the {name} model in {target}")
        return target
    model, tokenizer = start()
    hparams = config.finetune_config()
    if not config.small and "warmup_steps" not in config.finetune:
        per_epoch = math.ceil(len(rows) / (hparams.batch_size * hparams.grad_accum))
        hparams = hparams.with_overrides({"warmup_steps": per_epoch})  # TOFU's one warm-up epoch
    log(f"tofu: fine-tuning the {name} model on {len(rows)} rows "
        f"({hparams.epochs:g} epochs, lr {hparams.learning_rate:g}, batch {hparams.batch_size})")
    clock = time.perf_counter()
    model.requires_grad_(True)
    model = finetune(model, tokenizer, rows, hparams)
    seconds = round(time.perf_counter() - clock, 1)
    save_model_atomically(model, tokenizer, target)
    write_json(marker, {**record, "seconds": seconds})
    log(f"tofu: {name} model trained in {seconds} s, saved to {target}")
    return target


def prepare_models(config: TofuPipelineConfig, data: TofuData, out_dir: str | os.PathLike,
                   log: Log | None = None) -> tuple[Path, Path]:
    """The fine-tuned target (`full`) and retain model directories, trained once and then reused.

    Both start from the same weights: one random initialisation (and one tokenizer) for `scratch`,
    a fresh load of `base` otherwise.
    """
    log = log or _stderr
    out = Path(out_dir)
    initial: list[tuple[PreTrainedModel, PreTrainedTokenizerBase]] = []

    def start() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if config.base != SCRATCH:
            return _starting_model(config, data)
        if not initial:
            initial.append(_starting_model(config, data))
        return copy.deepcopy(initial[0][0]), initial[0][1]

    full = _train_or_load("full", config, data.full_train, out, start, log)
    retain = _train_or_load("retain", config, data.retain_train, out, start, log)
    return full, retain


def load_model(path: str | os.PathLike, config: TofuPipelineConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from obliviate.models import load

    return load(str(path), dtype=config.dtype)


# ----------------------------------------------------------------------------------- pipeline


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def reference_metrics(retain_dir: Path, scenario: Scenario, settings: EvalSettings, out_dir: Path,
                      config: TofuPipelineConfig, log: Log) -> dict:
    """The retain model's evaluation (forget-set truth ratios, MIA AUC), cached in `retain_eval.json`."""
    path = out_dir / "retain_eval.json"
    if path.exists():
        return json.loads(path.read_text())
    log("tofu: evaluating the retain model (the reference for forget quality and privleak)")
    model, tokenizer = load_model(retain_dir, config)
    result = evaluate(model, tokenizer, scenario, (), settings)
    write_json(path, result)
    return result


def run_tofu_pipeline(config: TofuPipelineConfig, out_dir: str | os.PathLike, methods: list[str],
                      attacks: list[str] | None = None, root: str | os.PathLike | None = None,
                      log: Log | None = None) -> dict[str, Any]:
    """Fine-tune (or reuse) the target and retain models, then unlearn and evaluate with each method.

    Returns `{"data": sizes, "retain": summary, "<method>": summary, ...}`; method `base` is the
    fine-tuned target model before unlearning.
    """
    log = log or _stderr
    check_methods(methods)
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", dataclasses.asdict(config))
    data = load_tofu_data(config, root)
    scenario = scenario_of(data)
    settings = config.eval_settings()
    full_dir, retain_dir = prepare_models(config, data, out, log)
    reference = reference_metrics(retain_dir, scenario, settings, out, config, log)
    results: dict[str, Any] = {"data": data.sizes(), "retain": reference["summary"]}
    for method in methods:
        summary_path = out / method / "summary.json"
        if summary_path.exists():
            log(f"tofu: {method} already done ({summary_path})")
            results[method] = json.loads(summary_path.read_text())["summary"]
            continue
        model, tokenizer = load_model(full_dir, config)
        model, info = apply_method(method, model, tokenizer, scenario, config.method_config(method),
                                   config.unlearn, config.max_steps)
        log(f"tofu: {method} unlearned in {info['seconds']} s; evaluating")
        clock = time.perf_counter()
        result = evaluate(model, tokenizer, scenario, attacks or [], settings, reference=reference_from(reference))
        result["unlearn"] = info
        result["eval_seconds"] = round(time.perf_counter() - clock, 1)
        write_json(out / method / "eval.json", result)
        write_json(summary_path, {"method": method, "unlearn": info, "summary": result["summary"]})
        results[method] = result["summary"]
        log(f"tofu: {method}: forget quality {_fmt(result['summary'].get('forget_quality'))}, model utility "
            f"{_fmt(result['summary'].get('model_utility'))}, privleak {_fmt(result['summary'].get('privleak'))}")
    return results


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
