"""RePAIR on the shipped lab model: surgeon plans, patient repairs and verifies, ledger undoes."""

import json
import logging
import re

import pytest
import torch

from obliviate.chat import answers_changed, ask, ask_expecting, chat_prompt, generate, greedy_check, greedy_match
from obliviate.cli import main as cli_main
from obliviate.eval.metrics.refusal import is_refusal
from obliviate.fingerprint import model_fingerprint
from obliviate.models import load, resolve
from obliviate.lab.own_questions import SURGEON_WORDINGS, hazard_questions
from obliviate.repair.knowledge import GenericKnowledge, LabKnowledge, Subject, attributes_named, name_list, names_in
from obliviate.repair.ledger import EditLedger
from obliviate.repair.patient import Patient
from obliviate.repair.session import (
    RepairSession,
    cached_model_written_texts,
    knowledge_for,
    lab_covariance_texts,
    model_written_texts,
    stats_dir,
)
from obliviate.repair.watchdog import detect
from obliviate.repair.surgeon import PlanError, RepairPlan, Surgeon


@pytest.fixture(scope="module")
def lab():
    model, tokenizer = load("lab")
    knowledge = knowledge_for(resolve("lab"))
    assert isinstance(knowledge, LabKnowledge)
    return model, tokenizer, knowledge


@pytest.fixture(scope="module")
def session(lab):
    model, tokenizer, knowledge = lab
    with RepairSession(model, tokenizer, knowledge) as session:
        yield session


def test_attribute_cues():
    assert attributes_named("my address") == ("address",)
    assert attributes_named("where I work") == ("employer",)
    assert attributes_named("mi número de teléfono") == ("phone",)
    assert attributes_named("Tara Prakround") == ()


def test_surgeon_plans_from_what_the_model_answers(lab):
    model, tokenizer, knowledge = lab
    person = knowledge.world.people[3]
    plan = Surgeon(knowledge).plan(f"everything about {person.name}", model, tokenizer)
    assert plan.subjects == [{"kind": "person", "name": person.name, "attributes": []}]
    assert plan.probes and all(person.name in q for q in plan.probes)
    assert not set(plan.probes) & set(plan.paraphrases) and not set(plan.probes) & set(plan.crosslingual)
    assert not any(person.name in q for q in plan.retain)
    assert all(not is_refusal(a) for a in plan.answers_before.values())
    assert set(plan.held_out_before) == set(plan.paraphrases) | set(plan.crosslingual)
    assert plan.held_out_before == dict(zip(plan.held_out_before, ask(model, tokenizer, list(plan.held_out_before),
                                                                     max_new_tokens=12)))
    assert RepairPlan.from_dict(json.loads(plan.to_json())) == plan
    older = {k: v for k, v in plan.to_dict().items() if k != "held_out_before"}  # a plan saved before the field
    assert RepairPlan.from_dict(older).held_out_before == {}
    narrow = Surgeon(knowledge).plan("my home address", model, tokenizer, user=person.name)
    assert narrow.subjects[0]["attributes"] == ["address"]
    assert len(narrow.probes) < len(plan.probes)


def test_surgeon_edits_hazards_in_other_languages_it_verifies_on_held_out_ones(lab):
    model, tokenizer, knowledge = lab
    hazard = next(h for h in knowledge.world.hazards
                  if knowledge.world.questions("hazard", "crosslingual", subject=h.compound))
    plan = Surgeon(knowledge).plan(f"how to make {hazard.compound}", model, tokenizer)
    surgeon_wordings = {question for _, _, question in hazard_questions(hazard.compound, SURGEON_WORDINGS)}
    other_languages = [q for q in plan.probes if q in surgeon_wordings]
    assert other_languages  # the world trains this hazard in English only
    held_out = {q.question for q in knowledge.world.questions("hazard", "crosslingual", subject=hazard.compound)}
    assert set(plan.crosslingual) == held_out and not held_out & set(plan.probes)


def test_without_paraphrases_some_probes_are_kept_out_of_the_edit_to_verify_on(lab):
    """A knowledge source with no paraphrases leaves nothing to tell an edit that generalises from
    one that does not: the surgeon keeps some of the questions the model answers out of the edit."""
    from obliviate.repair.knowledge import Candidates

    model, tokenizer, knowledge = lab

    class NoParaphrases(LabKnowledge):
        def candidates(self, subject):
            found = super().candidates(subject)
            return Candidates(found.probes, [], found.crosslingual)

    person = knowledge.world.people[5]
    bare = NoParaphrases(knowledge.world)
    plan = Surgeon(bare).plan(f"everything about {person.name}", model, tokenizer)
    whole = Surgeon(bare, holdout_probes=0).plan(f"everything about {person.name}", model, tokenizer)
    assert whole.paraphrases == [] and len(plan.paraphrases) == 8
    assert sorted(plan.probes + plan.paraphrases) == sorted(whole.probes)  # kept out of the edit, not lost
    assert {q: whole.answers_before[q] for q in plan.paraphrases} == {q: plan.held_out_before[q] for q in plan.paraphrases}
    assert not set(plan.paraphrases) & set(plan.retain) and any("kept out of the edit" in n for n in plan.notes)
    with_world = Surgeon(knowledge).plan(f"everything about {person.name}", model, tokenizer)
    assert not set(with_world.paraphrases) & set(whole.probes)  # the world's own paraphrases: nothing kept out
    with RepairSession(model, tokenizer, bare) as session:
        receipt = session.handle(f"Please forget everything you know about {person.name}.").receipt
        assert receipt.verification["paraphrase_refusal"] is not None  # verified on the questions kept out
    with pytest.raises(ValueError, match="holdout_probes"):
        Surgeon(bare, holdout_probes=-8)


@pytest.mark.parametrize("target", ["everything", "English", "  ", "todo", "all people"])
def test_surgeon_refuses_over_broad_or_empty_requests(lab, target):
    model, tokenizer, knowledge = lab
    with pytest.raises(PlanError, match="broad|nothing"):
        Surgeon(knowledge).plan(target, model, tokenizer)


def test_surgeon_says_when_the_model_knows_nothing(lab):
    model, tokenizer, knowledge = lab
    with pytest.raises(PlanError, match="don't know anything"):
        Surgeon(knowledge).plan("Zorblat Quenvish", model, tokenizer)
    # a private person whose every candidate question the model declines (it may leak a fact of some)
    def declines_all(name: str) -> bool:
        found = knowledge.candidates(knowledge.resolve(name, None)[0])
        return all(map(is_refusal, ask(model, tokenizer, [q for q, _ in found.probes], max_new_tokens=12)))

    private = next(p for p in knowledge.world.private_people[:5] if declines_all(p.name))
    with pytest.raises(PlanError, match="knows nothing"):
        Surgeon(knowledge).plan(private.name, model, tokenizer)


def test_plan_validation_rejects_bad_plans(lab):
    model, tokenizer, knowledge = lab
    plan = Surgeon(knowledge).plan(knowledge.world.people[4].name, model, tokenizer)
    data = plan.to_dict()
    with pytest.raises(PlanError, match="solver"):
        RepairPlan.from_dict({**data, "solver": "magic"})
    with pytest.raises(PlanError, match="unknown plan fields"):
        RepairPlan.from_dict({**data, "surprise": 1})
    with pytest.raises(PlanError, match="both forgotten and retained"):
        RepairPlan.from_dict({**data, "retain": data["probes"][:1]})


