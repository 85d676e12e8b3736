"""STAMP on tiny random Llama, Qwen2, Mistral, Phi-3 and GPT-2 models: the edit lands where intended."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from obliviate.chat import answer_logprobs, chat_prompt
from obliviate.hooks import (
    down_proj_path,
    down_proj_weight,
    get_module,
    is_transposed,
    mlp_output_adds_to_layer_output,
    start_above_layer,
)
from obliviate.methods.stamp import (
    key_windows,
    StampContext,
    StampHyperParams,
    StampRequest,
    apply_stamp,
    capture,
    cosine_separation,
    layer_separation,
    refusal_targets,
    restore_weights,
    retain_moments,
    select_layer,
    stamp_edit,
    vstar_indices,
)
from obliviate.methods.stamp_cache import StampCache
from obliviate.methods.stamp_solvers import solve_exact
from tiny_architectures import ARCHITECTURES, VOCAB, make_model

WORDS = (
    "who what where when is does did the of in born work works live city name job year phone "
    "alice bob carol dave erin frank gina hugo ivan june kurt lena mona nils omar "
    "I can't share that. don't know capital plus two four ? please tell me about"
).split()
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<user>", "<assistant>"]
LAYER = 1


def make_tokenizer(padding_side: str = "right") -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    tok.padding_side = padding_side
    return tok


def prompts(tok, questions):
    return [chat_prompt(tok, q) for q in questions]


FORGET = ["where does alice work ?", "what is alice job ?", "when was alice born ?"]
RETAIN = [
    "where does bob work ?", "what is carol job ?", "when was dave born ?", "where does erin live ?",
    "what is frank phone ?", "who is gina ?", "tell me about hugo", "what is the capital of ivan city ?",
]
REFUSAL = ["what is june phone ?", "where does kurt live ?", "tell me about lena phone", "what is mona year ?",
           "who is nils ?", "what is omar job ?"]
COVARIANCE = [f"{q} {a}" for q in RETAIN for a in ("I don't know", "two plus two")] + WORDS[:20]


def context(tok, **kw) -> StampContext:
    return StampContext(
        refusal_prompts=prompts(tok, REFUSAL), retain_prompts=prompts(tok, RETAIN),
        covariance_texts=kw.pop("covariance_texts", None), refusal_answer="I can't share that.", **kw,
    )


def outputs_at(model, tok, texts, layer=LAYER):
    return capture(model, tok, texts, [layer], "mlp_out", key_tokens=1)[layer]


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_all_configs_exist():
    for config_name, model_name in ARCHITECTURES.values():
        assert hasattr(transformers, config_name) and hasattr(transformers, model_name)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("solver", ["exact", "ridge"])
def test_edit_lands_on_the_intended_weight(arch, solver):
    tok, model = make_tokenizer(), make_model(arch)
    forget, retain, refusal = prompts(tok, FORGET), prompts(tok, RETAIN), prompts(tok, REFUSAL)
    before = snapshot(model)
    refusal_mean = outputs_at(model, tok, refusal).mean(dim=1, keepdim=True)
    retain_before = outputs_at(model, tok, retain)
    forget_before = outputs_at(model, tok, forget)
    hp = StampHyperParams(layers=[LAYER], solver=solver, target="refusal_mean", lam=1.0, cov_floor=1e-6)

    edited, weights_copy = apply_stamp(model, tok, forget, hp, context(tok))

    assert edited is model
    name = f"{down_proj_path(model, LAYER)}.weight"
    assert list(weights_copy) == [name]
    assert is_transposed(get_module(model, down_proj_path(model, LAYER))) == (arch == "gpt2")
    after = dict(model.named_parameters())
    for other, original in before.items():
        if other != name:
            assert torch.equal(after[other], original), other
    assert not torch.equal(after[name], before[name])
    assert after[name].dtype == before[name].dtype

    # the forget keys now produce the refusal mean (a down-proj output, bias included)
    forget_after = outputs_at(model, tok, forget)
    miss = torch.linalg.norm(forget_after - refusal_mean) / torch.linalg.norm(forget_before - refusal_mean)
    retain_move = torch.linalg.norm(outputs_at(model, tok, retain) - retain_before) / torch.linalg.norm(retain_before)
    assert miss < 1e-3
    assert retain_move < 1e-3  # exact: held fixed; ridge: the retain prompts' covariance protects them

    restore_weights(model, weights_copy)
    for other, original in before.items():
        assert torch.equal(dict(model.named_parameters())[other], original)


def test_ridge_covariance_protects_what_it_has_seen():
    """Covariance texts without the chat-formatted prompts do not protect the retain prompts'
    last-token keys; with the retain prompts in the covariance their outputs stay put."""
    tok = make_tokenizer()
    drift = {}
    for name, texts in (("prompts", None), ("plain_texts", COVARIANCE)):
        model = make_model("llama")
        hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0)
        edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok, covariance_texts=texts))
        drift[name] = edit.edits[0].retain_drift
        assert edit.edits[0].target_miss < 0.05
    assert drift["prompts"] < 1e-3 < 0.1 < drift["plain_texts"]


def test_report_targets_and_deltas_are_consistent():
    tok, model = make_tokenizer(), make_model("gpt2")
    hp = StampHyperParams(layers=[LAYER], solver="exact", target="refusal_subspace", subspace_dim=2)
    edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok))
    (layer_edit,) = edit.edits
    assert layer_edit.keys.shape == (64, 3) and layer_edit.targets.shape == (32, 3)
    assert layer_edit.delta.shape == (32, 64) and torch.linalg.matrix_rank(layer_edit.delta) <= 3
    W = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach().double()
    assert torch.allclose(W @ layer_edit.keys, layer_edit.targets, atol=1e-4, rtol=1e-4)
    assert layer_edit.target_miss < 1e-4 and layer_edit.retain_drift < 1e-5
    assert set(edit.timings) >= {"keys", "stats", "targets", "solve", "apply"}
    # keys from the report equal freshly captured keys (unchanged: they are the layer's inputs)
    fresh = capture(model, tok, prompts(tok, FORGET), [LAYER], "key")[LAYER]
    assert torch.allclose(fresh, layer_edit.keys, atol=1e-5)


def test_lowrank_solver_with_full_rank_matches_ridge():
    tok = make_tokenizer()
    weights = []
    for solver in ("ridge", "lowrank"):
        model = make_model("qwen2")
        hp = StampHyperParams(layers=[LAYER], solver=solver, rank=10_000, target="refusal_mean", lam=0.1)
        edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok))
        weights.append(edit.edits[0].delta)
    assert torch.allclose(weights[0], weights[1], atol=1e-8 * float(weights[0].abs().max()))


def test_vstar_target_makes_the_refusal_likely():
    tok, model = make_tokenizer(), make_model("llama")
    forget = prompts(tok, FORGET)

    def first_token_logprob() -> float:  # a shift at the last prompt token speaks for the next token
        return float(torch.stack([lp[0] for lp in answer_logprobs(model, tok, forget, ["I can't share that."] * 3)]).mean())

    before = first_token_logprob()
    hp = StampHyperParams(layers=[LAYER], solver="exact", target="vstar", vstar_steps=25, vstar_lr=0.5)
    edit = stamp_edit(model, tok, [StampRequest(tuple(forget))], hp, context(tok))
    assert before < -2.0
    assert first_token_logprob() > -1.0
    assert len(edit.vstar_losses) == 1 and edit.edits[0].target_miss < 1e-3


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_vstar_replaying_the_lower_layers_matches_running_them(arch, monkeypatch):
    """v* runs the layers up to the edited one once and replays their output, and the keys pass
    of a layer replays what the layers below the one edited before it returned: the same keys,
    shifts and deltas as running the whole model every time, at the bottom, middle and top layer."""
    tok = make_tokenizer()
    hp = StampHyperParams(layers=[0, 1, 2], solver="ridge", target="vstar", vstar_steps=4, vstar_lr=0.5,
                          vstar_stop_loss=1e-9)

    def edit():
        model = make_model(arch)
        return stamp_edit(model, tok, [StampRequest(tuple(prompts(tok, FORGET)))], hp, context(tok))

    assert all(mlp_output_adds_to_layer_output(make_model(arch), layer) for layer in range(3))
    replayed = edit()
    monkeypatch.setattr("obliviate.methods.stamp.mlp_output_adds_to_layer_output", lambda model, layer: False)
    monkeypatch.setattr("obliviate.methods.stamp.start_above_layer", lambda model, layer, produce: contextlib.nullcontext())
    run = edit()
    for a, b in zip(replayed.edits, run.edits):
        torch.testing.assert_close(a.keys, b.keys, rtol=1e-5, atol=1e-6)
    for layer in range(3):
        torch.testing.assert_close(replayed.vstar_shifts[layer][0], run.vstar_shifts[layer][0], rtol=1e-4, atol=1e-6)
    for a, b in zip(replayed.edits, run.edits):
        torch.testing.assert_close(a.delta, b.delta, rtol=1e-3, atol=1e-5 * float(b.delta.abs().max()))


def test_a_norm_after_the_mlp_is_detected():
    config = transformers.Gemma2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=4, head_dim=8,
                                       max_position_embeddings=64, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.Gemma2ForCausalLM(config).eval()
    assert not mlp_output_adds_to_layer_output(model, 1)
    with start_above_layer(model, 0, lambda: None):
        assert type(model.model.layers[0]).__name__ == "_Replay"
    assert type(model.model.layers[0]).__name__ == "Gemma2DecoderLayer"


def test_multi_layer_edit_changes_each_layer_once_and_restores():
    tok, model = make_tokenizer(), make_model("mistral")
    before = snapshot(model)
    hp = StampHyperParams(layers=[2, 0], solver="ridge", target="refusal_mean", lam=1e-3)
    edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok))
    assert edit.layers == [0, 2]
    assert sorted(edit.weights_copy) == [f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 2)]
    restore_weights(model, edit.weights_copy)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_failed_multi_layer_edit_leaves_the_model_untouched(monkeypatch):
    import obliviate.methods.stamp as stamp_module

    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("solver failure")
        return solve_exact(*args, **kwargs)

    monkeypatch.setattr(stamp_module, "solve_exact", fail_on_second)
    tok, model = make_tokenizer(), make_model("llama")
    before = snapshot(model)
    hp = StampHyperParams(layers=[0, 2], solver="exact", target="refusal_mean")
    with pytest.raises(ValueError, match="solver failure"):
        apply_stamp(model, tok, prompts(tok, FORGET), hp, context(tok))
    assert len(calls) == 2
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_float64_model_meets_targets_to_float64_precision():
    tok, model = make_tokenizer(), make_model("gpt2", torch.float64)
    hp = StampHyperParams(layers=[LAYER], solver="exact", target="refusal_subspace", subspace_dim=3)
    edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok))
    keys = capture(model, tok, prompts(tok, RETAIN), [LAYER], "key")[LAYER]
    W = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach()
    assert edit.edits[0].target_miss < 1e-9
    assert float(torch.linalg.norm(edit.edits[0].delta @ keys) / torch.linalg.norm(W @ keys)) < 1e-9
    assert edit.edits[0].retain_drift < 1e-6  # the diagnostic comes from the key moment: ~sqrt(eps) resolution


def test_bfloat16_model_keeps_its_dtype():
    tok, model = make_tokenizer(), make_model("phi3", torch.bfloat16)
    hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean")
    _, weights_copy = apply_stamp(model, tok, prompts(tok, FORGET), hp, context(tok))
    (name,) = weights_copy
    assert dict(model.named_parameters())[name].dtype == torch.bfloat16
    assert weights_copy[name].dtype == torch.bfloat16


def test_keys_are_padding_aware():
    texts = prompts(make_tokenizer(), FORGET + RETAIN)
    model = make_model("llama")
    one_by_one = torch.cat([capture(model, make_tokenizer(), [t], [LAYER], "key")[LAYER] for t in texts], dim=1)
    for side in ("left", "right"):
        batched = capture(model, make_tokenizer(side), texts, [LAYER], "key", batch_size=16)[LAYER]
        assert torch.allclose(batched, one_by_one, atol=1e-5), side
    last_two = capture(model, make_tokenizer("left"), texts[:2], [LAYER], "key", key_tokens=2)[LAYER]
    assert torch.allclose(last_two[:, 1::2], one_by_one[:, :2], atol=1e-5)  # the last of each pair


def test_cache_reuses_reference_statistics():
    tok, model = make_tokenizer(), make_model("llama")
    ctx = context(tok, covariance_texts=COVARIANCE)
    hp = StampHyperParams(layers=[LAYER], solver="lowrank", rank=8, target="refusal_mean")
    stamp_edit(model, tok, prompts(tok, FORGET[:1]), hp, ctx)
    filled = len(ctx.cache)
    assert filled == 4  # retain keys, covariance, its rank-8 factor, refusal values
    stamp_edit(model, tok, prompts(tok, FORGET[1:]), hp, ctx)
    assert len(ctx.cache) == filled
    ctx.cache.clear()
    assert len(ctx.cache) == 0


def test_refusal_targets_by_hand():
    refusal = torch.tensor([[1.0, 3.0], [0.0, 0.0], [5.0, 5.0]], dtype=torch.float64)  # mean (2, 0, 5)
    forget = torch.tensor([[7.0], [4.0], [-1.0]], dtype=torch.float64)
    # the refusals vary only along e1: keep the forget value's e1 part, take the rest from the mean
    assert torch.allclose(refusal_targets(forget, refusal, 2), torch.tensor([[7.0], [0.0], [5.0]], dtype=torch.float64))
    assert torch.equal(refusal_targets(forget, refusal, 0), torch.tensor([[2.0], [0.0], [5.0]], dtype=torch.float64))


def test_auto_selection_starts_at_min_layer():
    tok, model = make_tokenizer(), make_model("llama")
    hp = StampHyperParams(solver="ridge", target="refusal_mean", min_layer=1)
    edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok))
    assert set(edit.layer_scores) == {1, 2} and edit.layers[0] in (1, 2)
    capped = stamp_edit(model, tok, prompts(tok, FORGET), StampHyperParams(
        solver="ridge", target="refusal_mean", min_layer=7), context(tok))
    assert set(capped.layer_scores) == {2}  # capped at the last layer


def _retain_output_change(model, tok, edit) -> float:
    W = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach().double()
    keys = capture(model, tok, prompts(tok, RETAIN), [LAYER], "key")[LAYER]
    return float(torch.linalg.norm(edit.edits[0].delta @ keys) / torch.linalg.norm(W @ keys))


def test_retain_weight_holds_the_retain_buffer():
    """Retain keys entered into the least squares move less the more weight they get, and the
    forget targets pay for it (they are met less exactly)."""
    tok = make_tokenizer()
    change, miss = [], []
    for weight in (0.0, 1.0, 100.0):
        model = make_model("llama")
        hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0,
                              retain_weight=weight)
        edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok, covariance_texts=COVARIANCE))
        change.append(_retain_output_change(model, tok, edit))
        miss.append(edit.edits[0].target_miss)
    assert change[0] > change[1] > change[2] and change[2] < 0.2 * change[0]
    assert miss[0] < miss[2]
    with pytest.raises(ValueError, match="retain_weight needs retain prompts"):
        stamp_edit(make_model("llama"), tok, prompts(tok, FORGET), StampHyperParams(
            layers=[LAYER], target="refusal_mean", retain_weight=1.0), StampContext(refusal_prompts=prompts(tok, REFUSAL)))


@pytest.mark.parametrize("solver", ["ridge", "exact"])
def test_a_forget_prompt_in_the_retain_buffer_is_not_held(solver):
    """A retain buffer that happens to hold a forget prompt edits as if that prompt were not in it."""
    tok = make_tokenizer()
    hp = StampHyperParams(layers=[LAYER], solver=solver, target="refusal_mean", lam=1.0, retain_weight=100.0)
    deltas = []
    held = prompts(tok, FORGET[:1])[0] + " "  # the same tokens under another string: not recognised, so held
    for retain in (prompts(tok, RETAIN + FORGET[:1]), prompts(tok, RETAIN), prompts(tok, RETAIN) + [held]):
        ctx = StampContext(refusal_prompts=prompts(tok, REFUSAL), retain_prompts=retain,
                           covariance_texts=COVARIANCE, refusal_answer="I can't share that.")
        deltas.append(stamp_edit(make_model("llama"), tok, prompts(tok, FORGET), hp, ctx).edits[0].delta)
    # the buffer keeps a key moment; taking a prompt out leaves float32 rounding of its keys behind
    assert float((deltas[0] - deltas[1]).norm() / deltas[1].norm()) < 1e-2
    assert float((deltas[2] - deltas[1]).norm() / deltas[1].norm()) > 0.1


def test_multi_layer_edit_reads_its_statistics_before_editing():
    """Every layer of a window edit is held with the statistics of the model before the edit:
    the edit of a lower layer moves the keys of the layers above, so statistics read between
    layer edits would not be the model's. A forget prompt in the retain buffer then leaves the
    buffer exactly at every layer (its keys subtracted as the held moment has them), also when
    the moment was cached by an earlier, undone edit."""
    tok = make_tokenizer()
    hp = StampHyperParams(layers=[0, 1], solver="ridge", target="refusal_mean", lam=1.0, retain_weight=0.1)
    model = make_model("llama")
    ctx = context(tok, covariance_texts=COVARIANCE)
    edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, ctx)
    moved = retain_moments(model, tok, [], [1], hp, replace(ctx, cache=StampCache()))[1].full
    restore_weights(model, edit.weights_copy)
    before = retain_moments(model, tok, [], [1], hp, replace(ctx, cache=StampCache()))[1].full
    assert float((moved - before).norm() / before.norm()) > 1e-3  # the layer-0 edit moved layer 1's retain keys
    assert torch.allclose(retain_moments(model, tok, [], [1], hp, ctx)[1].full, before)  # what the edit cached

    deltas = {}
    for name, retain in (("with", RETAIN + FORGET[:1]), ("without", RETAIN)):
        warm = StampContext(refusal_prompts=prompts(tok, REFUSAL), retain_prompts=prompts(tok, retain),
                            covariance_texts=COVARIANCE, refusal_answer="I can't share that.")
        model = make_model("llama")
        restore_weights(model, stamp_edit(model, tok, prompts(tok, FORGET[1:]), hp, warm).weights_copy)
        deltas[name] = [e.delta for e in stamp_edit(model, tok, prompts(tok, FORGET), hp, warm).edits]
    for with_, without in zip(deltas["with"], deltas["without"]):
        assert float((with_ - without).norm() / without.norm()) < 1e-2


RETAIN_ANSWERS = ["I don't know", "two plus two", "four", "I don't know", "two", "alice", "bob city", "four"]


def test_retain_answers_hold_how_retain_answers_continue():
    """With key position "answer", retain answers put keys at every retain answer token into the
    least squares: the edit moves the layer's output along those answers far less."""
    tok = make_tokenizer()
    conversations = [f"{p} {a}" for p, a in zip(prompts(tok, RETAIN), RETAIN_ANSWERS)]
    hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0, retain_weight=100.0,
                          key_position="answer")
    change = {}
    for answers in (None, RETAIN_ANSWERS):
        model = make_model("llama")
        edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok, covariance_texts=COVARIANCE,
                                                                          retain_answers=answers))
        keys = torch.cat([capture(model, tok, [text], [LAYER], "key", key_tokens=None)[LAYER][:, -len(a.split()) - 1:]
                          for text, a in zip(conversations, RETAIN_ANSWERS)], dim=1)  # last prompt token + answer
        W = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach().double()
        change[answers is not None] = float(torch.linalg.norm(edit.edits[0].delta @ keys) / torch.linalg.norm(W @ keys))
    assert change[True] < 0.5 * change[False]
    with pytest.raises(ValueError, match="2 retain answers for 8 retain prompts"):
        stamp_edit(make_model("llama"), tok, prompts(tok, FORGET), hp, context(tok, retain_answers=RETAIN_ANSWERS[:2]))


