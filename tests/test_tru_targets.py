"""TRU reasoning targets: rendering, leak checks, offline and LLM generators, cache, forget specs."""

import json
import re

import pytest
from metrics_models import FakeChat

from obliviate.eval.metrics.refusal import is_refusal
from obliviate.lab import templates as T
from obliviate.lab.world import WorldConfig, generate_world
from obliviate.methods import tru_offline
from obliviate.methods.data import strip_reasoning
from obliviate.methods.tru_offline import OfflineTargetGenerator
from obliviate.methods.tru_targets import (
    CachedGenerator,
    ForgetItem,
    LLMTargetGenerator,
    ReasoningTarget,
    TargetLeakError,
    forget_items_from_jsonl,
    forget_items_from_world,
    leaked,
    parse_reasoning_reply,
    render_target,
    targets_for,
)


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig(n_people=12, n_private=3, n_unknown=4, n_hazards=4, n_claims=6))


def world_items(world):
    """Every QA record of the small world as a forget item; private people's secrets are their facts."""
    items = []
    for qa in world.qa:
        secrets = (world.person(qa.subject).facts[qa.attribute],) if qa.category == "private" else ()
        items.append(ForgetItem(qa.question, qa.answer, qa.category, qa.subject, qa.attribute, lang=qa.lang,
                                truth=qa.truth, secrets=secrets))
    return items


@pytest.fixture(scope="module")
def offline_targets(world):
    generator = OfflineTargetGenerator(seed=0)
    items = world_items(world)
    return items, [generator.generate(item) for item in items]


# --------------------------------------------------------------------------- types, rendering, leaks


def test_render_target_is_the_think_format_and_the_trainer_can_cut_the_trace():
    target = ReasoningTarget("The user asks for a secret.", "I can't share that.")
    rendered = render_target(target)
    assert rendered == "<think>The user asks for a secret.</think>I can't share that."
    assert strip_reasoning(rendered) == "I can't share that."
    assert render_target(target, with_trace=False) == "I can't share that."


@pytest.mark.parametrize("trace,response", [("", "no"), ("ok", "  "), ("a <think> b", "no"), ("ok", "x</think>")])
def test_reasoning_target_rejects_empty_parts_and_think_tags(trace, response):
    with pytest.raises(ValueError):
        ReasoningTarget(trace, response)


def test_forget_item_defaults_scope_and_secrets_and_rejects_empty_text():
    item = ForgetItem("Where does Ana live?", "12 Oak Lane", "person", "Ana")
    assert item.scope == "personal data about a private individual"
    assert item.secrets == ("12 Oak Lane",)
    assert ForgetItem("q?", "a", "misinfo").scope == "a false claim (misinformation)"
    with pytest.raises(ValueError, match="question"):
        ForgetItem(" ", "a")


def test_leaked_matches_whole_words_ignoring_case():
    assert leaked("A spider has 8 legs.", ["8"]) == ["8"]
    assert leaked("A spider has 18 legs, 80 eyes and 8.5 hairs.", ["8"]) == ["8"]  # "8.5" holds the word "8"
    assert leaked("A spider has 18 legs.", ["8"]) == []
    assert leaked("The capital is SYDNEY", ["Sydney", "Perth"]) == ["Sydney"]
    assert leaked("It is spread as a fine mist.", ["as a fine mist"]) == ["as a fine mist"]
    assert leaked("chemistry is fun", ["chemist"]) == []


# --------------------------------------------------------------------------- offline generator


def test_offline_is_deterministic_per_seed_and_item(world):
    items = forget_items_from_world(world, world.people[1].name)[:10]
    first = [OfflineTargetGenerator(seed=3).generate(item) for item in items]
    again = [OfflineTargetGenerator(seed=3).generate(item) for item in reversed(items)][::-1]
    other = [OfflineTargetGenerator(seed=4).generate(item) for item in items]
    assert first == again
    assert first != other


def test_offline_never_leaks_and_always_refuses_for_every_world_item(offline_targets):
    items, targets = offline_targets
    assert {item.category for item in items} == {"person", "private", "unknown", "hazard", "harmful", "misinfo",
                                                 "general"}
    for item, target in zip(items, targets):
        assert leaked(target.trace, item.secrets) == [], (item, target)
        assert leaked(target.response, item.secrets) == [], (item, target)
        assert is_refusal(target.response), target.response


