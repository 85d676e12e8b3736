"""The model interface: chat prompts, greedy generation and answer scoring.

Everything that talks to a model goes through here, so tasks (metrics, attacks, the surgeon)
never deal with padding, special tokens or chat formats themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

FALLBACK_TEMPLATE = "Question: {question}\nAnswer:"


def chat_prompt(tokenizer: PreTrainedTokenizerBase, user: str, system: str | None = None) -> str:
    """The text the model sees before answering `user` (its own chat template, or a plain Q/A frame)."""
    if tokenizer.chat_template is None:
        prefix = f"{system}\n" if system else ""
        return prefix + FALLBACK_TEMPLATE.format(question=user)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_pair(
    tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, add_eos: bool = True
) -> tuple[list[int], list[int]]:
    """Token ids of prompt+answer(+EOS) and labels that score only the answer."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, left: bool = False, fill: int | None = None
) -> torch.Tensor:
    """Stack variable-length id lists into one tensor, padding on the right (or left)."""
    width = max(len(s) for s in sequences)
    value = pad_id if fill is None else fill
    rows = [
        ([value] * (width - len(s)) + list(s)) if left else (list(s) + [value] * (width - len(s)))
        for s in sequences
    ]
    return torch.tensor(rows, dtype=torch.long)


def _device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 32,
    batch_size: int = 64,
) -> list[str]:
    """Greedy continuations of already-formatted prompts, special tokens stripped; batched by
    prompt length, so a batch pads little."""
    outputs: dict[int, str] = {}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        chunk = [encoded[i] for i in rows]
        input_ids = pad_batch(chunk, pad_id, left=True).to(_device(model))
        attention = pad_batch([[1] * len(c) for c in chunk], 0, left=True).to(_device(model))
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = generated[:, input_ids.shape[1] :]
        outputs.update(zip(rows, (t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))))
    return [outputs[i] for i in range(len(prompts))]


def ask(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    max_new_tokens: int = 32,
    system: str | None = None,
) -> list[str]:
    """Answer plain questions through the chat template."""
    return generate(model, tokenizer, [chat_prompt(tokenizer, q, system) for q in questions], max_new_tokens)


def ask_expecting(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    expected: Sequence[str | None],
    max_new_tokens: int = 32,
) -> list[str]:
    """`ask`, helped by a guess of each answer (None: no guess): a guess that greedy decoding
    would produce exactly (checked in one teacher-forced pass, `greedy_match`) is the answer, and
    only the other questions are decoded. The result is `ask`'s whether the guesses are right or
    not: a guess counts only if it fits in `max_new_tokens` with its EOS and survives the
    tokenizer's round trip. Saves the decoding loop's per-step overhead, not the model's FLOPs."""
    if len(questions) != len(expected):
        raise ValueError(f"{len(questions)} questions but {len(expected)} expected answers")
    answers: list[str | None] = [None] * len(questions)
    checkable = [i for i, guess in enumerate(expected) if guess is not None and _checkable(tokenizer, guess, max_new_tokens)]
    if checkable:
        prompts = [chat_prompt(tokenizer, questions[i]) for i in checkable]
        for i, hit in zip(checkable, greedy_match(model, tokenizer, prompts, [expected[i] for i in checkable])):
            if hit:
                answers[i] = expected[i]
    rest = [i for i, a in enumerate(answers) if a is None]
    if rest:
        for i, answer in zip(rest, ask(model, tokenizer, [questions[i] for i in rest], max_new_tokens=max_new_tokens)):
            answers[i] = answer
    return answers  # type: ignore[return-value]


def _checkable(tokenizer: PreTrainedTokenizerBase, answer: str, max_new_tokens: int) -> bool:
    """Whether `greedy_match` can stand for decoding `max_new_tokens` tokens to compare with
    `answer`: it fits with its EOS and survives the tokenizer's round trip."""
    if tokenizer.eos_token_id is None:  # greedy_match checks the answer and its EOS
        return False
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return len(ids) + 1 <= max_new_tokens and tokenizer.decode(ids, skip_special_tokens=True).strip() == answer


