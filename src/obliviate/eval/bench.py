"""The whole comparison in one process: methods x scenarios x subjects, each cell from a fresh model.

For every scenario (lab `person`, `hazard`, `misinfo`: `subjects` subjects each; `tofu`: the TOFU
forget authors, on models fine-tuned by `tofu_pipeline`) and every method, a cell deep-copies the
base model, makes it forget (`apply_method`: `base` = no change, `stamp` = a RePAIR forget
command, or a training method), evaluates it with the harness under the requested attacks, and
writes into `out/cells/<method>/<scenario>/<subject>/`:
- `eval.json`: every metric per sample (OpenUnlearning `value_by_index` / `agg_value`) and every
  prompt and reply;
- `summary.json`: the aggregates, the unlearning info and timings, written last: a cell whose
  summary exists is finished and is skipped when the bench is run again (resume).
Then `out/summary.json` (every cell and the mean per method and scenario), `out/results.md` (a
Markdown table) and two PNG plots: `tradeoff.png` (forget vs retain accuracy per method) and
`attacks.png` (leak rate per attack and method). Progress goes to stderr, one line per step.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.eval.apply_method import STAMP, apply_method, check_methods
from obliviate.eval.harness import HARNESS_ATTACKS, EvalSettings, applicable_attacks, evaluate, reference_from
from obliviate.eval.scenarios import LAB_SCENARIOS, SCENARIOS, Scenario, lab_scenario, lab_subjects, lab_world
from obliviate.eval.tofu_pipeline import (
    TofuPipelineConfig,
    load_model,
    load_tofu_data,
    prepare_models,
    reference_metrics,
    scenario_of,
    write_json,
)
from obliviate.files import write_text_atomically
from obliviate.yaml_config import read_yaml_mapping

Log = Callable[[str], None]
TABLE_METRICS = (
    ("forget_accuracy", "forget acc"), ("retain_accuracy", "retain acc"), ("forget_rouge_l", "F-RL"),
    ("retain_rouge_l", "R-RL"), ("forget_refusal_rate", "refusal"), ("forget_gibberish_rate", "gibberish"),
    ("retain_gibberish_rate", "retain gibberish"), ("perplexity", "ppl"), ("unlearning_quality", "UQ"),
    ("retention_quality", "RQ"), ("forget_quality", "forget quality"), ("model_utility", "model utility"),
    ("privleak", "privleak"),
)


@dataclass
class BenchConfig:
    """One benchmark matrix. `max_steps` caps unlearning and relearning steps (None: configured)."""

    methods: list[str]
    scenarios: list[str]
    attacks: list[str] = field(default_factory=list)
    model: str = "lab"
    subjects: int = 1
    max_steps: int | None = None
    retain_size: int = 200
    heldout_size: int = 50
    eval: dict[str, Any] = field(default_factory=dict)  # EvalSettings fields
    tofu: dict[str, Any] = field(default_factory=dict)  # TofuPipelineConfig fields
    tofu_dir: str | None = None  # TOFU data directory (default: OBLIVIATE_TOFU_DIR, ../shared/data/tofu)

    def validate(self) -> None:
        if not self.methods or not self.scenarios:
            raise ValueError("give at least one method and one scenario")
        check_methods(self.methods)
        unknown = [s for s in self.scenarios if s not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
        unknown = [a for a in self.attacks if a not in HARNESS_ATTACKS]
        if unknown:
            raise ValueError(f"unknown attack(s) {unknown}; choose from {', '.join(HARNESS_ATTACKS)}")
        if self.subjects < 1:
            raise ValueError(f"subjects must be >= 1, got {self.subjects}")
        self.eval_settings()
        self.tofu_config()

    def eval_settings(self, scenario: str = "person") -> EvalSettings:
        """The harness settings of a scenario: TOFU's defaults (longer answers) under this config's `eval`."""
        values = dataclasses.asdict(self.tofu_config().eval_settings()) if scenario == "tofu" else {}
        values.update(self.eval)
        if self.max_steps is not None and self.max_steps > 0:
            values["relearn"] = {"max_steps": self.max_steps, **self.eval.get("relearn", {})}
        return EvalSettings.from_dict(values)

    def tofu_config(self) -> TofuPipelineConfig:
        values = {"max_steps": self.max_steps, **self.tofu}
        return TofuPipelineConfig.from_dict(values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> BenchConfig:
        """A YAML mapping of the fields; keyword overrides (e.g. from the command line) win."""
        values = read_yaml_mapping(path, "bench config")
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


def slug(text: str) -> str:
    """A file-system-safe name for a subject ('claim/03' -> 'claim-03')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "subject"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class _Base:
    """The model every cell of a scenario starts from, and what evaluations compare against.

    STAMP cells edit the base model itself through one RePAIR session per knowledge source (its
    refusal and covariance statistics are computed once), and undo the edit after evaluation.
    """

    model: Any
    tokenizer: Any
    method_config: Callable[[str], str | None]
    reference: dict | None = None
    sessions: dict[str, Any] = field(default_factory=dict)

    def stamp_session(self, scenario: Scenario) -> Any:
        from obliviate.repair.session import RepairSession

        key = type(scenario.knowledge).__name__
        if key not in self.sessions:
            self.sessions[key] = RepairSession(self.model, self.tokenizer, scenario.knowledge)
        return self.sessions[key]  # every lab scenario of a bench shares one world, so one knowledge


