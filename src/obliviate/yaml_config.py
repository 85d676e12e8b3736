"""Settings dataclasses read from YAML: one set of checks, so every config fails the same clear way.

Method configs, evaluation settings, the TOFU pipeline and the bench are each a flat YAML mapping
of a dataclass's field names. A missing file, a file that holds no mapping and an unknown field
name each get an error that names the file or the dataclass.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml


def read_yaml_mapping(path: str | os.PathLike, what: str = "config file") -> dict[str, Any]:
    """The mapping in the YAML file at `path` ({} for an empty file); `what` names it in errors."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {what} at {path}")
    with open(path, encoding="utf-8") as handle:
        values = yaml.safe_load(handle)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of field names, not {type(values).__name__}")
    return values


def check_fields(cls: type, values: Mapping[str, Any]) -> None:
    """ValueError listing the keys of `values` that are not fields of the dataclass `cls`."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}")


def parse_overrides(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """Command-line style overrides (`["lam=300", "layers=[2, 3]"]`, values read as YAML) as a mapping."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        raise ValueError(f"overrides must be a mapping or a list of 'key=value' strings: {overrides!r}")
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not of the form key=value")
        values[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return values
