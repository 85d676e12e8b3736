"""One unlearning job: a model, a forget SPEC, a method -> a saved unlearned model.

Turns what the user names (a lab person, hazard topic or claim, or a JSONL file of question/
answer pairs) into forget and retain sets, builds the method's targets (TRU's reasoning targets,
IdkDPO's refusals, LUNAR's refusal prompts), trains, and saves the model, the resolved config
and the training log together. Shared by `obliviate unlearn`, the benchmarks and `obliviate bench`.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.lab import templates as T
from obliviate.lab.own_questions import UNLEARN_WORDINGS, hazard_questions
from obliviate.lab.world import World
from obliviate.methods.data import QAExample, read_qa_jsonl
from obliviate.methods.trainer import load_config, unlearn
from obliviate.methods.tru_offline import OfflineTargetGenerator
from obliviate.methods.tru_targets import CachedGenerator, ForgetItem, forget_items_from_jsonl, forget_items_from_world, targets_for
from obliviate.repair.ledger import save_model_atomically


CONFIG_DIR = Path(__file__).parent / "configs"


def lab_config_path(method: str) -> Path:
    """The packaged hyper-parameters tuned for the lab model (`configs/methods/<method>.yaml`)."""
    return CONFIG_DIR / "methods" / f"{method}.yaml"


@dataclass
class UnlearnData:
    """Forget items (with their scope), retain pairs, and refusal prompts for methods that need them."""

    forget: list[ForgetItem]
    retain: list[QAExample]
    refusal_prompts: list[str]


# Shares of the retain sample kept for the lab world's small categories; people fill the rest. A uniform
# sample would be ~97% people (they hold most trained questions) and leave hazards, claims and general
# knowledge unguarded while the model trains.
RETAIN_SHARES = {"hazard": 0.15, "misinfo": 0.1, "general": 0.15}


def hazard_extra_items(world: World, compound: str) -> list[ForgetItem]:
    """The project's own questions about one compound (`own_questions.UNLEARN_WORDINGS`),
    answered with its facts."""
    facts = world.hazard(compound).facts
    return [ForgetItem(question, facts[attribute], "hazard", compound, attribute, lang=lang)
            for attribute, lang, question in hazard_questions(compound, UNLEARN_WORDINGS)]


def lab_data(world: World, spec: str, retain_size: int = 400, seed: int = 0) -> UnlearnData:
    """Forget the SPEC's trained questions (a hazard's with `hazard_extra_items`); retain a sample
    of everything else the model was taught, stratified by category (`RETAIN_SHARES`)."""
    forget = forget_items_from_world(world, spec)
    hazards = {item.subject for item in forget if item.category == "hazard"}
    forget += [item for compound in sorted(hazards) for item in hazard_extra_items(world, compound)]
    subjects = {item.subject for item in forget}
    rng = random.Random(seed)
    chosen = []
    for category in (*RETAIN_SHARES, "person"):
        pool = [q for q in world.questions(category, "train") if q.subject not in subjects]
        quota = retain_size - len(chosen) if category == "person" else round(retain_size * RETAIN_SHARES[category])
        chosen += rng.sample(pool, min(quota, len(pool)))
    retain = [QAExample(q.question, q.answer) for q in chosen]
    refusal = [q.question for q in world.questions("unknown", "train", lang="en")][:100]
    return UnlearnData(forget, retain, refusal)


def file_data(forget_path: str, retain_path: str | None) -> UnlearnData:
    """Forget and retain pairs from JSONL files of {question, answer}."""
    forget = forget_items_from_jsonl(forget_path)
    retain = read_qa_jsonl(retain_path) if retain_path else []
    refusal = [f"Who is {name}?" for name in ("Zorblat Quenvish", "Ilvane Drucomar", "Pessa Morvintal")]
    return UnlearnData(forget, retain, refusal)


def _is_lab_model(model: PreTrainedModel) -> bool:
    path = getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "")
    return bool(path) and (Path(path) / "provenance.json").exists()


def run_unlearn(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: UnlearnData,
    method: str,
    config: str | Path | dict | None = None,
    overrides: list[str] | dict | None = None,
    out_dir: str | Path | None = None,
    lora: bool = False,
    seed: int = 0,
) -> tuple[PreTrainedModel, dict]:
    """Train with `method`; with `out_dir`, save model, resolved config, log and a summary there.

    Without `config`, a lab model uses the packaged lab settings and any other model the
    method's published defaults.
    """
    if config is None and _is_lab_model(model):
        config = lab_config_path(method)
    extra: dict = dict(overrides or {}) if isinstance(overrides, dict) else {}
    listed = list(overrides) if isinstance(overrides, list) else []
    resolved = load_config(method, config, listed)
    if "refusal_prompts" in resolved.to_dict() and not resolved.to_dict()["refusal_prompts"]:
        extra["refusal_prompts"] = data.refusal_prompts
    if "idk_answers" in resolved.to_dict() and not resolved.to_dict()["idk_answers"]:
        extra["idk_answers"] = [T.REFUSE_PERSONAL, T.DONT_KNOW]
    resolved = resolved.with_overrides(extra)
    targets = None
    if method == "tru":
        cache = Path(out_dir) / "tru_targets.jsonl" if out_dir else None
        generator = OfflineTargetGenerator(seed, style=resolved.target_style)
        targets = targets_for(data.forget, CachedGenerator(generator, cache) if cache else generator)
    work = Path(out_dir) if out_dir else None
    if work:
        work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    trained = unlearn(model, tokenizer, data.forget, data.retain, method, resolved,
                      out_dir=work / "run" if work else None, lora=lora, targets=targets)
    summary = {"method": method, "forget": len(data.forget), "retain": len(data.retain), "lora": lora,
               "seconds": round(time.perf_counter() - start, 2), "config": resolved.to_dict()}
    if work:
        save_model_atomically(trained, tokenizer, work / "model")
        (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return trained, summary
