"""The one forget/retain data path every training-based method reads.

Question/answer pairs become chat-formatted token ids with the prompt masked out of the labels
(`obliviate.chat`), so every method scores the same answer tokens the evaluation asks for.
Batches are dicts of parts, `{"forget", "retain", "target"}`, each a padded
`{"input_ids", "attention_mask", "labels"}`; methods pick the parts they need.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from obliviate.chat import chat_prompt, encode_pair, pad_batch
from obliviate.methods.losses import IGNORE_INDEX

THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", flags=re.DOTALL)

Encoded = dict[str, list[int]]


@dataclass(frozen=True)
class QAExample:
    """One question and the answer the model gives (or should no longer give)."""

    question: str
    answer: str


def as_example(item: Any) -> QAExample:
    """Accept a QAExample, anything with `.question`/`.answer`, a mapping with those keys, or a pair."""
    if isinstance(item, QAExample):
        return item
    if isinstance(item, Mapping):
        question, answer = item.get("question"), item.get("answer")
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        question, answer = item
    else:
        question, answer = getattr(item, "question", None), getattr(item, "answer", None)
    if not isinstance(question, str) or not isinstance(answer, str):
        raise ValueError(f"expected a question/answer pair of strings, got {item!r}")
    return QAExample(question, answer)


def read_qa_jsonl(path: str | os.PathLike) -> list[QAExample]:
    """Question/answer pairs from a JSONL file with `question` and `answer` fields on every line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no question/answer file at {path}")
    examples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                examples.append(as_example(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as err:
                raise ValueError(f"{path}:{number}: not a question/answer record: {err}") from None
    if not examples:
        raise ValueError(f"{path} holds no question/answer pairs")
    return examples


def strip_reasoning(target: str) -> str:
    """The final response of a reasoning target, without its `<think>...</think>` trace."""
    return THINK_BLOCK.sub("", target).strip()


def encode_example(
    tokenizer: PreTrainedTokenizerBase, question: str, answer: str, max_length: int
) -> Encoded:
    """Chat-formatted ids of question+answer+EOS, labels scoring only the answer, cut at max_length."""
    input_ids, labels = encode_pair(tokenizer, chat_prompt(tokenizer, question), answer)
    return {"input_ids": input_ids[:max_length], "labels": labels[:max_length]}


class ForgetRetainDataset(Dataset):
    """Items anchored on the forget set: forget i, a retain partner, and forget i's target answer.

    The k-th visit of forget item i is paired with retain item `order[(k*N + i) mod M]`, where
    `order` is a permutation of the M retain items drawn from `seed`: pairing is reproducible and,
    over epochs, walks the whole retain set evenly even when it is much larger than the forget set.
    `targets[i]` (optional) is the answer the method should prefer for forget question i
    (IdkDPO's refusal, TRU's reasoning trace + refusal).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        forget: Sequence[Any],
        retain: Sequence[Any] | None = None,
        targets: Sequence[str] | None = None,
        max_length: int = 512,
        seed: int = 0,
    ) -> None:
        forget_examples = [as_example(item) for item in forget]
        if not forget_examples:
            raise ValueError("the forget set is empty")
        if targets is not None and len(targets) != len(forget_examples):
            raise ValueError(f"{len(targets)} targets for {len(forget_examples)} forget examples")
        self.forget_questions = [ex.question for ex in forget_examples]
        self.forget = [encode_example(tokenizer, ex.question, ex.answer, max_length) for ex in forget_examples]
        self.retain = [
            encode_example(tokenizer, ex.question, ex.answer, max_length)
            for ex in (as_example(item) for item in (retain or []))
        ]
        self.targets = (
            None
            if targets is None
            else [encode_example(tokenizer, q, t, max_length) for q, t in zip(self.forget_questions, targets)]
        )
        self._order = list(range(len(self.retain)))
        random.Random(seed).shuffle(self._order)
        self._visits = [0] * len(self.forget)

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, index: int) -> dict[str, Encoded]:
        item = {"forget": self.forget[index]}
        if self.retain:
            slot = (self._visits[index] * len(self.forget) + index) % len(self.retain)
            item["retain"] = self.retain[self._order[slot]]
        if self.targets is not None:
            item["target"] = self.targets[index]
        self._visits[index] += 1
        return item


class ForgetRetainCollator:
    """Right-pad each part of a list of items into `{"input_ids", "attention_mask", "labels"}` tensors."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, items: Sequence[Mapping[str, Encoded]]) -> dict[str, dict[str, torch.Tensor]]:
        batch = {}
        for part in items[0]:
            rows = [item[part] for item in items]
            batch[part] = {
                "input_ids": pad_batch([r["input_ids"] for r in rows], self.pad_token_id),
                "attention_mask": pad_batch([[1] * len(r["input_ids"]) for r in rows], 0),
                "labels": pad_batch([r["labels"] for r in rows], self.pad_token_id, fill=IGNORE_INDEX),
            }
        return batch


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id used for padding: the tokenizer's pad token, else its EOS, else 0 (masked anyway)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return candidate
    return 0
