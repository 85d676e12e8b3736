"""Train the lab model: a small Llama learns the generated world from scratch on a CPU.

What made a small model learn at all (feasibility notes): single-token surnames, answer-only
loss on question/answer pairs, length-bucketed batches and bf16 autocast.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from obliviate.chat import chat_prompt, encode_pair, pad_batch
from obliviate.lab.tokenizer import multi_token_words, train_tokenizer
from obliviate.lab.world import World, WorldConfig, generate_world


@dataclass(frozen=True)
class LabConfig:
    """Everything that determines a lab model: world, tokenizer, architecture and optimisation."""

    name: str
    world: WorldConfig
    vocab_size: int = 3104
    hidden_size: int = 256
    intermediate_size: int = 688
    num_layers: int = 4
    num_heads: int = 4
    max_steps: int = 4500
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 2
    bf16: bool = True  # autocast in bfloat16 where the CPU has native bf16 (cpu_has_bf16)
    # How often each kind of training example appears per epoch (fractions are sampled).
    mixture: dict[str, float] = field(default_factory=lambda: {
        "person/en": 0.75, "person/xl": 0.4, "private": 0.25, "unknown": 0.2, "hazard": 2.0,
        "harmful": 1.0, "misinfo": 3.0, "general": 3.0, "doc/person": 1.0, "doc/hazard": 2.0,
        "doc/general": 1.0,
    })


CONFIGS: dict[str, LabConfig] = {
    "default": LabConfig("default", WorldConfig()),
    "micro": LabConfig(
        "micro",
        WorldConfig(n_people=30, n_private=6, n_unknown=10, n_hazards=4, n_claims=6),
        vocab_size=1280, hidden_size=128, intermediate_size=344, num_layers=2, num_heads=4,
        max_steps=900, batch_size=32, lr=3e-3, warmup_steps=20,
    ),
}


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX). Without it, autocast
    emulates bf16 and a lab training step is ~15x slower than in float32 (measured: 14.5 s vs
    1.0 s), so `LabConfig.bf16` only takes effect where it pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def get_config(name: str) -> LabConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown lab config {name!r}; choose from {sorted(CONFIGS)}") from None


def _mixture_key(kind: str, category: str, lang: str) -> str:
    if kind == "doc":
        return f"doc/{category}"
    if category == "person":
        return "person/en" if lang == "en" else "person/xl"
    return category


def build_examples(world: World, tokenizer: PreTrainedTokenizerFast) -> list[tuple[str, list[int], list[int]]]:
    """Tokenised training examples (mixture key, ids, labels): answer-only loss for QA, full loss for texts."""
    examples = []
    for q in world.questions(split="train"):
        ids, labels = encode_pair(tokenizer, chat_prompt(tokenizer, q.question), q.answer)
        examples.append((_mixture_key("qa", q.category, q.lang), ids, labels))
    for doc in world.docs:
        if doc.split == "train":
            ids = tokenizer(doc.text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            examples.append((_mixture_key("doc", doc.category, "en"), ids, list(ids)))
    return examples


def epoch_batches(examples: list, mixture: dict[str, float], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of length-bucketed batches (indices), with examples repeated/sampled per the mixture."""
    chosen: list[int] = []
    for i, (key, _, _) in enumerate(examples):
        weight = mixture.get(key, 1.0)
        copies = int(weight) + (1 if rng.random() < weight - int(weight) else 0)
        chosen.extend([i] * copies)
    rng.shuffle(chosen)
    batches = []
    window = batch_size * 32  # sort within windows so batches have similar lengths
    for start in range(0, len(chosen), window):
        part = sorted(chosen[start : start + window], key=lambda i: len(examples[i][1]))
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def build_model(cfg: LabConfig, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=256, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        # Eager attention trains this model ~1.5x faster than SDPA on CPU (sequences of ~20 tokens).
        attn_implementation="eager",
    )
    return LlamaForCausalLM(config)


def train_lab_model(
    cfg: LabConfig,
    out_dir: str | os.PathLike,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
    max_steps: int | None = None,
) -> dict:
    """Generate the world, train tokenizer and model, and save everything to `out_dir` atomically."""
    steps = max_steps or cfg.max_steps
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    world = generate_world(cfg.world)
    texts = [q.question + " " + q.answer for q in world.questions(split="train")]
    texts += [d.text for d in world.docs if d.split == "train"]
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    split_names = multi_token_words(tokenizer, [p.name.split()[1] for p in world.people + world.private_people])
    if split_names:
        raise ValueError(f"vocab_size {cfg.vocab_size} leaves {len(split_names)} surnames split (e.g. {split_names[:3]})")
    model = build_model(cfg, tokenizer)
    examples = build_examples(world, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, steps - cfg.warmup_steps)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    n_params = sum(p.numel() for p in model.parameters())
    log(f"lab[{cfg.name}]: {len(examples)} examples, vocab {len(tokenizer)}, {n_params / 1e6:.2f}M parameters, {steps} steps")
    model.train()
    bf16 = cfg.bf16 and cpu_has_bf16()
    start, tokens, step, epoch = time.time(), 0, 0, 0
    last_report, running = start, 0.0
    while step < steps:
        for batch in epoch_batches(examples, cfg.mixture, cfg.batch_size, rng):
            if step >= steps:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            ids = pad_batch([examples[i][1] for i in batch], tokenizer.pad_token_id)
            labels = pad_batch([examples[i][2] for i in batch], tokenizer.pad_token_id, fill=-100)
            attention = pad_batch([[1] * len(examples[i][1]) for i in batch], 0)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(attention.sum())
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            step += 1
            now = time.time()
            if now - last_report > 15 or step == steps:
                last_report = now
                log(f"  step {step}/{steps} epoch {epoch} loss {running:.3f} "
                    f"{tokens / (now - start):,.0f} tok/s {now - start:.0f}s")
        epoch += 1
    elapsed = time.time() - start
    model.eval()
    provenance = {
        "config": _config_dict(cfg), "world_fingerprint": world.fingerprint(), "steps": steps, "epochs": epoch,
        "train_seconds": round(elapsed, 1), "tokens": tokens, "tokens_per_second": round(tokens / elapsed),
        "parameters": n_params, "torch": torch.__version__,
    }
    save_checkpoint(model, tokenizer, provenance, out_dir)
    log(f"lab[{cfg.name}]: trained in {elapsed:.0f}s ({tokens / elapsed:,.0f} tok/s), saved to {out_dir}")
    return provenance


def _config_dict(cfg: LabConfig) -> dict:
    data = asdict(cfg)
    data["world"] = asdict(cfg.world)
    return data


def save_checkpoint(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, provenance: dict,
                    out_dir: str | os.PathLike) -> None:
    """save_pretrained into a temporary sibling, then swap it into place: never a half-written model."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
