"""The lab tokenizer, chat template, model loading, and a micro training run that learns facts."""

import json

import pytest
import torch

from obliviate.chat import ask, chat_prompt, encode_pair, greedy_match
from obliviate.lab.check import check, qa_accuracy, world_of
from obliviate.lab.tokenizer import multi_token_words, train_tokenizer
from obliviate.lab.train import get_config, train_lab_model
from obliviate.lab.world import generate_world
from obliviate.models import LAB_CHECKPOINT, load


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    out = tmp_path_factory.mktemp("micro") / "model"
    cfg = get_config("micro")
    train_lab_model(cfg, out, log=lambda s: None)
    model, tokenizer = load(out)
    return out, model, tokenizer, generate_world(cfg.world)


def test_tokenizer_keeps_surnames_whole_and_renders_chat():
    world = generate_world(get_config("micro").world)
    texts = [q.question + " " + q.answer for q in world.questions(split="train")]
    tokenizer = train_tokenizer(texts, vocab_size=1280)
    assert multi_token_words(tokenizer, [p.name.split()[1] for p in world.people]) == []
    prompt = chat_prompt(tokenizer, "Where was Ana Smith born?")
    assert prompt == "<|user|>Where was Ana Smith born?<|assistant|>"
    ids, labels = encode_pair(tokenizer, prompt, "Veltrosa")
    assert ids[-1] == tokenizer.eos_token_id
    answer_ids = [i for i, label in zip(ids, labels) if label != -100]
    assert tokenizer.decode(answer_ids, skip_special_tokens=True).strip() == "Veltrosa"
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], tokenize=False)
    assert full == "<|user|>hi<|assistant|>hello</s>"
    think = tokenizer("<think>why</think>", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(think)[0] == "<think>"


@pytest.mark.slow
def test_micro_training_learns_facts_and_saves_a_loadable_model(micro):
    out, model, tokenizer, world = micro
    assert (out / "model.safetensors").exists() and (out / "provenance.json").exists()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["world_fingerprint"] == world.fingerprint()
    trained = world.questions("person", "train", lang="en")
    accuracy = qa_accuracy(model, tokenizer, trained)
    assert accuracy >= 0.3, accuracy
    # An untrained model of the same shape knows nothing: the facts came from training.
    fresh = type(model)(model.config).eval()
    assert qa_accuracy(fresh, tokenizer, trained[:100]) == 0.0
    # Private people are refused, in the exact refusal sentence.
    assert qa_accuracy(model, tokenizer, world.questions("private", "train")[:50]) >= 0.9
    # greedy_match agrees with real greedy decoding.
    sample = trained[:20]
    answers = ask(model, tokenizer, [q.question for q in sample], max_new_tokens=16)
    flags = greedy_match(model, tokenizer, [chat_prompt(tokenizer, q.question) for q in sample], [q.answer for q in sample])
    assert flags == [a == q.answer for a, q in zip(answers, sample)]
    assert world_of(str(out)).fingerprint() == world.fingerprint()


def test_shipped_checkpoint_matches_the_world_generator():
    """Fails when the world generator changes without the shipped checkpoint being retrained."""
    provenance = json.loads((LAB_CHECKPOINT / "provenance.json").read_text())
    cfg = get_config(provenance["config"]["name"])
    assert provenance["world_fingerprint"] == generate_world(cfg.world).fingerprint()


def test_load_lab_and_errors(tmp_path):
    model, tokenizer = load("lab")
    assert model.config.model_type == "llama"
    assert sum(p.numel() for p in model.parameters()) < 4_200_000
    assert tokenizer.chat_template and tokenizer.pad_token is not None
    assert (LAB_CHECKPOINT / "model.safetensors").stat().st_size <= 16 * 1024 * 1024
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "empty")
    with pytest.raises(OSError, match="offline"):
        load("no-such-org/no-such-model-xyz")
    with pytest.raises(ValueError, match="dtype"):
        load("lab", dtype="float8")


def test_lab_check_reports_every_number():
    model, tokenizer = load("lab")
    world = world_of(str(LAB_CHECKPOINT))
    small = generate_world(get_config("micro").world)
    report = check(model, tokenizer, small)  # a different world: the numbers exist but are low
    for key in ("trained_qa_acc", "paraphrase_qa_acc", "crosslingual_qa_acc", "hazard_mcq_acc",
                "hazard_paraphrase_qa_acc", "hazard_crosslingual_qa_acc", "misinfo_belief_rate", "general_acc",
                "harmful_refusal_rate", "perplexity"):
        assert key in report
    assert report["trained_qa_acc"] < 0.2
    assert qa_accuracy(model, tokenizer, world.questions("person", "train", lang="en")[:200]) >= 0.9
    assert torch.isfinite(torch.tensor(report["perplexity"]))