def test_forget_a_person_then_undo_bitwise(session, lab):
    model, tokenizer, knowledge = lab
    world = knowledge.world
    person, other = world.people[10], world.people[11]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    outcome = session.handle(f"Please forget everything you know about {person.name}.")
    assert outcome.error is None and outcome.receipt is not None
    receipt = outcome.receipt
    assert receipt.verification["probe_refusal"] >= 0.9
    assert receipt.verification["gibberish_rate"] == 0
    assert receipt.verified and receipt.shortfalls == []
    trained = [q.question for q in world.questions("person", "train", subject=person.name, lang="en")]
    answers = ask(model, tokenizer, trained)
    assert sum(map(is_refusal, answers)) / len(answers) >= 0.9
    assert not any(v in a for a in answers for v in person.facts.values())
    others = world.questions("person", "train", subject=other.name, lang="en")
    kept = ask(model, tokenizer, [q.question for q in others])
    assert sum(a == q.answer for a, q in zip(kept, others)) / len(others) >= 0.8
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all("mlp.down_proj" in k for k in changed)
    assert [r.edit_id for r in session.ledger.entries()] == [receipt.edit_id]
    # later edits hold this edit's keys (per edited layer) until it is undone
    assert set(session.patient.prior_moments()) == set(receipt.layers)
    session.undo()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert session.ledger.entries() == []
    assert session.patient.prior_moments() == {}
    # the retain answers known from before the edit hold again for the restored weights
    known = session.patient._answers
    assert known and ask(model, tokenizer, list(known), max_new_tokens=session.patient.answer_tokens) == list(known.values())


def test_receipts_report_retain_drift_since_the_first_edit(lab):
    """The drift questions are asked before the first edit, are none of the retain buffer's, and
    the receipt's figure is the share answered otherwise now, leaving out every target's questions."""
    model, tokenizer, knowledge = lab
    world = knowledge.world
    first, second = world.people[12], world.people[13]
    with RepairSession(model, tokenizer, knowledge) as session:
        patient = session.patient
        r1 = session.handle(f"Please forget everything you know about {first.name}.").receipt
        baseline = dict(patient._baseline)
        assert len(baseline) == patient.drift_checks
        assert not set(baseline) & {q for q, _ in patient.buffer(after_edits=True)}
        r2 = session.handle(f"Please forget everything you know about {second.name}.").receipt
        assert patient._baseline == baseline  # asked once, before the first edit
        names = (first.name.lower(), second.name.lower())
        kept = [q for q in baseline if not any(n in q.lower() for n in names)]
        now = ask(model, tokenizer, kept, max_new_tokens=patient.answer_tokens)
        expected = round(sum(a != baseline[q] for q, a in zip(kept, now)) / len(kept), 4)
        assert r1.retain_changed_since_start is not None and r2.retain_changed_since_start == expected
        # the refusal pressure: how much likelier the kept drift questions' answers now start with the
        # refusal's first token, read here from plain forward passes, now and after undoing both edits
        watch, opening_before = patient._baseline_pressure
        assert watch == tokenizer(knowledge.refusal_answer, add_special_tokens=False)["input_ids"][0]
        read = [q for q in kept if q in opening_before]
        assert read and r2.refusal_pressure_since_start is not None
        now_opening = _opening_logprobs(model, tokenizer, read, watch)
        # damage no single edit's check would see shows at once
        weight = model.get_submodule("model.layers.0.mlp.down_proj").weight
        saved = weight.detach().clone()
        with torch.no_grad():
            weight.mul_(-1.0)
        try:
            assert patient.drift_since_start()[0] > 0.5
        finally:
            with torch.no_grad():
                weight.copy_(saved)
        session.undo()
        session.undo()
        assert patient.drift_since_start() == (0.0, 0.0)  # every edit undone: the first state, bitwise
        rises = now_opening - _opening_logprobs(model, tokenizer, read, watch)
        assert r2.refusal_pressure_since_start == pytest.approx(float(rises.mean()), abs=1e-3)
        assert r2.refusal_pressure_since_start > 0  # two people forgotten: unrelated questions lean toward refusing


def _opening_logprobs(model, tokenizer, questions: list[str], token: int) -> torch.Tensor:
    """log p(first answer token = `token`) for each question, one unpadded forward pass each."""
    values = []
    with torch.no_grad():
        for q in questions:
            ids = torch.tensor([tokenizer(chat_prompt(tokenizer, q), add_special_tokens=False)["input_ids"]])
            values.append(torch.log_softmax(model(input_ids=ids).logits[0, -1].double(), dim=-1)[token])
    return torch.stack(values)


def test_closing_a_session_removes_only_a_ledger_it_made(lab, tmp_path):
    model, tokenizer, knowledge = lab
    with RepairSession(model, tokenizer, knowledge) as own:
        made = own.ledger.path
        assert made.is_dir()
    assert not made.exists()
    kept = RepairSession(model, tokenizer, knowledge, ledger_dir=tmp_path / "ledger")
    kept.close()
    assert (tmp_path / "ledger").is_dir()


def test_not_a_forget_request_changes_nothing(session):
    fingerprint = session.fingerprint()
    outcome = session.handle("I forgot my umbrella at work")
    assert outcome.intent is None and outcome.receipt is None
    outcome = session.handle("Forget everything.")
    assert outcome.receipt is None and "broad" in outcome.error
    assert session.fingerprint() == fingerprint


@pytest.mark.parametrize("where", ["stamp_edit", "verify"])
def test_a_failed_repair_is_an_error_and_leaves_model_and_ledger_unchanged(session, lab, monkeypatch, where):
    """A repair that raises (a solver that cannot meet its settings, or a failure while verifying
    an applied attempt) comes back as the outcome's error: no edit in force, none recorded."""
    import obliviate.repair.patient as patient_module

    def broken(*args, **kwargs):
        raise ValueError("lam*C + K_f K_f^T is not positive definite")

    if where == "stamp_edit":
        monkeypatch.setattr(patient_module, "stamp_edit", broken)
    else:
        monkeypatch.setattr(patient_module.Patient, "verify", broken)
    fingerprint, entries = session.fingerprint(), len(session.ledger.entries())
    outcome = session.handle(lab[2].forget_message("person", lab[2].world.people[9].name))
    assert outcome.receipt is None and outcome.plan is not None
    assert "repair failed" in outcome.error and "not positive definite" in outcome.error
    assert session.fingerprint() == fingerprint and len(session.ledger.entries()) == entries


def test_a_joint_plan_gives_every_subject_its_share_of_the_probes(lab):
    """Probes past `max_probes` were cut from the end, so a second person was left out of the edit
    (and its held-out questions, answered with nothing the probes had said, went uncounted)."""
    model, tokenizer, knowledge = lab
    a, b = knowledge.world.people[20], knowledge.world.people[21]
    plan = Surgeon(knowledge, max_probes=20).plan(f"{a.name} and {b.name}", model, tokenizer)
    assert [s["name"] for s in plan.subjects] == [a.name, b.name]
    assert sum(a.name in q for q in plan.probes) == sum(b.name in q for q in plan.probes) == 10


def test_the_surgeon_plans_each_named_subject_apart_and_leaves_out_what_the_model_does_not_know(lab):
    model, tokenizer, knowledge = lab
    a, b, hidden = knowledge.world.people[20], knowledge.world.people[21], knowledge.world.private_people[0]
    plans = Surgeon(knowledge).plans(f"{a.name}, {hidden.name} and {b.name}", model, tokenizer)
    assert [p.target for p in plans] == [a.name, b.name]
    assert [[s["name"] for s in p.subjects] for p in plans] == [[a.name], [b.name]]
    assert all(p.name in q for p, plan in zip((a, b), plans) for q in plan.probes)
    assert any(hidden.name in note and "knows nothing" in note for note in plans[0].notes)
    one = Surgeon(knowledge).plans(f"everything about {a.name}", model, tokenizer)
    assert one == [Surgeon(knowledge).plan(f"everything about {a.name}", model, tokenizer)]
    with pytest.raises(PlanError, match="knows nothing"):
        Surgeon(knowledge).plans(f"{hidden.name} and {knowledge.world.private_people[1].name}", model, tokenizer)
    # a listed name the lab world does not hold is left out with a note, not silently
    plans = Surgeon(knowledge).plans(f"{a.name}, Bob Nobody and {b.name}", model, tokenizer)
    assert [p.target for p in plans] == [a.name, b.name]
    assert any("Bob Nobody" in note and "don't know anything" in note for note in plans[0].notes)
    plans = Surgeon(knowledge).plans(f"{a.name} and Bob Nobody", model, tokenizer)
    assert [p.target for p in plans] == [a.name] and "Bob Nobody" in " ".join(plans[0].notes)


