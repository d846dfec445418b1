"""Tiny randomly initialised causal LMs of every supported architecture, and the tests' own
by-hand recomputation of each block's MLP path (independent of saescope's architecture table)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import transformers as tf

SMALL = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=64,
)
GQA = dict(SMALL, num_key_value_heads=2)


def _gated(mlp: Any, x: torch.Tensor) -> torch.Tensor:
    return mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)


@dataclass
class Case:
    """How the test reaches into one architecture's blocks by hand."""

    make: Any  # () -> PreTrainedModel
    mlp_norm: str  # the norm before the MLP (its input is resid_mid)
    neurons: Any  # (mlp module, normed input) -> MLP neuron activations
    down: str  # down projection, relative to the block
    out_norm: str | None  # norm applied to each sub-layer's output (Gemma 2/3)
    attn_proj: str  # attention output projection, relative to the block
    parallel: bool = False


def _llama_like(config_cls: Any, model_cls: Any, **extra: Any) -> Case:
    return Case(
        lambda: model_cls(config_cls(**GQA, **extra)),
        "post_attention_layernorm",
        _gated,
        "mlp.down_proj",
        None,
        "self_attn.o_proj",
    )


def _gemma2_like(config_cls: Any, model_cls: Any) -> Case:
    config = dict(
        GQA, head_dim=8, sliding_window=4, query_pre_attn_scalar=8, attn_implementation="eager"
    )
    return Case(
        lambda: model_cls(config_cls(**config)),
        "pre_feedforward_layernorm",
        _gated,
        "mlp.down_proj",
        "post_feedforward_layernorm",
        "self_attn.o_proj",
    )


def _neox(parallel: bool) -> Case:
    return Case(
        lambda: tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(**SMALL, use_parallel_residual=parallel)),
        "post_attention_layernorm",
        lambda mlp, x: mlp.act(mlp.dense_h_to_4h(x)),
        "mlp.dense_4h_to_h",
        None,
        "attention.dense",
        parallel=parallel,
    )


CASES: dict[str, Case] = {
    "llama": _llama_like(tf.LlamaConfig, tf.LlamaForCausalLM),
    "mistral": _llama_like(tf.MistralConfig, tf.MistralForCausalLM),
    "qwen2": _llama_like(tf.Qwen2Config, tf.Qwen2ForCausalLM),
    "qwen3": _llama_like(tf.Qwen3Config, tf.Qwen3ForCausalLM, head_dim=8),
    "gemma": _llama_like(tf.GemmaConfig, tf.GemmaForCausalLM, head_dim=8),
    "gemma2": _gemma2_like(tf.Gemma2Config, tf.Gemma2ForCausalLM),
    "gemma3": _gemma2_like(tf.Gemma3TextConfig, tf.Gemma3ForCausalLM),
    "gpt2": Case(
        lambda: tf.GPT2LMHeadModel(
            tf.GPT2Config(
                vocab_size=96,
                n_embd=32,
                n_layer=3,
                n_head=4,
                n_inner=48,
                n_positions=64,
                bos_token_id=0,
                eos_token_id=0,
            )
        ),
        "ln_2",
        lambda mlp, x: mlp.act(mlp.c_fc(x)),
        "mlp.c_proj",
        None,
        "attn.c_proj",
    ),
    "neox": _neox(parallel=False),
    "neox_parallel": _neox(parallel=True),
}


def build(name: str, seed: int = 0) -> Any:
    """The tiny model with every parameter drawn at random (norm weights too, so Gemma's 1 + w
    and LayerNorm biases matter), in eval mode."""
    torch.manual_seed(seed)
    model = CASES[name].make().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.ndim == 1:
                p.normal_(mean=1.0 if pname.endswith("weight") else 0.0, std=0.3)
            else:
                p.normal_(std=0.15)
    return model


def sub(module: Any, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def blocks(hf_model: Any) -> Any:
    base = hf_model.base_model
    return base.layers if hasattr(base, "layers") else base.h
