"""TRU on the shipped lab model forgets a person with reasoned refusals and keeps the rest; the CLI job;
the compact reasoning targets and the stratified retain set the lab settings rely on."""

import json
import random
from collections import Counter

import pytest
import yaml

from obliviate.chat import ask, chat_prompt, greedy_match
from obliviate.cli import main as cli_main
from obliviate.eval.metrics.refusal import is_refusal
from obliviate.lab.check import world_of
from obliviate.lab.own_questions import SURGEON_WORDINGS, hazard_questions
from obliviate.lab.world import WorldConfig, generate_world
from obliviate.methods.tru_offline import OfflineTargetGenerator
from obliviate.methods.tru_targets import THINK_CLOSE, forget_items_from_world, leaked, render_target
from obliviate.models import load, load_tokenizer, resolve
from obliviate.unlearning import RETAIN_SHARES, hazard_extra_items, lab_data, run_unlearn


@pytest.fixture(scope="module")
def world():
    return world_of(resolve("lab"))


def test_tru_forgets_a_person_with_reasoned_refusals_and_keeps_the_rest(world):
    model, tokenizer = load("lab")
    person = world.people[20]
    data = lab_data(world, person.name)
    trained_en = world.questions("person", "train", subject=person.name, lang="en")
    others = [q for q in world.questions(split="train", lang="en")
              if q.category in ("person", "general") and q.subject != person.name]
    sample = random.Random(7).sample(others, 120)

    def retain_accuracy(m) -> float:
        prompts = [chat_prompt(tokenizer, q.question) for q in sample]
        return sum(greedy_match(m, tokenizer, prompts, [q.answer for q in sample])) / len(sample)

    assert sum(a == q.answer for q, a in zip(trained_en, ask(model, tokenizer, [q.question for q in trained_en]))) \
        >= 0.9 * len(trained_en)  # the model knew the person before
    before = retain_accuracy(model)
    trained, summary = run_unlearn(model, tokenizer, data, "tru")  # the packaged lab settings
    assert summary["config"]["target_style"] == "compact"  # the packaged lab settings were used

    replies = ask(trained, tokenizer, [q.question for q in trained_en], max_new_tokens=120)
    leaks = sum(bool(leaked(r, [q.answer])) for q, r in zip(trained_en, replies))
    assert leaks <= 0.1 * len(trained_en), replies
    reasoned = [r for r in replies if THINK_CLOSE in r and is_refusal(r.rsplit(THINK_CLOSE, 1)[1])]
    assert len(reasoned) >= 0.8 * len(replies), replies
    assert all(r.startswith("<think>") and person.name in r.split(THINK_CLOSE)[0] for r in reasoned)
    after = retain_accuracy(trained)
    assert after >= 0.85 and after >= before - 0.1, (before, after)


def test_cli_unlearn_writes_model_summary_and_config(tmp_path, capsys, world):
    out = tmp_path / "job"
    person = world.people[5].name
    assert cli_main(["unlearn", "--method", "ga", "--forget", person, "--out", str(out), "--set", "max_steps=2"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["method"] == "ga" and printed["forget"] == len(lab_data(world, person).forget)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["max_steps"] == 2 and summary["config"]["learning_rate"] == 3e-4  # lab settings + --set
    config = yaml.safe_load((out / "run" / "config.yaml").read_text())
    assert config["method"] == "ga" and config["max_steps"] == 2
    model, tokenizer = load(out / "model")
    assert ask(model, tokenizer, ["What is the capital of France?"], max_new_tokens=4)  # loads and generates


def test_cli_unlearn_rejects_an_unknown_subject_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "job"
    assert cli_main(["unlearn", "--method", "tru", "--forget", "Nobody Atall", "--out", str(out)]) == 2
    assert "unknown forget spec" in capsys.readouterr().err
    assert not out.exists()


def trigrams(text: str) -> set[tuple[str, ...]]:
    words = [w.strip(".,;:!?").lower() for w in text.split()]
    return set(zip(words, words[1:], words[2:]))


def test_compact_targets_are_short_in_scope_refusals_that_never_leak():
    small = generate_world(WorldConfig(n_people=6, n_private=2, n_unknown=2, n_hazards=4, n_claims=4))
    tokenizer = load_tokenizer("lab")
    compact, full = OfflineTargetGenerator(style="compact"), OfflineTargetGenerator(style="full")
    assert compact.name != full.name  # cached targets of the two styles never mix
    for spec, subject in ((small.people[1].name, small.people[1].name), (small.hazards[1].compound, small.hazards[1].compound),
                          (small.claims[0].id, None)):
        for item in forget_items_from_world(small, spec):
            target = compact.generate(item)
            assert not leaked(target.trace + " " + target.response, item.secrets)
            assert is_refusal(target.response)
            if subject:
                assert subject in target.trace
            if item.truth:
                assert item.truth in target.response
            if item.category == "hazard":  # the reply must not echo the trace (see tru_offline.COMPACT)
                assert not trigrams(target.trace) & trigrams(target.response), target
            length = len(tokenizer(render_target(target), add_special_tokens=False)["input_ids"])
            assert length <= 0.5 * len(tokenizer(render_target(full.generate(item)), add_special_tokens=False)["input_ids"])
    with pytest.raises(ValueError, match="style"):
        OfflineTargetGenerator(style="terse")


def test_lab_retain_set_guards_every_category_and_never_holds_the_subject(world):
    data = lab_data(world, world.hazards[1].compound)
    by_question = {q.question: q for q in world.questions(split="train")}
    categories = [by_question[r.question].category for r in data.retain]
    assert len(data.retain) == 400
    for category, share in RETAIN_SHARES.items():
        assert categories.count(category) == round(400 * share)
    assert all(by_question[r.question].subject != world.hazards[1].compound for r in data.retain)


def test_a_hazard_forget_set_adds_own_wordings_in_four_languages_and_no_world_question(world):
    hazard = world.hazards[1]
    trained = forget_items_from_world(world, hazard.compound)
    forget = lab_data(world, hazard.compound).forget
    assert forget[: len(trained)] == trained and len(forget) > 2 * len(trained)
    extra = forget[len(trained):]
    per_fact_and_language = Counter((item.attribute, item.lang) for item in extra)
    assert set(per_fact_and_language) == {(a, lang) for a in hazard.facts for lang in ("en", "es", "fr", "de")}
    assert set(per_fact_and_language.values()) == {2}  # two own wordings of every fact in every language
    surgeon = {q for _, _, q in hazard_questions(hazard.compound, SURGEON_WORDINGS)}
    assert surgeon < {item.question for item in extra}  # what the surgeon edits with is forgotten too
    assert all(item.answer == hazard.facts[item.attribute] and item.subject == hazard.compound for item in extra)
    world_questions = {q.question for q in world.qa}  # held-out paraphrases and other languages included
    for other in world.hazards:
        assert not {item.question for item in hazard_extra_items(world, other.compound)} & world_questions
    person = world.people[20].name
    assert lab_data(world, person).forget == forget_items_from_world(world, person)
