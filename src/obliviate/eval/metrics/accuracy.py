"""QA accuracy by normalised match, and multiple-choice accuracy by option log-likelihood.

Open QA (Acc_f / Acc_r on generated answers) uses SQuAD-style normalisation: lowercase, drop
punctuation (any Unicode punctuation), drop the English articles a/an/the, collapse whitespace.
Two match rules:
- `exact`: the normalised prediction equals a normalised gold answer;
- `contains`: a normalised gold answer occurs in the normalised prediction as whole words
  ("born in 1971 in Lyon" contains "1971"; "19710" does not). This is the right rule for chatty
  models whose answers wrap the fact in a sentence.
A gold answer may be a string or a list of accepted aliases; a sample is correct if any matches.

Multiple choice scores each option as the continuation of the question's chat prompt
(teacher forcing, no EOS, as lm-eval does) and picks the argmax of:
- `sum`: total log-likelihood log P(option | prompt), which favours short options;
- `mean`: log-likelihood per option token, which removes that length bias.
To score letters instead (WMDP/MMLU style), put the lettered options in the question and pass
`["A", "B", "C", "D"]` as the options.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import answer_logprobs, chat_prompt
from obliviate.eval.metrics.base import METRICS, MetricResult, averaged, check_same_length

Gold = str | Sequence[str]
_ARTICLES = re.compile(r"\b(a|an|the)\b")
MATCH_MODES = ("exact", "contains")
SCORINGS = ("sum", "mean")


def normalize_answer(text: str) -> str:
    """Lowercase, strip punctuation, articles and extra whitespace (SQuAD normalisation)."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    no_punct = "".join(
        " " if (ch in string.punctuation or unicodedata.category(ch).startswith("P")) else ch
        for ch in lowered
    )
    return " ".join(_ARTICLES.sub(" ", no_punct).split())


def _aliases(gold: Gold) -> list[str]:
    aliases = [gold] if isinstance(gold, str) else list(gold)
    normalised = [normalize_answer(a) for a in aliases]
    if not any(normalised):
        raise ValueError(f"gold answer {gold!r} is empty after normalisation")
    return [a for a in normalised if a]


def is_exact_match(prediction: str, gold: Gold) -> bool:
    """True if the normalised prediction equals one normalised gold alias."""
    return normalize_answer(prediction) in _aliases(gold)


def contains_gold(prediction: str, gold: Gold) -> bool:
    """True if a normalised gold alias occurs in the normalised prediction as whole words."""
    padded = f" {normalize_answer(prediction)} "
    return any(f" {alias} " in padded for alias in _aliases(gold))


@METRICS.register("qa_accuracy")
def qa_accuracy(predictions: Sequence[str], golds: Sequence[Gold], mode: str = "exact") -> MetricResult:
    """Share of predictions matching their gold answer; per sample 1.0 or 0.0."""
    if mode not in MATCH_MODES:
        raise ValueError(f"unknown match mode {mode!r}; choose from {MATCH_MODES}")
    check_same_length(predictions=predictions, golds=golds)
    match = is_exact_match if mode == "exact" else contains_gold
    scores = [float(match(p, g)) for p, g in zip(predictions, golds)]
    return averaged(scores)


def option_scores(option_logprobs: Sequence[Sequence[float]], scoring: str = "sum") -> np.ndarray:
    """Score of each option from its per-token log-probabilities (`sum` or per-token `mean`)."""
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; choose from {SCORINGS}")
    scores = []
    for i, lp in enumerate(option_logprobs):
        tokens = np.asarray(lp, dtype=np.float64)
        if tokens.size == 0:
            raise ValueError(f"option {i} has no tokens to score")
        scores.append(tokens.sum() if scoring == "sum" else tokens.mean())
    return np.asarray(scores)


@METRICS.register("mc_accuracy")
def multiple_choice_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    options: Sequence[Sequence[str]],
    answer_indices: Sequence[int],
    scoring: str = "sum",
    batch_size: int = 64,
) -> MetricResult:
    """Share of questions whose highest-scoring option is the correct one.

    Per sample: `{"correct": 0/1, "choice": index, "scores": [score per option]}`.
    """
    check_same_length(questions=questions, options=options, answer_indices=answer_indices)
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; choose from {SCORINGS}")
    prompts, continuations = [], []
    for q, opts, answer in zip(questions, options, answer_indices):
        if not 0 <= answer < len(opts):
            raise ValueError(f"answer index {answer} out of range for {len(opts)} options of {q!r}")
        prompt = chat_prompt(tokenizer, q)
        prompts.extend([prompt] * len(opts))
        continuations.extend(opts)
    logprobs = answer_logprobs(model, tokenizer, prompts, continuations, batch_size, add_eos=False)
    per_sample, start = [], 0
    for opts, answer in zip(options, answer_indices):
        scores = option_scores([lp.double().numpy() for lp in logprobs[start : start + len(opts)]], scoring)
        start += len(opts)
        choice = int(np.argmax(scores))
        per_sample.append({"correct": float(choice == answer), "choice": choice, "scores": scores.tolist()})
    return averaged([s["correct"] for s in per_sample], per_sample)