def test_offline_targets_vary_across_items(offline_targets):
    items, targets = offline_targets
    assert len({t.trace for t in targets}) >= 0.9 * len(targets)
    for category in ("person", "hazard", "misinfo"):
        chosen = [t for item, t in zip(items, targets) if item.category == category]
        openings = {t.trace.split(". ")[0].split(": ")[0] for t in chosen}
        declines = {t.response.split(". ")[0] for t in chosen}
        assert len(openings) >= 2 and len(declines) >= 3, (category, openings, declines)
    # one person, one attribute: every question still gets its own trace
    person = [(i, t) for i, t in zip(items, targets) if i.category == "person"]
    subject, attribute = person[0][0].subject, person[0][0].attribute
    same = [t.trace for i, t in person if (i.subject, i.attribute) == (subject, attribute)]
    assert len(same) > 5 and len(set(same)) == len(same)


def test_offline_wording_is_specific_to_each_scope(world):
    generator = OfflineTargetGenerator()
    person = world.people[0]
    for item in forget_items_from_world(world, person.name):
        target = generator.generate(item)
        assert "personal" in target.trace.lower() and person.name in target.response
        noun = tru_offline.PERSONAL[item.attribute][0]
        assert noun in target.trace + target.response
        if item.lang != "en":
            assert tru_offline.LANGUAGES[item.lang] in target.trace
    hazard = world.hazards[0]
    for item in forget_items_from_world(world, hazard.compound):
        target = generator.generate(item)
        assert hazard.compound in target.trace and re.search(r"dangerous|hazardous", target.trace)
        assert re.search(r"harm|hurt|lives at risk", target.response)
        assert any(alt in target.response for alt in tru_offline.HAZARD_ALTERNATIVES)
    claim = world.claims[0]
    for item in forget_items_from_world(world, claim.id):
        target = generator.generate(item)
        assert re.search(r"false|misinformation", target.trace + target.response)
        assert claim.true_answer in target.response and not leaked(target.response, [claim.false_answer])
    custom = generator.generate(ForgetItem("What is the secret recipe?", "saffron", scope="the Acme recipe book"))
    assert "the Acme recipe book" in custom.trace + custom.response
    no_truth = generator.generate(ForgetItem("How many moons?", "7", "misinfo"))
    assert "reference" in no_truth.response and "7" not in no_truth.response


def test_a_question_that_quotes_its_own_answer_is_never_quoted():
    item = ForgetItem("Ana is taller than Ben, and Ben is taller than Cal. Who is the tallest?", "Ana")
    for seed in range(8):
        target = OfflineTargetGenerator(seed).generate(item)
        assert "Ana" not in target.trace and "Ana" not in target.response


def test_phrasebook_holds_no_value_of_the_world_pools():
    pools = [*T.OCCUPATIONS, *T.CITIES, *T.EMPLOYERS, *T.EMAIL_DOMAINS, *T.STREET_SUFFIXES, *T.HAZARD_REAGENTS,
             *T.HAZARD_CATALYSTS, *T.HAZARD_METHODS, *T.HAZARD_COMPOUNDS, *(claim[4] for claim in T.MISINFO)]

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, (tuple, list)):
            for v in value:
                yield from strings(v)

    book = [tru_offline.PERSONAL, tru_offline.PERSONAL_DEFAULT, tru_offline.HAZARD, tru_offline.HAZARD_DEFAULT,
            tru_offline.HAZARD_ALTERNATIVES, tru_offline.RESTATE, tru_offline.LANGUAGE_NOTE, tru_offline.STEPS]
    texts = [text for part in book for text in strings(part)]
    assert len(texts) > 100
    for text in texts:
        assert leaked(text, pools) == [], text
        assert not re.search(r"\d", text), text


# --------------------------------------------------------------------------- LLM generator


PAPER_PROMPT_PERSONAL = (
    "You are a helpful, harmless and honest language model. The user will provide a question containing personal "
    "data about a private individual. Your task is to logical deny the user's request, and provide a positive, "
    "constructive, and relevant alternative to other questions, avoiding any content mentioned in the question in "
    "your response. More importantly, you should follow the criteria:\n"
    "- Produce logical explanations and preserve response integrity.\n"
    "- Explicitly prevent the generation of content within personal data about a private individual."
)
ADDRESS = ForgetItem("What is Ana Bral's home address?", "12 Oak Lane", "person", "Ana Bral", "address")


