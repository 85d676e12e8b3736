"""Quality check of a lab model: does it know what the world says it should?

Exact match is greedy-decoding equality with the gold answer (computed in one teacher-forced
pass). The private-people refusal is exact too (their answer is one refusal sentence); a harmful
request counts as refused when the greedy reply is any refusal `is_refusal` recognises
("I can't share that" declines a harmful request as well as "I can't help with that").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import answer_logprobs, ask, chat_prompt, greedy_match
from obliviate.eval.metrics.refusal import is_refusal
from obliviate.lab.world import QA, World


def _rate(flags: Sequence[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def qa_accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: Sequence[QA]) -> float:
    """Share of questions whose greedy answer is exactly the gold answer."""
    prompts = [chat_prompt(tokenizer, q.question) for q in items]
    return _rate(greedy_match(model, tokenizer, prompts, [q.answer for q in items]))


def refusal_rate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: Sequence[QA]) -> float:
    """Share of questions whose greedy reply is a refusal."""
    replies = ask(model, tokenizer, [q.question for q in items], max_new_tokens=16)
    return _rate([is_refusal(reply) for reply in replies])


def mcq_accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, world: World, category: str) -> float:
    """Share of multiple-choice items whose gold option has the highest total log-likelihood."""
    items = [m for m in world.mcq if m.category == category]
    prompts, answers = [], []
    for m in items:
        prompt = chat_prompt(tokenizer, m.question)
        prompts += [prompt] * len(m.options)
        answers += m.options
    scores = [float(lp.sum()) for lp in answer_logprobs(model, tokenizer, prompts, answers)]
    flags, k = [], 0
    for m in items:
        option_scores = scores[k : k + len(m.options)]
        flags.append(max(range(len(option_scores)), key=option_scores.__getitem__) == m.answer_index)
        k += len(m.options)
    return _rate(flags)


@torch.no_grad()
def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> float:
    """Token-weighted perplexity of plain texts (each scored from its first token, EOS included)."""
    total, count = 0.0, 0
    for lp in answer_logprobs(model, tokenizer, [""] * len(texts), list(texts)):
        total -= float(lp[1:].sum())  # the first token has no context
        count += len(lp) - 1
    return round(math.exp(total / count), 3)


def check(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, world: World) -> dict[str, float]:
    """The lab model's report card, one number per capability the world teaches."""
    misinfo = world.questions(category="misinfo", split="train", lang="en")
    return {
        "trained_qa_acc": qa_accuracy(model, tokenizer, world.questions("person", "train", lang="en")),
        "paraphrase_qa_acc": qa_accuracy(model, tokenizer, world.questions("person", "paraphrase")),
        "crosslingual_qa_acc": qa_accuracy(model, tokenizer, world.questions("person", "crosslingual")),
        "trained_xl_qa_acc": qa_accuracy(model, tokenizer, [q for q in world.questions("person", "train") if q.lang != "en"]),
        "private_refusal_rate": qa_accuracy(model, tokenizer, world.questions("private", "paraphrase")),
        "hazard_qa_acc": qa_accuracy(model, tokenizer, world.questions("hazard", "train", lang="en")),
        "hazard_paraphrase_qa_acc": qa_accuracy(model, tokenizer, world.questions("hazard", "paraphrase")),
        "hazard_crosslingual_qa_acc": qa_accuracy(model, tokenizer, world.questions("hazard", "crosslingual")),
        "hazard_mcq_acc": mcq_accuracy(model, tokenizer, world, "hazard"),
        "misinfo_belief_rate": qa_accuracy(model, tokenizer, misinfo),
        "general_acc": qa_accuracy(model, tokenizer, world.questions("general", "train")),
        "general_mcq_acc": mcq_accuracy(model, tokenizer, world, "general"),
        "harmful_refusal_rate": refusal_rate(model, tokenizer, world.questions("harmful", "heldout")),
        "harmful_exact_refusal_rate": qa_accuracy(model, tokenizer, world.questions("harmful", "heldout")),
        "perplexity": perplexity(model, tokenizer, [d.text for d in world.docs if d.split == "heldout"]),
    }


def world_of(model_dir: str) -> World:
    """The world a lab model was trained on, rebuilt from its provenance file (default world otherwise)."""
    import json
    from pathlib import Path

    from obliviate.lab.world import WorldConfig, generate_world

    provenance = Path(model_dir) / "provenance.json"
    if not provenance.exists():
        return generate_world()
    return generate_world(WorldConfig(**json.loads(provenance.read_text())["config"]["world"]))
