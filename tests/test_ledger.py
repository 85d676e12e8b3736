"""Edit ledger: bitwise undo and replay, refusal on a foreign state, crash recovery, atomic saves."""

from __future__ import annotations

import json

import pytest
import torch
from metrics_models import tiny_llama, tiny_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

from obliviate.repair.ledger import (
    LEDGER_DIRNAME,
    LEDGER_FILE,
    EditLedger,
    model_fingerprint,
    save_model_atomically,
    tensor_sha256,
)

DOWN0 = "model.layers.0.mlp.down_proj.weight"
DOWN1 = "model.layers.1.mlp.down_proj.weight"


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_bitwise_equal(model, reference: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        assert tensor_sha256(p) == tensor_sha256(reference[name]), name


def make_edit(model, names: list[str], seed: int) -> dict[str, torch.Tensor]:
    """Add a random rank-1 update to each named weight, return the weights before (STAMP-style)."""
    generator = torch.Generator().manual_seed(seed)
    before = {}
    with torch.no_grad():
        for name in names:
            weight = model.get_parameter(name)
            before[name] = weight.detach().clone()
            u = torch.randn(weight.shape[0], 1, generator=generator)
            v = torch.randn(1, weight.shape[1], generator=generator)
            weight.add_((u @ v).to(weight.dtype))
    return before


@pytest.fixture
def edited(tmp_path):
    """Base model, two recorded edits (the second touches a weight the first also touched)."""
    model = tiny_llama()
    base = snapshot(model)
    ledger = EditLedger.open(tmp_path / "ledger", base_fingerprint=model_fingerprint(model))
    ledger.record(model, make_edit(model, [DOWN0], seed=1), "forget Ada", {"refusal_rate": 1.0})
    after_first = snapshot(model)
    ledger.record(model, make_edit(model, [DOWN0, DOWN1], seed=2), "forget Bob", {"probes": ["who is Bob?"]})
    return model, ledger, base, after_first


def test_record_lists_edits_with_hashes(edited):
    model, ledger, base, after_first = edited
    records = ledger.entries()
    assert [r.edit_id for r in records] == [1, 2]
    assert [r.description for r in records] == ["forget Ada", "forget Bob"]
    assert records[0].receipt == {"refusal_rate": 1.0}
    assert records[1].param_names == [DOWN0, DOWN1]
    first, second = records[0].params[0], records[1].params[0]
    assert first.sha256_before == tensor_sha256(base[DOWN0])
    assert first.sha256_after == second.sha256_before == tensor_sha256(after_first[DOWN0])
    assert first.shape == (32, 64) and first.dtype == "float32"
    assert records[0].base_fingerprint == records[1].base_fingerprint
    lines = [json.loads(line) for line in (ledger.path / LEDGER_FILE).read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["edit", "edit"]
    ledger.verify(model)


def test_undo_one_then_all_is_bitwise(edited):
    model, ledger, base, after_first = edited
    undone = ledger.undo(model)
    assert [r.edit_id for r in undone] == [2]
    assert_bitwise_equal(model, after_first)
    assert [r.edit_id for r in ledger.entries()] == [1]
    ledger.undo(model)
    assert_bitwise_equal(model, base)
    assert ledger.entries() == []
    history = ledger.entries(active_only=False)
    assert [(r.edit_id, r.undone_by) for r in history] == [(1, 4), (2, 3)]
    kinds = [json.loads(line)["kind"] for line in (ledger.path / LEDGER_FILE).read_text().splitlines()]
    assert kinds == ["edit", "edit", "undo", "undo"]  # history is appended, never rewritten
    ledger.verify(model)


def test_undo_n_at_once_and_reopen(edited):
    model, ledger, base, _ = edited
    assert [r.edit_id for r in ledger.undo(model, n=2)] == [2, 1]
    assert_bitwise_equal(model, base)
    reopened = EditLedger.open(ledger.path)
    assert reopened.entries() == [] and len(reopened.entries(active_only=False)) == 2
    with pytest.raises(ValueError, match="cannot undo 1 edit"):
        reopened.undo(model)


def test_base_weights_for_a_block_then_back_bitwise(edited):
    model, ledger, base, _ = edited
    after_both = snapshot(model)
    with ledger.base_weights(model):
        assert_bitwise_equal(model, base)  # the oldest edit's `before` wins where both edits touched
    assert_bitwise_equal(model, after_both)
    with pytest.raises(RuntimeError, match="inside"), ledger.base_weights(model):
        raise RuntimeError("inside")
    assert_bitwise_equal(model, after_both)  # back on an error too
    ledger.undo(model, 2)
    with ledger.base_weights(model):  # nothing in force: nothing to take off
        assert_bitwise_equal(model, base)


def test_replay_on_fresh_base_is_bitwise(edited):
    model, ledger, _, _ = edited
    fresh = tiny_llama()
    assert EditLedger.open(ledger.path).replay(fresh) == 2
    assert_bitwise_equal(fresh, snapshot(model))


def test_replay_skips_undone_edits_and_continues_the_chain(edited):
    model, ledger, _, after_first = edited
    ledger.undo(model)
    ledger.record(model, make_edit(model, [DOWN1], seed=3), "forget Cy", {})
    fresh = tiny_llama()
    assert ledger.replay(fresh) == 2
    assert_bitwise_equal(fresh, snapshot(model))
    assert tensor_sha256(fresh.get_parameter(DOWN0)) == tensor_sha256(after_first[DOWN0])


def test_undo_refuses_when_model_changed_behind_its_back(edited):
    model, ledger, _, _ = edited
    with torch.no_grad():
        model.get_parameter(DOWN1)[0, 0] += 1.0
    changed = snapshot(model)
    lines_before = (ledger.path / LEDGER_FILE).read_text()
    with pytest.raises(ValueError, match="not in the state the ledger thinks"):
        ledger.undo(model)
    assert_bitwise_equal(model, changed)
    assert (ledger.path / LEDGER_FILE).read_text() == lines_before
    with pytest.raises(ValueError, match=DOWN1):
        ledger.verify(model)


def test_undo_of_two_checks_the_older_edit_before_touching_anything(tmp_path):
    model = tiny_llama()
    ledger = EditLedger.open(tmp_path / "ledger")
    ledger.record(model, make_edit(model, [DOWN1], seed=1), "first", {})
    ledger.record(model, make_edit(model, [DOWN0], seed=2), "second", {})
    with torch.no_grad():  # corrupt the weight only the first edit touched
        model.get_parameter(DOWN1).view(-1)[5] = 0.0
    changed = snapshot(model)
    with pytest.raises(ValueError, match="cannot undo edit 1"):
        ledger.undo(model, n=2)
    assert_bitwise_equal(model, changed)  # the second edit was not undone either
    assert [r.edit_id for r in ledger.entries()] == [1, 2]


def test_replay_refuses_a_different_base(edited):
    _, ledger, _, _ = edited
    other = tiny_llama(seed=7)
    untouched = snapshot(other)
    with pytest.raises(ValueError, match="not the base model"):
        ledger.replay(other)
    assert_bitwise_equal(other, untouched)


def test_replay_refuses_an_already_edited_model(edited):
    model, ledger, _, _ = edited
    with pytest.raises(ValueError, match="not the base model"):
        ledger.replay(model)


def test_open_with_another_base_fingerprint_is_refused(edited):
    _, ledger, _, _ = edited
    with pytest.raises(ValueError, match="was recorded on base model"):
        EditLedger.open(ledger.path, base_fingerprint=model_fingerprint(tiny_llama(seed=7)))


def test_record_rejects_bad_input_and_writes_nothing(tmp_path):
    model = tiny_llama()
    ledger = EditLedger.open(tmp_path / "ledger")
    before = make_edit(model, [DOWN0], seed=1)
    with pytest.raises(ValueError, match="JSON-serialisable"):
        ledger.record(model, before, "x", {"tensor": torch.zeros(1)})
    with pytest.raises(ValueError, match="no parameter"):
        ledger.record(model, {"model.nope.weight": before[DOWN0]}, "x", {})
    with pytest.raises(ValueError, match="float32"):
        ledger.record(model, {DOWN0: before[DOWN0].double()}, "x", {})
    with pytest.raises(ValueError, match="empty"):
        ledger.record(model, {}, "x", {})
    assert sorted(p.name for p in ledger.path.iterdir()) == []


def test_record_rejects_a_before_that_breaks_the_chain(edited):
    model, ledger, _, _ = edited
    stale = make_edit(model, [DOWN0], seed=3)
    stale[DOWN0] = stale[DOWN0] + 1.0
    with pytest.raises(ValueError, match="not the state the ledger recorded"):
        ledger.record(model, stale, "x", {})


def test_first_record_checks_the_announced_base(tmp_path):
    model = tiny_llama()
    ledger = EditLedger.open(tmp_path / "ledger", base_fingerprint=model_fingerprint(tiny_llama(seed=7)))
    with pytest.raises(ValueError, match="not the base the ledger expects"):
        ledger.record(model, make_edit(model, [DOWN0], seed=1), "x", {})


def test_fingerprint_sees_every_bit_and_overrides():
    model = tiny_llama()
    base = model_fingerprint(model)
    assert model_fingerprint(tiny_llama()) == base
    before = make_edit(model, [DOWN0], seed=1)
    assert model_fingerprint(model) != base
    assert model_fingerprint(model, overrides=before) == base
    with torch.no_grad():
        model.get_parameter(DOWN0).copy_(before[DOWN0])
        model.get_parameter(DOWN0).view(torch.int32).view(-1)[0] ^= 1  # flip the lowest bit
    assert model_fingerprint(model) != base


def test_fingerprint_override_through_a_tied_alias():
    config = LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    base = model_fingerprint(model)
    before = make_edit(model, ["lm_head.weight"], seed=1)  # also changes model.embed_tokens.weight
    assert model_fingerprint(model) != base
    assert model_fingerprint(model, overrides=before) == base


def test_bfloat16_undo_and_replay_are_bitwise(tmp_path):
    model = tiny_llama(dtype=torch.bfloat16)
    base = snapshot(model)
    ledger = EditLedger.open(tmp_path / "ledger")
    ledger.record(model, make_edit(model, [DOWN1], seed=1), "bf16", {})
    edited_state = snapshot(model)
    fresh = tiny_llama(dtype=torch.bfloat16)
    assert ledger.replay(fresh) == 1
    assert_bitwise_equal(fresh, edited_state)
    ledger.undo(model)
    assert_bitwise_equal(model, base)


def test_crash_between_tensor_write_and_line_append(edited, monkeypatch):
    model, ledger, _, after_first = edited
    edited_state = snapshot(model)

    def crash(self, line):
        raise OSError("simulated crash")

    with monkeypatch.context() as patch:
        patch.setattr(EditLedger, "_append_line", crash)
        with pytest.raises(OSError, match="simulated crash"):
            ledger.record(model, make_edit(model, [DOWN1], seed=9), "lost", {})
    assert (ledger.path / "edit-000003.safetensors").exists()  # the orphan the crash left
    with pytest.warns(UserWarning, match="edit-000003.safetensors"):
        reopened = EditLedger.open(ledger.path)
    assert not (ledger.path / "edit-000003.safetensors").exists()
    assert [r.edit_id for r in reopened.entries()] == [1, 2]
    fresh = tiny_llama()
    reopened.replay(fresh)
    assert_bitwise_equal(fresh, edited_state)  # the lost edit is not part of the history
    reopened.record(fresh, make_edit(fresh, [DOWN1], seed=9), "retried", {})
    assert [r.edit_id for r in EditLedger.open(ledger.path).entries()] == [1, 2, 3]


@pytest.mark.parametrize("cut", ["mid_line", "missing_newline", "garbage_line"])
def test_truncated_last_line_is_dropped(edited, cut):
    model, ledger, _, after_first = edited
    file = ledger.path / LEDGER_FILE
    data = file.read_bytes()
    second_line_start = data.index(b"\n") + 1
    if cut == "mid_line":
        file.write_bytes(data[: second_line_start + 40])
    elif cut == "missing_newline":
        file.write_bytes(data[:-1])
    else:
        file.write_bytes(data[:second_line_start] + b"\x00\x00\x00\n")
    with pytest.warns(UserWarning) as caught:
        reopened = EditLedger.open(ledger.path)
    messages = [str(w.message) for w in caught]
    assert "last ledger line" in messages[0] and "removing edit-000002.safetensors" in messages[1]
    assert file.read_bytes() == data[:second_line_start]
    assert not (ledger.path / "edit-000002.safetensors").exists()  # its tensors became an orphan
    assert [r.edit_id for r in reopened.entries()] == [1]
    fresh = tiny_llama()
    reopened.replay(fresh)
    assert_bitwise_equal(fresh, after_first)
    reopened.record(fresh, make_edit(fresh, [DOWN1], seed=4), "after recovery", {})
    assert [r.description for r in EditLedger.open(ledger.path).entries()] == ["forget Ada", "after recovery"]


def test_corrupt_middle_line_is_an_error(edited):
    _, ledger, _, _ = edited
    file = ledger.path / LEDGER_FILE
    file.write_bytes(b"{broken\n" + file.read_bytes())
    with pytest.raises(ValueError, match="corrupt ledger line"):
        EditLedger.open(ledger.path)


def test_save_model_atomically_carries_the_ledger(edited, tmp_path):
    model, ledger, _, _ = edited
    out = save_model_atomically(model, tiny_tokenizer(), tmp_path / "saved", ledger)
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    loaded = LlamaForCausalLM.from_pretrained(out)
    assert_bitwise_equal(loaded, snapshot(model))
    carried = EditLedger.open(out / LEDGER_DIRNAME)
    assert [r.edit_id for r in carried.entries()] == [1, 2]
    carried.verify(loaded)
    carried.undo(loaded, n=2)
    assert_bitwise_equal(loaded, snapshot(tiny_llama()))


def test_save_model_atomically_replaces_only_when_complete(edited, tmp_path, monkeypatch):
    model, ledger, _, after_first = edited
    target = tmp_path / "saved"
    save_model_atomically(model, None, target, ledger)
    saved_files = sorted(p.name for p in target.iterdir())
    ledger.undo(model)

    def crash(self, destination):
        raise OSError("disk full")

    monkeypatch.setattr(EditLedger, "copy_to", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model_atomically(model, None, target, ledger)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger", "saved"]  # no temp directory left
    assert sorted(p.name for p in target.iterdir()) == saved_files
    assert [r.edit_id for r in EditLedger.open(target / LEDGER_DIRNAME).entries()] == [1, 2]
    with pytest.raises(OSError, match="disk full"):
        save_model_atomically(model, None, tmp_path / "new", ledger)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    save_model_atomically(model, None, target, ledger)
    assert_bitwise_equal(LlamaForCausalLM.from_pretrained(target), after_first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger", "saved"]


def test_save_model_atomically_refuses_foreign_targets_and_inconsistent_models(edited, tmp_path):
    model, ledger, _, _ = edited
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="not a saved model directory"):
        save_model_atomically(model, None, foreign)
    assert (foreign / "notes.txt").read_text() == "precious"
    with torch.no_grad():
        model.get_parameter(DOWN1)[0, 0] += 1.0
    with pytest.raises(ValueError, match="not in the state"):
        save_model_atomically(model, None, tmp_path / "saved", ledger)
    assert not (tmp_path / "saved").exists()


def test_extra_json_and_tensors_are_kept_with_the_edit_and_checked(tmp_path):
    model = tiny_llama()
    ledger = EditLedger.open(tmp_path / "ledger")
    keys = torch.randn(8, 5)
    with pytest.raises(ValueError, match="extra is not JSON-serialisable"):
        ledger.record(model, make_edit(model, [DOWN0], seed=1), "x", {}, extra={"keys": keys})
    assert sorted(p.name for p in ledger.path.iterdir()) == []  # nothing written
    ledger.record(model, {DOWN0: model.get_parameter(DOWN0).detach().clone() - 1}, "forget Ada", {},
                  extra={"about": ["Ada"]}, extra_tensors={"keys/0": keys})
    [record] = EditLedger.open(ledger.path).entries()
    assert record.extra == {"about": ["Ada"]}
    assert torch.equal(ledger.extra_tensors(record)["keys/0"], keys)
    line = json.loads((ledger.path / LEDGER_FILE).read_text())
    assert line["extra_tensors"] == {"keys/0": tensor_sha256(keys)}
    line["extra_tensors"]["keys/0"] = "0" * 64  # a file that no longer holds what was recorded
    (ledger.path / LEDGER_FILE).write_text(json.dumps(line) + "\n")
    reopened = EditLedger.open(ledger.path)
    with pytest.raises(ValueError, match="corrupt"):
        reopened.extra_tensors(reopened.entries()[0])


def test_take_history_continues_another_ledger_and_leaves_it_as_it_was(edited, tmp_path):
    model, ledger, base, _ = edited
    files = {p.name: p.read_bytes() for p in ledger.path.iterdir()}
    (ledger.path / "edit-000099.safetensors").write_bytes(b"an orphan a crash left")  # repaired in the copy only
    files["edit-000099.safetensors"] = b"an orphan a crash left"
    with (ledger.path / LEDGER_FILE).open("ab") as torn:  # and a line a crash cut short
        torn.write(b'{"id": 3, "kind": "ed')
    files[LEDGER_FILE] = (ledger.path / LEDGER_FILE).read_bytes()
    go_on = EditLedger.open(tmp_path / "continued")
    with pytest.warns(UserWarning, match="truncated"):
        go_on.take_history(ledger.path)
    assert {p.name: p.read_bytes() for p in ledger.path.iterdir()} == files  # the source untouched
    assert not (go_on.path / "edit-000099.safetensors").exists()
    assert [r.edit_id for r in go_on.entries()] == [1, 2]
    go_on.verify(model)
    go_on.record(model, make_edit(model, [DOWN1], seed=3), "forget Cy", {})
    assert go_on.base_fingerprint == ledger.base_fingerprint  # one lineage: it still replays on the base
    fresh = tiny_llama()
    assert go_on.replay(fresh) == 3
    assert_bitwise_equal(fresh, snapshot(model))
    go_on.undo(model, n=3)
    assert_bitwise_equal(model, base)
    with pytest.raises(ValueError, match="already holds edits"):
        go_on.take_history(ledger.path)
    with pytest.raises(ValueError, match="holds no edit ledger"):
        EditLedger.open(tmp_path / "empty").take_history(tmp_path / "nowhere")