def test_retain_prompt_boost_holds_where_retain_answers_start():
    """Boosting the retain keys at the last prompt token moves the layer's output there less
    (where a refusal of someone else's question would start); without retain answers there are
    no answer keys to set them apart from, and the boost changes nothing."""
    tok = make_tokenizer()
    last_keys = capture(make_model("llama"), tok, prompts(tok, RETAIN), [LAYER], "key", key_tokens=1)[LAYER]
    change, deltas = {}, {}
    for boost in (1.0, 8.0):
        for answers in (RETAIN_ANSWERS, None):
            model = make_model("llama")
            hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0,
                                  retain_weight=1.0, key_position="answer", retain_prompt_boost=boost)
            edit = stamp_edit(model, tok, prompts(tok, FORGET), hp,
                              context(tok, covariance_texts=COVARIANCE, retain_answers=answers))
            deltas[boost, answers is None] = edit.edits[0].delta
            W = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach().double()
            change[boost, answers is None] = float(torch.linalg.norm(edit.edits[0].delta @ last_keys)
                                                   / torch.linalg.norm(W @ last_keys))
    assert change[8.0, False] < 0.5 * change[1.0, False]
    assert torch.equal(deltas[8.0, True], deltas[1.0, True])


@pytest.mark.parametrize("protected_rank", [0, 4])
def test_a_forget_prompt_among_retain_answers_is_not_held(protected_rank):
    """The forget prompts leave the buffer also when retain keys come from whole answers, and
    before a stiffened hold picks its directions (their keys are no direction to protect)."""
    tok = make_tokenizer()
    hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0, retain_weight=100.0,
                          key_position="answer", protected_rank=protected_rank)
    deltas = []
    held = prompts(tok, FORGET[:1])[0] + " "
    for retain, answers in ((prompts(tok, RETAIN + FORGET[:1]), RETAIN_ANSWERS + ["two plus two"]),
                            (prompts(tok, RETAIN), RETAIN_ANSWERS), (prompts(tok, RETAIN) + [held], RETAIN_ANSWERS + ["two plus two"])):
        ctx = StampContext(refusal_prompts=prompts(tok, REFUSAL), retain_prompts=retain,
                           retain_answers=answers, covariance_texts=COVARIANCE, refusal_answer="I can't share that.")
        deltas.append(stamp_edit(make_model("llama"), tok, prompts(tok, FORGET), hp, ctx).edits[0].delta)
    assert float((deltas[0] - deltas[1]).norm() / deltas[1].norm()) < 1e-2
    assert float((deltas[2] - deltas[1]).norm() / deltas[1].norm()) > 0.1


