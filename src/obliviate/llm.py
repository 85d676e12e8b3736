"""One small chat-model interface shared by every component that asks an LLM something.

The LLM watchdog, the LLM judge and the TRU target generator all need "send these messages, get
text back" from either a local Hugging Face model or an OpenAI-compatible server. They depend on
the `ChatBackend` protocol only, so tests can pass a fake and users can pick any backend.
"""

from __future__ import annotations

import ast
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from obliviate.jsonl_cache import JsonlCache, cache_key

if TYPE_CHECKING:  # torch and transformers load with the first local model, not with the HTTP client
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Messages = Sequence[dict[str, str]]

_ROLES = {"system", "user", "assistant"}


class ChatError(RuntimeError):
    """A chat backend failed to produce a reply (HTTP error, unreachable server, malformed body)."""


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that turns a list of chat messages into the assistant's reply text."""

    def complete(self, messages: Messages, max_tokens: int = 512, temperature: float = 0.0) -> str: ...


def validate_messages(messages: Messages) -> list[dict[str, str]]:
    """Check the OpenAI message shape once, so every backend fails the same clear way."""
    if not messages:
        raise ValueError("messages must not be empty")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f"message {i} must be a dict with exactly 'role' and 'content', got {message!r}")
        if message["role"] not in _ROLES:
            raise ValueError(f"message {i} has role {message['role']!r}; use one of {sorted(_ROLES)}")
        if not isinstance(message["content"], str):
            raise ValueError(f"message {i} content must be a string")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked


def _check_sampling(max_tokens: int, temperature: float) -> None:
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")


class OpenAIChat:
    """A server speaking the OpenAI `/chat/completions` JSON API (vLLM, llama.cpp, Ollama, OpenAI).

    `base_url` is the API root that `/chat/completions` is appended to, e.g.
    `http://localhost:8000/v1`. Uses only the standard library.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("model must be a non-empty model name")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.name = f"openai:{self.url}:{model}"

    def complete(self, messages: Messages, max_tokens: int = 512, temperature: float = 0.0) -> str:
        _check_sampling(max_tokens, temperature)
        body = {
            "model": self.model,
            "messages": validate_messages(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise ChatError(f"{self.url} answered HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise ChatError(f"cannot reach {self.url}: {error}") from error
        return _reply_text(raw, self.url)


def _reply_text(raw: bytes, url: str) -> str:
    """The assistant text of a `/chat/completions` response body, or a ChatError saying what is wrong."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ChatError(f"{url} returned a body that is not JSON: {raw[:200]!r}") from error
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise ChatError(f"{url} returned JSON without choices[0].message.content: {str(payload)[:200]}") from error
    if not isinstance(content, str):
        raise ChatError(f"{url} returned non-text content: {content!r}")
    return content


class HFChat:
    """A local Hugging Face chat model, driven through `obliviate.chat` (greedy when temperature is 0)."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int = 256
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.name = f"hf:{getattr(model.config, '_name_or_path', '') or type(model).__name__}"

    def prompt(self, messages: Messages) -> str:
        """The formatted text the model continues: its chat template, or a plain role-prefixed transcript."""
        checked = validate_messages(messages)
        if self.tokenizer.chat_template is not None:
            return self.tokenizer.apply_chat_template(checked, tokenize=False, add_generation_prompt=True)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in checked]
        return "\n".join(lines) + "\nAssistant:"

    def complete(self, messages: Messages, max_tokens: int = 512, temperature: float = 0.0) -> str:
        _check_sampling(max_tokens, temperature)
        prompt = self.prompt(messages)
        budget = min(max_tokens, self.max_new_tokens)
        if temperature == 0:
            from obliviate.chat import generate

            return generate(self.model, self.tokenizer, [prompt], max_new_tokens=budget)[0]
        return self._sample(prompt, budget, temperature)

    def _sample(self, prompt: str, max_new_tokens: int, temperature: float) -> str:
        import torch

        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids.to(next(self.model.parameters()).device)
        pad_id = self.tokenizer.pad_token_id
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=temperature,
                pad_token_id=pad_id if pad_id is not None else self.tokenizer.eos_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        return self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def extract_json(text: str) -> dict:
    """The first JSON object in a model reply, wherever it sits (bare, in ```json fences, or in prose).

    Also accepts a Python-literal dict (`{'intent': True}`), which small models often write.
    Raises ValueError when the reply holds no object.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = _python_literal(text, start)
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise ValueError(f"no JSON object in reply: {text[:200]!r}")


def _python_literal(text: str, start: int) -> object:
    """Parse the balanced `{...}` at `start` as a Python literal, or return None."""
    depth = 0
    for end in range(start, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                try:
                    return ast.literal_eval(text[start : end + 1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    return None
    return None


class CachedChat:
    """Replays replies from a JSONL file so judges and generators never pay twice for one question.

    Each line is `{"key", "reply"}`; the key hashes the backend name, messages, max_tokens and
    temperature. Writing and crash recovery are `obliviate.jsonl_cache.JsonlCache`'s.
    """

    def __init__(self, backend: ChatBackend, path: str | os.PathLike, namespace: str | None = None) -> None:
        self.backend = backend
        self.path = Path(path)
        self.namespace = namespace if namespace is not None else getattr(backend, "name", type(backend).__name__)
        self.name = f"cached:{self.namespace}"
        self._replies: JsonlCache[str] = JsonlCache(self.path, lambda entry: entry["reply"], "chat cache")

    def key(self, messages: Messages, max_tokens: int, temperature: float) -> str:
        return cache_key([self.namespace, validate_messages(messages), max_tokens, float(temperature)])

    def complete(self, messages: Messages, max_tokens: int = 512, temperature: float = 0.0) -> str:
        key = self.key(messages, max_tokens, temperature)
        if key in self._replies:
            return self._replies[key]
        reply = self.backend.complete(messages, max_tokens=max_tokens, temperature=temperature)
        self._replies.put(key, reply, {"reply": reply})
        return reply

    def __len__(self) -> int:
        return len(self._replies)


def chat_backend(
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str | None = None,
    hf_model: str | None = None,
    cache: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> ChatBackend | None:
    """The backend a command line names: an OpenAI-compatible server (`base_url` and `model`, the
    key read from the environment variable `api_key_env`), or a local Hugging Face chat model
    (`hf_model`), its replies kept in `cache` if given; None when none is named."""
    if (base_url is None) != (model is None):
        raise ValueError("a chat server needs both its URL and a model name")
    if base_url is not None and hf_model is not None:
        raise ValueError("name a chat server or a local model, not both")
    if cache is not None and base_url is None and hf_model is None:
        raise ValueError("a reply cache needs a chat server or a local model to cache")
    backend: ChatBackend | None = None
    if base_url is not None:
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise ValueError(f"the environment variable {api_key_env} holds no API key")
        backend = OpenAIChat(base_url, model, api_key=api_key, timeout=timeout)
    elif hf_model is not None:
        from obliviate.models import load

        loaded, tokenizer = load(hf_model)
        backend = HFChat(loaded, tokenizer, max_new_tokens=128)
    if backend is not None and cache is not None:
        backend = CachedChat(backend, cache)
    return backend