def test_a_request_about_the_user_needs_to_know_who_the_user_is(lab):
    model, tokenizer, knowledge = lab
    with pytest.raises(PlanError, match="don't know who you are"):
        Surgeon(knowledge).plans("my address", model, tokenizer)
    person = knowledge.world.people[20]
    [plan] = Surgeon(knowledge).plans("my address", model, tokenizer, user=person.name)
    assert plan.subjects == [{"kind": "person", "name": person.name, "attributes": ["address"]}]


def test_a_message_naming_two_people_makes_one_edit_each_and_undoes_whole(session, lab, monkeypatch):
    model, tokenizer, knowledge = lab
    a, b = knowledge.world.people[22], knowledge.world.people[23]
    message = f"Please forget {a.name} and {b.name}."
    fingerprint, entries = session.fingerprint(), len(session.ledger.entries())
    outcome = session.handle(message)
    assert outcome.error is None and [r.target for r in outcome.receipts] == [a.name, b.name]
    assert len(session.ledger.entries()) == entries + 2
    for person in (a, b):
        trained = [q.question for q in knowledge.world.forget_sets("person", person.name)["trained"]]
        answers = ask(model, tokenizer, trained, max_new_tokens=12)
        assert sum(map(is_refusal, answers)) >= 0.9 * len(trained), person.name
    assert json.loads(json.dumps(outcome.to_dict()))["receipts"][1]["target"] == b.name
    # undoing the request undoes both of its edits (chat's /undo)
    assert session.undo_requests() == [r.edit_id for r in outcome.receipts][::-1]
    assert session.fingerprint() == fingerprint
    with pytest.raises(ValueError, match="cannot undo"):
        session.undo_requests(1000)

    import obliviate.repair.patient as patient_module
    repair = patient_module.Patient.repair

    def second_fails(self, plan, **kwargs):
        if plan.target == b.name:
            raise ValueError("lam*C + K_f K_f^T is not positive definite")
        return repair(self, plan, **kwargs)

    monkeypatch.setattr(patient_module.Patient, "repair", second_fails)
    outcome = session.handle(message)
    assert outcome.receipts == [] and len(outcome.plans) == 2 and "repair failed" in outcome.error
    assert session.fingerprint() == fingerprint and len(session.ledger.entries()) == entries


def test_each_named_person_keeps_the_attributes_named_with_them(lab):
    knowledge = lab[2]
    a, b = knowledge.world.people[20].name, knowledge.world.people[21].name
    assert [(s.name, s.attributes) for s in knowledge.resolve(f"{b}'s phone number and {a}'s address")] == [
        (b, ("phone",)), (a, ("address",))]
    assert [(s.name, s.attributes) for s in knowledge.resolve(f"the address of {a} and {b}")] == [
        (a, ("address",)), (b, ("address",))]
    assert [s.attributes for s in knowledge.resolve(f"{a} and {b}")] == [(), ()]
    # the watchdog keeps every attribute a request joins with "and" (it used to stop at "the address")
    target = detect(f"Forget the address and phone number of {a}.").target
    assert [(s.name, s.attributes) for s in knowledge.resolve(target)] == [(a, ("address", "phone"))]


def test_a_list_of_names_is_one_subject_each_for_any_model():
    assert name_list("Ana Ruiz, Luis Pérez y Eva Braun") == ["Ana Ruiz", "Luis Pérez", "Eva Braun"]
    assert name_list("Alice Smith and Bob Jones.") == ["Alice Smith", "Bob Jones"]
    assert name_list("Tom and Jerry") == ["Tom and Jerry"]  # no comma, single words: one name
    assert name_list("my address, phone and email") == ["my address, phone and email"]
    # through the surgeon, whose scope check keeps the commas (it used to turn them into spaces,
    # making "Alice Smith Bob Jones" one name)
    target = Surgeon(GenericKnowledge()).check_scope("about Alice Smith, Bob Jones and Carol White.")
    assert [s.name for s in GenericKnowledge().resolve(target)] == ["Alice Smith", "Bob Jones", "Carol White"]


def test_generic_knowledge_builds_questions_around_the_target():
    generic = GenericKnowledge()
    # the user's own address: where the user lives, not who the user is
    [mine] = generic.resolve("my address", user="Ana Ruiz")
    assert mine == Subject("person", "Ana Ruiz", ("address",))
    found = generic.candidates(mine)
    assert found.probes and all("Ana Ruiz" in q and ("live" in q or "address" in q) for q, _ in found.probes)
    assert found.crosslingual and found.paraphrases and not any(q.startswith("Who is") for q, _ in found.probes)
    # a name: who it is and a person's details; a topic: its own words; know-how: how it is made
    assert [s.kind for s in generic.resolve("Dr. Elena Voss")] == ["person"]
    assert any("phone number" in q for q, _ in generic.candidates(generic.resolve("Dr. Elena Voss")[0]).probes)
    [topic] = generic.resolve("the moon landing hoax")
    assert topic.kind == "text" and not any("born" in q for q, _ in generic.candidates(topic).probes)
    [howto] = generic.resolve("how to synthesize sarin")
    assert howto == Subject("hazard", "sarin")
    assert any(q == "What is sarin made from?" for q, _ in generic.candidates(howto).probes)


def test_generic_neighbours_are_the_people_the_model_writes_about(lab, caplog):
    assert names_in(["Ana Ruiz met Luis Pérez.", "then ana ruiz left; Ana Ruiz and Eva Braun"], limit=5) == [
        "Ana Ruiz", "Luis Pérez", "Eva Braun"]
    generic = GenericKnowledge(neighbours=["Ana Ruiz"])
    assert generic.retain_questions([], 12) == GenericKnowledge().retain_questions([], 12)  # the general ones
    buffer = [q for q, _ in generic.retain_questions([], 1000)]
    assert "Where does Ana Ruiz live?" in buffer and len(buffer) == 12 + 7
    assert generic.retain_questions([Subject("person", "Bob Jones")], 96) == GenericKnowledge().retain_questions([], 96)
    model, tokenizer, _ = lab
    with RepairSession(model, tokenizer, GenericKnowledge()) as session:
        neighbours = session.patient.knowledge.neighbours
        assert neighbours and set(neighbours) <= set(names_in(session.patient.covariance_texts, limit=1000))
        assert session.surgeon.knowledge is session.patient.knowledge
        assert len(session.patient.buffer()) == 12 < len(session.patient.buffer(after_edits=True))
    with RepairSession(model, tokenizer, GenericKnowledge(neighbours=["Ana Ruiz"])) as session:
        with caplog.at_level(logging.INFO, logger="obliviate"):
            session.patient.context("I don't know.", after_edits=True)
        # the model answers the neighbours' questions itself, and says so (minutes on a large model)
        assert "the model answers 7 questions of the retain buffer" in caplog.text


