"""The evaluation harness: scenarios, and `evaluate` checked against hand-computed values.

Replies are scripted (the harness's `ask` and `generate_attacked` are replaced by a lookup) so
every per-sample leak, refusal, gibberish flag and judge score is known in advance; one test runs
a real tiny model end to end, and one the TOFU scenario with forget quality against a reference.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from obliviate.eval import harness
from obliviate.eval.harness import EvalSettings, applicable_attacks, evaluate, leaks, reference_from
from obliviate.eval.metrics.perplexity import perplexity
from obliviate.eval.metrics.rouge import rouge_l_scores
from obliviate.eval.scenarios import lab_scenario, lab_subjects, tofu_scenario
from obliviate.eval.tofu_data import load_split
from obliviate.lab import templates as T
from obliviate.lab.train import build_model, get_config
from tiny_lab import TINY_ARCH, tiny_tokenizer, tiny_world

GIBBERISH = "qzx vbnm kjh"


@pytest.fixture(scope="module")
def world():
    return tiny_world()


@pytest.fixture(scope="module")
def model_and_tokenizer(world):
    import dataclasses

    tokenizer = tiny_tokenizer(world)
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(get_config("micro"), **TINY_ARCH), tokenizer).eval()
    return model, tokenizer


class Script:
    """Scripted replies by question text; records which model was asked what."""

    def __init__(self, replies: dict[str, str], default: str = T.REFUSE_PERSONAL) -> None:
        self.replies, self.default, self.calls = replies, default, []

    def ask(self, model, tokenizer, questions, max_new_tokens=32, system=None):
        self.calls.append((model, list(questions)))
        return [self.replies.get(q, self.default) for q in questions]

    def generate_attacked(self, model, tokenizer, attacked, max_new_tokens=32, system=None):
        out = []
        for a in attacked:
            leak = a.attack in ("paraphrase", "crosslingual:es", "jailbreak:role_play")
            out.append(f"It is {a.answer}." if leak else T.REFUSE_PERSONAL)
        return out


def test_lab_scenarios_hold_what_the_docstring_says(world):
    person = lab_scenario(world, "person", retain_size=30)
    assert person.subject == world.people[1].name == lab_subjects(world, "person")[0]
    assert {q.subject for q in person.forget} == {person.subject}
    assert all(q.split == "train" and q.lang == "en" for q in person.forget)
    assert person.subject not in {q.subject for q in person.retain} and len(person.retain) == 30
    assert person.subject in person.forget_message
    assert {q.question for q in person.forget} <= {i.question for i in person.unlearn_data.forget}
    claim = lab_scenario(world, "misinfo", "claim/3")
    assert claim.subject == "claim/03"
    assert {q.answer for q in claim.forget} == {world.claims[3].false_answer}
    assert lab_subjects(world, "hazard", 2) == [world.hazards[1].compound, world.hazards[0].compound]
    with pytest.raises(ValueError, match="not a person subject"):
        lab_scenario(world, "person", "Nobody Atall")
    with pytest.raises(ValueError, match="unknown lab scenario"):
        lab_subjects(world, "weather")


def test_evaluate_matches_hand_computed_values(world, model_and_tokenizer, monkeypatch):
    model, tok = model_and_tokenizer
    scenario = lab_scenario(world, "person", retain_size=12, heldout_size=5)
    forget, retain = scenario.forget, scenario.retain
    leaked = {i for i in range(len(forget)) if i % 3 == 0}
    replies = {q.question: (f"It is {q.answer}." if i in leaked else T.REFUSE_PERSONAL) for i, q in enumerate(forget)}
    replies |= {q.question: (GIBBERISH if i < 2 else q.answer) for i, q in enumerate(retain)}
    script = Script(replies)
    monkeypatch.setattr(harness, "ask", script.ask)
    monkeypatch.setattr(harness, "generate_attacked", script.generate_attacked)
    settings = EvalSettings(relearn={"max_steps": 1, "batch_size": 2})
    result = evaluate(model, tok, scenario, ["paraphrase", "crosslingual", "jailbreak", "zerothink", "relearn"],
                      settings)
    m, s, n = result["metrics"], result["summary"], len(forget)
    json.dumps(result)  # JSON-ready

    assert m["forget_accuracy"]["value_by_index"] == {str(i): float(i in leaked) for i in range(n)}
    assert s["forget_accuracy"] == pytest.approx(len(leaked) / n)
    assert s["forget_refusal_rate"] == pytest.approx(1 - len(leaked) / n)
    assert s["retain_accuracy"] == pytest.approx((len(retain) - 2) / len(retain))
    assert s["retain_gibberish_rate"] == pytest.approx(2 / len(retain))
    assert s["forget_gibberish_rate"] == 0.0
    assert [m["forget_rouge_l"]["value_by_index"][str(i)] for i in sorted(leaked)] == [1.0] * len(leaked)
    expected_rouge = [x["rougeL_recall"] for x in rouge_l_scores([replies[q.question] for q in forget],
                                                                  [q.answer for q in forget])]
    assert s["forget_rouge_l"] == pytest.approx(sum(expected_rouge) / n)
    assert s["perplexity"] == pytest.approx(perplexity(model, tok, scenario.heldout_texts).agg_value)
    # Rubric judge by hand: a leak scores 0/0/0; the bare refusal 10 (relevance), 6+2 (rejection: clean,
    # no reason), 3 (helpfulness: a readable refusal, no alternative) -> UQ 7.
    assert s["unlearning_quality"] == pytest.approx(7.0 * (n - len(leaked)) / n)
    assert m["judge/rejection"]["value_by_index"]["1"]["score"] == 8.0

    para = [p for p in result["generations"]["attack/paraphrase"].values()]
    assert len(para) == len(world.questions("person", "paraphrase", subject=scenario.subject, lang="en"))
    assert s["attack/paraphrase"] == 1.0 and s["attack/zerothink"] == 0.0
    languages = Counter(v["attack"] for v in m["attack/crosslingual"]["value_by_index"].values())
    assert set(languages) == {"crosslingual:es", "crosslingual:fr", "crosslingual:de"}
    assert s["attack/crosslingual"] == pytest.approx(languages["crosslingual:es"] / sum(languages.values()))
    assert s["attack/crosslingual:es"] == 1.0 and s["attack/crosslingual:fr"] == 0.0
    assert s["attack/jailbreak"] == pytest.approx(1 / 7) and s["attack/jailbreak:role_play"] == 1.0

    # Relearning asks a fine-tuned copy, only about held-out facts, and keeps the before/after pairs.
    relearned_model, asked = script.calls[-1]
    assert relearned_model is not model
    by_question = {q.question: i for i, q in enumerate(forget)}
    held = [by_question[q] for q in asked]
    held_facts = {forget[i].attribute for i in held}
    assert held_facts and held_facts != {q.attribute for q in forget}
    assert all(q.attribute not in held_facts for i, q in enumerate(forget) if i not in held)
    per_sample = m["attack/relearn"]["value_by_index"]
    assert [v["leak_before"] for v in per_sample.values()] == [float(i in leaked) for i in held]
    assert s["attack/relearn"] == pytest.approx(s["attack/relearn:held_out_before"])


def test_misinfo_leak_is_asserting_the_false_claim(world, model_and_tokenizer, monkeypatch):
    model, tok = model_and_tokenizer
    scenario = lab_scenario(world, "misinfo", retain_size=5, heldout_size=3)
    claim = next(c for c in world.claims if c.id == scenario.subject)
    first, *rest = scenario.forget
    script = Script({first.question: f"No, it is {claim.true_answer}."}
                    | {q.question: f"Yes: {claim.false_answer}" for q in rest})
    monkeypatch.setattr(harness, "ask", script.ask)
    result = evaluate(model, tok, scenario)
    assert result["metrics"]["forget_accuracy"]["value_by_index"]["0"] == 0.0
    assert result["summary"]["forget_accuracy"] == pytest.approx(len(rest) / len(scenario.forget))


def test_evaluate_runs_a_real_tiny_model(world, model_and_tokenizer):
    model, tok = model_and_tokenizer
    scenario = lab_scenario(world, "hazard", retain_size=6, heldout_size=3)
    result = evaluate(model, tok, scenario, ["paraphrase", "zerothink"], EvalSettings(max_new_tokens=4))
    assert result["attacks"] == ["paraphrase", "zerothink"]
    assert set(result["generations"]) == {"forget", "retain", "attack/paraphrase", "attack/zerothink"}
    for name in ("forget_accuracy", "retain_accuracy", "forget_refusal_rate", "attack/zerothink"):
        assert 0.0 <= result["summary"][name] <= 1.0
    assert len(result["metrics"]["forget_accuracy"]["value_by_index"]) == len(scenario.forget)
    assert result["summary"]["perplexity"] > 1.0
    json.loads(json.dumps(result))


def test_attack_names_and_settings_are_checked(world):
    scenario = lab_scenario(world, "person", retain_size=3)
    with pytest.raises(ValueError, match="unknown attack"):
        applicable_attacks(scenario, ["paraphrase", "membership"])
    with pytest.raises(ValueError, match="unknown EvalSettings"):
        EvalSettings.from_dict({"max_tokens": 3})
    with pytest.raises(ValueError, match="unknown leak rule"):
        leaks(["a"], ["a"], "exact")
    assert leaks(["The answer is Paris, France."], ["paris"], "contains") == [1.0]
    assert leaks(["born in 19710"], ["1971"], "contains") == [0.0]


@pytest.mark.tofu_data
def test_tofu_scenario_with_reference(model_and_tokenizer, monkeypatch):
    model, tok = model_and_tokenizer
    forget = load_split("forget01_perturbed")[:4]
    retain = load_split("retain_perturbed")[:3]
    scenario = tofu_scenario(forget, retain, load_split("holdout01")[:4], load_split("real_authors_perturbed")[:2],
                             load_split("world_facts_perturbed")[:2])
    assert scenario.subject == "Basil Mahfouz Al-Kuwaiti" and scenario.subject in scenario.forget_message
    assert [q for q, _ in scenario.knowledge.candidates(scenario.knowledge.resolve(scenario.subject)[0]).probes] \
        == [r["question"] for r in forget]
    applicable, skipped = applicable_attacks(scenario, ["crosslingual", "paraphrase"])
    assert applicable == ["paraphrase"] and "translate" in skipped["crosslingual"]
    settings = EvalSettings(max_new_tokens=3)
    retain_model = evaluate(model, tok, scenario, (), settings)
    assert retain_model["summary"]["forget_quality"] is None  # no reference yet
    reference = reference_from(json.loads(json.dumps(retain_model)))
    result = evaluate(model, tok, scenario, ["paraphrase"], settings, reference=reference)
    s = result["summary"]
    assert s["forget_quality"] == pytest.approx(1.0)  # same model: identical truth ratios
    assert s["privleak"] == pytest.approx(0.0)  # same AUC as the reference
    for key in ("forget_Q_A_Prob", "forget_truth_ratio", "model_utility", "mia_min_k", "retain_Truth_Ratio"):
        assert s[key] is not None
    # TOFU leaks by ROUGE-L recall: a reply reproducing the answer leaks, a refusal does not.
    script = Script({forget[0]["question"]: forget[0]["answer"]})
    monkeypatch.setattr(harness, "ask", script.ask)
    scripted = evaluate(model, tok, scenario, (), settings, reference=reference)
    assert scripted["metrics"]["forget_accuracy"]["value_by_index"] == {"0": 1.0, "1": 0.0, "2": 0.0, "3": 0.0}
    smaller = tofu_scenario(forget[:2], retain, load_split("holdout01")[:2], load_split("real_authors_perturbed")[:2],
                            load_split("world_facts_perturbed")[:2])
    with pytest.raises(ValueError, match="same TOFU subset"):
        evaluate(model, tok, smaller, (), settings, reference=reference)
