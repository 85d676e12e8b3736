"""Make a model forget a scenario's target with one named method: what a benchmark cell runs.

- `base`: nothing (the reference row of every comparison);
- `stamp`: RePAIR end to end, `RepairSession.handle(scenario.forget_message)` (watchdog, surgeon,
  STAMP edit, verification) with the scenario's knowledge source;
- any training method of `obliviate.methods` (`tru`, `ga`, `npo`, ...): `run_unlearn` on the
  scenario's forget/retain data. `config` is a YAML path or None; None gives the packaged lab
  settings for a lab model and the method's published defaults otherwise. `max_steps` (> 0) caps
  the optimisation steps for quick runs.
The model is changed in place; the returned model is the one to evaluate (LoRA merging may
return a new object) and the info dict says what was done and how long it took.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.eval.scenarios import Scenario
from obliviate.methods.trainer import method_names
from obliviate.repair.session import RepairSession

BASE = "base"
STAMP = "stamp"


def known_methods() -> list[str]:
    """Every method name `apply_method` accepts."""
    return [BASE, STAMP, *[m for m in method_names() if m != "finetune"]]


def check_methods(methods: list[str]) -> None:
    """A ValueError naming the unknown methods, before any work starts."""
    unknown = [m for m in methods if m not in known_methods()]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(known_methods())}")


def apply_method(
    method: str,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    scenario: Scenario,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    max_steps: int | None = None,
    session: RepairSession | None = None,
) -> tuple[PreTrainedModel, dict[str, Any]]:
    """Unlearn `scenario` from `model` with `method`; returns the model to evaluate and an info dict.

    For `stamp`, pass a `session` over `model` to reuse its refusal and covariance statistics
    across forget commands (undo the edit afterwards to get the original model back, bitwise).
    """
    check_methods([method])
    start = time.perf_counter()
    info: dict[str, Any] = {"method": method}
    if method == BASE:
        pass
    elif method == STAMP:
        if scenario.knowledge is None or not scenario.forget_message:
            raise ValueError(f"scenario {scenario.name!r} has no knowledge source or forget message for STAMP")
        if session is None:
            session = RepairSession(model, tokenizer, scenario.knowledge)
        elif session.model is not model:
            raise ValueError("the RePAIR session must be editing the model passed in")
        outcome = session.handle(scenario.forget_message)
        info["message"] = scenario.forget_message
        info["error"] = outcome.error if outcome.intent is not None else "the watchdog saw no forget request"
        info["receipts"] = [receipt.to_dict() for receipt in outcome.receipts]
        info["timings_ms"] = {k: round(v, 2) for k, v in outcome.timings_ms.items()}
    else:
        from obliviate.unlearning import run_unlearn

        if scenario.unlearn_data is None:
            raise ValueError(f"scenario {scenario.name!r} has no forget/retain data for training methods")
        extra = dict(overrides or {})
        if max_steps is not None and max_steps > 0:
            extra["max_steps"] = max_steps
        model, summary = run_unlearn(model, tokenizer, scenario.unlearn_data, method, config, extra)
        info.update({k: v for k, v in summary.items() if k != "seconds"})
    model.eval()
    info["seconds"] = round(time.perf_counter() - start, 2)
    return model, info
