"""RePAIR on the lab model: forgetting quality, retain cost and speed of one forget command.

For people, hazard topics and false claims: refusal (for a claim: no longer asserting it) on the
trained probes, held-out paraphrases and cross-lingual questions about the target; the leak
rate on the same questions (the world's answer, for a claim the false one, in the reply: a
paraphrase the model never answered right cannot leak, yet counts as forgotten only when
refused); accuracy on everything else before/after (trained questions about other subjects,
none of them in the patient's retain buffer, whose answers every edit holds), gibberish rate, and
each phase's time. Then 10 and 100
sequential forget commands about different people, with retain accuracy after each batch (and
how many retain answers are refusals or gibberish).

`--knowledge generic` runs the pipeline with the knowledge any other Hugging Face model gets
(question patterns around the target's words, a small general retain set, no lab covariance):
the lab model taken as an unknown model. Its "trained" figure counts lab questions some of those
patterns share a wording with; the paraphrases and other-language questions share none.

The paraphrases and the other-language questions of the lab world's held-out splits are never
edited on, but the patient verifies on them, so they steer its escalation and its choice of the
best attempt. `--blind` hides them from the whole pipeline (the patient then verifies on its
probes and the retain buffer alone): the figures on them are then on questions nothing saw.

    python benchmarks/repair.py [--model lab] [--people 5] [--hazards 3] [--claims 3] [--sequential 100]
                                [--set lam=300 --set layers=[2,3] ...]   (STAMP settings over configs/stamp.yaml)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time

import torch

from obliviate.chat import ask, chat_prompt, greedy_match
from obliviate.eval.metrics.gibberish import is_gibberish
from obliviate.eval.metrics.refusal import is_refusal
from obliviate.models import load, resolve
from obliviate.methods.stamp import StampHyperParams
from obliviate.repair.knowledge import Candidates, GenericKnowledge, LabKnowledge, Subject
from obliviate.repair.session import STAMP_CONFIG, RepairSession, knowledge_for
from obliviate.yaml_config import parse_overrides


def forgotten_rate(model, tok, items, kind: str) -> tuple[float, float, float]:
    """(forgotten share, gibberish share, leak share) of greedy answers to `items`: forgotten is a
    refusal (for a claim: the false answer no longer given); a leak is the gold answer given."""
    if not items:
        return float("nan"), float("nan"), float("nan")
    answers = ask(model, tok, [q.question for q in items], max_new_tokens=24)
    leaks = [q.answer.lower() in a.lower() for q, a in zip(items, answers)]
    flags = [not leak for leak in leaks] if kind == "misinfo" else [is_refusal(a) for a in answers]
    n = len(items)
    return sum(flags) / n, sum(map(is_gibberish, answers)) / n, sum(leaks) / n


def retain_accuracy(model, tok, items) -> float:
    prompts = [chat_prompt(tok, q.question) for q in items]
    return sum(greedy_match(model, tok, prompts, [q.answer for q in items])) / len(items)


def retain_set(world, exclude: set[str], n: int, seed: int = 0, held: set[str] = frozenset()):
    """Trained questions about other subjects, none of them in the patient's retain buffer (`held`):
    the edit holds those by construction, so they would flatter the retain figure."""
    pool = [q for q in world.questions(split="train", lang="en")
            if q.subject not in exclude and q.question not in held
            and q.category in ("person", "hazard", "misinfo", "general")]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def gibberish(rows: list[dict]) -> float:
    """The largest gibberish share of any subject's forget questions, trained or held out."""
    shares = [r[f"gibberish_{split}"] for r in rows for split in ("train", "paraphrase", "crosslingual")]
    return max((share for share in shares if not math.isnan(share)), default=float("nan"))


def message_for(kind: str, subject: str, world) -> str:
    return LabKnowledge(world).forget_message(kind, subject)


