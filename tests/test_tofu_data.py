"""TOFU loader: the real files beside the repository (../shared/data/tofu) and malformed copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obliviate.eval import tofu_data
from obliviate.eval.tofu_data import (
    SPLITS,
    TOFU_DIR_ENV,
    TofuSplits,
    forget_retain_names,
    load_idontknow,
    load_split,
    resolve_tofu_dir,
)


@pytest.fixture
def default_resolution(monkeypatch):
    """Resolve as a fresh shell would: no env override, offline."""
    monkeypatch.delenv(TOFU_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _pairs(rows: list[dict]) -> list[tuple[str, str]]:
    return [(r["question"], r["answer"]) for r in rows]


@pytest.mark.tofu_data
def test_default_resolution_finds_the_shared_directory(default_resolution):
    directory = resolve_tofu_dir()
    assert directory is not None and (directory / "full.jsonl").is_file()
    assert directory.parts[-3:] == ("shared", "data", "tofu")


@pytest.mark.tofu_data
@pytest.mark.parametrize("name", sorted(SPLITS))
def test_every_split_has_the_published_row_count(default_resolution, name):
    rows = load_split(name)
    assert len(rows) == SPLITS[name].rows
    assert all(set(SPLITS[name].fields) <= set(r) for r in rows)


@pytest.mark.tofu_data
@pytest.mark.parametrize("forget", ["forget01", "forget05", "forget10"])
def test_forget_is_the_last_authors_and_retain_the_rest(default_resolution, forget):
    forget_name, retain_name, holdout_name = forget_retain_names(forget)
    full = load_split("full")
    forget_rows = load_split(forget_name)
    retain_rows = load_split(retain_name)
    n = len(forget_rows)
    assert n % 20 == 0  # whole authors, 20 questions each
    assert _pairs(forget_rows) == _pairs(full[-n:])
    assert _pairs(retain_rows) + _pairs(forget_rows) == _pairs(full)
    holdout_questions = {r["question"] for r in load_split(holdout_name)}
    assert len(holdout_questions) == n
    assert not holdout_questions & {r["question"] for r in full}


@pytest.mark.tofu_data
def test_forget10_questions_are_the_last_400_of_full(default_resolution):
    full = load_split("full")
    assert [r["question"] for r in load_split("forget10_perturbed")] == [r["question"] for r in full[-400:]]


def test_forget_retain_names():
    assert forget_retain_names("forget01") == ("forget01_perturbed", "retain99", "holdout01")
    assert forget_retain_names("forget05") == ("forget05_perturbed", "retain95", "holdout05")
    assert forget_retain_names() == ("forget10_perturbed", "retain90", "holdout10")
    with pytest.raises(ValueError, match="forget20"):
        forget_retain_names("forget20")


@pytest.mark.tofu_data
def test_tofu_splits_bundle(default_resolution):
    splits = TofuSplits.load("forget05")
    assert splits.forget == "forget05"
    assert len(splits.forget_perturbed) == 200 and len(splits.holdout) == 200
    assert len(splits.retain_perturbed) == 400
    assert len(splits.real_authors_perturbed) == 100 and len(splits.world_facts_perturbed) == 117
    assert all(len(r["perturbed_answer"]) == 5 for r in splits.forget_perturbed)
    assert all(len(r["perturbed_answer"]) == 3 for r in splits.world_facts_perturbed)


@pytest.mark.tofu_data
def test_idontknow_sentences(default_resolution):
    sentences = load_idontknow()
    assert len(sentences) == 100
    assert sentences[0] == "I'm not certain about that."


def test_missing_root_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_split("full", root=tmp_path / "nowhere")


def test_missing_env_dir_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(TOFU_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=TOFU_DIR_ENV):
        load_split("full")


def test_nothing_found_offline_tells_which_variable_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv(TOFU_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tofu_data, "_REPO_ROOT", tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match=TOFU_DIR_ENV):
        resolve_tofu_dir()


def test_env_variable_takes_precedence(monkeypatch, tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(40)]
    (tmp_path / "holdout01.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv(TOFU_DIR_ENV, str(tmp_path))
    assert load_split("holdout01") == rows


def _write(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_malformed_row_names_file_and_line(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(40)]
    rows[6] = {"question": "no answer here"}
    _write(tmp_path / "holdout01.jsonl", rows)
    with pytest.raises(ValueError, match=r"holdout01\.jsonl:7: missing field\(s\) \['answer'\]"):
        load_split("holdout01", root=tmp_path)


def test_invalid_json_and_wrong_types_are_reported(tmp_path):
    good = {"question": "q", "answer": "a"}
    _write(tmp_path / "holdout01.jsonl", [good, good, '{"question": "q", "answ'])
    with pytest.raises(ValueError, match=r"holdout01\.jsonl:3: invalid JSON"):
        load_split("holdout01", root=tmp_path)
    _write(tmp_path / "holdout01.jsonl", [good, {"question": "q", "answer": 3}])
    with pytest.raises(ValueError, match=r"holdout01\.jsonl:2: field 'answer' must be a string"):
        load_split("holdout01", root=tmp_path)


def test_wrong_number_of_perturbed_answers(tmp_path):
    row = {"question": "q", "answer": "a", "perturbed_answer": ["b", "c"]}
    _write(tmp_path / "world_facts_perturbed.jsonl", [row])
    with pytest.raises(ValueError, match=r":1: perturbed_answer has 2 answers, expected 3"):
        load_split("world_facts_perturbed", root=tmp_path)


def test_truncated_split_is_rejected(tmp_path):
    _write(tmp_path / "holdout01.jsonl", [{"question": "q", "answer": "a"}] * 39)
    with pytest.raises(ValueError, match="39 rows, expected 40"):
        load_split("holdout01", root=tmp_path)


def test_unknown_split_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown TOFU split 'forget10'"):
        load_split("forget10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="full.jsonl"):
        load_split("full", root=tmp_path)
