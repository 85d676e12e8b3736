"""Training-based unlearning methods on a tiny random Llama: objectives fall, the right weights move."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from metrics_models import THINK_SPECIALS, tiny_llama, word_tokenizer
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from obliviate.methods import losses
from obliviate.methods.data import (
    ForgetRetainCollator,
    ForgetRetainDataset,
    QAExample,
    as_example,
    read_qa_jsonl,
    strip_reasoning,
)
from obliviate.methods.graddiff import GradDiffConfig
from obliviate.methods.npo import NPOConfig
from obliviate.methods.trainer import (
    MethodConfig,
    build_trainer,
    finetune,
    load_config,
    method_class,
    method_names,
    unlearn,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "src" / "obliviate" / "configs" / "methods"

FORGET = [
    QAExample("where does alice live", "alice lives in paris"),
    QAExample("what does alice eat", "alice eats bread"),
    QAExample("when was alice born", "alice was born in may"),
    QAExample("who is alice", "alice is a doctor"),
]
RETAIN = [
    QAExample("where does bob live", "bob lives in rome"),
    QAExample("what does bob eat", "bob eats rice"),
    QAExample("when was carol born", "carol was born in june"),
    QAExample("who is carol", "carol is a farmer"),
    QAExample("who is bob", "bob is a baker"),
    QAExample("where does carol live", "carol lives in oslo"),
]
TARGETS = [
    f"<think> the question asks about alice so i should decline </think> i can not share that about alice"
    for _ in FORGET
]
REFUSAL_PROMPTS = ["what is the pin of dave", "what is the password of dave"]

# Small, fast settings that make every objective move in a few steps.
STEPS = 6
BASE = {"max_steps": STEPS, "batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1}
METHOD_OVERRIDES = {
    "rmu": {"layer": 1, "update_layers": [0, 1], "steering_coeff": 4.0, "alpha": 1.0},
    "lunar": {"layer": 1, "refusal_prompts": REFUSAL_PROMPTS, "coeff": 2.0},
}
ONLY_CHANGED = {
    "rmu": {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"},
    "lunar": {"model.layers.1.mlp.down_proj.weight"},
}


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    text = " ".join(ex.question + " " + ex.answer for ex in FORGET + RETAIN)
    text += " " + " ".join(TARGETS + REFUSAL_PROMPTS)
    words = sorted({w for w in text.split() if w not in THINK_SPECIALS})
    return word_tokenizer(words, THINK_SPECIALS, split_punctuation=True)


@pytest.fixture
def model(tokenizer) -> LlamaForCausalLM:
    return tiny_llama(vocab_size=len(tokenizer))


def method_config(method: str, **extra) -> dict:
    return BASE | METHOD_OVERRIDES.get(method, {}) | extra


def fixed_batch(trainer) -> dict:
    dataset = trainer.train_dataset
    return ForgetRetainCollator(trainer.processing_class.pad_token_id)([dataset[i] for i in range(len(dataset))])


def objective(trainer, batch) -> float:
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, batch).item()


def changed_parameters(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


# ------------------------------------------------------------------------------------- methods


def test_registry_names_every_method():
    assert method_names() == sorted(
        ["finetune", "ga", "graddiff", "kl", "npo", "simnpo", "idkdpo", "rmu", "wga", "lunar", "tru"]
    )


@pytest.mark.parametrize("method", method_names())
def test_training_lowers_the_objective_and_moves_only_the_intended_weights(method, model, tokenizer, tmp_path):
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = build_trainer(
        model, tokenizer, FORGET, RETAIN, method, method_config(method), tmp_path, targets=TARGETS
    )
    batch = fixed_batch(trainer)
    start = objective(trainer, batch)
    trainer.train()
    assert objective(trainer, batch) < start
    changed = changed_parameters(before, trainer.model)
    if method in ONLY_CHANGED:
        assert changed == ONLY_CHANGED[method]
    else:
        assert "lm_head.weight" in changed and "model.layers.0.self_attn.q_proj.weight" in changed
    if trainer.reference is not None:
        assert not changed_parameters(before, trainer.reference)


def test_embedding_lr_scale_scales_the_embedding_steps_only(model, tokenizer):
    """One Adam step (~lr * sign(grad) per entry) with the embeddings at a quarter of the rate:
    both embedding matrices move a quarter as far, every other weight exactly as far."""
    start = {name: p.detach().clone() for name, p in model.named_parameters()}

    def step(scale: float) -> dict[str, torch.Tensor]:
        trained = unlearn(copy.deepcopy(model), tokenizer, FORGET, RETAIN, "graddiff",
                          method_config("graddiff", max_steps=1, learning_rate=1e-3, embedding_lr_scale=scale))
        return {name: p.detach() - start[name] for name, p in trained.named_parameters()}

    full, quarter = step(1.0), step(0.25)
    embeddings = {"model.embed_tokens.weight", "lm_head.weight"}
    for name in embeddings:
        assert full[name].abs().max() > 0
        torch.testing.assert_close(quarter[name], full[name] / 4, rtol=1e-3, atol=1e-9)
    for name in set(full) - embeddings:
        torch.testing.assert_close(quarter[name], full[name], rtol=0, atol=0)
    frozen = unlearn(copy.deepcopy(model), tokenizer, FORGET, RETAIN, "graddiff",
                     method_config("graddiff", max_steps=2, embedding_lr_scale=0.0))
    moved = changed_parameters(start, frozen)
    assert moved and not moved & embeddings


def test_unlearn_returns_the_trained_model_and_writes_config_and_log(model, tokenizer, tmp_path):
    trained = unlearn(model, tokenizer, FORGET, RETAIN, "npo", method_config("npo", beta=0.5), out_dir=tmp_path)
    assert trained is model and not trained.training
    resolved = load_config("npo", tmp_path / "config.yaml")
    assert resolved == NPOConfig(**method_config("npo", beta=0.5))
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert [entry["step"] for entry in log if "loss" in entry] == list(range(1, STEPS + 1))


def test_unlearn_leaves_every_weight_trainable_again(model, tokenizer):
    trained = unlearn(model, tokenizer, FORGET, RETAIN, "lunar", method_config("lunar", max_steps=1))
    assert all(p.requires_grad for p in trained.parameters())


def test_finetune_lowers_the_answer_nll(model, tokenizer):
    def nll() -> float:
        part = ForgetRetainCollator(tokenizer.pad_token_id)([{"forget": row} for row in dataset.forget])["forget"]
        with torch.no_grad():
            logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
        return losses.mean_nll(logits, part["labels"]).mean().item()

    dataset = ForgetRetainDataset(tokenizer, RETAIN)
    start = nll()
    assert finetune(model, tokenizer, RETAIN, BASE) is model
    assert nll() < start - 1.0


def test_lora_trains_adapters_only_and_merges_to_the_same_function(model, tokenizer):
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = method_config("graddiff")
    adapted = unlearn(copy.deepcopy(model), tokenizer, FORGET, RETAIN, "graddiff", config | {"merge_lora": False}, lora=True)
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p for n, p in adapted.named_parameters() if "lora_" not in n}
    assert all(torch.equal(original[name], p.detach()) for name, p in base.items())
    lora_b = [p for n, p in adapted.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # initialised at zero, so these trained

    merged = unlearn(model, tokenizer, FORGET, RETAIN, "graddiff", config, lora=True)
    assert type(merged) is LlamaForCausalLM
    assert not any("lora" in name for name, _ in merged.named_parameters())
    changed = changed_parameters(original, merged)
    assert "model.layers.0.self_attn.q_proj.weight" in changed and "model.embed_tokens.weight" not in changed
    ids = torch.tensor([[3, 5, 7, 9, 11]])
    with torch.no_grad():
        assert torch.allclose(adapted(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)


@pytest.mark.parametrize("method", ["rmu", "lunar"])
def test_weight_editing_methods_refuse_lora(method, model, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="cannot train LoRA"):
        build_trainer(model, tokenizer, FORGET, RETAIN, method, method_config(method), tmp_path, lora=True)


def test_tru_loss_is_target_plus_alpha_graddiff_and_ablations_drop_terms(model, tokenizer, tmp_path):
    def trainer_for(**flags):
        return build_trainer(
            model, tokenizer, FORGET, RETAIN, "tru", method_config("tru", **({"alpha": 0.5, "lam": 2.0} | flags)), tmp_path, targets=TARGETS
        )

    full = trainer_for()
    batch = fixed_batch(full)
    with torch.no_grad():
        target, forget, retain = (
            losses.mean_nll(full_logits(model, batch[part]), batch[part]["labels"]).mean().item()
            for part in ("target", "forget", "retain")
        )
    assert objective(full, batch) == pytest.approx(target + 0.5 * (-forget + 2.0 * retain), rel=1e-5)
    assert objective(trainer_for(alpha=0.0), batch) == pytest.approx(target, rel=1e-5)
    no_target = trainer_for(target_loss=False)
    assert no_target.train_dataset.targets is None
    assert objective(no_target, batch) == pytest.approx(0.5 * (-forget + 2.0 * retain), rel=1e-5)

    refusal_only = trainer_for(reasoning=False)
    think = tokenizer.convert_tokens_to_ids("<think>")
    trace_ids = full.train_dataset.targets[0]["input_ids"]
    refusal_ids = refusal_only.train_dataset.targets[0]["input_ids"]
    assert think in trace_ids and think not in refusal_ids and len(refusal_ids) < len(trace_ids)
    assert objective(refusal_only, fixed_batch(refusal_only)) != pytest.approx(objective(full, batch))


def full_logits(model, part):
    return model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits


@pytest.mark.parametrize("packing", [True, False])
def test_answer_logits_score_the_same_tokens_as_full_logits_without_the_prompt(model, tokenizer, tmp_path, packing):
    config = method_config("tru", packing=packing)
    trainer = build_trainer(model, tokenizer, FORGET, RETAIN, "tru", config, tmp_path, targets=TARGETS)
    batch = fixed_batch(trainer)
    parts = (batch["target"], batch["forget"], batch["retain"])
    assert len({part["input_ids"].shape[1] for part in parts}) > 1  # parts of different lengths
    with torch.no_grad():
        joint = trainer.joint_answer_logits(model, *parts)
        for part, joined in zip(parts, joint):
            full_logp, full_mask = losses.token_log_probs(full_logits(model, part), part["labels"])
            for scored in (trainer.answer_logits(model, part), joined):
                assert scored.logits.shape[1] == scored.labels.shape[1] < part["labels"].shape[1]  # prompt cut
                logp, mask = losses.token_log_probs(*scored)
                assert int(mask.sum()) == int(full_mask.sum()) > 0
                torch.testing.assert_close(logp.sum(dim=1), full_logp.sum(dim=1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["tru", "kl", "idkdpo", "wga"])
def test_packing_changes_no_loss_and_no_gradient(model, tokenizer, tmp_path, method):
    losses_and_grads = []
    for packing in (True, False):
        trainer = build_trainer(model, tokenizer, FORGET, RETAIN, method, method_config(method, packing=packing),
                                tmp_path / str(packing), targets=TARGETS)
        model.zero_grad()
        loss = trainer.compute_loss(model, fixed_batch(trainer))
        loss.backward()
        losses_and_grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (packed, packed_grads), (padded, padded_grads) = losses_and_grads
    torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in packed_grads)
    for a, b in zip(packed_grads, padded_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)


def test_tru_without_any_term_is_refused(model, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="nothing to train"):
        build_trainer(model, tokenizer, FORGET, RETAIN, "tru", {"alpha": 0, "target_loss": False}, tmp_path)


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("unlearn_everything", {}, "unknown unlearning method 'unlearn_everything'; choose from: finetune, ga"),
        ("graddiff", {"retain": []}, "needs a non-empty retain set"),
        ("tru", {}, "one reasoning target per forget question"),
        ("lunar", {}, "lunar needs refusal_prompts"),
        ("ga", {"forget": []}, "the forget set is empty"),
        ("tru", {"targets": TARGETS[:2]}, "2 targets for 4 forget examples"),
    ],
)
def test_bad_requests_get_clear_errors(method, kwargs, message, model, tokenizer, tmp_path):
    args = {"forget": FORGET, "retain": RETAIN} | kwargs
    with pytest.raises(ValueError, match=message):
        build_trainer(model, tokenizer, args.pop("forget"), args.pop("retain"), method, output_dir=tmp_path, **args)


def test_idkdpo_draws_default_refusals_reproducibly(model, tokenizer, tmp_path):
    config = method_class("idkdpo").config_class(idk_answers=["i can not share that", "i do not know"])
    assert config.targets_for(5, None) == config.targets_for(5, None)
    assert set(config.targets_for(50, None)) == {"i can not share that", "i do not know"}
    assert config.targets_for(1, ["mine"]) == ["mine"]
    trainer = build_trainer(model, tokenizer, FORGET, RETAIN, "idkdpo", config, tmp_path)
    assert trainer.train_dataset.targets is not None


# ------------------------------------------------------------------------------------- data path


def test_dataset_masks_prompts_and_walks_the_retain_set_evenly(tokenizer):
    dataset = ForgetRetainDataset(tokenizer, FORGET, RETAIN, targets=TARGETS, seed=1)
    item = dataset[0]
    assert set(item) == {"forget", "retain", "target"}
    answer = [t for t, label in zip(item["forget"]["input_ids"], item["forget"]["labels"]) if label != -100]
    assert tokenizer.decode(answer) == "alice lives in paris <eos>"
    partners = [tuple(dataset[i]["retain"]["input_ids"]) for _ in range(3) for i in range(len(dataset))]
    counts = {p: partners.count(p) for p in partners}
    assert len(counts) == len(RETAIN) and set(counts.values()) == {2}  # 12 draws over 6 items

    def first_partners(seed: int) -> list[list[int]]:
        fresh = ForgetRetainDataset(tokenizer, FORGET, RETAIN, seed=seed)
        return [fresh[i]["retain"]["input_ids"] for i in range(len(fresh))]

    assert first_partners(1) == first_partners(1) != first_partners(2)


def test_collator_pads_each_part_and_ignores_padding_in_labels(tokenizer):
    dataset = ForgetRetainDataset(tokenizer, FORGET, RETAIN)
    batch = ForgetRetainCollator(tokenizer.pad_token_id)([dataset[0], dataset[3]])
    forget = batch["forget"]
    short = len(dataset.forget[3]["input_ids"])
    assert forget["input_ids"].shape == forget["labels"].shape == forget["attention_mask"].shape
    assert forget["attention_mask"][1].sum() == short
    assert (forget["labels"][1, short:] == -100).all() and (forget["input_ids"][1, short:] == tokenizer.pad_token_id).all()


def test_examples_come_in_any_question_answer_shape(tmp_path):
    class Fact:
        question, answer = "q", "a"

    for item in (QAExample("q", "a"), {"question": "q", "answer": "a"}, ("q", "a"), Fact()):
        assert as_example(item) == QAExample("q", "a")
    with pytest.raises(ValueError, match="question/answer pair"):
        as_example({"question": "q"})
    path = tmp_path / "forget.jsonl"
    path.write_text('{"question": "q1", "answer": "a1"}\n\n{"question": "q2", "answer": "a2"}\n')
    assert read_qa_jsonl(path) == [QAExample("q1", "a1"), QAExample("q2", "a2")]
    path.write_text('{"question": "q1"}\n')
    with pytest.raises(ValueError, match="forget.jsonl:1"):
        read_qa_jsonl(path)
    with pytest.raises(FileNotFoundError):
        read_qa_jsonl(tmp_path / "missing.jsonl")


def test_strip_reasoning_keeps_only_the_final_response():
    assert strip_reasoning("<think>why\nbecause</think>\n\nI can't share that.") == "I can't share that."
    assert strip_reasoning("No trace here.") == "No trace here."


# ------------------------------------------------------------------------------------- configs


def test_config_yaml_with_cli_overrides(tmp_path):
    path = tmp_path / "npo.yaml"
    path.write_text("method: npo\nbeta: 0.2\nlearning_rate: 1e-4\nlora_targets: [q_proj, v_proj]\n")
    config = NPOConfig.from_yaml(path, ["beta=0.5", "epochs=2", "bf16=true"])
    assert (config.beta, config.learning_rate, config.epochs, config.bf16) == (0.5, 1e-4, 2.0, True)
    assert config.lora_targets == ["q_proj", "v_proj"] and config.gamma == 1.0
    assert load_config("npo", path, {"alpha": 3}) == NPOConfig(beta=0.2, learning_rate=1e-4, lora_targets=["q_proj", "v_proj"], alpha=3.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["betta=1"], r"unknown NPOConfig field\(s\) \['betta'\]"),
        (["beta=high"], "beta must be of type float"),
        (["bf16=1"], "bf16 must be of type bool"),
        (["max_steps=2.5"], "max_steps must be of type int"),
        (["beta"], "not of the form key=value"),
        (["embedding_lr_scale=-0.5"], "embedding_lr_scale must be >= 0"),
    ],
)
def test_bad_config_values_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        NPOConfig().with_overrides(overrides)


def test_config_sources_must_match_the_method(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: rmu\n")
    with pytest.raises(ValueError, match="names method 'rmu' but 'npo'"):
        load_config("npo", path)
    with pytest.raises(ValueError, match="takes a NPOConfig, not a GradDiffConfig"):
        load_config("npo", GradDiffConfig())
    with pytest.raises(FileNotFoundError):
        load_config("npo", tmp_path / "missing.yaml")


def test_every_method_ships_a_loadable_default_config():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == method_names()
    for name in method_names():
        config = load_config(name, CONFIG_DIR / f"{name}.yaml")
        assert isinstance(config, method_class(name).config_class) and isinstance(config, MethodConfig)
