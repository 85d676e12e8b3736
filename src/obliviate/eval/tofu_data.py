"""Load the TOFU benchmark (Maini et al., 2024) from JSONL files or the Hugging Face hub.

TOFU is 200 fictitious authors x 20 question/answer pairs. `forgetNN` is the last NN% of the
authors of `full`, `retainMM` the rest; `*_perturbed` splits add the paraphrased and perturbed
(wrong) answers the truth-ratio metric needs. The data is read where it lives and never copied
into the project.

Where the data is looked for, first match wins:
1. the `root` argument;
2. the directory in the environment variable `OBLIVIATE_TOFU_DIR`;
3. `../shared/data/tofu` relative to the current working directory;
4. `../shared/data/tofu` relative to the repository root (found from this file's location);
5. the Hugging Face dataset `locuslab/TOFU`, when `datasets` is installed and neither
   `HF_HUB_OFFLINE` nor `HF_DATASETS_OFFLINE` is set (subset names equal the file stems).
An explicit `root` or `OBLIVIATE_TOFU_DIR` that does not exist is an error, not a fall-through.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

TOFU_DIR_ENV = "OBLIVIATE_TOFU_DIR"
HF_DATASET = "locuslab/TOFU"
_RELATIVE_DIR = Path("..") / "shared" / "data" / "tofu"
_REPO_ROOT = Path(__file__).resolve().parents[3]

_QA = ("question", "answer")
_PERTURBED = ("question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer")
_MULTIPLE_CHOICE = ("question", "option1", "option2", "option3", "option4", "answer")
_FACTS_PERTURBED = ("question", "answer", "perturbed_answer")


@dataclass(frozen=True)
class SplitSchema:
    """What one TOFU split must contain: its fields, row count and perturbed answers per row."""

    fields: tuple[str, ...]
    rows: int
    perturbed_answers: int = 0


SPLITS: dict[str, SplitSchema] = {
    "full": SplitSchema(_QA, 4000),
    "forget01_perturbed": SplitSchema(_PERTURBED, 40, 5),
    "forget05_perturbed": SplitSchema(_PERTURBED, 200, 5),
    "forget10_perturbed": SplitSchema(_PERTURBED, 400, 5),
    "retain99": SplitSchema(_QA, 3960),
    "retain95": SplitSchema(_QA, 3800),
    "retain90": SplitSchema(_QA, 3600),
    "retain_perturbed": SplitSchema(_PERTURBED, 400, 5),
    "holdout01": SplitSchema(_QA, 40),
    "holdout05": SplitSchema(_QA, 200),
    "holdout10": SplitSchema(_QA, 400),
    "real_authors": SplitSchema(_MULTIPLE_CHOICE, 100),
    "world_facts": SplitSchema(_MULTIPLE_CHOICE, 117),
    "real_authors_perturbed": SplitSchema(_FACTS_PERTURBED, 100, 3),
    "world_facts_perturbed": SplitSchema(_FACTS_PERTURBED, 117, 3),
}
FORGET_SPLITS = ("forget01", "forget05", "forget10")


def _hub_available() -> bool:
    flags = (os.environ.get(v, "").lower() for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    offline = any(flag in ("1", "true", "yes", "on") for flag in flags)
    return not offline and importlib.util.find_spec("datasets") is not None


def resolve_tofu_dir(root: str | os.PathLike | None = None) -> Path | None:
    """The local TOFU directory per the module's resolution order, or None to use the hub."""
    explicit = root if root is not None else os.environ.get(TOFU_DIR_ENV) or None
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            origin = "root argument" if root is not None else f"${TOFU_DIR_ENV}"
            raise FileNotFoundError(f"TOFU directory {path} (from the {origin}) does not exist")
        return path
    for candidate in (Path.cwd() / _RELATIVE_DIR, _REPO_ROOT / _RELATIVE_DIR):
        if candidate.is_dir():
            return candidate.resolve()
    if _hub_available():
        return None
    raise FileNotFoundError(
        f"TOFU data not found: set {TOFU_DIR_ENV} to a directory of TOFU JSONL files "
        f"(looked in {Path.cwd() / _RELATIVE_DIR} and {_REPO_ROOT / _RELATIVE_DIR}), "
        f"or install `datasets` and go online to read {HF_DATASET}"
    )


