"""Per-architecture table: where each TransformerLens-style hook point
lives in a Hugging Face model.

One generic hooking mechanism (hf.py) reads this table; adding an architecture is adding a row.
Module paths are dotted attribute paths: top-level ones from the CausalLM object, block-level ones
from one block of the block list; "a|b" names a module that transformers versions call differently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArchSpec:
    blocks: str  # the ModuleList of transformer blocks
    embed: str  # token embedding
    final_norm: str  # norm applied after the last block
    lm_head: str  # unembedding
    attn_out: str  # block module whose output is what attention adds to the residual
    mlp_in: str  # block module whose input is resid_mid (the norm before the MLP)
    mlp_out: str  # block module whose output is what the MLP adds to the residual
    down_proj: str  # block module whose input is the MLP neuron activations (hook_post)
    norm_offset: float = 0.0  # Gemma's RMSNorm scales by (1 + weight)
    # Attention and MLP read the same resid_pre (GPT-NeoX): there is no resid_mid.
    parallel: Callable[[Any], bool] = lambda config: False


_LLAMA = ArchSpec(
    blocks="model.layers",
    embed="model.embed_tokens",
    final_norm="model.norm",
    lm_head="lm_head",
    attn_out="self_attn",
    mlp_in="post_attention_layernorm",
    mlp_out="mlp",
    down_proj="mlp.down_proj",
)
# Gemma 2/3 norm each sub-layer's output before adding it to the residual stream.
_GEMMA2 = ArchSpec(
    blocks="model.layers",
    embed="model.embed_tokens",
    final_norm="model.norm",
    lm_head="lm_head",
    attn_out="post_attention_layernorm",
    mlp_in="pre_feedforward_layernorm",
    mlp_out="post_feedforward_layernorm",
    down_proj="mlp.down_proj",
    norm_offset=1.0,
)

ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": ArchSpec(**{**_LLAMA.__dict__, "norm_offset": 1.0}),
    "gemma2": _GEMMA2,
    "gemma3_text": _GEMMA2,
    "gpt2": ArchSpec(
        blocks="transformer.h",
        embed="transformer.wte",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        attn_out="attn",
        mlp_in="ln_2",
        mlp_out="mlp",
        down_proj="mlp.c_proj",
    ),
    "gpt_neox": ArchSpec(
        blocks="gpt_neox.layers",
        embed="gpt_neox.embed_in",
        final_norm="gpt_neox.final_layer_norm",
        lm_head="lm_head|embed_out",  # renamed in transformers 5
        attn_out="attention",
        mlp_in="post_attention_layernorm",
        mlp_out="mlp",
        down_proj="mlp.dense_4h_to_h",
        parallel=lambda config: bool(getattr(config, "use_parallel_residual", False)),
    ),
}


def get_module(root: Any, path: str) -> Any:
    """Follow a dotted attribute path ("model.layers") from root; "a|b" tries a, then b."""
    options = path.split("|")
    for option in options:
        module = root
        try:
            for part in option.split("."):
                module = getattr(module, part)
        except AttributeError:
            if option == options[-1]:
                raise
            continue
        return module
    raise AssertionError("unreachable")
