"""The result type every metric returns, and the registry that finds metrics by name.

OpenUnlearning writes each metric as `{"agg_value": float | None, "value_by_index": {...}}`;
keeping that shape makes our JSON comparable with theirs and lets per-sample values be inspected
(which answers leaked, which outputs were gibberish) next to the headline number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obliviate.registry import Registry

METRICS: Registry[Callable[..., "MetricResult"]] = Registry("metric")


@dataclass
class MetricResult:
    """One metric over a set of samples: the aggregate and the per-sample values.

    `agg_value` is None when the metric cannot be computed (e.g. forget quality without a retain
    model) and `reason` then says why; `reason` may also note how a value was obtained (privleak
    against the default reference). Per-sample values are numbers, booleans or small JSON dicts.
    """

    agg_value: float | None
    value_by_index: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `reason` is included only when set."""
        out: dict[str, Any] = {
            "agg_value": None if self.agg_value is None else float(self.agg_value),
            "value_by_index": _jsonable(self.value_by_index),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricResult:
        """Read back what `to_dict` (or OpenUnlearning) wrote."""
        if "agg_value" not in data:
            raise ValueError("a metric result needs an 'agg_value' key")
        agg = data["agg_value"]
        return cls(
            agg_value=None if agg is None else float(agg),
            value_by_index=dict(data.get("value_by_index", {})),
            reason=data.get("reason"),
        )

    def values(self, key: str | None = None) -> list[Any]:
        """Per-sample values in index order; `key` picks a field when the values are dicts."""
        ordered = [self.value_by_index[k] for k in sorted(self.value_by_index, key=_index_key)]
        return ordered if key is None else [v[key] for v in ordered]


def _index_key(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def by_index(values: Iterable[Any]) -> dict[str, Any]:
    """`{"0": v0, "1": v1, ...}`, the per-sample layout of `MetricResult`."""
    return {str(i): v for i, v in enumerate(values)}


def averaged(values: Sequence[float], per_sample: Sequence[Any] | None = None) -> MetricResult:
    """Mean of `values` as the aggregate, `per_sample` (default: the values) by index."""
    records = by_index(values if per_sample is None else per_sample)
    if len(values) == 0:
        return MetricResult(None, records, "no samples")
    return MetricResult(float(np.mean(np.asarray(values, dtype=np.float64))), records)


def check_same_length(**named: Sequence[Any]) -> int:
    """The common length of the named sequences, or a ValueError naming the mismatch."""
    lengths = {name: len(seq) for name, seq in named.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n}={k}" for n, k in lengths.items())
        raise ValueError(f"inputs must have the same length, got {detail}")
    return next(iter(lengths.values()), 0)