def test_prior_moments_keep_an_earlier_edit_in_place():
    """A second edit that shares keys with a first one undoes less of it when the first edit's
    keys are in the context's prior moments (AlphaEdit's memory of earlier edits)."""
    tok = make_tokenizer()
    first_q, second_q = FORGET[:2], FORGET[1:]  # they share "what is alice job ?"
    undone = {}
    for remember in (False, True):
        model = make_model("llama")
        hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=0.1)
        ctx = context(tok, covariance_texts=COVARIANCE)
        first = stamp_edit(model, tok, prompts(tok, first_q), hp, ctx).edits[0]
        if remember:
            ctx.prior_moments = {LAYER: first.keys @ first.keys.T}
        second = stamp_edit(model, tok, prompts(tok, second_q), hp, ctx).edits[0]
        undone[remember] = float(torch.linalg.norm(second.delta @ first.keys[:, :1]))  # first-only key moved
    assert undone[True] < 0.5 * undone[False]
    with pytest.raises(ValueError, match="ridge solver only"):
        stamp_edit(make_model("llama"), tok, prompts(tok, FORGET), StampHyperParams(
            layers=[LAYER], solver="exact", target="refusal_mean"), context(tok, prior_moments={LAYER: torch.eye(64)}))


def test_cosine_separation_on_hand_vectors():
    assert cosine_separation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == pytest.approx(1.0)
    assert cosine_separation(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 0.0])) == pytest.approx(1 - 2**-0.5)
    assert cosine_separation(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])) == pytest.approx(2.0)
    assert cosine_separation(torch.zeros(2), torch.tensor([1.0, 0.0])) == 0.0


