"""Tiny models, word-level chat tokenizers and a scripted chat backend for the tests (no download).

`constant_logit_llama` replaces the LM head with a bias-only layer, so every position predicts the
same distribution softmax(bias): token log-probabilities, NLLs and greedy outputs are then known
in closed form and the model-calling metrics can be checked against hand-computed values.
"""

from __future__ import annotations

import math

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<unk>", "<eos>", "<user>", "<assistant>"]
THINK_SPECIALS = SPECIALS + ["<think>", "</think>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
WORDS = (
    "who what where when is was the a an of in born wrote capital city author book paris london "
    "rome berlin madrid lyon 1971 1980 yes no france italy veltrosa lived river small quiet house "
    "green tree"
).split()
VOCAB_SIZE = 48


def word_tokenizer(
    words: list[str], specials: list[str] = SPECIALS, split_punctuation: bool = False
) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `specials + words` (ids in that order) with a `<user> ... <assistant>`
    chat template; `specials[:3]` are pad, unk and eos. `split_punctuation` makes punctuation runs
    tokens of their own (the `Whitespace` pre-tokenizer) instead of splitting on spaces only."""
    vocab = {w: i for i, w in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<eos>",
        additional_special_tokens=specials[3:],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """The word-level chat tokenizer over `WORDS`, within `VOCAB_SIZE`."""
    tok = word_tokenizer(WORDS)
    assert len(tok) <= VOCAB_SIZE
    return tok


def tiny_llama(
    seed: int = 0, vocab_size: int = VOCAB_SIZE, dtype: torch.dtype = torch.float32
) -> LlamaForCausalLM:
    """A randomly initialised 2-layer Llama (hidden size 32) in eval mode."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).to(dtype).eval()


def constant_logit_llama(bias: dict[int, float]) -> LlamaForCausalLM:
    """A tiny Llama whose logits are `bias` (token id -> logit, others 0) at every position."""
    model = tiny_llama()
    head = torch.nn.Linear(model.config.hidden_size, VOCAB_SIZE, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        for token_id, value in bias.items():
            head.bias[token_id] = value
    model.lm_head = head
    return model


def constant_logprob(bias: dict[int, float], token_id: int) -> float:
    """log softmax(bias)[token_id] over the whole vocabulary, by hand."""
    logits = [bias.get(i, 0.0) for i in range(VOCAB_SIZE)]
    return logits[token_id] - math.log(sum(math.exp(v) for v in logits))


class FakeChat:
    """A `ChatBackend` that replays `replies` in order (repeating the last) and records every
    conversation it was sent in `calls`; with no replies, any call is an error."""

    name = "fake"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []

    def complete(self, messages, max_tokens: int = 512, temperature: float = 0.0) -> str:
        self.calls.append([dict(m) for m in messages])
        return self.replies[min(len(self.calls), len(self.replies)) - 1]