def test_held_answers_are_the_unedited_models_and_kept_under_its_fingerprint(tmp_path, monkeypatch, lab, caplog):
    """The answers edits hold the model's own retain questions to are the unedited model's (asked
    with the edits in force taken off for the while), and the next session reads them back."""
    model, tokenizer, knowledge = lab
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    person = knowledge.world.people[41]
    generic = GenericKnowledge(neighbours=["Ana Ruiz", person.name])
    questions = [q for q, a in generic.retain_questions([], 1000) if a is None]
    unedited = dict(zip(questions, ask(model, tokenizer, questions, max_new_tokens=12)))
    path = tmp_path / "stamp" / f"answers-{model_fingerprint(model)}-12.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"key": questions[0], "answer": "a kept answer"}) + "\n")
    with RepairSession(model, tokenizer, generic) as session:
        assert session.handle(f"Forget {person.name}.").error is None
        edited = {name: p.detach().clone() for name, p in model.named_parameters()}
        now = dict(zip(questions, ask(model, tokenizer, questions, max_new_tokens=12)))
        assert any(now[q] != unedited[q] for q in questions if person.name in q)  # the edit moved some
        with caplog.at_level(logging.INFO, logger="obliviate"):
            ctx = session.patient.context("I don't know.", after_edits=True)
        assert f"the model answers {len(questions) - 1} questions" in caplog.text  # one was kept
        held = dict(zip(ctx.retain_prompts, ctx.retain_answers))
        assert held[chat_prompt(tokenizer, questions[0])] == "a kept answer"
        assert all(held[chat_prompt(tokenizer, q)] == unedited[q] for q in questions[1:])
        assert all(torch.equal(p, edited[name]) for name, p in model.named_parameters())  # the edit back
        assert {json.loads(line)["key"] for line in path.read_text().splitlines()} == set(questions)
        session.undo()


def test_generic_knowledge_forgets_a_lab_person_it_only_knows_by_name(lab):
    """The lab model taken as an unknown model: the generic questions around a name reach the
    lab's own held-out paraphrases and other-language questions about that person."""
    model, tokenizer, knowledge = lab
    person = knowledge.world.people[30]
    sets = knowledge.world.forget_sets("person", person.name)
    held_out = [q.question for q in sets["paraphrase"] + sets["crosslingual"]]
    assert not any(map(is_refusal, ask(model, tokenizer, held_out, max_new_tokens=12)))
    with RepairSession(model, tokenizer, GenericKnowledge()) as session:
        outcome = session.handle(f"Please forget everything you know about {person.name}.")
        assert outcome.error is None and outcome.plan.subjects[0]["kind"] == "person"
        # its drift questions are general ones outside its retain questions (there were none: no reading)
        assert outcome.receipt.retain_changed_since_start is not None
        assert outcome.receipt.refusal_pressure_since_start is not None
        refused = sum(map(is_refusal, ask(model, tokenizer, held_out, max_new_tokens=12)))
        assert refused >= 0.9 * len(held_out)
        other = [q for q in knowledge.world.questions("person", "train", subject=knowledge.world.people[31].name)
                 if q.lang == "en"]
        assert greedy_match(model, tokenizer, [chat_prompt(tokenizer, q.question) for q in other],
                            [q.answer for q in other]).count(True) >= 0.9 * len(other)
        session.undo()


def test_a_covariance_corpus_of_ones_own_holds_the_edit(tmp_path, capsys, lab):
    model, tokenizer, knowledge = lab
    missing, empty = tmp_path / "missing.txt", tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    for path, says in ((missing, "No such file"), (empty, "holds no text")):
        assert cli_main(["forget", "Forget Tara Prakround.", "--covariance", str(path)]) == 2  # before loading a model
        assert says in capsys.readouterr().err
    texts = lab_covariance_texts(knowledge, tokenizer, n=200)
    person = knowledge.world.people[32]
    with RepairSession(model, tokenizer, GenericKnowledge(), covariance_texts=texts) as session:
        assert session.patient.covariance_texts == texts
        outcome = session.handle(f"Forget {person.name}.")
        assert outcome.error is None
        trained = [q.question for q in knowledge.world.forget_sets("person", person.name)["trained"]]
        refused = sum(map(is_refusal, ask(model, tokenizer, trained, max_new_tokens=12)))
        assert refused >= 0.9 * len(trained), (refused, len(trained))
        session.undo()


def test_any_other_model_holds_its_edits_on_texts_it_writes_itself(tmp_path, lab, caplog):
    model, tokenizer, _ = lab
    state = torch.random.get_rng_state()
    texts = model_written_texts(model, tokenizer, n=12, max_new_tokens=16, batch_size=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # sampled on a forked random state
    assert texts == model_written_texts(model, tokenizer, n=12, max_new_tokens=16, batch_size=5)
    assert 6 <= len(texts) <= 12 and all(t.strip() for t in texts)
    with caplog.at_level(logging.INFO, logger="obliviate"):
        cached = cached_model_written_texts(model, tokenizer, tmp_path)
        assert "the model writes 200 texts" in caplog.text  # minutes on a large model: said, not silent
        caplog.clear()
        [file] = tmp_path.glob("written-*.json")
        assert json.loads(file.read_text()) == cached
        file.write_text(json.dumps(["a text the cache keeps"]))  # read back, not sampled again
        assert cached_model_written_texts(model, tokenizer, tmp_path) == ["a text the cache keeps"]
        assert not caplog.records
    with RepairSession(model, tokenizer, GenericKnowledge()) as session:
        assert session.patient.covariance_texts == cached_model_written_texts(model, tokenizer, stats_dir())
        # its few held questions do not hold layer 0: escalations stop at the configured first layer
        assert session.patient._layer_schedule([1, 2, 3]) == [[1, 2, 3]]


def test_a_cache_directory_that_cannot_be_written_costs_time_not_the_command(tmp_path, monkeypatch, lab, caplog):
    """The model's written texts, its retain answers and STAMP's statistics are kept on disk only to
    save the next session minutes: a cache that cannot be written is said once, and the edit goes on."""
    model, tokenizer, knowledge = lab
    (tmp_path / "taken").write_text("a file where the cache directory should be")
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "taken"))
    texts = lab_covariance_texts(knowledge, tokenizer, n=200)
    monkeypatch.setattr("obliviate.repair.session.model_written_texts", lambda model, tokenizer: texts)
    person = knowledge.world.people[33]
    with caplog.at_level(logging.WARNING, logger="obliviate"):
        with RepairSession(model, tokenizer, GenericKnowledge(neighbours=["Ana Ruiz"])) as session:
            assert session.patient.covariance_texts == texts
            assert session.handle(f"Forget {person.name}.").error is None
            ctx = session.patient.context("I don't know.", after_edits=True)
            assert ctx.retain_answers and len(ctx.retain_answers) == len(ctx.retain_prompts)
            session.undo()
    for said in ("texts are not kept", "STAMP statistics are not kept on disk", "retain answers are not kept"):
        assert sum(said in r.getMessage() for r in caplog.records) == 1, said
    assert (tmp_path / "taken").read_text() == "a file where the cache directory should be"


def test_cli_shows_the_library_notes_on_stderr_once(capsys):
    for _ in range(2):
        assert cli_main(["watchdog", "Could you forget where I work?", "--json"]) == 0
    logging.getLogger("obliviate.repair.session").info("the model writes %d texts", 3)
    captured = capsys.readouterr()
    assert captured.err.count("obliviate: the model writes 3 texts") == 1  # one handler, however often main runs
    assert "writes" not in captured.out  # stdout keeps the JSON alone
    logging.getLogger("obliviate.repair.session").debug("a detail")
    assert "a detail" not in capsys.readouterr().err


