"""A keyed cache kept in an append-only JSONL file, so nothing costly is computed twice.

Chat replies (`obliviate.llm.CachedChat`), generated TRU targets
(`obliviate.methods.tru_targets.CachedGenerator`) and the unedited model's answers that RePAIR's
edits hold (`obliviate.repair.patient`) are replayed from it. Each entry goes out in one
`O_APPEND` write followed by an fsync, so a crash leaves at most a truncated last line: loading
skips it with a warning, and the next entry starts on a fresh line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def cache_key(parts: Any) -> str:
    """SHA-256 of `parts` as canonical JSON (sorted keys, Unicode kept as is)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JsonlCache(Generic[T]):
    """`key -> value` entries held in memory and in `path`, one `{"key": ..., ...}` line each.

    `decode` turns a stored line (a dict) back into its value; a line that is not JSON or that
    `decode` rejects (KeyError, TypeError, ValueError) is skipped with a warning naming `what`.
    """

    def __init__(
        self, path: str | os.PathLike, decode: Callable[[dict[str, Any]], T], what: str = "cache"
    ) -> None:
        self.path = Path(path)
        self.what = what
        self._values = self._load(decode)

    def _load(self, decode: Callable[[dict[str, Any]], T]) -> dict[str, T]:
        values: dict[str, T] = {}
        if not self.path.exists():
            return values
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    values[entry["key"]] = decode(entry)
                except (KeyError, TypeError, ValueError):  # ValueError covers JSONDecodeError
                    log.warning("skipping unreadable line %d of %s %s", number, self.what, self.path)
        return values

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __getitem__(self, key: str) -> T:
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: str, value: T, record: Mapping[str, Any]) -> None:
        """Hold `value` under `key`, appending `{"key": key, **record}` (what `decode` reads back)."""
        self._append(json.dumps({"key": key, **record}, ensure_ascii=False) + "\n")
        self._values[key] = value

    def put_many(self, entries: list[tuple[str, T, Mapping[str, Any]]]) -> None:
        """`put` for many `(key, value, record)` at once, in one write and one fsync."""
        if entries:
            self._append("".join(json.dumps({"key": key, **record}, ensure_ascii=False) + "\n"
                                 for key, _, record in entries))
            self._values.update((key, value) for key, value, _ in entries)

    def _append(self, line: str) -> None:
        """One O_APPEND write per call; starts on a fresh line if a crash left the last one unfinished."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = line.encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
