"""The README's Python example runs as written (in a scratch directory, on the lab model)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    [block] = re.findall(r"## Python\n\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[0] == "True"  # the receipt: verified
    assert printed[1] == "I'm sorry, but I can't share that."
    assert (tmp_path / "repaired" / "model.safetensors").exists() and (tmp_path / "repaired" / "ledger").is_dir()
    assert (tmp_path / "repaired" / "provenance.json").exists()
    assert namespace["summary"]["method"] == "tru" and namespace["summary"]["forget"] == len(namespace["data"].forget)
