"""Train the default lab model from scratch and report its training time and quality.

Prints the wall time of the training run (target: <= 15 minutes on 2 cores), throughput,
and `obliviate lab check` numbers, next to those of the shipped checkpoint measured in the
same run.

    python benchmarks/lab_model.py [--config default] [--out /tmp/lab-bench] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from obliviate.lab.check import check, world_of
from obliviate.lab.train import get_config, train_lab_model
from obliviate.models import LAB_CHECKPOINT, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="default")
    parser.add_argument("--out", default="/tmp/obliviate-lab-bench")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cfg = dataclasses.replace(get_config(args.config), threads=args.threads)
    start = time.perf_counter()
    provenance = train_lab_model(cfg, args.out)
    wall = time.perf_counter() - start
    model, tokenizer = load(args.out)
    fresh = check(model, tokenizer, world_of(args.out))
    shipped_model, shipped_tok = load(LAB_CHECKPOINT)
    shipped = check(shipped_model, shipped_tok, world_of(str(LAB_CHECKPOINT)))
    print(json.dumps({
        "config": args.config, "threads": args.threads, "wall_minutes": round(wall / 60, 2),
        "train_minutes": round(provenance["train_seconds"] / 60, 2),
        "tokens_per_second": provenance["tokens_per_second"], "steps": provenance["steps"],
        "fresh": fresh, "shipped": shipped,
    }, indent=2))


if __name__ == "__main__":
    main()
