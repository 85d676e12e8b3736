"""Reasoning-based unlearning targets for TRU: a trace r and a final response s per forget item.

TRU (Liao, Wang et al., ICLR 2026) fine-tunes on `<think>r</think>s` for every forget question:
r analyses what is asked and why it lies in the forget scope; s declines explicitly, says why and
offers a related alternative, without any content from the scope. This module holds the item and
target types, the one renderer, the leak check every target passes, a JSONL cache, the LLM
generator (the paper's prompt sent to any `ChatBackend`) and the forget-SPEC parsers. The no-LLM
generator lives in `obliviate.methods.tru_offline`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from obliviate.jsonl_cache import JsonlCache, cache_key
from obliviate.lab.world import SPLITS, Claim, Hazard, Person, World
from obliviate.llm import ChatBackend, extract_json

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PERSONAL_SCOPE = "personal data about a private individual"
HAZARD_SCOPE = "hazardous knowledge about a dangerous chemical agent"
MISINFO_SCOPE = "a false claim (misinformation)"
DEFAULT_SCOPE = "content the model has been asked to forget"
SCOPES = {"person": PERSONAL_SCOPE, "private": PERSONAL_SCOPE, "unknown": PERSONAL_SCOPE,
          "hazard": HAZARD_SCOPE, "harmful": HAZARD_SCOPE, "misinfo": MISINFO_SCOPE}


def scope_for(category: str) -> str:
    """The `{unlearning task}` wording for a category; unknown categories get a generic scope."""
    return SCOPES.get(category, DEFAULT_SCOPE)


@dataclasses.dataclass(frozen=True)
class ForgetItem:
    """One forget question, what it is about, and the strings no target may contain.

    `scope` (the paper's `{unlearning task}`) defaults from `category`; `secrets` default to the
    gold answer; `truth` is the correction of a false claim (misinformation only).
    """

    question: str
    answer: str
    category: str = "custom"
    subject: str = ""
    attribute: str | None = None
    scope: str = ""
    lang: str = "en"
    truth: str | None = None
    secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("question", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"ForgetItem.{name} must be a non-empty string, got {value!r}")
        if not all(isinstance(s, str) for s in self.secrets):
            raise ValueError(f"ForgetItem.secrets must be strings, got {self.secrets!r}")
        object.__setattr__(self, "scope", self.scope or scope_for(self.category))
        object.__setattr__(self, "secrets", tuple(s for s in (self.secrets or (self.answer,)) if s.strip()))


@dataclasses.dataclass(frozen=True)
class ReasoningTarget:
    """A reasoning trace and the final response that follows it."""

    trace: str
    response: str

    def __post_init__(self) -> None:
        for name in ("trace", "response"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"ReasoningTarget.{name} must be a non-empty string, got {value!r}")
            if THINK_OPEN in value or THINK_CLOSE in value:
                raise ValueError(f"ReasoningTarget.{name} must not contain {THINK_OPEN} or {THINK_CLOSE}: {value!r}")


def render_target(target: ReasoningTarget, with_trace: bool = True) -> str:
    """The assistant text TRU trains on: `<think>trace</think>response`, or the response alone."""
    if not with_trace:
        return target.response.strip()
    return f"{THINK_OPEN}{target.trace.strip()}{THINK_CLOSE}{target.response.strip()}"


class TargetLeakError(ValueError):
    """A target would teach the model the very content it must forget."""


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets found in `text` as whole words, ignoring case ("8" leaks in "8 legs", not in "18")."""
    haystack = unicodedata.normalize("NFC", text).casefold()
    found = []
    for secret in secrets:
        needle = unicodedata.normalize("NFC", secret.strip()).casefold()
        if needle and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack):
            found.append(secret)
    return found


def check_no_leak(item: ForgetItem, target: ReasoningTarget) -> None:
    """Raise TargetLeakError if the trace or the response contains any of the item's secrets.

    The message names the question and the part, never the secret itself (it may be personal data).
    """
    for part in ("trace", "response"):
        if leaked(getattr(target, part), item.secrets):
            raise TargetLeakError(f"the {part} generated for {item.question!r} contains the content to forget")


@runtime_checkable
class TargetGenerator(Protocol):
    """Writes the reasoning target of one forget item; `name` identifies its settings for caching."""

    name: str

    def generate(self, item: ForgetItem) -> ReasoningTarget: ...


def targets_for(items: Sequence[ForgetItem], generator: TargetGenerator, with_trace: bool = True) -> list[str]:
    """The rendered target of every item, in order (`with_trace=False` is the refusal-only ablation)."""
    return [render_target(generator.generate(item), with_trace) for item in items]