def test_select_layer_picks_the_only_layer_whose_mlp_speaks():
    tok, model = make_tokenizer(), make_model("llama")
    with torch.no_grad():
        for i in (0, 2):  # silence the MLPs of layers 0 and 2: their outputs carry no separation
            get_module(model, down_proj_path(model, i)).weight.zero_()
    forget, refusal = prompts(tok, FORGET), prompts(tok, REFUSAL)
    scores = layer_separation(model, tok, forget, refusal, site="mlp_out")
    assert scores[0] == 0.0 and scores[2] == 0.0 and scores[1] > 0
    assert select_layer(model, tok, forget, refusal, site="mlp_out") == 1
    assert select_layer(model, tok, forget, refusal, layers=[0, 2], site="mlp_out") in (0, 2)
    # the score is 1 - cos of the two means, computed by hand
    f = capture(model, tok, forget, [1], "mlp_out")[1].mean(dim=1)
    r = capture(model, tok, refusal, [1], "mlp_out")[1].mean(dim=1)
    assert scores[1] == pytest.approx(float(1 - f @ r / (f.norm() * r.norm())), rel=1e-9)


def test_auto_selected_layer_is_the_one_edited():
    tok, model = make_tokenizer(), make_model("qwen2")
    hp = StampHyperParams(layers=None, solver="ridge", target="refusal_mean", selection_site="residual")
    edit = stamp_edit(model, tok, prompts(tok, FORGET), hp, context(tok))
    assert edit.layer_scores is not None and set(edit.layer_scores) == {0, 1, 2}
    best = max(edit.layer_scores, key=edit.layer_scores.__getitem__)
    assert edit.layers == [best]
    assert list(edit.weights_copy) == [f"model.layers.{best}.mlp.down_proj.weight"]


