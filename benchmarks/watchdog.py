"""Watchdog quality and speed on the labelled evaluation set, per language.

    python benchmarks/watchdog.py                       # rule watchdog
    python benchmarks/watchdog.py --errors              # also list every mistake
    python benchmarks/watchdog.py --base-url http://localhost:8000/v1 --model qwen2.5-7b-instruct
    python benchmarks/watchdog.py --hf-model path/to/local/chat/model

Prints precision, recall, F1, exact-target-match rate (among true positives) and mean / p95
latency per message. The LLM watchdog is scored too when a backend is given; its replies can be
cached with --cache so reruns are free.
"""

from __future__ import annotations

import argparse
import sys

from obliviate.llm import ChatBackend, chat_backend
from obliviate.repair.watchdog import LLMWatchdog, RuleWatchdog, Watchdog
from obliviate.repair.watchdog_eval import EVAL_SET, Score, evaluate, load_eval_set


def report(name: str, scores: dict[str, Score], errors: bool) -> None:
    print(f"\n{name}")
    print(f"{'lang':5s} {'n':>4s} {'prec':>6s} {'recall':>6s} {'F1':>6s} {'target':>6s} {'mean ms':>8s} {'p95 ms':>8s}")
    for lang in ["all"] + sorted(k for k in scores if k != "all"):
        s = scores[lang]
        print(
            f"{lang:5s} {s.n:4d} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.exact_rate:6.3f}"
            f" {s.mean_ms:8.3f} {s.p95_ms:8.3f}"
        )
    if errors:
        for kind, row, found in scores["all"].mistakes:
            detail = f" -> {found!r} (want {row.target!r})" if kind == "target" else (f" -> {found!r}" if found else "")
            print(f"  {kind:11s} [{row.lang}] {row.message!r}{detail}")


def llm_backend(args: argparse.Namespace) -> ChatBackend | None:
    try:
        return chat_backend(args.base_url, args.model, args.api_key_env, args.hf_model, args.cache, args.timeout)
    except ValueError as error:
        sys.exit(str(error))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", default=str(EVAL_SET), help="labelled JSONL (default: the shipped set)")
    parser.add_argument("--errors", action="store_true", help="list every missed, false or mis-targeted message")
    parser.add_argument("--base-url", help="OpenAI-compatible API root, e.g. http://localhost:8000/v1")
    parser.add_argument("--model", help="model name for --base-url")
    parser.add_argument("--api-key-env", help="name of the environment variable holding the API key")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--hf-model", help="a local Hugging Face chat model directory instead of --base-url")
    parser.add_argument("--cache", help="JSONL file caching LLM replies")
    args = parser.parse_args()

    rows = load_eval_set(args.eval)
    positives = sum(r.intent for r in rows)
    print(f"{len(rows)} messages ({positives} forget requests, {len(rows) - positives} near-misses) from {args.eval}")
    watchdogs: list[tuple[str, Watchdog]] = [("rule watchdog", RuleWatchdog())]
    backend = llm_backend(args)
    if backend is not None:
        watchdogs.append((f"LLM watchdog ({getattr(backend, 'name', type(backend).__name__)})", LLMWatchdog(backend)))
    for name, watchdog in watchdogs:
        report(name, evaluate(watchdog, rows), args.errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
