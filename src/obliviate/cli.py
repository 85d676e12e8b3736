"""The `obliviate` command line: one subcommand per job, heavy imports only when a job runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obliviate.repair.session import RepairSession
    from obliviate.repair.watchdog import Watchdog


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


def _watchdog(args: argparse.Namespace) -> Watchdog:
    """The rule watchdog, or the LLM watchdog on the chat model the `--watchdog-*` options name."""
    from obliviate.repair.watchdog import LLMWatchdog, RuleWatchdog

    named = {"base_url": args.watchdog_url, "model": args.watchdog_model, "api_key_env": args.watchdog_key_env,
             "hf_model": args.watchdog_hf, "cache": args.watchdog_cache}
    if not any(named.values()):
        return RuleWatchdog()  # the chat client (and torch with it) stays unloaded
    from obliviate.llm import chat_backend

    backend = chat_backend(**named)
    if backend is None:
        raise ValueError("--watchdog-key-env needs --watchdog-url and --watchdog-model")
    return LLMWatchdog(backend)


def cmd_watchdog(args: argparse.Namespace) -> int:
    from obliviate.repair.watchdog import verdict

    intent = _watchdog(args).detect(args.message)
    if args.json:
        print(json.dumps(verdict(intent), ensure_ascii=False))
    else:
        print(f"forget intent: {intent.target!r} ({intent.language})" if intent else "no forget intent")
    return 0


def _session(model_name: str, user: str | None = None, covariance: str | None = None,
             watchdog: Watchdog | None = None) -> RepairSession:
    """A session on the model; a model saved by `--save` or `/save` goes on with the ledger saved
    with it (its edits stay undoable and held, and the next save keeps the whole history)."""
    from obliviate.models import load, resolve
    from obliviate.repair.session import RepairSession, knowledge_for, read_covariance_texts

    texts = read_covariance_texts(covariance) if covariance else None  # a bad file fails before the model loads
    model, tokenizer = load(model_name)
    return RepairSession(model, tokenizer, knowledge_for(resolve(model_name)), user=user, covariance_texts=texts,
                         history=_saved_ledger(resolve(model_name)), watchdog=watchdog)


def cmd_forget(args: argparse.Namespace) -> int:
    with _session(args.model, user=args.user, covariance=args.covariance, watchdog=_watchdog(args)) as session:
        outcome = session.handle(args.message)
        if outcome.intent is None:
            outcome.error = "the message is not a request to forget anything"
        if args.save and outcome.receipt is not None:
            session.save(args.save)
    if args.json:
        _print_json(outcome.to_dict())
    elif outcome.error:
        print(outcome.error)
    else:
        _print_receipt(outcome)
    return 0 if outcome.receipt is not None else 1


def _print_receipt(outcome) -> None:
    for r in outcome.receipts:
        _print_one_receipt(r)
    print("  time (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in outcome.timings_ms.items()))


def percent(rate: float | None) -> str:
    """A verification rate as a percentage; None when the plan had no such questions."""
    return "none asked" if rate is None else f"{rate:.0%}"


def _print_one_receipt(r) -> None:
    v = r.verification
    status = "verified" if r.verified else "NOT fully verified"
    print(f"forgot {r.target!r} ({status}): layers {r.layers}, {r.probes} probes, {r.attempts} attempt(s)")
    print(f"  refusal: probes {percent(v['probe_refusal'])}, paraphrases {percent(v['paraphrase_refusal'])}, "
          f"other languages {percent(v['crosslingual_refusal'])}; gibberish {percent(v['gibberish_rate'])}; "
          f"retain answers changed {v['retain_changed']:.1%}")
    if r.shortfalls:
        print("  not verified: " + "; ".join(r.shortfalls) + " (the best attempt is kept)")
    if r.retain_changed_since_start is not None:
        print(f"  since the session's first edit, {r.retain_changed_since_start:.1%} of the drift questions "
              "are answered otherwise (every edit in force together)")
    if r.refusal_pressure_since_start is not None:
        print(f"  and their answers are {r.refusal_pressure_since_start:+.2f} nats more likely to start as the refusal "
              "does (the pull toward refusing unrelated questions)")
    if v.get("off_target"):
        print(f"  {v['off_target']} held-out question(s) not counted: answered before and after the edit with "
              "nothing the model had said about the target")
    for note in r.notes:
        print(f"  note: {note}")


def cmd_chat(args: argparse.Namespace) -> int:
    with _session(args.model, user=args.user, covariance=args.covariance, watchdog=_watchdog(args)) as session:
        return _chat(session)


CHAT_HELP = ("/edits (the edits in force), /undo [N] (the last N forget requests, each with all its edits), "
             "/save DIR, /help, /quit")


def _chat(session: RepairSession) -> int:
    from obliviate.llm import ChatError

    print(f"obliviate chat: ask anything; tell it to forget something; {CHAT_HELP}")
    while True:
        try:
            message = input("you> " if sys.stdin.isatty() else "").strip()
        except EOFError:
            break
        if not message:
            continue
        if message.startswith("/"):
            if not _chat_command(session, message):
                break
            continue
        try:
            outcome = session.handle(message)
        except ChatError as err:  # the LLM watchdog's server: this message is left, the chat goes on
            print(f"  the watchdog could not read this message: {err}")
            continue
        if outcome.intent is None:
            print(f"model> {session.reply(message)}")
        elif outcome.error:
            print(f"model> {outcome.error}")
        else:
            _print_receipt(outcome)
    return 0


def _chat_command(session: RepairSession, message: str) -> bool:
    """Run one chat command (`/word [argument]`); False when the chat should end."""
    command, _, argument = message.partition(" ")
    argument = argument.strip()
    if command in ("/quit", "/exit"):
        return False
    if command == "/help":
        print(f"  {CHAT_HELP}")
    elif command == "/edits":
        records = session.ledger.entries()
        for record in records:
            print(f"  #{record.edit_id} {record.description} ({', '.join(record.param_names)})")
        if not records:
            print("  no edits in force")
    elif command == "/undo":
        if argument and not argument.isdigit():
            print("  usage: /undo [N] (the last N forget requests)")
            return True
        try:
            print(f"  undid edit(s) {session.undo_requests(int(argument) if argument else 1)}")
        except ValueError as err:
            print(f"  {err}")
    elif command == "/save":
        if not argument:
            print("  usage: /save DIR")
            return True
        try:
            print(f"  saved to {session.save(argument)}")
        except (ValueError, OSError) as err:  # the session and its edits stay as they were
            print(f"  cannot save: {err}")
    else:
        print(f"  unknown command {command}; {CHAT_HELP}")
    return True


def _saved_ledger(model_dir: str) -> Path | None:
    """The edit ledger saved with a model (`--save`, `/save`), if any."""
    from obliviate.repair.ledger import LEDGER_DIRNAME, LEDGER_FILE

    ledger = Path(model_dir) / LEDGER_DIRNAME
    return ledger if (ledger / LEDGER_FILE).is_file() else None


def _ledger_of(path: str) -> Path:
    """The edit ledger in `path`: a saved model directory's `ledger/`, or a ledger directory."""
    from obliviate.repair.ledger import LEDGER_DIRNAME, LEDGER_FILE

    found = _saved_ledger(path) or (Path(path) if (Path(path) / LEDGER_FILE).is_file() else None)
    if found is None:
        raise ValueError(f"{path} holds no edit ledger (no {LEDGER_FILE} in it or in its {LEDGER_DIRNAME}/)")
    return found


