"""Tiny random models of the architectures the library supports (Llama, Qwen2, Mistral, Phi-3, GPT-2)."""

from __future__ import annotations

import torch
import transformers

VOCAB = 96

ARCHITECTURES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM"),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
}


def make_model(arch: str, dtype: torch.dtype = torch.float32):
    config_name, model_name = ARCHITECTURES[arch]
    config_cls, model_cls = getattr(transformers, config_name), getattr(transformers, model_name)
    if arch == "gpt2":
        config = config_cls(vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, n_inner=64, n_positions=64,
                            initializer_range=0.2, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    else:
        config = config_cls(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                            initializer_range=0.2, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    return model_cls(config).to(dtype).eval()