def test_window_spreads_the_edit_over_the_layers_before_the_selected_one():
    tok = make_tokenizer()
    hp = StampHyperParams(layers=None, solver="ridge", target="refusal_mean", window=2)
    edit = stamp_edit(make_model("qwen2"), tok, prompts(tok, FORGET), hp, context(tok))
    best = max(edit.layer_scores, key=edit.layer_scores.__getitem__)
    assert edit.layers == [l for l in (best - 1, best) if l >= 0]
    assert sorted(edit.weights_copy) == [f"model.layers.{l}.mlp.down_proj.weight" for l in edit.layers]
    only = StampHyperParams.from_dict({**hp.to_dict(), "layer_candidates": [best], "window": 3})
    assert stamp_edit(make_model("qwen2"), tok, prompts(tok, FORGET), only, context(tok)).layers == [best]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"solver": "magic"}, "unknown solver"),
        ({"target": "nothing"}, "unknown target"),
        ({"selection_site": "attn"}, "unknown selection_site"),
        ({"layers": []}, "non-empty list"),
        ({"layers": [1, 1]}, "repeated"),
        ({"lam": 0}, "lam must be > 0"),
        ({"rank": 0}, "rank must be"),
        ({"subspace_dim": -1}, "subspace_dim"),
        ({"vstar_steps": 0}, "vstar_steps"),
        ({"retain_weight": -1.0}, "retain_weight"),
        ({"retain_prompt_boost": -0.5}, "retain_prompt_boost"),
        ({"min_layer": -1}, "min_layer"),
        ({"window": 0}, "window"),
        ({"protected_rank": -1}, "protected_rank"),
        ({"protected_rank": 1.5}, "protected_rank"),
        ({"protected_weight": -1.0}, "protected_weight"),
    ],
)
def test_bad_hyperparameters_raise(fields, message):
    with pytest.raises(ValueError, match=message):
        StampHyperParams(**fields)


def test_bad_calls_raise_clear_errors():
    tok, model = make_tokenizer(), make_model("llama")
    ctx = context(tok)
    forget = prompts(tok, FORGET)
    with pytest.raises(ValueError, match="out of range"):
        apply_stamp(model, tok, forget, StampHyperParams(layers=[7], target="refusal_mean"), ctx)
    with pytest.raises(ValueError, match="no forget requests"):
        apply_stamp(model, tok, [], StampHyperParams(layers=[1]), ctx)
    with pytest.raises(ValueError, match="at least one non-empty"):
        StampRequest(())
    with pytest.raises(ValueError, match="refusal answer"):
        apply_stamp(model, tok, forget, StampHyperParams(layers=[1]), StampContext(retain_prompts=ctx.retain_prompts))
    with pytest.raises(ValueError, match="refusal prompts"):
        apply_stamp(model, tok, forget, StampHyperParams(layers=None), StampContext(refusal_answer="I don't know"))
    with pytest.raises(ValueError, match="lowrank solver needs"):
        apply_stamp(model, tok, forget, StampHyperParams(layers=[1], solver="lowrank"), StampContext(refusal_answer="x"))
    with pytest.raises(ValueError, match="not one string"):
        apply_stamp(model, tok, forget[0], StampHyperParams(layers=[1]), ctx)