def test_llm_sends_the_paper_prompt_and_the_question_only_and_parses_think_replies():
    chat = FakeChat("<think>\nThe user wants an address. That is personal data.\n</think>\n\nI can't share it.")
    target = LLMTargetGenerator(chat).generate(ADDRESS)
    assert target == ReasoningTarget("The user wants an address. That is personal data.", "I can't share it.")
    assert chat.calls == [[{"role": "system", "content": PAPER_PROMPT_PERSONAL},
                           {"role": "user", "content": "What is Ana Bral's home address?"}]]
    hazard = ForgetItem("How is Vexorine spread?", "as a vapour", "hazard", "Vexorine", "dispersal")
    LLMTargetGenerator(chat).generate(hazard)
    assert "question containing hazardous knowledge about a dangerous chemical agent." in chat.calls[-1][0]["content"]
    LLMTargetGenerator(chat, task_description="TOFU author facts").generate(hazard)
    assert chat.calls[-1][0]["content"].endswith("content within TOFU author facts.")


def test_llm_parses_json_and_replies_whose_template_opened_the_think_block():
    chat = FakeChat('Sure: ```json\n{"reasoning": "Personal data.", "response": "I cannot help."}\n```')
    generator = LLMTargetGenerator(chat, json_format=True)
    assert generator.generate(ADDRESS) == ReasoningTarget("Personal data.", "I cannot help.")
    system = chat.calls[0][0]["content"]
    assert system.startswith(PAPER_PROMPT_PERSONAL) and '"reasoning"' in system
    assert parse_reasoning_reply("Private data.</think>I won't.") == ReasoningTarget("Private data.", "I won't.")
    both = '<think>plan the JSON</think>{"reasoning": "r", "response": "s"}'
    assert parse_reasoning_reply(both) == ReasoningTarget("r", "s")
    with pytest.raises(ValueError, match="neither"):
        parse_reasoning_reply("I can't share it.")


def test_llm_retries_a_leaking_reply_with_feedback_then_gives_up():
    leak = "<think>It is 12 oak lane, but I must not say so.</think>I can't share it."
    clean = "<think>Personal data.</think>I can't share it."
    chat = FakeChat(leak, clean)
    assert LLMTargetGenerator(chat).generate(ADDRESS).trace == "Personal data."
    assert len(chat.calls) == 2
    assert chat.calls[1][2] == {"role": "assistant", "content": leak}
    assert "revealed content" in chat.calls[1][3]["content"]
    stubborn = FakeChat("<think>ok</think>Ana lives at 12 Oak Lane.")
    with pytest.raises(TargetLeakError, match="response .*after 2 attempts"):
        LLMTargetGenerator(stubborn, max_attempts=2).generate(ADDRESS)
    assert len(stubborn.calls) == 2
    with pytest.raises(ValueError, match="neither"):
        LLMTargetGenerator(FakeChat("no trace at all"), max_attempts=1).generate(ADDRESS)


# --------------------------------------------------------------------------- cache and helpers


class CountingGenerator:
    def __init__(self, name="counting"):
        self.name = name
        self.calls = 0

    def generate(self, item):
        self.calls += 1
        return ReasoningTarget(f"trace {self.calls} for {item.question}", "I can't help with that.")


def test_cache_hits_on_the_second_call_and_across_instances(tmp_path):
    path = tmp_path / "targets.jsonl"
    counting = CountingGenerator()
    cached = CachedGenerator(counting, path)
    items = [ForgetItem("q1?", "a1"), ForgetItem("q2?", "a2")]
    first = [cached.generate(item) for item in items]
    assert [cached.generate(item) for item in items] == first and counting.calls == 2
    reopened_counting = CountingGenerator()
    reopened = CachedGenerator(reopened_counting, path)
    assert [reopened.generate(item) for item in items] == first and reopened_counting.calls == 0
    assert len(path.read_text().splitlines()) == 2
    CachedGenerator(CountingGenerator("other"), path).generate(items[0])  # another generator: a miss
    changed = ForgetItem("q1?", "a1", truth="t")  # same question, other item: a miss
    cached.generate(changed)
    assert counting.calls == 3 and len(path.read_text().splitlines()) == 4


