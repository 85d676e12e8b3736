"""One command: `obliviate bench` writes every file and resumes; `obliviate eval`; the TOFU pipeline.

Runs on a random tiny lab-architecture model (see `tiny_lab`): the numbers are meaningless, the
files, keys, resumption and reuse are what is checked.
"""

from __future__ import annotations

import json

import pytest
import torch

from obliviate.cli import main as cli_main
from obliviate.eval import bench as bench_module
from obliviate.eval import tofu_pipeline
from obliviate.eval.bench import BenchConfig, run_bench, slug
from obliviate.eval.metrics.tofu import UTILITY_COMPONENTS
from obliviate.eval.tofu_pipeline import TofuPipelineConfig, load_tofu_data, run_tofu_pipeline
from tiny_lab import tiny_lab_model

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return tiny_lab_model(tmp_path_factory.mktemp("tiny") / "model")


def test_bench_writes_every_file_and_resumes(tiny_model_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench"
    lines: list[str] = []
    config = BenchConfig(methods=["ga", "stamp"], scenarios=["person"], attacks=["paraphrase"],
                         model=str(tiny_model_dir), max_steps=2, retain_size=6, heldout_size=3,
                         eval={"max_new_tokens": 4})
    summary = run_bench(config, out, log=lines.append)
    assert [(c["method"], c["scenario"]) for c in summary["cells"]] == [("ga", "person"), ("stamp", "person")]
    subject = summary["cells"][0]["subject"]
    for method in ("ga", "stamp"):
        cell = out / "cells" / method / "person" / slug(subject)
        result = json.loads((cell / "eval.json").read_text())
        assert {"forget_accuracy", "retain_accuracy", "attack/paraphrase", "perplexity"} <= set(result["metrics"])
        assert set(result["metrics"]["forget_accuracy"]) == {"agg_value", "value_by_index"}
        assert json.loads((cell / "summary.json").read_text())["summary"] == result["summary"]
    assert summary["cells"][0]["unlearn"]["config"]["max_steps"] == 2  # the lab settings, capped
    assert "message" in summary["cells"][1]["unlearn"]  # STAMP got a forget command
    table = (out / "results.md").read_text()
    assert "| ga | person | 1 |" in table and "| stamp | person | 1 |" in table and "paraphrase leak" in table
    for plot in ("tradeoff.png", "attacks.png"):
        assert (out / plot).read_bytes().startswith(PNG)
    assert any("[1/2] ga x person" in line for line in lines)

    # A second run (through the CLI) redoes nothing: every cell is finished.
    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(bench_module, "apply_method", must_not_run)
    capsys.readouterr()  # drop the first run's training logs
    before = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}
    code = cli_main(["bench", "--methods", "ga,stamp", "--scenarios", "person", "--attacks", "paraphrase",
                     "--model", str(tiny_model_dir), "--max-steps", "2", "--retain-size", "6", "--out", str(out),
                     "--max-new-tokens", "4", "--json"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err.count("already done, skipped") == 2
    assert json.loads(captured.out)["cells"] == summary["cells"]
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")} == before


def test_stamp_cells_share_one_session_and_restore_the_base_model(tiny_model_dir, tmp_path, monkeypatch):
    seen = []

    def fake_stamp(method, model, tokenizer, scenario, config, overrides, max_steps, session):
        weight = model.model.layers[0].mlp.down_proj.weight
        seen.append((session, weight.detach().clone()))
        before = {"model.layers.0.mlp.down_proj.weight": weight.detach().clone()}
        with torch.no_grad():
            weight.add_(1.0)
        session.ledger.record(model, before, f"forget {scenario.subject}", {})
        return model, {"method": method, "seconds": 0.0}

    monkeypatch.setattr(bench_module, "apply_method", fake_stamp)
    config = BenchConfig(methods=["stamp"], scenarios=["person", "hazard"], model=str(tiny_model_dir),
                         retain_size=3, heldout_size=2, eval={"max_new_tokens": 2})
    summary = run_bench(config, tmp_path, log=lambda line: None)
    assert len(summary["cells"]) == 2 and len(seen) == 2
    assert seen[0][0] is seen[1][0]  # one RePAIR session (and its statistics) for every lab cell
    assert torch.equal(seen[0][1], seen[1][1])  # the first edit was undone before the second cell
    assert len(seen[0][0].ledger.entries()) == 0


def test_bench_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        run_bench(BenchConfig(methods=["forgetful"], scenarios=["person"]), tmp_path)
    with pytest.raises(ValueError, match="unknown scenario"):
        run_bench(BenchConfig(methods=["ga"], scenarios=["weather"]), tmp_path)
    with pytest.raises(ValueError, match="unknown attack"):
        run_bench(BenchConfig(methods=["ga"], scenarios=["person"], attacks=["telepathy"]), tmp_path)


def test_eval_command_prints_json(tiny_model_dir, capsys):
    code = cli_main(["eval", "--model", str(tiny_model_dir), "--scenario", "hazard", "--attacks", "zerothink",
                     "--retain-size", "4", "--max-new-tokens", "3", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["scenario"]["name"] == "hazard" and "attack/zerothink" in result["summary"]


TINY_TOFU = {
    "base": "scratch", "retain_authors": 1, "forget_authors": 1, "facts_rows": 2, "max_steps": 1,
    "scratch": {"vocab_size": 300, "hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "num_heads": 2},
    "finetune": {"max_steps": 2, "batch_size": 4, "bf16": False}, "eval": {"max_new_tokens": 3},
}


@pytest.mark.tofu_data
def test_tofu_pipeline_produces_every_metric_and_reuses_models(tmp_path, monkeypatch):
    config = TofuPipelineConfig.from_dict(TINY_TOFU)
    data = load_tofu_data(config)
    assert data.sizes() == {"full_train": 40, "retain_train": 20, "forget": 20, "retain_eval": 20, "holdout": 20,
                            "real_authors": 2, "world_facts": 2}
    lines: list[str] = []
    results = run_tofu_pipeline(config, tmp_path, ["base", "ga"], log=lines.append)
    expected = {"forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_truth_ratio", "forget_quality", "model_utility",
                "mia_min_k", "privleak", *UTILITY_COMPONENTS}
    for method in ("base", "ga"):
        assert expected <= set(results[method])
        assert results[method]["forget_quality"] is not None and results[method]["privleak"] is not None
        metrics = json.loads((tmp_path / method / "eval.json").read_text())["metrics"]
        assert len(metrics["forget_truth_ratio"]["value_by_index"]) == 20
    assert json.loads((tmp_path / "full" / "finetune.json").read_text())["rows"] == 40
    assert json.loads((tmp_path / "retain" / "finetune.json").read_text())["rows"] == 20

    # Rerun: models and evaluations are reused, nothing is trained again.
    def must_not_train(*args, **kwargs):
        raise AssertionError("a saved model was fine-tuned again")

    monkeypatch.setattr(tofu_pipeline, "finetune", must_not_train)
    again = run_tofu_pipeline(config, tmp_path, ["base", "ga"], log=lines.append)
    assert again["ga"] == results["ga"]
    changed = TofuPipelineConfig.from_dict({**TINY_TOFU, "finetune": {"max_steps": 3, "batch_size": 4}})
    with pytest.raises(ValueError, match="other settings"):
        run_tofu_pipeline(changed, tmp_path, ["base"], log=lines.append)


@pytest.mark.tofu_data
def test_bench_runs_the_tofu_scenario_on_pipeline_models(tmp_path):
    config = BenchConfig(methods=["ga"], scenarios=["tofu"], attacks=["paraphrase", "crosslingual"], max_steps=1,
                         tofu={k: v for k, v in TINY_TOFU.items() if k != "max_steps"})
    summary = run_bench(config, tmp_path, log=lambda line: None)
    (cell,) = summary["cells"]
    assert cell["scenario"] == "tofu" and cell["subject"] == "Basil Mahfouz Al-Kuwaiti"
    assert cell["skipped_attacks"] == {"crosslingual": "needs the lab world's translations or a translate hook"}
    assert cell["summary"]["forget_quality"] is not None and "attack/paraphrase" in cell["summary"]
    assert (tmp_path / "tofu" / "full" / "finetune.json").exists() and (tmp_path / "tofu" / "retain_eval.json").exists()
    assert "forget quality" in (tmp_path / "results.md").read_text()


def test_tofu_config_is_checked():
    with pytest.raises(ValueError, match="unknown TofuPipelineConfig"):
        TofuPipelineConfig.from_dict({"authors": 3})
    with pytest.raises(ValueError, match="unknown forget split"):
        TofuPipelineConfig.from_dict({"forget": "forget50"})
    assert TofuPipelineConfig(base="meta-llama/Llama-3.2-1B-Instruct").finetune_config().learning_rate == 1e-5
    assert TofuPipelineConfig(base="meta-llama/Llama-3.2-1B-Instruct").method_config("npo") is None
    assert TofuPipelineConfig().method_config("npo").endswith("npo.yaml")