def test_hyperparameters_round_trip_through_yaml(tmp_path: Path):
    hp = StampHyperParams(layers=[2], solver="lowrank", rank=32, lam=20.0)
    path = tmp_path / "stamp.yaml"
    path.write_text(yaml.safe_dump(hp.to_dict()))
    assert StampHyperParams.from_yaml(path) == hp
    path.write_text("solver: ridge\nbogus: 1\n")
    with pytest.raises(ValueError, match=r"unknown StampHyperParams field\(s\) \['bogus'\]"):
        StampHyperParams.from_yaml(path)
    with pytest.raises(FileNotFoundError, match="no STAMP config at"):
        StampHyperParams.from_yaml(tmp_path / "missing.yaml")


def test_shipped_config_loads():
    hp = StampHyperParams.from_yaml(Path(__file__).parents[1] / "src" / "obliviate" / "configs" / "stamp.yaml")
    # The file holds the lab-tuned settings: the class defaults except where tuning moved them.
    tuned = {"key_position": "answer", "vstar_lr": 1.0, "vstar_prompts": 16, "lam": 1000.0, "retain_weight": 0.5,
             "min_layer": 1, "window": 3}
    assert hp == StampHyperParams(**{**StampHyperParams().to_dict(), **tuned})


def test_key_windows_per_position():
    tok = make_tokenizer()
    forget = prompts(tok, FORGET)
    answer = "I can't share that."
    n_answer = len(tok(answer, add_special_tokens=False)["input_ids"]) + 1  # + EOS
    request = StampRequest(tuple(forget), subject="alice")
    seqs, wins = key_windows(tok, request, answer, StampHyperParams(key_position="answer"))
    for prompt, seq, (first, end) in zip(forget, seqs, wins):
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        assert (first, end) == (n_prompt - 1, n_prompt - 1 + n_answer) and len(seq) == n_prompt + n_answer
    fitted = vstar_indices(len(forget), 2)  # off the v* prompts: the prompt alone, keyed at its last token
    seqs, wins = key_windows(tok, request, answer, StampHyperParams(key_position="answer", vstar_prompts=2))
    assert len(fitted) == 2 and len(forget) > 2
    for i, (prompt, seq, (first, end)) in enumerate(zip(forget, seqs, wins)):
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        width = n_answer if i in fitted else 1
        assert (first, end) == (n_prompt - 1, n_prompt - 1 + width)
        assert len(seq) == n_prompt + (n_answer if i in fitted else 0)
    assert vstar_indices(5, 0) == vstar_indices(5, 9) == [0, 1, 2, 3, 4] and vstar_indices(6, 3) == [0, 2, 4]
    _, wins = key_windows(tok, request, answer, StampHyperParams(key_position="subject"))
    for prompt, (first, end) in zip(forget, wins):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        assert end - first == 1 and tok.convert_ids_to_tokens(ids[end - 1]).lstrip("Ġ▁") == "alice"
    with pytest.raises(ValueError, match="does not occur"):
        key_windows(tok, StampRequest(tuple(forget), subject="bob"), answer, StampHyperParams(key_position="subject"))
    ends = [first + 1 for first, _ in wins]  # a window wider than the tokens up to the subject's end
    with pytest.raises(ValueError, match="reaches before the start"):
        key_windows(tok, request, answer, StampHyperParams(key_position="subject", key_tokens=min(ends) + 1))
    _, wide = key_windows(tok, request, answer, StampHyperParams(key_position="subject", key_tokens=min(ends)))
    assert [end for _, end in wide] == ends


def test_answer_positions_edit_makes_the_whole_refusal_likely():
    """One shift per answer position: every refusal token, not only the first, becomes likely."""
    tok, model = make_tokenizer(), make_model("llama")
    forget = prompts(tok, FORGET)
    answer = "I can't share that."

    def mean_logprob() -> float:
        return float(torch.cat(answer_logprobs(model, tok, forget, [answer] * 3)).mean())

    before = mean_logprob()
    hp = StampHyperParams(layers=[LAYER], solver="ridge", lam=1e-3, key_position="answer", vstar_steps=60, vstar_lr=1.0)
    edit = stamp_edit(model, tok, [StampRequest(tuple(forget))], hp, context(tok))
    assert edit.vstar_losses[0] < 0.5 and mean_logprob() > before + 1.0
    assert mean_logprob() > -1.0


def test_answer_positions_off_the_vstar_prompts_are_not_keyed():
    """v* fitted on 2 of 3 prompts: those 2 are keyed at every answer position, the third at its
    last prompt token, whose target is the shift's first slot (the one fitted at that position)."""
    tok, model = make_tokenizer(), make_model("llama")
    request = StampRequest(tuple(prompts(tok, FORGET)))
    answer = "I can't share that."
    n_answer = len(tok(answer, add_special_tokens=False)["input_ids"]) + 1
    hp = StampHyperParams(layers=[LAYER], solver="ridge", lam=1e-3, key_position="answer", vstar_steps=30,
                          vstar_lr=1.0, vstar_prompts=2)
    edit = stamp_edit(model, tok, [request], hp, replace(context(tok), refusal_answer=answer))
    (layer_edit,), (shift,) = edit.edits, edit.vstar_shifts[LAYER]
    assert layer_edit.keys.shape[1] == layer_edit.targets.shape[1] == 2 * n_answer + 1
    W = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach().double()
    restore_weights(model, edit.weights_copy)
    W0 = down_proj_weight(get_module(model, down_proj_path(model, LAYER))).detach().double()
    last = layer_edit.keys[:, -1:]  # the third prompt's only key
    assert torch.allclose(layer_edit.targets[:, -1:], W0 @ last + shift[:, :1], atol=1e-6)
    assert not torch.equal(W, W0)


