"""Append-only ledger of weight edits: list them, undo them bitwise, replay them on the base model.

A ledger is a directory:
- `ledger.jsonl`: one JSON object per line, never rewritten. An `edit` line holds the edit id,
  UTC timestamp, description, the caller's receipt, the base-model fingerprint and, per edited
  parameter, its name, shape, dtype and the sha256 of its bytes before and after. An `undo` line
  names the edits it reverted.
- `edit-NNNNNN.safetensors`: for each edited parameter `before/<name>` and `after/<name>`, exact
  copies in the parameter's own dtype, so undo and replay restore bits, not approximations; and
  the caller's `extra/<name>` tensors (the patient's: the keys its edit wrote, which later edits
  hold), with their sha256 and the caller's `extra` JSON in the line.

Crash safety: the tensor file is written under a temporary name, fsynced and renamed into place
*before* its JSON line is appended (flushed and fsynced). An edit exists once its line ends with a
newline. On open, a last line without newline or with broken JSON is dropped with a warning (the
edit was never acknowledged), and tensor files no line refers to are deleted as orphans.
One process writes a ledger at a time; there is no locking.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.fingerprint import model_fingerprint, tensor_sha256

LEDGER_FILE = "ledger.jsonl"
LEDGER_DIRNAME = "ledger"  # where save_model_atomically puts the ledger inside a saved model
# what a saved model takes over from the directory it was loaded from: a lab model's provenance
# names the world it knows (without it the repaired model would be taken for an unknown one)
CARRIED_FILES = ("provenance.json",)
_TENSOR_PREFIX = "edit-"
_TENSOR_SUFFIX = ".safetensors"
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ParamEdit:
    """One parameter touched by an edit, as recorded in the ledger line."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    sha256_before: str
    sha256_after: str

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "sha256_before": self.sha256_before,
            "sha256_after": self.sha256_after,
        }

    @classmethod
    def from_json(cls, data: dict) -> ParamEdit:
        return cls(
            data["name"], tuple(data["shape"]), data["dtype"], data["sha256_before"], data["sha256_after"]
        )


