"""The shared chat client: OpenAI-compatible HTTP, local HF models, JSON extraction, the reply cache."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from obliviate.chat import chat_prompt, generate
from obliviate.jsonl_cache import JsonlCache
from obliviate.llm import CachedChat, ChatBackend, ChatError, HFChat, OpenAIChat, extract_json, validate_messages

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]


class FakeServer(BaseHTTPRequestHandler):
    """Mimics `/v1/chat/completions`; the model name picks the behaviour."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeServer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        mode = body["model"]
        if mode == "boom":
            self._send(500, b'{"error": "model crashed"}')
        elif mode == "not-json":
            self._send(200, b"<html>gateway</html>")
        elif mode == "no-choices":
            self._send(200, b'{"object": "chat.completion", "choices": []}')
        else:
            reply = f"echo: {body['messages'][-1]['content']} ({body['max_tokens']}, {body['temperature']})"
            self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode())

    def _send(self, code: int, payload: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def server_url():
    server = HTTPServer(("127.0.0.1", 0), FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_chat_round_trip(server_url):
    FakeServer.requests.clear()
    chat = OpenAIChat(server_url + "/", "tiny-model", api_key="sk-test")
    assert isinstance(chat, ChatBackend)
    assert chat.complete(MESSAGES, max_tokens=7, temperature=0.5) == "echo: Say hi (7, 0.5)"
    (request,) = FakeServer.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "tiny-model"
    assert request["body"]["messages"] == MESSAGES
    assert request["auth"] == "Bearer sk-test"


def test_openai_chat_sends_no_auth_header_without_key(server_url):
    FakeServer.requests.clear()
    OpenAIChat(server_url, "tiny-model").complete(MESSAGES)
    assert FakeServer.requests[0]["auth"] is None


def test_openai_chat_http_500_is_a_clear_error(server_url):
    with pytest.raises(ChatError, match=r"HTTP 500.*model crashed"):
        OpenAIChat(server_url, "boom").complete(MESSAGES)


@pytest.mark.parametrize("mode, message", [("not-json", "not JSON"), ("no-choices", "choices")])
def test_openai_chat_malformed_body_is_a_clear_error(server_url, mode, message):
    with pytest.raises(ChatError, match=message):
        OpenAIChat(server_url, mode).complete(MESSAGES)


def test_openai_chat_unreachable_server():
    probe = HTTPServer(("127.0.0.1", 0), FakeServer)  # bind then close: the port is free and nobody listens
    port = probe.server_address[1]
    probe.server_close()
    with pytest.raises(ChatError, match="cannot reach"):
        OpenAIChat(f"http://127.0.0.1:{port}/v1", "m", timeout=2).complete(MESSAGES)


def test_openai_chat_rejects_bad_arguments():
    with pytest.raises(ValueError, match="http"):
        OpenAIChat("localhost:8000/v1", "m")
    with pytest.raises(ValueError, match="model"):
        OpenAIChat("http://localhost:8000/v1", "")
    chat = OpenAIChat("http://127.0.0.1:9/v1", "m")
    with pytest.raises(ValueError, match="max_tokens"):
        chat.complete(MESSAGES, max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        chat.complete(MESSAGES, temperature=-1)


@pytest.mark.parametrize(
    "messages, error",
    [
        ([], "empty"),
        ([{"role": "robot", "content": "x"}], "role"),
        ([{"role": "user"}], "exactly"),
        ([{"role": "user", "content": 3}], "string"),
    ],
)
def test_validate_messages(messages, error):
    with pytest.raises(ValueError, match=error):
        validate_messages(messages)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"intent": true, "target": "my address"}', {"intent": True, "target": "my address"}),
        ('```json\n{"intent": false, "target": null}\n```', {"intent": False, "target": None}),
        ('Sure! Here is my verdict: {"a": {"b": [1, 2]}, "c": "}"} Hope that helps.', {"a": {"b": [1, 2]}, "c": "}"}),
        ("Use {braces} carefully. {\"ok\": 1}", {"ok": 1}),
        ("[1, 2] then {\"x\": 2}", {"x": 2}),
        ("{'intent': True, 'target': None}", {"intent": True, "target": None}),
    ],
)
def test_extract_json_finds_the_first_object(reply, expected):
    assert extract_json(reply) == expected


@pytest.mark.parametrize("reply", ["", "no json here", "{not: valid", "[1, 2, 3]", "{'a': os.system('x')}"])
def test_extract_json_rejects_replies_without_an_object(reply):
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json(reply)