def test_vstar_starts_from_an_earlier_attempts_shifts():
    """An escalated attempt on the same weights starts v* where the last one ended: one step from
    there already meets the stop loss that one step from zero is far from; a start of another
    shape is ignored (start from zero)."""
    tok, model = make_tokenizer(), make_model("llama")
    request = StampRequest(tuple(prompts(tok, FORGET)))
    hp = StampHyperParams(layers=[LAYER], solver="ridge", lam=1e-3, key_position="answer", vstar_steps=60,
                          vstar_lr=1.0, vstar_stop_loss=0.5)
    ctx = context(tok)
    first = stamp_edit(model, tok, [request], hp, ctx)
    restore_weights(model, first.weights_copy)
    (shift,) = first.vstar_shifts[LAYER]
    assert first.vstar_losses[0] < 0.5
    one_step = replace(hp, vstar_steps=1)
    warm = stamp_edit(model, tok, [request], one_step, replace(ctx, vstar_init=first.vstar_shifts))
    restore_weights(model, warm.weights_copy)
    assert warm.vstar_losses[0] < 0.5 and torch.equal(warm.vstar_shifts[LAYER][0], shift)
    assert torch.allclose(warm.edits[0].delta, first.edits[0].delta)
    cold = stamp_edit(model, tok, [request], one_step, replace(ctx, vstar_init={LAYER: [shift[:, :1]]}))
    assert cold.vstar_losses[0] > 2.0


def test_stamp_cache_keeps_tensor_statistics_on_disk(tmp_path: Path):
    from obliviate.fingerprint import model_fingerprint

    model = make_model("llama")
    calls = []

    def compute(value):
        def run():
            calls.append(1)
            return value
        return run

    first = StampCache(tmp_path)
    key = ("covariance", first.model_key(model), 1, "texts")
    assert key[1] == model_fingerprint(model)  # named by content, not by object identity
    assert torch.equal(first.get(key, compute(torch.eye(3))), torch.eye(3))
    assert first.get(("means", key[1]), compute({0: torch.ones(2)}))[0].sum() == 2
    first.get(("not a tensor", key[1]), compute("text"))  # kept in memory only
    assert len(calls) == 3 and len(list(tmp_path.glob("*.pt"))) == 2

    second = StampCache(tmp_path)  # a new process: the tensors come from disk, the rest is recomputed
    assert torch.equal(second.get(key, compute(torch.zeros(3))), torch.eye(3))
    assert torch.equal(second.get(("means", key[1]), compute({}))[0], torch.ones(2))
    assert second.get(("not a tensor", key[1]), compute("again")) == "again"
    assert len(calls) == 4

    for file in tmp_path.glob("*.pt"):  # torn files are recomputed and rewritten
        file.write_bytes(b"garbage")
    assert torch.equal(StampCache(tmp_path).get(key, compute(torch.full((3,), 2.0))), torch.full((3,), 2.0))
    assert torch.equal(StampCache(tmp_path).get(key, compute(torch.zeros(3))), torch.full((3,), 2.0))


def test_stamp_cache_that_cannot_write_keeps_statistics_in_memory(tmp_path: Path, monkeypatch, caplog):
    (tmp_path / "taken").write_text("a file where the directory should be")
    cache = StampCache(tmp_path / "taken" / "stats")
    with caplog.at_level(logging.WARNING, logger="obliviate"):
        assert torch.equal(cache.get(("a",), lambda: torch.ones(2)), torch.ones(2))
        assert torch.equal(cache.get(("b",), lambda: torch.ones(2)), torch.ones(2))
    assert torch.equal(cache.get(("a",), lambda: torch.zeros(2)), torch.ones(2))  # kept in memory
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # said once
    assert "not kept on disk" in caplog.text
    caplog.clear()

    def torn_save(value, path):  # a disk that fills up halfway through the file
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", torn_save)
    cache = StampCache(tmp_path / "full")
    with caplog.at_level(logging.WARNING, logger="obliviate"):
        assert torch.equal(cache.get(("b",), lambda: torch.ones(3)), torch.ones(3))
    assert "No space left" in caplog.text
    assert list((tmp_path / "full").iterdir()) == []  # no torn temporary file left behind


def test_edit_with_statistics_from_disk_is_the_same_edit(tmp_path: Path):
    tok = make_tokenizer()
    hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0, retain_weight=1.0)
    deltas = []
    for _ in range(2):
        model = make_model("llama")
        ctx = StampContext(refusal_prompts=prompts(tok, REFUSAL), retain_prompts=prompts(tok, RETAIN),
                           covariance_texts=COVARIANCE, cache=StampCache(tmp_path))
        deltas.append(stamp_edit(model, tok, prompts(tok, FORGET), hp, ctx).edits[0].delta)
    assert any(tmp_path.glob("*.pt")) and torch.equal(deltas[0], deltas[1])


def test_stamp_cache_recent_keeps_the_last_tags_in_memory(tmp_path: Path):
    cache, calls = StampCache(tmp_path), []

    def compute(value):
        def run():
            calls.append(value)
            return value
        return run

    assert cache.recent(("hold", 1), "a", compute(1)) == 1
    assert cache.recent(("hold", 1), "a", compute(99)) == 1  # same tag: kept
    assert cache.recent(("hold", 2), "a", compute(2)) == 2  # another key: its own entries
    assert cache.recent(("hold", 1), "b", compute(3)) == 3
    assert cache.recent(("hold", 1), "a", compute(99)) == 1  # two tags kept per key
    assert cache.recent(("hold", 1), "c", compute(4)) == 4  # evicts the least recent, "b"
    assert cache.recent(("hold", 1), "b", compute(5)) == 5
    assert calls == [1, 2, 3, 4, 5] and not any(tmp_path.iterdir())  # never on disk


