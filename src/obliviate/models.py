"""Load any Hugging Face causal LM, or the shipped lab model, with one call."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

LAB_NAME = "lab"
LAB_CHECKPOINT = Path(__file__).parent / "lab" / "checkpoint"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve(name_or_path: str | os.PathLike) -> str:
    """Turn `lab` into the shipped checkpoint directory; leave paths and hub ids alone."""
    name = str(name_or_path)
    if name == LAB_NAME:
        if not (LAB_CHECKPOINT / "config.json").exists():
            raise FileNotFoundError(
                f"the lab model is not in {LAB_CHECKPOINT}; train it with "
                "`obliviate lab train --config default --out src/obliviate/lab/checkpoint`"
            )
        return str(LAB_CHECKPOINT)
    return name


def _dtype(dtype: str | torch.dtype | None) -> torch.dtype | str:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(_DTYPES)} or 'auto'") from None


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """Load a tokenizer and make sure it can pad."""
    tokenizer = AutoTokenizer.from_pretrained(resolve(name_or_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load(
    name_or_path: str | os.PathLike = LAB_NAME,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load `(model, tokenizer)` from `lab`, a local directory, or a Hugging Face hub id.

    Hub ids need network access or a populated cache; offline, the error says so plainly.
    """
    source = resolve(name_or_path)
    local = Path(source).is_dir()
    if not local and (Path(source).exists() or source.startswith((".", "/", "~"))):
        raise FileNotFoundError(f"{source} is not a model directory")
    if local and not (Path(source) / "config.json").exists():
        raise FileNotFoundError(f"{source} does not hold a Hugging Face model (no config.json)")
    try:
        tokenizer = load_tokenizer(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=_dtype(dtype))
    except OSError as err:
        if local:
            raise FileNotFoundError(f"{source} does not hold a Hugging Face causal LM: {err}") from err
        raise OSError(
            f"model {source!r} is neither a local directory nor available offline "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}); download it with network "
            "access first or pass a local path"
        ) from err
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    return model, tokenizer