class CountingBackend:
    def __init__(self) -> None:
        self.calls = 0
        self.name = "counting"

    def complete(self, messages, max_tokens=512, temperature=0.0):
        self.calls += 1
        return f"reply {self.calls} to {messages[-1]['content']}"


def test_cached_chat_replays_and_persists(tmp_path):
    path = tmp_path / "cache" / "chat.jsonl"
    backend = CountingBackend()
    cached = CachedChat(backend, path)
    first = cached.complete(MESSAGES, max_tokens=10)
    assert cached.complete(MESSAGES, max_tokens=10) == first
    assert backend.calls == 1
    cached.complete(MESSAGES, max_tokens=11)  # other parameters are another question
    cached.complete(MESSAGES, max_tokens=10, temperature=0.7)
    assert backend.calls == 3
    reopened = CachedChat(CountingBackend(), path)
    assert len(reopened) == 3
    assert reopened.complete(MESSAGES, max_tokens=10) == first
    assert reopened.backend.calls == 0
    assert len(path.read_text().splitlines()) == 3


def test_cached_chat_namespaces_keep_backends_apart(tmp_path):
    path = tmp_path / "chat.jsonl"
    CachedChat(CountingBackend(), path, namespace="model-a").complete(MESSAGES)
    other = CountingBackend()
    CachedChat(other, path, namespace="model-b").complete(MESSAGES)
    assert other.calls == 1


def test_cached_chat_survives_a_truncated_last_line(tmp_path, caplog):
    path = tmp_path / "chat.jsonl"
    cached = CachedChat(CountingBackend(), path)
    cached.complete(MESSAGES)
    with path.open("a") as handle:
        handle.write('{"key": "abc", "rep')  # a crash mid-append
    reopened = CachedChat(CountingBackend(), path)
    assert len(reopened) == 1
    assert "unreadable line 2" in caplog.text
    reopened.complete([{"role": "user", "content": "new"}])
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["reply"] == "reply 1 to new"  # the new entry starts on its own line
    assert len(CachedChat(CountingBackend(), path)) == 2


def test_jsonl_cache_puts_many_in_one_append_after_a_truncated_line(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text('{"key": "a", "answer": "1"}\n{"key": "b", "ans')  # a crash mid-append
    cache = JsonlCache(path, lambda entry: entry["answer"], "answer cache")
    cache.put_many([("b", "2", {"answer": "2"}), ("c", "3", {"answer": "3"})])
    cache.put_many([])  # nothing to write, nothing written
    assert [cache[k] for k in "abc"] == ["1", "2", "3"]
    reopened = JsonlCache(path, lambda entry: entry["answer"], "answer cache")
    assert len(reopened) == 3 and [reopened[k] for k in "abc"] == ["1", "2", "3"]
    assert path.read_text().endswith('{"key": "c", "answer": "3"}\n')


def _tiny_chat_model():
    torch.manual_seed(0)
    words = ["<pad>", "<eos>", "<unk>", "system", "user", "assistant", ":", "Be", "brief.", "Say", "hi", "hello"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant : {% endif %}"
    )
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=1)
    return LlamaForCausalLM(config).eval(), tok


def test_hf_chat_uses_the_chat_template_and_greedy_decoding():
    model, tok = _tiny_chat_model()
    chat = HFChat(model, tok, max_new_tokens=5)
    assert chat.prompt(MESSAGES) == "system : Be brief. user : Say hi assistant : "
    reply = chat.complete(MESSAGES)
    assert reply == generate(model, tok, [chat.prompt(MESSAGES)], max_new_tokens=5)[0]
    assert len(tok(reply, add_special_tokens=False)["input_ids"]) <= 5
    assert chat.complete(MESSAGES, max_tokens=2) == generate(model, tok, [chat.prompt(MESSAGES)], max_new_tokens=2)[0]
    sampled = chat.complete(MESSAGES, temperature=1.0)
    assert isinstance(sampled, str)


def test_hf_chat_without_template_uses_a_plain_transcript():
    model, tok = _tiny_chat_model()
    tok.chat_template = None
    assert HFChat(model, tok).prompt(MESSAGES) == "System: Be brief.\nUser: Say hi\nAssistant:"
    assert chat_prompt(tok, "Say hi").endswith("Answer:")  # the shared single-turn frame is unchanged
    with pytest.raises(ValueError, match="max_new_tokens"):
        HFChat(model, tok, max_new_tokens=0)