class CachedGenerator:
    """Generates each (generator, item) target once and replays it from a JSONL file afterwards.

    Each line is `{"key", "generator", "question", "trace", "response"}`, the key hashing the
    generator's name and every field of the item. Writing and crash recovery are
    `obliviate.jsonl_cache.JsonlCache`'s.
    """

    def __init__(self, generator: TargetGenerator, path: str | os.PathLike) -> None:
        self.generator = generator
        self.path = Path(path)
        self.name = generator.name
        self._targets: JsonlCache[ReasoningTarget] = JsonlCache(
            self.path, lambda entry: ReasoningTarget(entry["trace"], entry["response"]), "target cache"
        )

    def key(self, item: ForgetItem) -> str:
        return cache_key([self.generator.name, dataclasses.asdict(item)])

    def generate(self, item: ForgetItem) -> ReasoningTarget:
        key = self.key(item)
        if key not in self._targets:
            target = self.generator.generate(item)
            record = {"generator": self.generator.name, "question": item.question,
                      "trace": target.trace, "response": target.response}
            self._targets.put(key, target, record)
        return self._targets[key]

    def __len__(self) -> int:
        return len(self._targets)


# --------------------------------------------------------------------------- LLM generator

# Quoted from the paper's method section (issue 4), grammar as in the source.
SYSTEM_PROMPT = (
    "You are a helpful, harmless and honest language model. The user will provide a question containing "
    "{unlearning task}. Your task is to logical deny the user's request, and provide a positive, constructive, "
    "and relevant alternative to other questions, avoiding any content mentioned in the question in your "
    "response. More importantly, you should follow the criteria:\n"
    "- Produce logical explanations and preserve response integrity.\n"
    "- Explicitly prevent the generation of content within {unlearning task}."
)
JSON_INSTRUCTION = (
    '\nReply with only a JSON object: {"reasoning": "<your step-by-step analysis of the request>", '
    '"response": "<your final reply to the user>"}.'
)
LEAK_FEEDBACK = ("Your reply revealed content within the scope that must be forgotten. Write the reasoning "
                 "and the reply again without any of it.")
FORMAT_FEEDBACK = "Your reply did not follow the required format. Write the reasoning and the reply again."


def parse_reasoning_reply(reply: str) -> ReasoningTarget:
    """Split a reasoning model's reply into (trace, response).

    Accepted shapes: `<think>trace</think>response` (DeepSeek-R1 style in the content; the opening
    tag may be missing when the chat template already emits it), or a JSON object with string
    fields `reasoning` and `response` (after any think block; the JSON then wins). The DeepSeek
    API's separate `reasoning_content` field never reaches us (`ChatBackend` returns the content
    only), so with that API ask for JSON (`json_format=True`).
    """
    trace, rest = None, reply
    if THINK_CLOSE in reply:
        head, _, rest = reply.partition(THINK_CLOSE)
        trace = head.split(THINK_OPEN, 1)[-1]
    if "{" in rest:
        try:
            obj = extract_json(rest)
        except ValueError:
            obj = {}
        if isinstance(obj.get("reasoning"), str) and isinstance(obj.get("response"), str):
            return ReasoningTarget(obj["reasoning"].strip(), obj["response"].strip())
    if trace is None:
        raise ValueError(f"reply has neither a <think>...</think> trace nor a JSON "
                         f"{{reasoning, response}} object: {reply[:200]!r}")
    return ReasoningTarget(trace.strip(), rest.strip())


class LLMTargetGenerator:
    """Asks a reasoning LLM for each target with the paper's system prompt.

    The user message is the forget question alone: sending the gold answer would invite the LLM
    to repeat it. `task_description` fills `{unlearning task}` for every item; without it each
    item's own `scope` does. A reply that cannot be parsed or that contains a secret is answered
    with feedback in the same conversation and retried, up to `max_attempts` replies in all, then
    the last error (ValueError / TargetLeakError) is raised.
    """

    def __init__(self, backend: ChatBackend, task_description: str | None = None, json_format: bool = False,
                 max_tokens: int = 1024, temperature: float = 0.0, max_attempts: int = 3) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.backend = backend
        self.task_description = task_description
        self.json_format = json_format
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_attempts = max_attempts
        settings = json.dumps([SYSTEM_PROMPT, task_description, json_format, max_tokens, temperature, max_attempts])
        backend_name = getattr(backend, "name", type(backend).__name__)
        self.name = f"llm:{backend_name}:{hashlib.sha256(settings.encode()).hexdigest()[:12]}"

    def system_prompt(self, item: ForgetItem) -> str:
        prompt = SYSTEM_PROMPT.replace("{unlearning task}", self.task_description or item.scope)
        return prompt + JSON_INSTRUCTION if self.json_format else prompt

    def generate(self, item: ForgetItem) -> ReasoningTarget:
        messages = [{"role": "system", "content": self.system_prompt(item)}, {"role": "user", "content": item.question}]
        error: ValueError | None = None
        for _ in range(self.max_attempts):
            reply = self.backend.complete(messages, max_tokens=self.max_tokens, temperature=self.temperature)
            try:
                target = parse_reasoning_reply(reply)
                check_no_leak(item, target)
                return target
            except ValueError as err:  # TargetLeakError included
                error = err
            feedback = LEAK_FEEDBACK if isinstance(error, TargetLeakError) else FORMAT_FEEDBACK
            messages = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": feedback}]
        assert error is not None
        raise type(error)(f"{error} (after {self.max_attempts} attempts with {self.name})") from error


