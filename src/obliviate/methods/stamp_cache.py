"""The statistics an edit reads about its model (retain key moments, covariances, refusal
activations, factorisations), computed once and reused by every edit on the same weights,
in memory and, when given a directory, on disk under the model's content fingerprint."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from obliviate.fingerprint import model_fingerprint

log = logging.getLogger(__name__)


class StampCache:
    """Statistics of the reference sets (retain key moment and covariance, refusal activations and the
    low-rank factors), computed once per model, layer and prompt set and reused across edits.

    Stats are those of the model when first computed (MEMIT's convention): earlier edits shift
    later layers' activations slightly; call `clear()` to recompute them. An owner that can take
    its edits off (the patient, through its ledger) gives `unedited`: statistics are then computed
    inside it, those of the unedited model whenever they are first needed, and `name_model` names
    them by that model's fingerprint: a model saved with edits and loaded again reads the
    statistics of its base from disk instead of writing a set of its own for every edited state.

    With a `directory`, tensor statistics are also kept on disk under the model's content
    fingerprint, so a new process editing the same weights (`obliviate forget`, the demo) skips
    recomputing them. Files are written atomically; an unreadable file is recomputed.
    """

    def __init__(self, directory: str | Path | None = None,
                 unedited: Callable[[], contextlib.AbstractContextManager] | None = None) -> None:
        self.unedited = unedited
        self._store: dict[tuple, Any] = {}
        self._recent: dict[tuple, list[tuple[Any, Any]]] = {}
        self.directory = Path(directory) if directory is not None else None
        self._model_keys: dict[int, Any] = {}
        self._device: torch.device | None = None  # where loaded statistics go: the model's device
        self._warned = False  # a directory that cannot be written is reported once

    def model_key(self, model: nn.Module) -> Any:
        """How statistics name their model: its identity in memory, its content fingerprint
        (taken at first use, like the statistics themselves) when they are kept on disk."""
        if self.directory is None:
            return id(model)
        if id(model) not in self._model_keys:
            self._model_keys[id(model)] = model_fingerprint(model)
            self._device = next(model.parameters()).device
        return self._model_keys[id(model)]

    def name_model(self, model: nn.Module, key: Any) -> None:
        """Name `model`'s statistics `key` (the fingerprint of the weights they are read on)."""
        if self.directory is not None:
            self._model_keys[id(model)] = key
            self._device = next(model.parameters()).device

    def reading(self) -> contextlib.AbstractContextManager:
        """Where statistics are read: inside `unedited` when set."""
        return self.unedited() if self.unedited is not None else contextlib.nullcontext()

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        return self.get_layers({0: key}, lambda _: {0: compute()})[0]

    def get_layers(self, keys: dict[int, tuple], compute: Callable[[list[int]], dict[int, Any]]) -> dict[int, Any]:
        """`get` for one statistic at several layers (layer -> key): the layers not kept yet are
        computed by one call, `compute(layers)` (one forward pass reads them all)."""
        for key in keys.values():
            if key not in self._store:
                found = self._load(key)
                if found is not None:
                    self._store[key] = found
        missing = [layer for layer, key in keys.items() if key not in self._store]
        if missing:
            with self.reading():
                computed = compute(missing)
            for layer in missing:
                self._save(keys[layer], computed[layer])
                self._store[keys[layer]] = computed[layer]
        return {layer: self._store[key] for layer, key in keys.items()}

    def recent(self, key: tuple, tag: Any, compute: Callable[[], Any], keep: int = 2) -> Any:
        """In memory only, for statistics that change with the edits in force (an inverted hold):
        the value `compute` gave for `tag` under `key`, kept for the last `keep` tags."""
        entries = self._recent.setdefault(key, [])
        for i, (seen, value) in enumerate(entries):
            if seen == tag:
                entries.append(entries.pop(i))
                return value
        value = compute()
        entries.append((tag, value))
        del entries[:-keep]
        return value

    def _path(self, key: tuple) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha1(repr(key).encode()).hexdigest() + ".pt")

    def _load(self, key: tuple) -> Any:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            return torch.load(path, map_location=self._device, weights_only=True)
        except Exception:  # a torn or foreign file: recomputed and overwritten
            return None

    def _save(self, key: tuple, value: Any) -> None:
        path = self._path(key)
        if path is not None and _is_tensor_tree(value):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(value, tmp)
                os.replace(tmp, path)
            except OSError as error:  # the disk copy only saves time: keep it in memory and say so once
                with contextlib.suppress(OSError):
                    tmp.unlink()
                if not self._warned:
                    self._warned = True
                    log.warning("STAMP statistics are not kept on disk (%s): they stay in memory", error)

    def clear(self) -> None:
        self._store.clear()
        self._recent.clear()
        self._model_keys.clear()

    def __len__(self) -> int:
        return len(self._store)


def _is_tensor_tree(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    return isinstance(value, dict) and all(isinstance(v, Tensor) for v in value.values())
