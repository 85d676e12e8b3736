"""The `obliviate` command line: one subcommand per job, heavy imports only when a job runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_lab_world(args: argparse.Namespace) -> int:
    import dataclasses

    from obliviate.lab.train import get_config
    from obliviate.lab.world import generate_world

    world_cfg = get_config(args.config).world
    if args.seed is not None:
        world_cfg = dataclasses.replace(world_cfg, seed=args.seed)
    world = generate_world(world_cfg)
    paths = world.save(args.out)
    print(f"wrote {len(paths)} files to {args.out} (fingerprint {world.fingerprint()[:16]})")
    return 0


def cmd_lab_train(args: argparse.Namespace) -> int:
    import dataclasses

    from obliviate.lab.train import get_config, train_lab_model

    cfg = get_config(args.config)
    if args.threads:
        cfg = dataclasses.replace(cfg, threads=args.threads)
    provenance = train_lab_model(cfg, args.out, max_steps=args.steps)
    print(json.dumps({k: provenance[k] for k in ("steps", "train_seconds", "tokens_per_second")}))
    return 0


def cmd_lab_check(args: argparse.Namespace) -> int:
    from obliviate.lab.check import check, world_of
    from obliviate.models import load, resolve

    model, tokenizer = load(args.model)
    report = check(model, tokenizer, world_of(resolve(args.model)))
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:24s} {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from obliviate.demo import run_demo

    return run_demo(args.model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obliviate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="show the lab model answering, forgetting on command, and undoing")
    demo.add_argument("--model", default="lab", help="lab, a model directory or a hub id")
    demo.set_defaults(func=cmd_demo)

    lab = sub.add_parser("lab", help="the generated lab world and the lab model").add_subparsers(dest="lab_command", required=True)
    world = lab.add_parser("world", help="write the generated world as JSONL")
    world.add_argument("--out", required=True)
    world.add_argument("--config", default="default", choices=["default", "micro"])
    world.add_argument("--seed", type=int, default=None)
    world.set_defaults(func=cmd_lab_world)
    train = lab.add_parser("train", help="train a lab model from scratch")
    train.add_argument("--config", default="default", choices=["default", "micro"])
    train.add_argument("--out", required=True)
    train.add_argument("--steps", type=int, default=None, help="override the configured number of steps")
    train.add_argument("--threads", type=int, default=None)
    train.set_defaults(func=cmd_lab_train)
    chk = lab.add_parser("check", help="measure what a lab model knows")
    chk.add_argument("--model", default="lab")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=cmd_lab_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, OSError, KeyError) as err:
        print(f"obliviate: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