def _validate_row(row: object, schema: SplitSchema, where: str) -> dict:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [f for f in schema.fields if f not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    for field in schema.fields:
        value = row[field]
        if field == "perturbed_answer":
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ValueError(f"{where}: perturbed_answer must be a list of strings")
            if len(value) != schema.perturbed_answers:
                raise ValueError(
                    f"{where}: perturbed_answer has {len(value)} answers, expected {schema.perturbed_answers}"
                )
        elif not isinstance(value, str):
            raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return row


def _read_jsonl(path: Path, schema: SplitSchema) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"TOFU split file {path} does not exist")
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: invalid JSON ({e.msg})") from None
            rows.append(_validate_row(row, schema, f"{path}:{number}"))
    return rows


def _read_hub(name: str, schema: SplitSchema) -> list[dict]:
    from datasets import load_dataset

    dataset = load_dataset(HF_DATASET, name, split="train")
    return [_validate_row(dict(row), schema, f"{HF_DATASET}/{name} row {i}") for i, row in enumerate(dataset)]


def load_split(name: str, root: str | os.PathLike | None = None) -> list[dict]:
    """All rows of one TOFU split, validated: required fields, types and the published row count."""
    if name not in SPLITS:
        raise ValueError(f"unknown TOFU split {name!r}; choose from {sorted(SPLITS)}")
    schema = SPLITS[name]
    directory = resolve_tofu_dir(root)
    if directory is None:
        rows, source = _read_hub(name, schema), f"{HF_DATASET}/{name}"
    else:
        source = str(directory / f"{name}.jsonl")
        rows = _read_jsonl(Path(source), schema)
    if len(rows) != schema.rows:
        raise ValueError(f"{source}: {len(rows)} rows, expected {schema.rows} (truncated or wrong file?)")
    return rows


def load_idontknow(root: str | os.PathLike | None = None) -> list[str]:
    """TOFU's refusal sentences (`idontknow.txt`, one a line); local directory only."""
    directory = resolve_tofu_dir(root)
    if directory is None:
        raise FileNotFoundError(
            f"idontknow.txt is not on the hub; set {TOFU_DIR_ENV} to a local TOFU directory"
        )
    path = directory / "idontknow.txt"
    if not path.is_file():
        raise FileNotFoundError(f"TOFU refusal file {path} does not exist")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def forget_retain_names(forget: str = "forget10") -> tuple[str, str, str]:
    """Split names for one forget level: (forget_perturbed, retain to train on, holdout)."""
    if forget not in FORGET_SPLITS:
        raise ValueError(f"unknown forget split {forget!r}; choose from {list(FORGET_SPLITS)}")
    percent = int(forget.removeprefix("forget"))
    return f"{forget}_perturbed", f"retain{100 - percent:02d}", f"holdout{percent:02d}"


@dataclass(frozen=True)
class TofuSplits:
    """Everything the TOFU metrics read for one forget level."""

    forget: str
    forget_perturbed: list[dict]
    retain_perturbed: list[dict]
    real_authors_perturbed: list[dict]
    world_facts_perturbed: list[dict]
    holdout: list[dict]

    @classmethod
    def load(cls, forget: str = "forget10", root: str | os.PathLike | None = None) -> TofuSplits:
        forget_name, _, holdout_name = forget_retain_names(forget)
        return cls(
            forget=forget,
            forget_perturbed=load_split(forget_name, root),
            retain_perturbed=load_split("retain_perturbed", root),
            real_authors_perturbed=load_split("real_authors_perturbed", root),
            world_facts_perturbed=load_split("world_facts_perturbed", root),
            holdout=load_split(holdout_name, root),
        )
