"""`obliviate demo`: the RePAIR story end to end on the lab model.

Ask about a person, tell the model to forget them, ask again (also paraphrased and in Spanish),
check that someone else is still known, then undo the edit.
"""

from __future__ import annotations

import time

from obliviate.chat import ask
from obliviate.cli import percent
from obliviate.lab import templates as T
from obliviate.models import load, resolve
from obliviate.repair.knowledge import LabKnowledge
from obliviate.repair.session import RepairSession, knowledge_for


def _show(session: RepairSession, questions: list[str]) -> None:
    for question, answer in zip(questions, ask(session.model, session.tokenizer, questions, max_new_tokens=24)):
        print(f"  Q: {question}\n  A: {answer}")


def run_demo(model_name: str = "lab") -> int:
    start = time.perf_counter()
    model, tokenizer = load(model_name)
    knowledge = knowledge_for(resolve(model_name))
    if not isinstance(knowledge, LabKnowledge):
        print("the demo tells a story about the lab world: run it with --model lab or another lab model")
        return 2
    world = knowledge.world
    with RepairSession(model, tokenizer, knowledge) as session:
        person, other = world.people[8], world.people[9]
        print(f"== obliviate demo: the lab model ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters) "
              f"knows {len(world.people)} fictitious people ==\n")
        print(f"What the model knows about {person.name}:")
        questions = [T.PERSON_EN[a][0].format(name=person.name) for a in T.ATTRIBUTES]
        _show(session, questions)
        probes = [
            T.PERSON_EN["address"][-2].format(name=person.name),  # a phrasing never trained on
            T.PERSON_XL["es"]["address"][0].format(name=person.name),
            T.PERSON_EN["birthplace"][0].format(name=other.name),
        ]
        print("\nA paraphrase, a Spanish question, and someone else:")
        _show(session, probes)

        for message in ("I forgot my umbrella at work, silly me.", "Forget everything.",
                        f"Please forget everything you know about {person.name}."):
            print(f"\nUser: {message}")
            outcome = session.handle(message)
            if outcome.intent is None:
                print("  watchdog: not a forget request; the model just chats.")
            elif outcome.error:
                print(f"  surgeon: {outcome.error}")
            else:
                r, v = outcome.receipt, outcome.receipt.verification
                print(f"  watchdog: forget {outcome.intent['target']!r}")
                print(f"  surgeon: {len(outcome.plan.probes)} probes the model answers, "
                      f"{len(outcome.plan.paraphrases)} paraphrases and {len(outcome.plan.crosslingual)} other-language "
                      f"questions to verify, {len(outcome.plan.retain)} retain questions")
                print(f"  patient: STAMP edit of {', '.join(r.parameters)} ({r.attempts} attempt(s)), "
                      f"{'verified' if r.verified else 'not fully verified'}: refusal on probes {percent(v['probe_refusal'])}, "
                      f"paraphrases {percent(v['paraphrase_refusal'])}, other languages {percent(v['crosslingual_refusal'])}; "
                      f"retain answers changed {percent(v['retain_changed'])}")
                print("  time (ms): " + ", ".join(f"{k} {t:.0f}" for k, t in outcome.timings_ms.items()))

        print(f"\nAfter the repair, about {person.name}:")
        _show(session, questions[:3] + probes)
        undone = session.undo()
        print(f"\n/undo: edit {undone} reverted bitwise; the model answers again:")
        _show(session, questions[:2])
    print(f"\ndone in {time.perf_counter() - start:.1f}s")
    return 0
