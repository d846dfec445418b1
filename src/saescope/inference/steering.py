"""Steered generation: continue a prompt greedily with one SAE feature clamped or scaled.

The feature is changed inside the SAE's reconstruction at its hook point while the SAE's
error term is kept: x' = x + decode(a') - decode(a), where a' is a with feature f set to
`value` (clamp) or multiplied by it (scale). The steered and the unsteered continuations
are generated side by side as one batch of two, so both come from one forward per token.
The running job's time limit is checked before every token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from saescope.errors import ConfigError, SaescopeError
from saescope.inference.limits import check_time
from saescope.models import HookedModel
from saescope.sae import SAE

STEER_MODES = ("clamp", "scale")
MAX_NEW_TOKENS = 64  # greedy generation is bounded: a request never runs long


@dataclass
class Continuation:
    text: str  # the generated text alone (the prompt not included)
    token_ids: list[int]
    tokens: list[str]  # each generated token as text


@dataclass
class SteeringResult:
    prompt: str
    prompt_tokens: list[str]
    hook_point: str
    feature: int
    mode: str
    value: float
    steered: Continuation
    unsteered: Continuation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_steering(sae: SAE, feature: int, mode: str, value: float, max_new_tokens: int) -> None:
    """Raise ConfigError naming the first bad argument."""
    if not 0 <= feature < sae.d_sae:
        raise ConfigError("feature", feature, f"a feature id in 0..{sae.d_sae - 1}")
    if mode not in STEER_MODES:
        raise ConfigError("mode", mode, f"one of {', '.join(STEER_MODES)}")
    if not torch.isfinite(torch.tensor(float(value))):
        raise ConfigError("value", value, "a finite number")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ConfigError("max_new_tokens", max_new_tokens, f"an integer in 1..{MAX_NEW_TOKENS}")
    if sae.cfg.transcoder:
        raise SaescopeError(
            "steering: transcoder features write to another hook point; "
            "steering supports SAEs (hook_name_out unset) only."
        )
    if not sae.cfg.hook_name:
        raise SaescopeError(
            "steering: the SAE's cfg.json names no hook point (hook_name); "
            "it cannot be spliced into the model."
        )


def steering_fn(
    sae: SAE, feature: int, mode: str, value: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The hook replacement: steers batch row 0 and leaves row 1 (the unsteered run) as it is."""

    def replace(x: torch.Tensor) -> torch.Tensor:  # x: [2, ctx, d_in]
        acts, stats = sae.encode_with_stats(x[:1])  # [1, ctx, d_sae]
        steered = acts.clone()
        steered[..., feature] = value if mode == "clamp" else acts[..., feature] * value
        delta = sae.decode_with_stats(steered, stats) - sae.decode_with_stats(acts, stats)
        out = x.clone()
        out[:1] += delta.to(x.dtype)
        return out

    return replace


@torch.inference_mode()
def steer(
    model: HookedModel,
    sae: SAE,
    prompt: str,
    feature: int,
    mode: str = "clamp",
    value: float = 10.0,
    max_new_tokens: int = 32,
) -> SteeringResult:
    """Greedy continuations of `prompt`, steered and unsteered, `max_new_tokens` at most each
    (a continuation ends early at the end-of-sequence token)."""
    check_steering(sae, feature, mode, value, max_new_tokens)
    tokens = model.to_tokens(prompt)  # [1, n]
    model.check_context_length(tokens.shape[1] + max_new_tokens)
    replacements = {sae.hook_name: steering_fn(sae, feature, mode, value)}
    generated = _generate(model, tokens.repeat(2, 1), replacements, max_new_tokens)  # [2, new]
    eos = model.tokenizer.eos_token_id
    return SteeringResult(
        prompt=prompt,
        prompt_tokens=_token_texts(model, tokens[0].tolist()),
        hook_point=sae.hook_name,
        feature=feature,
        mode=mode,
        value=float(value),
        steered=_continuation(model, generated[0].tolist(), eos),
        unsteered=_continuation(model, generated[1].tolist(), eos),
    )


def _generate(
    model: HookedModel, tokens: torch.Tensor, replacements: dict[str, Any], max_new_tokens: int
) -> torch.Tensor:
    """Greedy tokens [batch, new]; every row runs max_new_tokens steps or until all hit EOS."""
    eos = model.tokenizer.eos_token_id
    install = getattr(model, "replacements_installed", None)
    new: list[torch.Tensor] = []
    done = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    if install is not None and model.hf_model is not None:
        # A KV cache: each step runs one new position (the hook steers it as it is computed).
        with install(replacements):
            out = model.hf_model(input_ids=tokens, use_cache=True)
            for step in range(max_new_tokens):
                next_ids = out.logits[:, -1].argmax(-1)  # [batch]
                new.append(next_ids)
                done |= next_ids == eos
                if done.all() or step == max_new_tokens - 1:
                    break
                check_time()
                out = model.hf_model(
                    input_ids=next_ids[:, None], past_key_values=out.past_key_values, use_cache=True
                )
    else:  # other backends: the whole sequence again at each step
        for _ in range(max_new_tokens):
            check_time()
            logits = model.run_with_replacement(tokens, replacements)
            next_ids = logits[:, -1].argmax(-1)
            new.append(next_ids)
            tokens = torch.cat([tokens, next_ids[:, None]], dim=1)
            done |= next_ids == eos
            if done.all():
                break
    return torch.stack(new, dim=1)


def _continuation(model: HookedModel, ids: list[int], eos: int | None) -> Continuation:
    if eos is not None and eos in ids:
        ids = ids[: ids.index(eos) + 1]
    text_ids = [i for i in ids if i != eos]
    return Continuation(
        text=model.tokenizer.decode(text_ids), token_ids=ids, tokens=_token_texts(model, ids)
    )


def _token_texts(model: HookedModel, ids: list[int]) -> list[str]:
    return [model.tokenizer.decode([i]) for i in ids]