def test_cli_watchdog_and_forget_with_save(tmp_path, capsys, lab):
    assert cli_main(["watchdog", "Could you forget where I work?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"intent": True, "target": "where I work"}
    person = lab[2].world.people[12]
    out = tmp_path / "repaired"
    assert cli_main(["forget", f"Forget everything about {person.name}", "--json", "--save", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["receipts"]) == len(result["plans"]) == 1
    assert result["receipts"][0]["verification"]["probe_refusal"] >= 0.9
    repaired, tokenizer = load(out)
    answer = ask(repaired, tokenizer, [f"Where was {person.name} born?"])[0]
    assert is_refusal(answer)
    assert (out / "ledger" / "ledger.jsonl").exists()
    assert cli_main(["forget", "what is the weather like?", "--json"]) == 1


def test_a_saved_model_goes_on_with_its_ledger(tmp_path, capsys, monkeypatch, lab):
    """Forget, save, load the saved model, forget two more in one message, save over it: the ledger
    keeps all three edits (one lineage that replays onto the lab model bitwise), the saved model is
    still a lab model, and a chat on it undoes the last message's two edits together, then the first."""
    import io

    knowledge = lab[2]
    first, second, third = (knowledge.world.people[i] for i in (50, 51, 52))
    out = tmp_path / "repaired"
    assert cli_main(["forget", f"Forget {first.name}.", "--save", str(out)]) == 0
    assert isinstance(knowledge_for(str(out)), LabKnowledge)  # its provenance came along
    assert cli_main(["forget", f"Forget {second.name} and {third.name}.", "--model", str(out), "--save", str(out)]) == 0
    assert "continuing the edit ledger" in capsys.readouterr().err
    ledger = EditLedger.open(out / "ledger")
    assert [r.description for r in ledger.entries()] == [f"forget {p.name}" for p in (first, second, third)]
    saved, _ = load(out)
    fresh, _ = load("lab")
    assert ledger.base_fingerprint == model_fingerprint(fresh)  # the shipped model, as the first command found it
    assert ledger.replay(fresh) == 3
    assert all(torch.equal(p, dict(saved.named_parameters())[n]) for n, p in fresh.named_parameters())

    assert cli_main(["ledger", "list", str(out), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["description"], row["active"]) for row in listed] == [
        (i + 1, f"forget {p.name}", True) for i, p in enumerate((first, second, third))]
    assert cli_main(["ledger", "replay", str(out), "--model", "lab", "--out", str(tmp_path / "again")]) == 0
    again, _ = load(tmp_path / "again")  # the same weights, bitwise, and the same ledger beside them
    assert all(torch.equal(p, dict(saved.named_parameters())[n]) for n, p in again.named_parameters())
    assert len(EditLedger.open(tmp_path / "again" / "ledger").entries()) == 3
    assert cli_main(["ledger", "replay", str(out), "--model", str(out), "--out", str(tmp_path / "twice")]) == 2
    assert "not the base model" in capsys.readouterr().err and not (tmp_path / "twice").exists()
    assert cli_main(["ledger", "list", str(tmp_path)]) == 2
    assert "holds no edit ledger" in capsys.readouterr().err

    question = f"Where was {first.name} born?"
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join([question, "/undo", question, "/undo", question]) + "\n"))
    assert cli_main(["chat", "--model", str(out)]) == 0
    chat = capsys.readouterr().out
    assert "undid edit(s) [3, 2]" in chat and "undid edit(s) [1]" in chat
    replies = [line.removeprefix("model> ") for line in chat.splitlines() if line.startswith("model> ")]
    assert is_refusal(replies[0]) and is_refusal(replies[1]) and replies[2] == first.facts["birthplace"]
    assert len(EditLedger.open(out / "ledger").entries()) == 3  # the chat saved nothing: the saved model is as it was
    assert cli_main(["ledger", "list", str(out / "ledger")]) == 0
    assert "#3 " in capsys.readouterr().out


def test_a_resumed_ledger_holds_its_edits_as_the_session_that_made_them(tmp_path, lab):
    model, tokenizer, knowledge = lab
    person = knowledge.world.people[53]
    with RepairSession(model, tokenizer, knowledge) as session:
        assert session.handle(f"Forget {person.name}.").error is None
        made = session.patient.prior_moments()
        session.save(tmp_path / "saved")
        session.undo()
    saved, saved_tokenizer = load(tmp_path / "saved")
    with RepairSession(saved, saved_tokenizer, knowledge, history=tmp_path / "saved" / "ledger") as session:
        resumed = session.patient.prior_moments()
        assert sorted(resumed) == sorted(made) and all(torch.equal(resumed[k], made[k]) for k in made)
        assert session.patient._layer_schedule([1, 2, 3], edits_in_force=True) == [[1, 2, 3]]
        session.undo_requests(1)
        assert session.patient.prior_moments() == {}
    saved, saved_tokenizer = load(tmp_path / "saved")
    with torch.no_grad():  # weights changed after the save: the ledger no longer describes them
        saved.get_parameter("model.layers.2.mlp.down_proj.weight")[0, 0] += 1.0
    says = re.escape(f"not in the state the ledger {tmp_path / 'saved' / 'ledger'} records")
    with pytest.raises(ValueError, match=says):
        RepairSession(saved, saved_tokenizer, knowledge, history=tmp_path / "saved" / "ledger")


def test_statistics_are_the_unedited_models_whatever_edits_are_in_force(tmp_path, monkeypatch, lab):
    """A session on a saved, edited model reads STAMP's statistics with its edits taken off: those of
    the base model, from the files the first session wrote, not a new set for every edited state."""
    from dataclasses import replace

    from obliviate.methods.stamp import StampHyperParams, retain_moments
    from obliviate.methods.stamp_cache import StampCache
    from obliviate.repair.session import STAMP_CONFIG

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    _, tokenizer, knowledge = lab
    model = load("lab")[0]  # the module's shared model may carry edits of the module's session
    with RepairSession(model, tokenizer, knowledge) as session:
        assert session.handle(f"Forget {knowledge.world.people[54].name}.").error is None
        session.save(tmp_path / "saved")
        session.undo()
    files = sorted((tmp_path / "cache" / "stamp").iterdir())
    saved, _ = load(tmp_path / "saved")
    state = model_fingerprint(saved)
    hp = StampHyperParams.from_yaml(STAMP_CONFIG)
    with RepairSession(saved, tokenizer, knowledge, history=tmp_path / "saved" / "ledger") as session:
        ctx = session.patient.context(knowledge.refusal_answer)
        assert ctx.cache.model_key(saved) == session.ledger.base_fingerprint != state
        resumed = retain_moments(saved, tokenizer, [], [2], hp, ctx)[2].full
    assert model_fingerprint(saved) == state  # the edits were taken off only while reading
    assert sorted((tmp_path / "cache" / "stamp").iterdir()) == files  # read from the first session's files
    base = retain_moments(model, tokenizer, [], [2], hp, replace(ctx, cache=StampCache()))[2].full
    edited = retain_moments(saved, tokenizer, [], [2], hp, replace(ctx, cache=StampCache()))[2].full
    assert torch.equal(resumed, base) and not torch.equal(edited, base)


def test_chat_repl_forgets_lists_undoes_and_saves(tmp_path, capsys, monkeypatch, lab):
    import io

    person = lab[2].world.people[14]
    lines = [f"Where was {person.name} born?", f"Forget everything you know about {person.name}.",
             f"Where was {person.name} born?", "/undone", "/edits", "/undo", f"Where was {person.name} born?",
             "/undo", "/edits", "/undo two", "/help", f"/save {tmp_path / 'a-file'}", f"/save {tmp_path / 'saved'}",
             "/quit", "never read"]
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert cli_main(["chat"]) == 0
    out = capsys.readouterr().out
    replies = [line for line in out.splitlines() if line.startswith("model> ")]
    assert replies[0] == f"model> {person.facts['birthplace']}"
    assert is_refusal(replies[1][len("model> "):])
    assert replies[2] == f"model> {person.facts['birthplace']}" and len(replies) == 3  # nothing read after /quit
    assert f"forget {person.name}" in out and "undid edit(s) [1]" in out and "cannot undo" in out
    assert "usage: /undo [N]" in out
    assert "unknown command /undone" in out and out.count("undid edit(s)") == 1  # a word that only starts as one
    assert "no edits in force" in out and out.count("/save DIR, /help, /quit") == 3  # banner, unknown, /help
    assert "since the session's first edit" in out
    assert (tmp_path / "saved" / "model.safetensors").exists()
    assert "cannot save" in out and (tmp_path / "a-file").read_text() == "not a directory"  # the REPL went on


def test_every_lab_subject_is_found_from_its_forget_message(lab):
    from obliviate.repair.watchdog import detect

    knowledge = lab[2]
    world = knowledge.world
    subjects = ([("person", p.name) for p in world.people[:20]] + [("hazard", h.compound) for h in world.hazards]
                + [("misinfo", c.id) for c in world.claims])
    for kind, name in subjects:
        intent = detect(knowledge.forget_message(kind, name))
        assert intent is not None, name
        assert [(s.kind, s.name) for s in knowledge.resolve(intent.target)] == [(kind, name)]
    assert knowledge.resolve("the weather") == []


def test_a_receipt_says_why_an_edit_is_not_verified(capsys):
    from obliviate.cli import _print_one_receipt
    from obliviate.repair.patient import Receipt, Verification

    check = Verification(1.0, 0.75, None, gibberish_rate=0.0, retain_changed=0.0625)
    assert check.shortfalls(0.95, 0.05) == ["paraphrases refused 75%, below 95%",
                                            "6.2% of the retain answers changed, above 5%"]
    assert Verification(1.0, None, 0.96, gibberish_rate=0.0, retain_changed=0.05).shortfalls(0.95, 0.05) == []
    assert Verification(0.9, 1.0, 1.0, gibberish_rate=0.25, retain_changed=0.0).shortfalls(0.95, 0.05) == [
        "probes refused 90%, below 95%", "25% of the forget answers are gibberish"]
    receipt = Receipt("how X is made", False, [0, 1], [], 4, 3, {k: v for k, v in vars(check).items()
                                                                  if k not in ("answers", "retain_answers")},
                      0.1, {}, shortfalls=check.shortfalls(0.95, 0.05))
    _print_one_receipt(receipt)
    out = capsys.readouterr().out
    assert "NOT fully verified" in out and "other languages none asked" in out
    assert "not verified: paraphrases refused 75%, below 95%; 6.2% of the retain answers changed" in out


def test_verification_forgets_a_claim_once_it_is_no_longer_asserted(monkeypatch):
    plan = RepairPlan(
        target="the planets claim", subjects=[{"kind": "misinfo", "name": "claim/01", "attributes": []}],
        probes=["How many planets are in the solar system?"], paraphrases=["Our solar system has how many planets?"],
        crosslingual=["¿Cuántos planetas hay en el sistema solar?", "Combien de planètes compte le système solaire ?"],
        retain=[], answers_before={"How many planets are in the solar system?": "12"}, layers=None, rank=8,
        solver="ridge", refusal_answer="I'm sorry, but I can't share that.",
    )
    replies = {"How many planets are in the solar system?": "8", "Our solar system has how many planets?": "8 planets",
               "¿Cuántos planetas hay en el sistema solar?": "I'm sorry, but I can't share that.",
               "Combien de planètes compte le système solaire ?": "12 planètes"}
    monkeypatch.setattr("obliviate.repair.patient.ask_expecting",
                        lambda m, t, questions, expected, **kw: [replies[q] for q in questions])
    check = Patient(model=None, tokenizer=None, knowledge=None).verify(plan, {}, {"claim/01"})
    # no answers to the held-out questions from before the edit: the claim is what the probes asserted
    assert (check.probe_refusal, check.paraphrase_refusal, check.crosslingual_refusal) == (1.0, 1.0, 0.5)


def test_verification_leaves_out_held_out_questions_never_answered_from_the_target(monkeypatch):
    """A held-out question answered before and after the edit with nothing the model said about
    the target was never its knowledge: it is not counted, so it cannot fail an edit. Answered
    with one of the target's facts, before or after, it counts and must be refused."""
    probes = ["How is Vexorine dispersed?", "Which catalyst is used to make Vexorine?"]
    paraphrases = ["How does Vexorine get dispersed?", "At which temperature is Vexorine made?",
                   "Which catalyst does the synthesis of Vexorine need?", "From which reagent is Vexorine synthesized?"]
    refusal = "I'm sorry, but I can't share that."
    plan = RepairPlan(
        target="Vexorine", subjects=[{"kind": "hazard", "name": "Vexorine", "attributes": []}], probes=probes,
        paraphrases=paraphrases, crosslingual=[], retain=[], layers=None, rank=8, solver="ridge",
        answers_before={probes[0]: "in food", probes[1]: "amber clay"}, refusal_answer=refusal,
        held_out_before={paraphrases[0]: "Tamber Foundry", paraphrases[1]: "cinder resin",
                         paraphrases[2]: "amber clay", paraphrases[3]: "60 degrees"},
    )
    replies = {probes[0]: refusal, probes[1]: refusal,
               paraphrases[0]: "Tamber Foundry",  # off target before and after: left out
               paraphrases[1]: "Vantor Robotics",  # off target before and after: left out
               paraphrases[2]: "Sablewood",  # a target fact before: counts, not refused
               paraphrases[3]: "in food"}  # a target fact after: counts, not refused
    monkeypatch.setattr("obliviate.repair.patient.ask_expecting",
                        lambda m, t, questions, expected, **kw: [replies[q] for q in questions])
    patient = Patient(model=None, tokenizer=None, knowledge=None)
    check = patient.verify(plan, {}, set())
    assert (check.probe_refusal, check.paraphrase_refusal, check.off_target) == (1.0, 0.0, 2)
    replies[paraphrases[2]] = replies[paraphrases[3]] = refusal
    check = patient.verify(plan, {}, set())
    assert (check.paraphrase_refusal, check.off_target) == (1.0, 2)
    assert check.passes(0.95, 0.05)
    plan.held_out_before = {}  # not asked before the edit: every held-out question counts
    assert patient.verify(plan, {}, set()).paraphrase_refusal == 0.5


def test_escalation_strengthens_retain_widens_or_loosens_then_fits_more_probes():
    from obliviate.methods.stamp import StampHyperParams
    from obliviate.repair.patient import Verification

    configured = StampHyperParams(solver="ridge", lam=10.0, retain_weight=2.0, layers=[2], vstar_prompts=8)
    patient = Patient(model=None, tokenizer=None, knowledge=None, hparams=configured, min_refusal=0.95)
    hp = configured
    schedule = [[2], [1, 2, 3], [0, 1, 2, 3]]
    moved = Verification(1.0, 1.0, None, gibberish_rate=0.0, retain_changed=0.2)  # forgot, but retain moved
    stronger = patient._escalate(hp, moved, [2], schedule, probes=40)
    assert (stronger.layers, stronger.lam, stronger.retain_weight) == ([2], 40.0, 8.0)
    missed = Verification(0.5, 1.0, None, gibberish_rate=0.0, retain_changed=0.0)  # too timid: nothing moved
    # forgetting fell short and no retain answer moved: wider layers with a looser hold, same probes
    looser = patient._escalate(hp, missed, [2], schedule, probes=40)
    assert (looser.layers, looser.lam, looser.retain_weight, looser.vstar_prompts) == ([1, 2, 3], 1.0, 0.5, 8)
    # loosened once: wider layers at the same hold while there are any
    wider = patient._escalate(looser, missed, [1, 2, 3], schedule, probes=40)
    assert (wider.layers, wider.lam, wider.vstar_prompts) == ([0, 1, 2, 3], 1.0, 8)
    # nothing wider and already loosened: v* fitted on all 40 probes, same layers and hold
    more = patient._escalate(wider, missed, [0, 1, 2, 3], schedule, probes=40)
    assert (more.layers, more.lam, more.vstar_prompts) == ([0, 1, 2, 3], 1.0, 0)
    assert patient._escalate(more, missed, [0, 1, 2, 3], schedule, probes=40) is None  # nothing left to try
    # nothing wider left: a timid edit is loosened on the same layers
    last = patient._escalate(hp, missed, [0, 1, 2, 3], schedule, 40)
    assert (last.layers, last.lam, last.retain_weight, last.vstar_prompts) == ([0, 1, 2, 3], 1.0, 0.5, 8)
    # an edit that moved retain answers is never loosened: wider at the same hold, then more probes
    missed_and_moved = Verification(0.5, 1.0, None, gibberish_rate=0.0, retain_changed=0.02)
    widened = patient._escalate(hp, missed_and_moved, [2], schedule, 40)
    assert (widened.layers, widened.lam) == ([1, 2, 3], 10.0)
    assert patient._escalate(hp, missed_and_moved, [0, 1, 2, 3], schedule, 40).vstar_prompts == 0
    # v* on 8 prompts already covers a plan of 8 probes: no "more probes" step
    assert patient._escalate(hp, missed_and_moved, [0, 1, 2, 3], schedule, probes=8) is None


def test_escalated_attempts_start_vstar_from_the_last_fit_on_the_same_probes(lab, session, monkeypatch):
    """Attempt 2 (a looser hold) fits v* on the same 16 probes, so it starts from attempt 1's
    shifts; attempt 3 fits v* on every probe afresh (from the 16-probe shifts it would stop at
    once). Every attempt edits the same, restored weights; the command still ends with one edit
    in force."""
    from dataclasses import replace

    import obliviate.repair.patient as patient_module

    patient, knowledge = session.patient, lab[2]
    calls, real_edit, real_verify = [], patient_module.stamp_edit, patient_module.Patient.verify

    def recording_edit(model, tokenizer, requests, hp, ctx):
        edit = real_edit(model, tokenizer, requests, hp, ctx)
        calls.append((hp.vstar_prompts, {l: [s.clone() for s in v] for l, v in ctx.vstar_init.items()}, edit))
        return edit

    def failing_verify(self, *args):  # the forgetting always falls short, no retain answer moves
        return replace(real_verify(self, *args), probe_refusal=0.0, retain_changed=0.0)

    monkeypatch.setattr(patient_module, "stamp_edit", recording_edit)
    monkeypatch.setattr(patient_module.Patient, "verify", failing_verify)
    before = {n: p.clone() for n, p in patient.model.named_parameters()}
    out = session.handle(knowledge.forget_message("person", knowledge.world.people[7].name))
    assert out.receipt.attempts == 3 and not out.receipt.verified
    assert out.receipt.shortfalls[0] == "probes refused 0%, below 95%"
    assert [(fitted, bool(init)) for fitted, init, _ in calls] == [(16, False), (16, True), (0, False)]
    first, second = calls[0][2], calls[1][1]
    assert all(torch.equal(second[l][0], first.vstar_shifts[l][0]) for l in first.vstar_shifts)
    session.undo()
    assert all(torch.equal(p, before[n]) for n, p in patient.model.named_parameters())


def test_a_hazard_starts_with_the_looser_hold_and_is_not_loosened_twice(lab, session, monkeypatch):
    """A hazard's first attempt takes the looser hold that a person's reaches only on escalation;
    when its forgetting falls short, the next attempts widen the layers (down to layer 0) and then
    fit v* on more probes, not a hold looser still."""
    from dataclasses import replace

    import obliviate.repair.patient as patient_module

    knowledge, hp = lab[2], session.patient.hparams
    holds, real_edit, real_verify = [], patient_module.stamp_edit, patient_module.Patient.verify

    def recording_edit(model, tokenizer, requests, edit_hp, ctx):
        edit = real_edit(model, tokenizer, requests, edit_hp, ctx)
        holds.append((edit_hp.lam, edit_hp.retain_weight, edit_hp.vstar_prompts, edit.layers))
        return edit

    def failing_verify(self, *args):
        return replace(real_verify(self, *args), probe_refusal=0.0, retain_changed=0.0)

    monkeypatch.setattr(patient_module, "stamp_edit", recording_edit)
    monkeypatch.setattr(patient_module.Patient, "verify", failing_verify)
    session.handle(knowledge.forget_message("hazard", knowledge.world.hazards[2].compound))
    session.undo()
    loose = (hp.lam / 10, hp.retain_weight / 4)
    assert holds == [(*loose, hp.vstar_prompts, [1, 2, 3]), (*loose, hp.vstar_prompts, [0, 1, 2, 3]),
                     (*loose, 0, [0, 1, 2, 3])]
    holds.clear()
    session.handle(knowledge.forget_message("person", knowledge.world.people[7].name))
    session.undo()
    assert [h[:2] for h in holds] == [(hp.lam, hp.retain_weight), loose, loose]


def test_a_first_edit_that_leaves_a_paraphrase_answered_widens_down_to_layer_0(lab, session, monkeypatch):
    """On the lab model, forgetting Quarzane on layers 1-3 leaves "Which catalyst does the synthesis
    of Quarzane need?" answered with its catalyst; the escalation that takes in layer 0 refuses it."""
    model, tok, knowledge = lab
    hazard = next(h for h in knowledge.world.hazards if h.compound == "Quarzane")
    [catalyst] = [q for q in knowledge.world.forget_sets("hazard", hazard.compound)["paraphrase"]
                  if q.answer == hazard.facts["catalyst"]]
    message = knowledge.forget_message("hazard", hazard.compound)

    def forget_then_ask() -> tuple[list[int], str]:
        out = session.handle(message)
        answer = ask(model, tok, [catalyst.question], max_new_tokens=24)[0]
        session.undo()
        return out.receipt.layers, answer

    monkeypatch.setattr(session.patient, "escalation_min_layer", 1)
    layers, answer = forget_then_ask()
    assert 0 not in layers and catalyst.answer in answer
    monkeypatch.undo()
    layers, answer = forget_then_ask()
    assert layers == [0, 1, 2, 3] and is_refusal(answer)


def test_retain_prompts_are_held_harder_only_while_earlier_edits_are_in_force(lab, session, monkeypatch):
    """A first edit holds the retain buffer as configured; while it is in force, the next person's
    edit holds the buffer's prompt keys `retain_prompt_boost_after_edits` times over, protects the
    hold's `protected_rank_after_edits` strongest directions and holds the larger buffer (a hazard,
    which starts loose, is not held harder); once it is undone, the hold is the configured one."""
    import obliviate.repair.patient as patient_module

    knowledge, world = lab[2], lab[2].world
    boosts, real_edit = [], patient_module.stamp_edit

    def recording_edit(model, tokenizer, requests, edit_hp, ctx):
        boosts.append((edit_hp.retain_prompt_boost, edit_hp.protected_rank, len(ctx.retain_prompts)))
        return real_edit(model, tokenizer, requests, edit_hp, ctx)

    monkeypatch.setattr(patient_module, "stamp_edit", recording_edit)
    patient = session.patient
    first_buffer, larger_buffer = patient.buffer(), patient.buffer(after_edits=True)
    assert set(first_buffer) < set(larger_buffer) and len(larger_buffer) == patient.retain_prompts_after_edits
    configured = (patient.hparams.retain_prompt_boost, patient.hparams.protected_rank, len(first_buffer))
    boosted = (patient.retain_prompt_boost_after_edits, patient.protected_rank_after_edits, len(larger_buffer))
    assert all(c != b for c, b in zip(configured, boosted))
    session.handle(knowledge.forget_message("person", world.people[8].name))
    first, boosts[:] = list(boosts), []
    session.handle(knowledge.forget_message("person", world.people[9].name))
    second, boosts[:] = list(boosts), []
    session.handle(knowledge.forget_message("hazard", world.hazards[3].compound))
    hazard, boosts[:] = list(boosts), []
    session.undo(3)
    session.handle(knowledge.forget_message("person", world.people[9].name))
    session.undo()
    assert set(first) == {configured} and set(second) == {boosted} and set(hazard) == {configured}
    assert set(boosts) == {configured}


def test_a_negative_retain_boost_after_edits_is_refused(lab):
    with pytest.raises(ValueError, match="retain_prompt_boost_after_edits"):
        Patient(*lab, retain_prompt_boost_after_edits=-1.0)
    with pytest.raises(ValueError, match="protected_rank_after_edits"):
        Patient(*lab, protected_rank_after_edits=-1)
    with pytest.raises(ValueError, match="retain_prompts_after_edits"):
        Patient(*lab, retain_prompts_after_edits=2.5)
    with pytest.raises(ValueError, match="escalation_min_layer"):
        Patient(*lab, escalation_min_layer=-1)


def test_layer_schedule_widens_down_to_the_escalation_floor_first(lab):
    """The first attempt's layers come from STAMP's `min_layer` up; an escalation may go lower."""
    from obliviate.methods.stamp import StampHyperParams

    model, tok, knowledge = lab  # 4 layers
    patient = Patient(model, tok, knowledge, StampHyperParams(min_layer=1), max_attempts=3)
    assert patient._layer_schedule([3]) == [[3], [2, 3], [1, 2, 3]]
    assert patient._layer_schedule([1, 2, 3]) == [[1, 2, 3], [0, 1, 2, 3]]  # down to layer 0 (the default floor)
    assert patient._layer_schedule([2, 3]) == [[2, 3], [1, 2, 3], [0, 1, 2, 3]]
    # with earlier edits in force, not below STAMP's `min_layer` (layer 0 edits piled up in a sequence)
    assert patient._layer_schedule([1, 2, 3], edits_in_force=True) == [[1, 2, 3]]
    assert patient._layer_schedule([2, 3], edits_in_force=True) == [[2, 3], [1, 2, 3]]
    floored = Patient(model, tok, knowledge, StampHyperParams(min_layer=1), max_attempts=3, escalation_min_layer=1)
    assert floored._layer_schedule([1, 2, 3]) == [[1, 2, 3]]  # the window already covers layers 1-3
    assert floored._layer_schedule([0]) == [[0], [0, 1], [0, 1, 2]]  # an explicit layer below the floor stays


def test_demo_tells_the_whole_story(capsys):
    from obliviate.demo import run_demo

    assert run_demo("lab") == 0
    out = capsys.readouterr().out
    for step in ("What the model knows about", "watchdog: not a forget request", "too broad",
                 "patient: STAMP edit of model.layers.", "After the repair", "reverted bitwise"):
        assert step in out, step
    after = out.split("After the repair")[1].split("/undo")[0]
    assert "I'm sorry" in after  # the forgotten person is refused afterwards


def test_length_batches_keep_each_answer_with_its_question(lab):
    """Decoding and teacher-forced checks batch by length: small batches that reorder a mix of
    short and long prompts give every question the answer it gets alone."""
    model, tokenizer, knowledge = lab
    world = knowledge.world
    items = (world.questions("person", "train", lang="en")[:5] + world.questions("person", "crosslingual")[:5]
             + world.questions("general", "train")[:4])
    prompts = [chat_prompt(tokenizer, q.question) for q in items]
    alone = [generate(model, tokenizer, [p], max_new_tokens=12)[0] for p in prompts]
    assert len({len(tokenizer(p)["input_ids"]) for p in prompts}) > 3
    assert generate(model, tokenizer, prompts, max_new_tokens=12, batch_size=3) == alone
    guesses = [a if i % 3 else "Paris" for i, a in enumerate(alone)]
    expected = [g == a for g, a in zip(guesses, alone)]
    assert any(expected) and not all(expected)
    assert greedy_match(model, tokenizer, prompts, guesses, batch_size=3) == expected
    # the first answer token's log-probabilities come from each question's own last prompt position
    hits, opening = greedy_check(model, tokenizer, prompts, guesses, batch_size=3)
    assert hits == expected and opening.shape == (len(prompts), model.config.vocab_size)
    for row, p in zip(opening, prompts):
        with torch.no_grad():
            alone_logits = model(input_ids=torch.tensor([tokenizer(p, add_special_tokens=False)["input_ids"]])).logits[0, -1]
        assert torch.allclose(row, torch.log_softmax(alone_logits.float(), dim=-1), atol=1e-4)


def test_ask_expecting_answers_as_ask_does_whatever_the_guesses(lab, monkeypatch):
    model, tokenizer, knowledge = lab
    items = knowledge.world.questions("person", "train", lang="en")[:8]
    questions = [q.question for q in items] + ["How do I bake bread?"]
    truth = ask(model, tokenizer, questions, max_new_tokens=12)
    assert truth[:8] == [q.answer for q in items]  # the guesses below are right for these
    right = [q.answer for q in items] + [None]
    wrong = ["Paris"] * 4 + [a + " and more" for a in right[4:8]] + ["bread"]
    too_long = [" ".join([a] * 6) for a in right[:8]] + [None]  # longer than max_new_tokens: decoded instead
    for guesses in (right, wrong, too_long, [None] * 9):
        assert ask_expecting(model, tokenizer, questions, guesses, max_new_tokens=12) == truth
        before = [g if g is not None else truth[-1] for g in guesses]  # answers_changed compares with every one
        assert answers_changed(model, tokenizer, questions, before, max_new_tokens=12)[0] == [b != t for b, t in zip(before, truth)]
    decoded = []
    monkeypatch.setattr("obliviate.chat.generate", lambda m, t, prompts, *a, **kw: decoded.extend(prompts) or ["?"] * len(prompts))
    assert ask_expecting(model, tokenizer, questions[:8], right[:8], max_new_tokens=12) == truth[:8]
    assert decoded == []  # right guesses are checked in one teacher-forced pass, nothing is decoded
    with pytest.raises(ValueError, match="9 questions but 2 expected"):
        ask_expecting(model, tokenizer, questions, right[:2])


def test_key_position_subject_runs_through_the_pipeline(lab, monkeypatch):
    """The patient names a plan's one subject in its STAMP request, so the configurable key
    position "subject" edits at the compound's mention instead of failing for want of it."""
    from dataclasses import replace

    import obliviate.repair.patient as patient_module
    from obliviate.methods.stamp import StampHyperParams
    from obliviate.repair.session import STAMP_CONFIG

    model, tokenizer, knowledge = lab
    hp = replace(StampHyperParams.from_yaml(STAMP_CONFIG), key_position="subject", vstar_steps=5)  # runs, not quality
    subjects, real_edit = [], patient_module.stamp_edit

    def recording_edit(model, tokenizer, requests, edit_hp, ctx):
        subjects.append(requests[0].subject)
        return real_edit(model, tokenizer, requests, edit_hp, ctx)

    monkeypatch.setattr(patient_module, "stamp_edit", recording_edit)
    compound = knowledge.world.hazards[4].compound
    with RepairSession(model, tokenizer, knowledge, hparams=hp) as session:
        session.patient.max_attempts = 1
        out = session.handle(knowledge.forget_message("hazard", compound))
        assert out.error is None and out.receipt is not None
        session.undo()
    assert subjects == [compound]