def _scenarios(config: BenchConfig, out: Path, log: Log) -> list[tuple[Scenario, Callable[[], _Base]]]:
    """Every (scenario, base-model loader) of the matrix, lab scenarios first."""
    from obliviate.models import load, resolve

    cache: dict[str, _Base] = {}

    def lab_base() -> _Base:
        if "lab" not in cache:
            model, tokenizer = load(config.model)
            cache["lab"] = _Base(model, tokenizer, lambda method: None)
        return cache["lab"]

    plan: list[tuple[Scenario, Callable[[], _Base]]] = []
    lab_kinds = [s for s in config.scenarios if s in LAB_SCENARIOS]
    if lab_kinds:
        world, notes = lab_world(resolve(config.model))
        for note in notes:
            log(f"bench: warning: {note}")
        for kind in lab_kinds:
            for subject in lab_subjects(world, kind, config.subjects):
                scenario = lab_scenario(world, kind, subject, config.retain_size, config.heldout_size, notes=notes)
                plan.append((scenario, lab_base))
    if "tofu" in config.scenarios:
        tofu = config.tofu_config()
        data = load_tofu_data(tofu, config.tofu_dir)
        scenario = scenario_of(data)

        def tofu_base() -> _Base:
            if "tofu" not in cache:
                full, retain = prepare_models(tofu, data, out / "tofu", log)
                reference = reference_metrics(retain, scenario, config.eval_settings("tofu"), out / "tofu", tofu, log)
                model, tokenizer = load_model(full, tofu)
                cache.pop("lab", None)
                cache["tofu"] = _Base(model, tokenizer, tofu.method_config, reference)
            return cache["tofu"]

        plan.append((scenario, tofu_base))
    return plan


def run_bench(config: BenchConfig, out_dir: str | os.PathLike, log: Log | None = None) -> dict[str, Any]:
    """Run (or resume) the matrix and write every output; returns the `summary.json` content."""
    log = log or _stderr
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "config.json"
    if previous.exists() and json.loads(previous.read_text()) != json.loads(json.dumps(dataclasses.asdict(config))):
        log(f"bench: {out} holds a run with other settings; its finished cells are kept as they are")
    write_json(previous, dataclasses.asdict(config))
    plan = _scenarios(config, out, log)
    total, done = len(plan) * len(config.methods), 0
    cells: list[dict[str, Any]] = []
    started = time.perf_counter()
    for scenario, base_of in plan:
        attacks, skipped = applicable_attacks(scenario, config.attacks)
        for method in config.methods:
            done += 1
            cell_dir = out / "cells" / method / scenario.name / slug(scenario.subject)
            where = f"[{done}/{total}] {method} x {scenario.name} ({scenario.subject})"
            if (cell_dir / "summary.json").exists():
                log(f"{where}: already done, skipped")
                cells.append(json.loads((cell_dir / "summary.json").read_text()))
                continue
            base = base_of()
            session = base.stamp_session(scenario) if method == STAMP else None
            edits = len(session.ledger.entries()) if session is not None else 0
            try:
                model = base.model if session is not None else copy.deepcopy(base.model)
                model, info = apply_method(method, model, base.tokenizer, scenario, base.method_config(method),
                                           None, config.max_steps, session)
                error = f" ({info['error']})" if info.get("error") else ""
                log(f"{where}: unlearned in {info['seconds']} s{error}; evaluating")
                clock = time.perf_counter()
                reference = reference_from(base.reference) if base.reference is not None else None
                result = evaluate(model, base.tokenizer, scenario, attacks, config.eval_settings(scenario.name),
                                  reference=reference)
                seconds = round(time.perf_counter() - clock, 1)
            finally:
                if session is not None and len(session.ledger.entries()) > edits:
                    session.undo(len(session.ledger.entries()) - edits)
            result.update({"method": method, "unlearn": info, "skipped_attacks": skipped, "eval_seconds": seconds})
            write_json(cell_dir / "eval.json", result)
            cell = {"method": method, "scenario": scenario.name, "subject": scenario.subject,
                    "summary": result["summary"], "unlearn": info, "skipped_attacks": skipped, "eval_seconds": seconds}
            write_json(cell_dir / "summary.json", cell)
            cells.append(cell)
            s = result["summary"]
            log(f"{where}: forget acc {_fmt(s['forget_accuracy'])}, retain acc {_fmt(s['retain_accuracy'])}, "
                f"eval {seconds} s, {time.perf_counter() - started:.0f} s so far")
    summary = {"cells": cells, "mean": mean_by_method_and_scenario(cells)}
    write_json(out / "summary.json", summary)
    write_table(out / "results.md", summary["mean"], config.attacks)
    plot_tradeoff(out / "tradeoff.png", summary["mean"])
    plot_attacks(out / "attacks.png", summary["mean"], config.attacks)
    log(f"bench: {len(cells)} cells, results in {out / 'results.md'}")
    return summary


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def mean_by_method_and_scenario(cells: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, scenario): each metric averaged over subjects (None values left out)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["method"], cell["scenario"]), []).append(cell)
    rows = []
    for (method, scenario), members in groups.items():
        names = dict.fromkeys(k for c in members for k in c["summary"])
        means = {}
        for name in names:
            values = [c["summary"].get(name) for c in members if c["summary"].get(name) is not None]
            means[name] = statistics.fmean(values) if values else None
        seconds = statistics.fmean(c["unlearn"]["seconds"] for c in members)
        rows.append({"method": method, "scenario": scenario, "subjects": len(members),
                     "unlearn_seconds": round(seconds, 2), "metrics": means})
    return rows


