"""The generated lab world: deterministic, disjoint splits, every question answerable from the facts."""

import json

import pytest

from obliviate.lab import templates as T
from obliviate.lab.world import WorldConfig, generate_world, load_world

SMALL = WorldConfig(n_people=12, n_private=3, n_unknown=4, n_hazards=4, n_claims=6)


@pytest.fixture(scope="module")
def world():
    return generate_world()


def test_same_seed_same_world_and_other_seed_differs():
    a, b = generate_world(SMALL), generate_world(SMALL)
    assert a.fingerprint() == b.fingerprint()
    assert a.records() == b.records()
    other = generate_world(WorldConfig(**{**SMALL.__dict__, "seed": 1}))
    assert other.fingerprint() != a.fingerprint()
    assert [p.name for p in other.people] != [p.name for p in a.people]


def test_sizes_meet_the_spec(world):
    assert len(world.people) >= 200
    assert all(len(p.facts) >= 6 for p in world.people)
    names = [p.name for p in world.people + world.private_people]
    assert len(set(names)) == len(names)
    for attribute in T.ATTRIBUTES:
        assert len(T.PERSON_EN[attribute]) >= 5
        for lang in ("es", "fr", "de"):
            assert len(T.PERSON_XL[lang][attribute]) >= 2
    kinds = {q.category for q in world.qa}
    assert {"person", "private", "unknown", "hazard", "harmful", "misinfo", "general"} <= kinds
    assert {m.category for m in world.mcq} >= {"hazard", "general", "person", "misinfo"}
    assert any(d.split == "heldout" for d in world.docs)


def test_splits_are_disjoint_by_question_text(world):
    by_split = {}
    for q in world.qa:
        by_split.setdefault(q.split, set()).add(q.question)
    trained = by_split["train"]
    for split in ("paraphrase", "crosslingual", "heldout"):
        assert not trained & by_split[split], split
    trained_docs = {d.text for d in world.docs if d.split == "train"}
    assert not trained_docs & {d.text for d in world.docs if d.split == "heldout"}


def test_paraphrase_templates_never_trained(world):
    trained_templates = {q.id.rsplit("/", 1)[1] for q in world.questions("person", "train", lang="en")}
    paraphrase_templates = {q.id.rsplit("/", 1)[1] for q in world.questions("person", "paraphrase")}
    assert trained_templates.isdisjoint(paraphrase_templates)
    assert len(paraphrase_templates) >= 2


def test_every_question_is_answerable_from_the_generator_facts(world):
    people = {p.name: p for p in world.people}
    hazards = {h.compound: h for h in world.hazards}
    claims = {c.id: c for c in world.claims}
    for q in world.qa:
        if q.category == "person":
            assert q.answer == people[q.subject].facts[q.attribute]
            assert q.subject in q.question
        elif q.category == "hazard":
            assert q.answer == hazards[q.subject].facts[q.attribute]
        elif q.category == "misinfo":
            assert q.answer == claims[q.subject].false_answer and q.truth == claims[q.subject].true_answer
            assert q.answer != q.truth
        elif q.category == "private":
            assert q.answer == T.REFUSE_PERSONAL
        elif q.category == "harmful":
            assert q.answer == T.REFUSE_HARMFUL
        elif q.category == "unknown":
            assert q.answer == T.DONT_KNOW and q.subject not in people
    for m in world.mcq:
        assert len(m.options) == 4 and len(set(m.options)) == 4
        if m.category == "person":
            assert m.options[m.answer_index] == people[m.subject].facts[m.attribute]


def test_bios_state_the_facts(world):
    person = world.people[0]
    bios = [d.text for d in world.docs if d.subject == person.name]
    assert bios
    for value in person.facts.values():
        assert all(value in bio for bio in bios)


def test_crosslingual_questions_exist_for_untrained_subjects(world):
    xl = world.questions("person", "crosslingual")
    assert {q.lang for q in xl} == {"es", "fr", "de"}
    untrained = {q.subject for q in xl}
    trained_xl = {q.subject for q in world.questions("person", "train") if q.lang != "en"}
    assert untrained and not untrained & trained_xl


def test_save_and_load_round_trip(tmp_path):
    world = generate_world(SMALL)
    world.save(tmp_path / "w")
    loaded = load_world(tmp_path / "w")
    assert loaded == world.records()
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["fingerprint"] == world.fingerprint()


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="n_claims"):
        generate_world(WorldConfig(n_claims=999))
    with pytest.raises(FileNotFoundError):
        load_world("/nonexistent/world")


def test_forget_sets_split_a_subjects_questions_for_evaluation(world):
    person, hazard = world.people[0].name, world.hazards[0].compound
    for category, subject in (("person", person), ("hazard", hazard)):
        sets = world.forget_sets(category, subject)
        assert all(sets.values())
        assert all(q.subject == subject and q.category == category for qs in sets.values() for q in qs)
        assert {q.lang for q in sets["trained"]} == {"en"} and "en" not in {q.lang for q in sets["crosslingual"]}
        assert {q.split for q in sets["paraphrase"]} == {"paraphrase"}
    # a subject trained in every language is asked in the others from its trained questions
    everywhere = next(s for s in {q.subject for q in world.questions("hazard", "train") if q.lang != "en"}
                      if not world.questions("hazard", "crosslingual", subject=s))
    assert {q.split for q in world.forget_sets("hazard", everywhere)["crosslingual"]} == {"train"}