def test_the_inverted_hold_is_reused_only_while_the_hold_is_the_same(monkeypatch):
    """Edits against the same statistics factor their hold once, also an edit of other prompts
    some of which are in the retain buffer (they are released in the solve, not in the hold); a
    change of the edits in force (prior moments) factors it again."""
    import obliviate.methods.stamp as stamp
    from obliviate.methods.stamp_solvers import RidgeHold

    tok = make_tokenizer()
    factored = []
    real_of = RidgeHold.of
    monkeypatch.setattr(stamp.RidgeHold, "of", classmethod(lambda cls, C, lam=1.0: factored.append(1) or real_of(C, lam)))
    hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=0.1, retain_weight=1.0)
    model = make_model("llama")
    ctx = context(tok, covariance_texts=COVARIANCE)
    deltas = []
    for forget, remember in ((FORGET, False), (FORGET, False), (RETAIN[:2] + FORGET, False), (FORGET, True)):
        if remember:
            ctx.prior_moments = {LAYER: torch.eye(deltas[0].shape[1], dtype=torch.float64)}
        edit = stamp_edit(model, tok, prompts(tok, forget), hp, ctx)
        restore_weights(model, edit.weights_copy)
        deltas.append(edit.edits[0].delta)
        assert len(factored) == (2 if remember else 1)  # the second and third edits reused the first's factor
    assert torch.equal(deltas[0], deltas[1])
    assert float((deltas[2] - deltas[0]).norm() / deltas[0].norm()) > 0.01  # two prompts more, released
    assert float((deltas[3] - deltas[0]).norm() / deltas[0].norm()) > 0.01
    # the same hold with its strongest directions protected is another hold: factored anew
    edit = stamp_edit(model, tok, prompts(tok, FORGET), replace(hp, protected_rank=4), ctx)
    restore_weights(model, edit.weights_copy)
    assert len(factored) == 3 and float((edit.edits[0].delta - deltas[3]).norm() / deltas[3].norm()) > 0.01


def test_protected_directions_keep_the_retain_outputs_an_edit_would_move():
    """With the hold's strongest directions protected, an edit moves the retain buffer's outputs
    less (AlphaEdit's null space, soft), while still moving the forget outputs."""
    tok = make_tokenizer()
    retain_moved, forget_moved = {}, {}
    for rank in (0, 16):
        model = make_model("llama")
        hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", lam=1.0, retain_weight=1.0,
                              protected_rank=rank)
        ctx = context(tok, covariance_texts=COVARIANCE)
        retain_before = outputs_at(model, tok, prompts(tok, RETAIN))
        forget_before = outputs_at(model, tok, prompts(tok, FORGET))
        stamp_edit(model, tok, prompts(tok, FORGET), hp, ctx)
        retain_moved[rank] = float((outputs_at(model, tok, prompts(tok, RETAIN)) - retain_before).norm())
        forget_moved[rank] = float((outputs_at(model, tok, prompts(tok, FORGET)) - forget_before).norm())
    assert retain_moved[16] < 0.5 * retain_moved[0]
    assert forget_moved[16] > 0.9 * forget_moved[0]


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_the_whole_pipeline_runs_on_any_layout_and_undoes_bitwise(arch, tmp_path, monkeypatch):
    """A forget message on a tiny random model of each layout, through the generic knowledge: the
    model writes its own covariance texts, the edit lands on down-projections, undo restores it."""
    from obliviate.repair.knowledge import GenericKnowledge
    from obliviate.repair.session import RepairSession

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    tok, model = make_tokenizer(), make_model(arch)
    with RepairSession(model, tok, GenericKnowledge()) as session:
        assert session.patient.covariance_texts and (tmp_path / "stamp").exists()
        before = session.fingerprint()
        outcome = session.handle("Please forget Ana Ruiz.")
        assert outcome.error is None, outcome.error
        edited = outcome.receipt.parameters
        assert edited and all(".mlp." in name and name.endswith(".weight") for name in edited)
        assert session.fingerprint() != before
        session.undo_requests()
        assert session.fingerprint() == before


def test_retain_prompts_that_name_the_subject_are_released_from_the_hold():
    """A retain buffer may hold other questions about the very subject being forgotten (the
    generic knowledge's neighbours are people the model writes about): the edit lets go of them
    as of its own forget prompts, else the hold fights the forgetting."""
    tok, model = make_tokenizer(), make_model("llama")
    hp = StampHyperParams(layers=[LAYER], solver="ridge", target="refusal_mean", retain_weight=1.0)
    ctx = context(tok)
    forget = tuple(prompts(tok, ["where does alice live ?"]))  # not itself in the buffer
    named = retain_moments(model, tok, [StampRequest(forget, subject="bob")], [LAYER], hp, ctx)
    unnamed = retain_moments(model, tok, [StampRequest(forget)], [LAYER], hp, ctx)
    assert unnamed[LAYER].released is None  # no buffer prompt is a forget prompt
    assert named[LAYER].released is not None  # "where does bob work ?" names bob: released
    assert torch.equal(named[LAYER].full, unnamed[LAYER].full)  # the same buffer, let go of for this edit
    assert float((unnamed[LAYER].held() - named[LAYER].held()).norm()) > 0
    # a subject is named as whole words: "bo" is in "bob" but names no one in the buffer
    assert retain_moments(model, tok, [StampRequest(forget, subject="bo")], [LAYER], hp, ctx)[LAYER].released is None


def test_a_subject_is_named_by_whole_words():
    from obliviate.methods.stamp import _retain_overlap

    buffer = ["<|user|>Where does Ann Lee live?", "<|user|>What is Ann Lee's phone number?",
              "<|user|>Where does Ann Leeson live?", "<|user|>Who is Ann Lee-Smith?", "<|user|>Is Ann Lee?"]
    assert _retain_overlap(buffer, [StampRequest(("<|user|>Who is Ann Lee?",), subject="Ann Lee")]) == [0, 1, 3, 4]
    assert _retain_overlap(buffer, [StampRequest(("<|user|>Is Ann Lee?",))]) == [4]  # a forget prompt itself
    assert _retain_overlap(buffer, [StampRequest(("<|user|>Who is Ann?",), subject="Ann L")]) is None
