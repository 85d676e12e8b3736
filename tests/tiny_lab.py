"""A tiny lab world and a randomly initialised lab-like model saved as a lab model directory.

The directory has the files `world_of` and `knowledge_for` look for (`provenance.json` naming the
world config), so the harness, STAMP and the training methods treat it as a lab model; building it
takes about a second, against a minute to train even the micro lab model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from obliviate.lab.tokenizer import train_tokenizer
from obliviate.lab.train import build_model, get_config
from obliviate.lab.world import World, WorldConfig, generate_world
from obliviate.repair.ledger import save_model_atomically

TINY_WORLD = WorldConfig(n_people=6, n_private=2, n_unknown=2, n_hazards=2, n_claims=4)
TINY_ARCH = {"vocab_size": 600, "hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2}


def tiny_world() -> World:
    return generate_world(TINY_WORLD)


def tiny_tokenizer(world: World):
    texts = [f"{q.question} {q.answer}" for q in world.qa] + [d.text for d in world.docs]
    return train_tokenizer(texts, TINY_ARCH["vocab_size"])


def tiny_lab_model(out_dir: Path, seed: int = 0) -> Path:
    """Save a random 2-layer lab-architecture model over the tiny world's tokenizer to `out_dir`."""
    world = tiny_world()
    tokenizer = tiny_tokenizer(world)
    torch.manual_seed(seed)
    config = dataclasses.replace(get_config("micro"), name="tiny", world=TINY_WORLD, **TINY_ARCH)
    model = build_model(config, tokenizer)
    save_model_atomically(model, tokenizer, out_dir)
    provenance = {"config": {"name": "tiny", "world": dataclasses.asdict(TINY_WORLD)}, "steps": 0}
    (Path(out_dir) / "provenance.json").write_text(json.dumps(provenance))
    return Path(out_dir)