def cmd_ledger_list(args: argparse.Namespace) -> int:
    from obliviate.repair.ledger import EditLedger

    records = EditLedger.open(_ledger_of(args.path)).entries(active_only=not args.all)
    rows = [{"id": r.edit_id, "timestamp": r.timestamp, "description": r.description, "active": r.active,
             "undone_by": r.undone_by, "verified": r.receipt.get("verified"), "layers": r.receipt.get("layers"),
             "parameters": r.param_names} for r in records]
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        state = "in force" if row["active"] else f"undone by #{row['undone_by']}"
        verified = {True: "verified", False: "not verified"}.get(row["verified"], "")
        print(f"#{row['id']} {row['timestamp']} {row['description']} ({state}; {verified}; layers {row['layers']})")
    if not rows:
        print("no edits" + ("" if args.all else " in force"))
    return 0


def cmd_ledger_replay(args: argparse.Namespace) -> int:
    import tempfile

    from obliviate.models import load
    from obliviate.repair.ledger import EditLedger, save_model_atomically

    source = _ledger_of(args.path)
    model, tokenizer = load(args.model)
    with tempfile.TemporaryDirectory(prefix="obliviate-replay-") as scratch:  # the source ledger is only read
        ledger = EditLedger.open(Path(scratch) / "ledger")
        ledger.take_history(source)
        count = ledger.replay(model)  # checks first that the model is the ledger's base
        out = save_model_atomically(model, tokenizer, args.out, ledger)
    print(f"replayed {count} edit(s) of {source} onto {args.model}; saved to {out}")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    from obliviate.models import load, resolve
    from obliviate.unlearning import file_data, lab_data, run_unlearn

    model, tokenizer = load(args.model)
    if args.forget.endswith(".jsonl") or Path(args.forget).is_file():
        data = file_data(args.forget, args.retain)
    else:
        from obliviate.lab.check import world_of

        source = resolve(args.model)
        if not (Path(source) / "provenance.json").exists():
            raise ValueError(f"--forget {args.forget!r} names lab-world knowledge, but {args.model} is not a lab "
                             "model; pass a JSONL file of question/answer pairs instead")
        data = lab_data(world_of(source), args.forget)
    _, summary = run_unlearn(model, tokenizer, data, args.method, args.config, args.set, args.out, args.lora)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))
    return 0


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _tofu_settings(args: argparse.Namespace) -> dict:
    values = {"forget": args.tofu_forget, "retain_authors": args.tofu_retain_authors,
              "forget_authors": args.tofu_forget_authors, "facts_rows": args.tofu_facts}
    if getattr(args, "tofu_base", None):
        values["base"] = args.tofu_base
    return values