@dataclass(frozen=True)
class EditRecord:
    """One recorded edit; `undone_by` is the id of the undo line that reverted it, if any."""

    edit_id: int
    timestamp: str
    description: str
    receipt: dict
    params: tuple[ParamEdit, ...]
    base_fingerprint: str
    tensor_file: str
    undone_by: int | None = None
    extra: dict = field(default_factory=dict)  # what the caller recorded beside the edit (`record`)
    extra_sha256: dict[str, str] = field(default_factory=dict)  # the caller's tensors kept with it, by name

    @property
    def active(self) -> bool:
        return self.undone_by is None

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class EditLedger:
    """The edit history of one model lineage, stored in a directory (see module docstring)."""

    def __init__(self, path: Path, lines: list[dict], expected_base: str | None = None) -> None:
        self.path = path
        self._lines = lines
        self._expected_base = expected_base  # asserted when the first edit fixes the fingerprint
        self._base: dict[str, torch.Tensor] = {}  # parameter -> its base value, read once (`base_weights`)

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike, base_fingerprint: str | None = None) -> EditLedger:
        """Open (or create) the ledger in `path`, repairing what a crash can leave behind.

        `base_fingerprint` (from `model_fingerprint` on the unedited model) asserts that this
        ledger belongs to that base model; a mismatch with the recorded one is a ValueError.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ValueError(f"ledger path {path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        ledger = cls(path, cls._read_lines(path / LEDGER_FILE), base_fingerprint)
        ledger._check_lines()
        ledger._remove_orphans()
        recorded = ledger.base_fingerprint
        if base_fingerprint is not None and recorded is not None and base_fingerprint != recorded:
            raise ValueError(
                f"ledger {path} was recorded on base model {recorded[:12]}…, not {base_fingerprint[:12]}…"
            )
        return ledger

    @staticmethod
    def _read_lines(file: Path, repair: bool = True) -> list[dict]:
        """The complete entries of a ledger file; with `repair`, the file is cut back to them (what an
        interrupted write left after the last newline goes)."""
        if not file.exists():
            return []
        data = file.read_bytes()
        chunks = data.split(b"\n")
        complete, tail = chunks[:-1], chunks[-1]  # tail is b"" when the file ends with a newline
        lines, good_bytes = [], 0
        for number, chunk in enumerate(complete, start=1):
            try:
                line = json.loads(chunk)
                if not (isinstance(line, dict) and "id" in line and line.get("kind") in ("edit", "undo")):
                    raise ValueError("not a ledger entry")
                lines.append(line)
            except ValueError:  # includes json.JSONDecodeError
                if number < len(complete):
                    raise ValueError(f"{file}:{number}: corrupt ledger line (not the last one)") from None
                warnings.warn(f"{file}:{number}: dropping unreadable last ledger line (interrupted write)")
                break
            good_bytes += len(chunk) + 1
        if tail:
            warnings.warn(f"{file}: dropping truncated last ledger line (interrupted write)")
        if repair and good_bytes != len(data):
            with file.open("r+b") as f:
                f.truncate(good_bytes)
                f.flush()
                os.fsync(f.fileno())
        return lines

    def _check_lines(self) -> None:
        ids = [line["id"] for line in self._lines]
        if ids != sorted(set(ids)):
            raise ValueError(f"{self.path / LEDGER_FILE}: edit ids are not strictly increasing")
        fingerprints = {line["base_fingerprint"] for line in self._lines if line["kind"] == "edit"}
        if len(fingerprints) > 1:
            raise ValueError(f"{self.path / LEDGER_FILE}: edits recorded on different base models")
        for line in self._lines:
            if line["kind"] == "edit" and not (self.path / line["tensor_file"]).is_file():
                raise ValueError(f"ledger edit {line['id']} lost its tensor file {line['tensor_file']}")

    def _remove_orphans(self) -> None:
        referenced = {line["tensor_file"] for line in self._lines if line["kind"] == "edit"}
        for file in self.path.iterdir():
            orphan = file.name.startswith(_TENSOR_PREFIX) and file.name.endswith(_TENSOR_SUFFIX)
            if file.name.startswith(_TEMP_PREFIX) or (orphan and file.name not in referenced):
                warnings.warn(f"removing {file.name} from ledger {self.path}: no ledger line refers to it")
                file.unlink()

    # ---------------------------------------------------------------- reading

    @property
    def base_fingerprint(self) -> str | None:
        for line in self._lines:
            if line["kind"] == "edit":
                return line["base_fingerprint"]
        return None

    def entries(self, active_only: bool = True) -> list[EditRecord]:
        """Edits in the order they were made; by default only those not undone."""
        undone_by = {i: line["id"] for line in self._lines if line["kind"] == "undo" for i in line["undoes"]}
        records = [
            EditRecord(
                edit_id=line["id"],
                timestamp=line["timestamp"],
                description=line["description"],
                receipt=line["receipt"],
                params=tuple(ParamEdit.from_json(p) for p in line["params"]),
                base_fingerprint=line["base_fingerprint"],
                tensor_file=line["tensor_file"],
                undone_by=undone_by.get(line["id"]),
                extra=line.get("extra", {}),
                extra_sha256=line.get("extra_tensors", {}),
            )
            for line in self._lines
            if line["kind"] == "edit"
        ]
        return [r for r in records if r.active] if active_only else records

    def _expected_hashes(self) -> dict[str, str]:
        """What each parameter ever edited must hash to now: its last active `after`, else its base."""
        expected: dict[str, str] = {}
        for record in self.entries(active_only=False):
            for p in record.params:
                expected.setdefault(p.name, p.sha256_before)  # the first edit's before is the base
        for record in self.entries():
            for p in record.params:
                expected[p.name] = p.sha256_after
        return expected

    def verify(self, model: nn.Module) -> None:
        """Raise ValueError unless every parameter the ledger touched is in the recorded state."""
        for name, sha in self._expected_hashes().items():
            if tensor_sha256(model.get_parameter(name)) != sha:
                raise ValueError(
                    f"parameter {name} is not in the state ledger {self.path} records; "
                    "the model was changed outside the ledger or belongs to another ledger"
                )

    def _load_tensors(self, record: EditRecord, extra: bool = False) -> dict[str, torch.Tensor]:
        """The edit's tensor file, its `before`/`after` tensors (and with `extra` the caller's) checked."""
        tensors = load_file(self.path / record.tensor_file)
        expected = {f"{side}/{p.name}": sha for p in record.params
                    for side, sha in (("before", p.sha256_before), ("after", p.sha256_after))}
        if extra:
            expected.update((f"extra/{name}", sha) for name, sha in record.extra_sha256.items())
        for key, sha in expected.items():
            if key not in tensors or tensor_sha256(tensors[key]) != sha:
                raise ValueError(f"ledger tensor file {record.tensor_file} is corrupt ({key})")
        return tensors

    def extra_tensors(self, record: EditRecord) -> dict[str, torch.Tensor]:
        """The tensors the caller recorded beside an edit (`record(..., extra_tensors=...)`), checked."""
        tensors = self._load_tensors(record, extra=True)
        return {name: tensors[f"extra/{name}"] for name in record.extra_sha256}

    @contextlib.contextmanager
    def base_weights(self, model: nn.Module) -> Iterator[None]:
        """The model as it was before every edit in force for the length of the block, and bitwise
        as it was after it (on an error too): what the unedited model says, without a copy of it."""
        active = self.entries()
        missing = {name for record in active for name in record.param_names} - set(self._base)
        found: dict[str, torch.Tensor] = {}
        for record in active[::-1]:  # newest first: the oldest edit's `before` is the base
            if missing.intersection(record.param_names):
                found.update((n, t) for n, t in _tensors_before(self._load_tensors(record)).items() if n in missing)
        self._base.update(found)  # a lineage's base never changes: edits chain from it, undo returns to it
        base = {name: self._base[name] for record in active for name in record.param_names}
        current = {name: model.get_parameter(name).detach().clone() for name in base}
        _assign(model, base)
        try:
            yield
        finally:
            _assign(model, current)

    # ---------------------------------------------------------------- writing

    def _next_id(self) -> int:
        return self._lines[-1]["id"] + 1 if self._lines else 1

    def _append_line(self, line: dict) -> None:
        text = json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n"
        with (self.path / LEDGER_FILE).open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self._lines.append(line)

    def _write_tensors(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TENSOR_SUFFIX, dir=self.path)
        os.close(fd)
        try:
            save_file(tensors, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path)

    def record(
        self, model: nn.Module, weights_before: dict[str, torch.Tensor], description: str, receipt: dict,
        extra: dict | None = None, extra_tensors: dict[str, torch.Tensor] | None = None,
    ) -> EditRecord:
        """Record an edit already applied to `model`; `weights_before` holds the edited parameters'
        values before it (the `weights_copy` STAMP returns). The `after` values are read from `model`.
        `extra` (JSON) and `extra_tensors` are the caller's, kept with the edit and given back by
        `EditRecord.extra` and `extra_tensors(record)`: what a later session needs to resume it.
        """
        if not weights_before:
            raise ValueError("weights_before is empty: an edit must touch at least one parameter")
        for what, value in (("receipt", receipt), ("extra", extra or {})):
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{what} is not JSON-serialisable: {e}") from None
        known = dict(model.named_parameters(remove_duplicate=False))
        expected = self._expected_hashes()
        params, tensors = [], {}
        for name, before in weights_before.items():
            if name not in known:
                raise ValueError(f"model has no parameter {name!r}")
            after = known[name].detach().cpu().clone().contiguous()
            before = before.detach().cpu().clone().contiguous()
            if before.shape != after.shape or before.dtype != after.dtype:
                raise ValueError(
                    f"weights_before[{name!r}] is {before.dtype}{tuple(before.shape)}, "
                    f"the parameter is {after.dtype}{tuple(after.shape)}"
                )
            sha_before = tensor_sha256(before)
            if name in expected and expected[name] != sha_before:
                raise ValueError(f"weights_before[{name!r}] is not the state the ledger recorded for it")
            sha_after = tensor_sha256(after)
            dtype = _dtype_name(after.dtype)
            params.append(ParamEdit(name, tuple(after.shape), dtype, sha_before, sha_after))
            tensors[f"before/{name}"], tensors[f"after/{name}"] = before, after
        extra_sha = {}
        for name, value in (extra_tensors or {}).items():
            tensors[f"extra/{name}"] = value.detach().cpu().contiguous()
            extra_sha[name] = tensor_sha256(tensors[f"extra/{name}"])

        fingerprint = self.base_fingerprint
        if fingerprint is None:  # first edit: the model minus this edit is the base
            fingerprint = model_fingerprint(model, overrides=_tensors_before(tensors))
            if self._expected_base is not None and self._expected_base != fingerprint:
                raise ValueError("this edit was made on a model that is not the base the ledger expects")

        edit_id = self._next_id()
        tensor_file = f"{_TENSOR_PREFIX}{edit_id:06d}{_TENSOR_SUFFIX}"
        self._write_tensors(tensor_file, tensors)
        line = {
            "id": edit_id,
            "kind": "edit",
            "timestamp": _now(),
            "description": description,
            "receipt": receipt,
            "base_fingerprint": fingerprint,
            "tensor_file": tensor_file,
            "params": [p.to_json() for p in params],
        }
        if extra:
            line["extra"] = extra
        if extra_sha:
            line["extra_tensors"] = extra_sha
        self._append_line(line)
        return self.entries(active_only=False)[-1]

    def undo(self, model: nn.Module, n: int = 1) -> list[EditRecord]:
        """Restore the `before` weights of the last `n` active edits (newest first), bitwise.

        Every step is checked before the model is touched: the model must hold each edit's recorded
        `after`, else ValueError and nothing changes. History is kept: an `undo` line is appended.
        """
        active = self.entries()
        if not 1 <= n <= len(active):
            raise ValueError(f"cannot undo {n} edit(s): {len(active)} active")
        targets = active[::-1][:n]
        restores = self._steps(
            model, targets, start="after", end="before",
            mismatch="cannot undo edit {edit}: parameter {name} does not hold the value that edit left; "
            "the model is not in the state the ledger thinks",
        )
        undoes = [r.edit_id for r in targets]
        self._append_line({"id": self._next_id(), "kind": "undo", "timestamp": _now(), "undoes": undoes})
        _assign(model, restores)
        undone = {r.edit_id for r in targets}
        return [r for r in self.entries(active_only=False)[::-1] if r.edit_id in undone]

    def replay(self, model: nn.Module) -> int:
        """Apply every active edit, in order, to a fresh copy of the base model; return how many.

        The model must be the base the ledger was recorded on (fingerprint and every `before`
        checked first), else ValueError and nothing changes.
        """
        active = self.entries()
        if not active:
            return 0
        fingerprint = model_fingerprint(model)
        if fingerprint != self.base_fingerprint:
            raise ValueError(
                f"cannot replay ledger {self.path}: the model (fingerprint {fingerprint[:12]}…) is not "
                f"the base model the edits were recorded on ({self.base_fingerprint[:12]}…)"
            )
        writes = self._steps(
            model, active, start="before", end="after",
            mismatch="cannot replay edit {edit}: parameter {name} does not hold the value recorded before that edit",
        )
        _assign(model, writes)
        return len(active)

    def _steps(
        self, model: nn.Module, records: list[EditRecord], start: str, end: str, mismatch: str
    ) -> dict[str, torch.Tensor]:
        """The weights that take `model` through `records` in order, each parameter from its `start`
        value ("before" or "after") to its `end` value, checked against the recorded hashes first:
        if the model (or an earlier step) does not hold a record's `start`, ValueError with
        `mismatch` (formatted with `edit` and `name`) before anything changes."""
        state = {name: tensor_sha256(model.get_parameter(name)) for r in records for name in r.param_names}
        values: dict[str, torch.Tensor] = {}
        for record in records:
            tensors = self._load_tensors(record)
            for p in record.params:
                if state[p.name] != getattr(p, f"sha256_{start}"):
                    raise ValueError(mismatch.format(edit=record.edit_id, name=p.name))
                state[p.name] = getattr(p, f"sha256_{end}")
                values[p.name] = tensors[f"{end}/{p.name}"]
        return values

    def take_history(self, source: str | os.PathLike) -> None:
        """Make this empty ledger a copy of the ledger in `source` (left untouched), to go on from
        where it stopped; what a crash left in `source` is repaired in the copy."""
        source = Path(source)
        if self._lines:
            raise ValueError(f"ledger {self.path} already holds edits: it cannot take the history of {source}")
        if not (source / LEDGER_FILE).is_file():
            raise ValueError(f"{source} holds no edit ledger ({LEDGER_FILE})")
        EditLedger(source, self._read_lines(source / LEDGER_FILE, repair=False)).copy_to(self.path)
        taken = EditLedger.open(self.path)  # checks the copy: every edit's tensor file is there
        self._lines, self._base = taken._lines, {}

    def copy_to(self, destination: str | os.PathLike) -> None:
        """Copy the ledger (its complete lines and their tensor files) into `destination`, a new or
        empty directory: the tensor files first, so a copy cut short holds no line without its file."""
        destination = Path(destination)
        destination.mkdir(parents=True, exist_ok=True)
        if any(destination.iterdir()):
            raise ValueError(f"cannot copy ledger {self.path} into {destination}: it is not empty")
        for name in [line["tensor_file"] for line in self._lines if line["kind"] == "edit"]:
            if (self.path / name).exists():
                shutil.copy2(self.path / name, destination / name)
        text = "".join(json.dumps(line, allow_nan=False, ensure_ascii=False) + "\n" for line in self._lines)
        (destination / LEDGER_FILE).write_text(text, encoding="utf-8")


def _tensors_before(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key.removeprefix("before/"): t for key, t in tensors.items() if key.startswith("before/")}


def _assign(model: nn.Module, values: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            model.get_parameter(name).copy_(value)


# -------------------------------------------------------------------- saving a model with its ledger


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            with open(Path(directory) / name, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(directory))


def save_model_atomically(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    out_dir: str | os.PathLike,
    ledger: EditLedger | None = None,
) -> Path:
    """Save model (+ tokenizer, + a copy of the ledger in `out_dir/ledger`) so `out_dir` is either
    the old complete copy or the new complete one, never a partial directory.

    Everything is written to a temporary directory beside `out_dir`, fsynced, then renamed into
    place; an existing `out_dir` is moved aside only after the new copy is complete, and removed
    after the swap. With a ledger, the model is first verified to be in the ledger's state. An
    existing `out_dir` must be empty or a saved model (has `config.json`), so a typo cannot wipe
    an unrelated directory. `CARRIED_FILES` of the directory the model was loaded from come along.
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not (
        out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / "config.json").exists())
    ):
        raise ValueError(f"refusing to replace {out_dir}: it exists and is not a saved model directory")
    if ledger is not None:
        ledger.verify(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{_TEMP_PREFIX}", dir=out_dir.parent))
    old: Path | None = None
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if ledger is not None:
            ledger.copy_to(tmp / LEDGER_DIRNAME)
        source = Path(getattr(model, "name_or_path", "") or "")  # where the model was loaded from
        for name in CARRIED_FILES:
            if source.name and (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        _fsync_tree(tmp)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
        try:
            os.replace(tmp, out_dir)
        except BaseException:
            if old is not None:
                os.replace(old / out_dir.name, out_dir)
            raise
        _fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not (old / out_dir.name).exists():
            old.rmdir()  # the old copy was put back; keep it aside otherwise
        raise
    if old is not None:
        shutil.rmtree(old)
    return out_dir