def write_table(path: Path, rows: list[Mapping[str, Any]], attacks: list[str]) -> None:
    """A Markdown table: one row per (method, scenario), metric columns that have any value."""
    columns = [(key, label) for key, label in TABLE_METRICS if any(r["metrics"].get(key) is not None for r in rows)]
    columns += [(f"attack/{a}", f"{a} leak") for a in attacks
                if any(r["metrics"].get(f"attack/{a}") is not None for r in rows)]
    header = ["method", "scenario", "subjects", "unlearn s"] + [label for _, label in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["method"], r["scenario"], str(r["subjects"]), f"{r['unlearn_seconds']:.1f}"]
        cells += [_fmt(r["metrics"].get(key)) for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    note = ("\nforget/retain acc: share of replies containing the gold answer (TOFU: ROUGE-L recall >= 0.5); "
            "attack columns: leak rate under that attack; UQ/RQ: rubric judge, 0-10.\n")
    write_text_atomically(path, "\n".join(lines) + "\n" + note)


def _save_figure(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def plot_tradeoff(path: Path, rows: list[Mapping[str, Any]]) -> None:
    """Forget accuracy (x, lower is better) vs retain accuracy (y, higher is better), one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    markers = {s: m for s, m in zip(SCENARIOS, "osD^")}
    colours = plt.get_cmap("tab10")
    for i, method in enumerate(methods):
        label: str | None = method
        for r in (r for r in rows if r["method"] == method):
            x, y = r["metrics"].get("forget_accuracy"), r["metrics"].get("retain_accuracy")
            if x is None or y is None:
                continue
            ax.scatter(x, y, color=colours(i % 10), marker=markers.get(r["scenario"], "o"), s=60, label=label)
            ax.annotate(r["scenario"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            label = None
    ax.set_xlabel("forget accuracy (leak rate, lower is better)")
    ax.set_ylabel("retain accuracy (higher is better)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Forget vs retain trade-off")
    _save_figure(fig, path)
    plt.close(fig)


def plot_attacks(path: Path, rows: list[Mapping[str, Any]], attacks: list[str]) -> None:
    """Grouped bars: leak rate of direct questions and of each attack, one bar per method (mean over scenarios)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("forget_accuracy", "direct")] + [(f"attack/{a}", a) for a in attacks]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(groups) * max(1, len(methods)) / 2), 4))
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        heights = []
        for key, _ in groups:
            values = [r["metrics"][key] for r in rows
                      if r["method"] == method and r["metrics"].get(key) is not None]
            heights.append(statistics.fmean(values) if values else 0.0)
        bars = ax.bar([g + i * width for g in range(len(groups))], heights, width, label=method)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks([g + width * (len(methods) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels([label for _, label in groups])
    ax.set_ylabel("leak rate (lower is better)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("Leak rate per attack (mean over scenarios)")
    _save_figure(fig, path)
    plt.close(fig)