def cmd_eval(args: argparse.Namespace) -> int:
    import contextlib

    from obliviate.eval.harness import EvalSettings, evaluate, reference_from
    from obliviate.eval.tofu_pipeline import write_json

    settings = EvalSettings.from_yaml(args.settings) if args.settings else EvalSettings()
    if args.max_new_tokens:
        settings.max_new_tokens = args.max_new_tokens
    with contextlib.redirect_stdout(sys.stderr):  # training logs of the relearning attack
        from obliviate.models import load, resolve

        reference = None
        if args.scenario == "tofu":
            from obliviate.eval.tofu_pipeline import TofuPipelineConfig, load_tofu_data, scenario_of

            config = TofuPipelineConfig.from_dict(_tofu_settings(args))
            scenario = scenario_of(load_tofu_data(config, args.tofu_dir))
            if args.reference:
                with open(args.reference, encoding="utf-8") as handle:
                    reference = reference_from(json.load(handle))
        else:
            from obliviate.eval.scenarios import lab_scenario, lab_world

            world, notes = lab_world(resolve(args.world or args.model))
            for note in notes:
                print(f"obliviate: warning: {note}", file=sys.stderr)
            scenario = lab_scenario(world, args.scenario, args.subject, args.retain_size, notes=notes)
        model, tokenizer = load(args.model)
        result = evaluate(model, tokenizer, scenario, _names(args.attacks), settings, reference=reference)
    if args.out:
        write_json(Path(args.out), result)
    if args.json:
        _print_json(result)
    else:
        print(f"{scenario.name}: forget {scenario.subject!r} ({len(scenario.forget)} forget, {len(scenario.retain)} retain items)")
        for name, value in result["summary"].items():
            print(f"  {name:36s} {'n/a' if value is None else round(value, 4)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import contextlib

    from obliviate.eval.bench import BenchConfig, run_bench

    overrides = {"methods": _names(args.methods) or None, "scenarios": _names(args.scenarios) or None,
                 "attacks": _names(args.attacks) if args.attacks is not None else None, "model": args.model,
                 "subjects": args.subjects, "max_steps": args.max_steps, "retain_size": args.retain_size,
                 "tofu_dir": args.tofu_dir}
    tofu = {k: v for k, v in _tofu_settings(args).items() if v is not None}
    if args.config:
        config = BenchConfig.from_yaml(args.config, **overrides)
        config.tofu = {**config.tofu, **tofu}
    else:
        if not overrides["methods"] or not overrides["scenarios"]:
            raise ValueError("give --methods and --scenarios (or a --config file)")
        config = BenchConfig(**{k: v for k, v in overrides.items() if v is not None}, tofu=tofu)
    if args.max_new_tokens:
        config.eval = {**config.eval, "max_new_tokens": args.max_new_tokens}
    with contextlib.redirect_stdout(sys.stderr):  # training logs
        summary = run_bench(config, args.out)
    if args.json:
        _print_json(summary)
    else:
        with open(f"{args.out}/results.md", encoding="utf-8") as handle:
            print(handle.read())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obliviate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="show the lab model answering, forgetting on command, and undoing")
    demo.add_argument("--model", default="lab", help="lab, a model directory or a hub id")
    demo.set_defaults(func=cmd_demo)

    wd = sub.add_parser("watchdog", help="does a message ask the model to forget something?")
    wd.add_argument("message")
    wd.add_argument("--json", action="store_true")
    wd.set_defaults(func=cmd_watchdog)

    forget = sub.add_parser("forget", help="run the RePAIR pipeline on one message and print the receipt")
    forget.add_argument("message")
    forget.add_argument("--model", default="lab")
    forget.add_argument("--save", default=None, help="save the repaired model (with its ledger) to DIR")
    forget.add_argument("--user", default=None, help="who 'I'/'my' refers to, e.g. a lab person's name")
    forget.add_argument("--json", action="store_true")
    forget.set_defaults(func=cmd_forget)

    chat = sub.add_parser("chat", help="chat with a model that forgets on command")
    chat.add_argument("--model", default="lab")
    chat.add_argument("--user", default=None)
    chat.set_defaults(func=cmd_chat)
    for command in (forget, chat):
        command.add_argument("--covariance", default=None, metavar="FILE",
                             help="text lines like those the model is used for (e.g. a Wikipedia sample): STAMP's "
                                  "retain covariance; default: the lab model's own training conversations, for "
                                  "any other model 200 texts it writes itself")
    for command in (wd, forget, chat):  # default: the rule watchdog (no LLM, < 1 ms)
        llm = command.add_argument_group("LLM watchdog", "ask a chat model for the verdict instead of the rules")
        llm.add_argument("--watchdog-url", default=None, metavar="URL",
                         help="an OpenAI-compatible API root, e.g. http://localhost:8000/v1 (with --watchdog-model)")
        llm.add_argument("--watchdog-model", default=None, metavar="NAME", help="the model name the server serves")
        llm.add_argument("--watchdog-key-env", default=None, metavar="VAR",
                         help="the environment variable holding the server's API key")
        llm.add_argument("--watchdog-hf", default=None, metavar="DIR", help="a local Hugging Face chat model instead")
        llm.add_argument("--watchdog-cache", default=None, metavar="FILE", help="keep its replies in this JSONL file")

    unl = sub.add_parser("unlearn", help="unlearn with TRU or a training-based baseline")
    unl.add_argument("--method", required=True,
                     choices=["tru", "ga", "graddiff", "kl", "npo", "simnpo", "idkdpo", "rmu", "wga", "lunar", "finetune"])
    unl.add_argument("--model", default="lab")
    unl.add_argument("--forget", required=True,
                     help="a lab person ('Tara Prakround'), hazard ('Vexorine'), claim ('claim/03'), or a JSONL file")
    unl.add_argument("--retain", default=None, help="JSONL file of retain pairs (with a JSONL --forget)")
    unl.add_argument("--out", required=True)
    unl.add_argument("--lora", action="store_true")
    unl.add_argument("--config", default=None, help="YAML file of hyper-parameters")
    unl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one hyper-parameter")
    unl.set_defaults(func=cmd_unlearn)

    def tofu_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tofu-dir", default=None, help="TOFU JSONL directory (default: $OBLIVIATE_TOFU_DIR, ../shared/data/tofu)")
        p.add_argument("--tofu-forget", default="forget01", choices=["forget01", "forget05", "forget10"])
        p.add_argument("--tofu-retain-authors", type=int, default=None, help="use the first N retain authors")
        p.add_argument("--tofu-forget-authors", type=int, default=None, help="use the first N forget authors")
        p.add_argument("--tofu-facts", type=int, default=None, help="evaluate N real-author and world-fact rows")

    ev = sub.add_parser("eval", help="evaluate one model on one scenario, under attacks")
    ev.add_argument("--model", default="lab", help="lab, a model directory or a hub id")
    ev.add_argument("--scenario", required=True, choices=["person", "hazard", "misinfo", "tofu"])
    ev.add_argument("--subject", default=None, help="the lab person, hazard compound or claim id (default: one chosen)")
    ev.add_argument("--attacks", default="", help="comma-separated: paraphrase,crosslingual,jailbreak,relearn,zerothink")
    ev.add_argument("--world", default=None, help="lab model directory whose world to use (default: --model's)")
    ev.add_argument("--retain-size", type=int, default=200)
    ev.add_argument("--max-new-tokens", type=int, default=None)
    ev.add_argument("--settings", default=None, help="YAML file of EvalSettings")
    ev.add_argument("--reference", default=None, help="tofu: the retain model's eval JSON (forget quality, privleak)")
    tofu_options(ev)
    ev.add_argument("--out", default=None, help="also write the full result JSON here")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    bench = sub.add_parser("bench", help="run methods x scenarios x attacks and write tables and plots")
    bench.add_argument("--methods", default=None, help="comma-separated, e.g. base,stamp,tru,ga,npo")
    bench.add_argument("--scenarios", default=None, help="comma-separated: person,hazard,misinfo,tofu")
    bench.add_argument("--attacks", default=None, help="comma-separated: paraphrase,crosslingual,jailbreak,relearn,zerothink")
    bench.add_argument("--out", required=True)
    bench.add_argument("--model", default=None, help="base model for the lab scenarios (default lab)")
    bench.add_argument("--subjects", type=int, default=None, help="subjects per lab scenario (default 1)")
    bench.add_argument("--max-steps", type=int, default=None, help="cap unlearning and relearning steps")
    bench.add_argument("--retain-size", type=int, default=None)
    bench.add_argument("--max-new-tokens", type=int, default=None)
    bench.add_argument("--config", default=None, help="YAML file of BenchConfig fields")
    bench.add_argument("--tofu-base", default=None, help="scratch (default), lab, a model directory or a hub id")
    tofu_options(bench)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=cmd_bench)

    ledger = sub.add_parser("ledger", help="a repaired model's edit ledger: list it, replay it onto the base model")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", required=True)
    listing = ledger_commands.add_parser("list", help="the edits of a saved model (or of a ledger directory)")
    listing.add_argument("path", help="a model saved with --save or /save, or its ledger/ directory")
    listing.add_argument("--all", action="store_true", help="also the edits that were undone")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_ledger_list)
    replay = ledger_commands.add_parser("replay", help="apply a ledger's edits in force to a fresh base model, bitwise")
    replay.add_argument("path", help="a model saved with --save or /save, or its ledger/ directory")
    replay.add_argument("--model", default="lab", help="the base model the edits were made on (checked)")
    replay.add_argument("--out", required=True, help="where to save the repaired model, with the ledger")
    replay.set_defaults(func=cmd_ledger_replay)

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


class _StderrNotes(logging.Handler):
    """The library's notes on stderr, beside the errors (`sys.stderr` looked up at each note)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"obliviate: {self.format(record)}", file=sys.stderr)


def show_progress_notes() -> None:
    """Show the library's info notes (a model sampling its texts, answering its retain buffer):
    on a large model on a CPU those take minutes, and a silent command looks hung."""
    logger = logging.getLogger("obliviate")
    if not any(isinstance(h, _StderrNotes) for h in logger.handlers):
        logger.addHandler(_StderrNotes())
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_progress_notes()
    try:
        return args.func(args)
    except Exception as err:
        if not isinstance(err, _user_errors()):
            raise
        print(f"obliviate: error: {err}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    """What a command reports as `obliviate: error: ...`: bad input, missing files, and a chat
    server that fails (its error class only once the chat client is loaded: imports stay lazy)."""
    llm = sys.modules.get("obliviate.llm")
    return (ValueError, FileNotFoundError, OSError, KeyError) + ((llm.ChatError,) if llm else ())


if __name__ == "__main__":
    sys.exit(main())