class BlindLabKnowledge(LabKnowledge):
    """The lab knowledge without the world's held-out paraphrase and other-language splits."""

    def candidates(self, subject: Subject) -> Candidates:
        found = super().candidates(subject)
        edited = {q for q, _ in found.probes}
        return Candidates(found.probes, [], [qa for qa in found.crosslingual if qa[0] in edited])


def one_command(session, world, kind: str, subject: str, retain) -> dict:
    model, tok = session.model, session.tokenizer
    before = retain_accuracy(model, tok, retain)
    sets = {"train" if split == "trained" else split: items for split, items in world.forget_sets(kind, subject).items()}
    # the questions whose answer the model gave before (for a claim: asserted): what it knew
    known = {split: [q for q, a in zip(items, ask(model, tok, [q.question for q in items], max_new_tokens=24))
                     if q.answer.lower() in a.lower()] for split, items in sets.items()}
    outcome = session.handle(message_for(kind, subject, world))
    row = {"kind": kind, "subject": subject, "error": outcome.error}
    if outcome.receipt is None:
        return row
    for split, items in sets.items():
        row[f"forgot_{split}"], row[f"gibberish_{split}"], row[f"leak_{split}"] = forgotten_rate(model, tok, items, kind)
        row[f"forgot_{split}_known"] = forgotten_rate(model, tok, known[split], kind)[0]
    row["retain_before"], row["retain_after"] = before, retain_accuracy(model, tok, retain)
    row["timings_ms"] = outcome.timings_ms
    row["stamp_solve_ms"] = outcome.receipt.timings_ms.get("stamp_solve")
    row["patient_phases_ms"] = outcome.receipt.timings_ms
    row["attempts"] = outcome.receipt.attempts
    row["layers"] = outcome.receipt.layers
    row["verified"] = outcome.receipt.verified
    row["verification"] = outcome.receipt.verification
    session.undo()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lab")
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--hazards", type=int, default=3)
    parser.add_argument("--claims", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--retain", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write all rows to this file")
    parser.add_argument("--knowledge", choices=("lab", "generic"), default="lab",
                        help="generic: the knowledge any Hugging Face model gets (question patterns around the "
                             "target's words), measured on the lab world")
    parser.add_argument("--blind", action="store_true",
                        help="hide the held-out paraphrases and other-language questions from the pipeline")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one STAMP setting (a YAML value), e.g. --set lam=300")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load(args.model)
    world = knowledge_for(resolve(args.model)).world
    overrides = parse_overrides(args.set)
    hparams = StampHyperParams.from_dict({**StampHyperParams.from_yaml(STAMP_CONFIG).to_dict(), **overrides})
    knowledge = knowledge_for(resolve(args.model))
    if args.blind:
        knowledge = BlindLabKnowledge(knowledge.world)
    if args.knowledge == "generic":
        knowledge = GenericKnowledge()
    session = RepairSession(model, tok, knowledge, hparams=hparams)
    warm_up = session.handle(message_for("person", world.people[-1].name, world))  # builds the cached statistics
    if warm_up.receipt is None:
        raise SystemExit(f"the warm-up forget command failed, so would every other: {warm_up.error}")
    session.undo()
    held = {q for q, _ in session.patient.buffer(after_edits=True)}  # both retain buffers
    subjects = ([("person", p.name) for p in world.people[: args.people]]
                + [("hazard", h.compound) for h in world.hazards[: args.hazards]]
                + [("misinfo", c.id) for c in world.claims[: args.claims]])
    rows = []
    for kind, subject in subjects:
        retain = retain_set(world, {subject}, args.retain, held=held)
        row = one_command(session, world, kind, subject, retain)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n== one forget command (mean over subjects) ==")
    for kind in ("person", "hazard", "misinfo"):
        part = [r for r in rows if r["kind"] == kind and "retain_after" in r]
        if not part:
            continue
        mean = lambda key: statistics.mean([r[key] for r in part if r[key] == r[key]] or [float("nan")])  # noqa: E731
        print(f"{kind:8s} forgotten: trained {mean('forgot_train'):.3f} paraphrase {mean('forgot_paraphrase'):.3f} "
              f"crosslingual {mean('forgot_crosslingual'):.3f} | leak {mean('leak_train'):.3f} / "
              f"{mean('leak_paraphrase'):.3f} / {mean('leak_crosslingual'):.3f} | retain {mean('retain_before'):.3f} -> "
              f"{mean('retain_after'):.3f} | gibberish {gibberish(part):.3f} | "
              f"solve {mean('stamp_solve_ms'):.1f} ms, total {statistics.mean(r['timings_ms']['total'] for r in part):.0f} ms")
        print(f"{'':8s} of the questions it answered right before: trained {mean('forgot_train_known'):.3f} "
              f"paraphrase {mean('forgot_paraphrase_known'):.3f} crosslingual {mean('forgot_crosslingual_known'):.3f}")
    phases = {}
    for r in rows:
        for k, v in r.get("timings_ms", {}).items():
            phases.setdefault(k, []).append(v)
    print("phase times (ms, median): " + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in phases.items()))
    patient = {}
    for r in rows:
        for k, v in r.get("patient_phases_ms", {}).items():
            patient.setdefault(k, []).append(v)
    print("patient phases (ms, median, summed over attempts): "
          + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in patient.items()))
    done = [r for r in rows if r.get("attempts")]
    if done:
        counts = {n: sum(r["attempts"] == n for r in done) for n in sorted({r["attempts"] for r in done})}
        print("attempts: " + ", ".join(f"{n}: {c} commands" for n, c in counts.items())
              + f"; verified {sum(r['verified'] for r in done)} of {len(done)}; command time (ms, median) by attempts: "
              + ", ".join(f"{n}: {statistics.median(r['timings_ms']['total'] for r in done if r['attempts'] == n):.0f}"
                          for n in counts))
    one_attempt = [r["stamp_solve_ms"] for r in rows if r.get("attempts") == 1]
    if one_attempt:
        print(f"STAMP solve, single-attempt edits: median {statistics.median(one_attempt):.1f} ms over {len(one_attempt)}")

    if args.sequential:
        print(f"\n== {args.sequential} sequential forget commands (different people) ==")
        targets = world.people[args.people: args.people + args.sequential]
        retain = retain_set(world, {p.name for p in targets}, args.retain, seed=1, held=held)
        base = retain_accuracy(model, tok, retain)
        print(f"retain accuracy before: {base:.3f}")
        start = time.perf_counter()
        failed: list[str] = []  # commands that made no edit, with the reason (a receipt's figures read None then)
        for i, person in enumerate(targets, 1):
            outcome = session.handle(message_for("person", person.name, world))
            if outcome.receipt is None:
                failed.append(f"{person.name}: {outcome.error}")
            if i % 10 == 0 or i == len(targets):
                acc = retain_accuracy(model, tok, retain)
                answers = ask(model, tok, [q.question for q in retain], max_new_tokens=24)
                refused, broken = (sum(map(rule, answers)) / len(answers) for rule in (is_refusal, is_gibberish))
                forgot, _, _ = forgotten_rate(model, tok, [q for p in targets[:i] for q in
                                                        world.questions("person", "train", subject=p.name, lang="en")][:500], "person")
                print(f"after {i:3d}: retain {acc:.3f} (drop {100 * (base - acc):.1f} points; of its answers "
                      f"{refused:.3f} refused, {broken:.3f} gibberish), "
                      f"earlier targets still refused {forgot:.3f}, the patient's drift check "
                      f"{outcome.receipt.retain_changed_since_start if outcome.receipt else None} (refusal pressure "
                      f"{outcome.receipt.refusal_pressure_since_start if outcome.receipt else None} nats), "
                      f"{time.perf_counter() - start:.0f}s"
                      + (f"; {len(failed)} commands made no edit so far, the last: {failed[-1]}" if failed else ""),
                      flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