def answers_changed(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    before: Sequence[str],
    max_new_tokens: int = 32,
    watch: int | None = None,
) -> tuple[list[bool], list[float | None]]:
    """Whether `ask` would now answer each question otherwise than `before`: one teacher-forced
    pass (`greedy_check`) for the answers it can check, decoding for the rest only. With `watch`
    (a token id), also the log-probability that each answer now starts with that token, read in
    the same pass (None for the answers decoded instead, and without `watch`)."""
    if len(questions) != len(before):
        raise ValueError(f"{len(questions)} questions but {len(before)} answers")
    checkable = [i for i, answer in enumerate(before) if _checkable(tokenizer, answer, max_new_tokens)]
    changed: dict[int, bool] = {}
    watched: list[float | None] = [None] * len(questions)
    if checkable:
        hits, first = greedy_check(model, tokenizer, [chat_prompt(tokenizer, questions[i]) for i in checkable],
                                   [before[i] for i in checkable])
        changed.update((i, not hit) for i, hit in zip(checkable, hits))
        if watch is not None:
            for i, value in zip(checkable, first[:, watch].tolist()):
                watched[i] = value
    rest = [i for i in range(len(questions)) if i not in changed]
    if rest:
        now = ask(model, tokenizer, [questions[i] for i in rest], max_new_tokens=max_new_tokens)
        changed.update((i, answer != before[i]) for i, answer in zip(rest, now))
    return [changed[i] for i in range(len(questions))], watched


@torch.no_grad()
def answer_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 64,
    add_eos: bool = True,
) -> list[torch.Tensor]:
    """Per-token log-probabilities of each answer given its formatted prompt (teacher forcing)."""
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    result: list[torch.Tensor] = []
    for start in range(0, len(prompts), batch_size):
        pairs = [
            encode_pair(tokenizer, p, a, add_eos)
            for p, a in zip(prompts[start : start + batch_size], answers[start : start + batch_size])
        ]
        ids = pad_batch([p[0] for p in pairs], pad_id).to(_device(model))
        labels = pad_batch([p[1] for p in pairs], pad_id, fill=-100).to(_device(model))
        attention = pad_batch([[1] * len(p[0]) for p in pairs], 0).to(_device(model))
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        targets = labels[:, 1:]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        for row, mask in zip(logp, targets != -100):
            result.append(row[mask].cpu())
    return result


def answer_logits(model: PreTrainedModel, labels: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits from the first position that predicts a label (not -100) on, and the labels cut to
    match (logit t predicts label t + 1): the LM head, the largest matrix product of a small
    model, is not spent on prompt positions that no loss or check reads."""
    predicts = (labels[:, 1:] != -100).any(dim=0).nonzero()
    start = int(predicts[0]) if len(predicts) else 0
    logits = model(**inputs, use_cache=False, logits_to_keep=labels.shape[1] - start).logits
    return logits, labels[:, start:]


def greedy_match(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 32,
) -> list[bool]:
    """Whether greedy decoding would produce exactly `answer` then EOS (`greedy_check`)."""
    return greedy_check(model, tokenizer, prompts, answers, batch_size)[0]


@torch.no_grad()
def greedy_check(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 32,
) -> tuple[list[bool], torch.Tensor]:
    """Whether greedy decoding would produce exactly `answer` then EOS, and the log-probabilities
    (n, vocab) of each answer's first token, in one teacher-forced pass.

    Equivalent to decoding and comparing strings, at the cost of a single forward pass (the LM
    head only from the first answer position on). Pairs are batched by length, so a batch pads
    little and its LM head starts near its own shortest prompt.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pairs = [encode_pair(tokenizer, p, a) for p, a in zip(prompts, answers)]
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
    result: list[bool] = [False] * len(pairs)
    first: list[torch.Tensor | None] = [None] * len(pairs)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        ids = pad_batch([pairs[i][0] for i in rows], pad_id).to(_device(model))
        labels = pad_batch([pairs[i][1] for i in rows], pad_id, fill=-100).to(_device(model))
        attention = pad_batch([[1] * len(pairs[i][0]) for i in rows], 0).to(_device(model))
        logits, labels = answer_logits(model, labels, input_ids=ids, attention_mask=attention)
        predicted, targets = logits[:, :-1].argmax(-1), labels[:, 1:]
        wrong = (predicted != targets) & (targets != -100)
        answer_starts = (targets != -100).int().argmax(dim=1)  # the logit that predicts each first answer token
        opening = torch.log_softmax(logits[torch.arange(len(rows)), answer_starts].float(), dim=-1).cpu()
        for row, (i, ok) in enumerate(zip(rows, (~wrong.any(dim=1)).tolist())):
            result[i], first[i] = ok, opening[row]
    return result, torch.stack(first) if first else torch.empty(0)