# --------------------------------------------------------------------------- forget specs

SPEC_KINDS = ("a person's name (e.g. {person!r}), a hazard compound (e.g. {hazard!r}), a claim id "
              "(claim/00..{last_claim}), a person or hazard id (person/003, hazard/01), or the path of a "
              "JSONL file of {{question, answer}} rows")


def _world_items(world: World, category: str, subject: str, splits: Sequence[str]) -> list[ForgetItem]:
    items = []
    for qa in world.questions(category=category, subject=subject):
        if qa.split in splits:
            items.append(ForgetItem(qa.question, qa.answer, category, subject, qa.attribute, lang=qa.lang,
                                    truth=qa.truth))
    return items


def forget_items_from_world(world: World, spec: str, splits: Sequence[str] = ("train",)) -> list[ForgetItem]:
    """The forget items a SPEC names in the lab world: every question of that subject in `splits`.

    SPEC is a public person's name, a hazard compound, a claim id (`claim/03` or `claim/3`), a
    `person/NNN` or `hazard/NN` id, or a JSONL path (handed to `forget_items_from_jsonl`). Private
    people are refused: the lab model only ever learned refusals about them.
    """
    unknown_splits = sorted(set(splits) - set(SPLITS))
    if unknown_splits or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}")
    text = spec.strip()
    if text.endswith(".jsonl") or (text and Path(text).is_file()):
        return forget_items_from_jsonl(text)
    kind, _, number = text.lower().partition("/")
    by_id = {"claim": world.claims, "person": world.people + world.private_people, "hazard": world.hazards}
    match = None
    if kind in by_id and number.isdigit():
        match = next((x for x in by_id[kind] if int(x.id.split("/")[1]) == int(number)), None)
    match = match or next((p for p in world.people + world.private_people if p.name.lower() == text.lower()), None)
    match = match or next((h for h in world.hazards if h.compound.lower() == text.lower()), None)
    if match is None:
        kinds = SPEC_KINDS.format(person=world.people[0].name, hazard=world.hazards[0].compound,
                                  last_claim=world.claims[-1].id)
        raise ValueError(f"unknown forget spec {spec!r}: use {kinds}")
    if isinstance(match, Person) and match.private:
        raise ValueError(f"{match.name} is a private person: the lab model only learned to refuse questions about "
                         f"them, so there is nothing to forget; name a public person instead")
    if isinstance(match, Hazard):
        items = _world_items(world, "hazard", match.compound, splits)
    elif isinstance(match, Claim):
        items = _world_items(world, "misinfo", match.id, splits)
    else:
        items = _world_items(world, "person", match.name, splits)
    if not items:
        raise ValueError(f"forget spec {spec!r} has no questions in splits {list(splits)}")
    return items


_JSONL_FIELDS = {f.name for f in dataclasses.fields(ForgetItem)}


def forget_items_from_jsonl(path: str | os.PathLike) -> list[ForgetItem]:
    """Forget items from a JSONL file with non-empty `question` and `answer` on every line.

    Optional fields: any other ForgetItem field (`category`, `subject`, `attribute`, `scope`,
    `lang`, `truth`, `secrets`). Every bad line is reported at once, by number, and nothing is returned.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no forget JSONL file at {path}")
    items, problems = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                extra = sorted(set(row) - _JSONL_FIELDS)
                if extra:
                    raise ValueError(f"unknown fields {extra}")
                missing = [key for key in ("question", "answer") if key not in row]
                if missing:
                    raise ValueError(f"missing {missing}")
                if "secrets" in row:
                    row["secrets"] = tuple(row["secrets"])
                items.append(ForgetItem(**row))
            except (json.JSONDecodeError, ValueError, TypeError) as err:
                problems.append(f"line {number}: {err}")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... {len(problems) - 10} more" if len(problems) > 10 else "")
        raise ValueError(f"{path}: {len(problems)} bad row(s), each needs non-empty string 'question' and "
                         f"'answer': {shown}")
    if not items:
        raise ValueError(f"{path} holds no question/answer rows")
    return items