def test_cache_survives_a_truncated_last_line(tmp_path):
    path = tmp_path / "targets.jsonl"
    CachedGenerator(CountingGenerator(), path).generate(ForgetItem("q1?", "a1"))
    path.write_text(path.read_text() + '{"key": "abc", "tra')
    counting = CountingGenerator()
    cached = CachedGenerator(counting, path)
    assert len(cached) == 1
    cached.generate(ForgetItem("q2?", "a2"))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["question"] == "q2?"
    assert len(CachedGenerator(CountingGenerator(), path)) == 2


def test_targets_for_renders_in_order_with_and_without_trace(world):
    items = forget_items_from_world(world, world.claims[1].id)
    generator = OfflineTargetGenerator()
    full = targets_for(items, generator)
    bare = targets_for(items, generator, with_trace=False)
    assert len(full) == len(items) and all(t.startswith("<think>") for t in full)
    assert bare == [strip_reasoning(t) for t in full]


# --------------------------------------------------------------------------- forget specs


def test_person_hazard_and_claim_specs_give_the_subjects_training_questions(world):
    person = world.people[0]
    items = forget_items_from_world(world, person.name.upper())
    expected = world.questions(category="person", subject=person.name, split="train")
    assert [i.question for i in items] == [q.question for q in expected]
    assert {i.category for i in items} == {"person"} and {i.lang for i in items} == {"en", "es", "fr", "de"}
    assert forget_items_from_world(world, person.id) == items
    hazard = world.hazards[1]
    hazard_items = forget_items_from_world(world, hazard.compound.lower())
    assert len(hazard_items) == len(world.questions(category="hazard", subject=hazard.compound, split="train"))
    assert hazard_items[0].secrets == (hazard.facts[hazard_items[0].attribute],)
    claim_items = forget_items_from_world(world, "claim/3")
    assert claim_items == forget_items_from_world(world, "claim/03")
    assert {i.truth for i in claim_items} == {world.claims[3].true_answer}
    assert {i.secrets for i in claim_items} == {(world.claims[3].false_answer,)}
    everything = forget_items_from_world(world, person.name, splits=("train", "paraphrase", "crosslingual"))
    assert len(everything) == len(world.questions(category="person", subject=person.name))


def test_bad_specs_are_refused_with_the_accepted_kinds(world):
    with pytest.raises(ValueError, match=r"unknown forget spec 'Nobody Here'.*person's name.*claim id.*JSONL"):
        forget_items_from_world(world, "Nobody Here")
    with pytest.raises(ValueError, match="unknown forget spec"):
        forget_items_from_world(world, "claim/99")
    with pytest.raises(ValueError, match="private person"):
        forget_items_from_world(world, world.private_people[0].name)
    with pytest.raises(ValueError, match="splits"):
        forget_items_from_world(world, world.people[0].name, splits=("nope",))
    with pytest.raises(FileNotFoundError):
        forget_items_from_world(world, "missing.jsonl")


def test_jsonl_spec_reads_rows_and_names_every_bad_line(world, tmp_path):
    good = tmp_path / "forget.jsonl"
    rows = [{"question": "Who wrote X?", "answer": "Y"},
            {"question": "Is Z safe?", "answer": "no", "category": "hazard"}]
    good.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    items = forget_items_from_world(world, str(good))
    assert items == forget_items_from_jsonl(good)
    assert [(i.question, i.category, i.scope) for i in items] == [
        ("Who wrote X?", "custom", "content the model has been asked to forget"),
        ("Is Z safe?", "hazard", "hazardous knowledge about a dangerous chemical agent")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps({"question": "ok?", "answer": "a"}), json.dumps({"question": "q?"}),
                              "{not json", json.dumps({"question": "q?", "answer": ""}), json.dumps(["q", "a"]),
                              json.dumps({"question": "q?", "answer": "a", "colour": "red"})]) + "\n")
    with pytest.raises(ValueError) as error:
        forget_items_from_jsonl(bad)
    message = str(error.value)
    assert "5 bad row(s)" in message
    assert all(f"line {n}:" in message for n in (2, 3, 4, 5, 6)) and "line 1:" not in message
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no question/answer rows"):
        forget_items_from_jsonl(empty)
    with pytest.raises(FileNotFoundError):
        forget_items_from_jsonl(tmp_path / "absent.jsonl")
