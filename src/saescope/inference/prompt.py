"""The prompt-centric computation: one forward of the model on a prompt gives every token's
feature activations; at a chosen token the features are ranked by activation, by activation
quantile (relative to the stored quantile tables of the analysis) and by their effect on the
next token's log-prob.

The effect on the next token is the direct path, as the analysis computes it for its
examples: the feature's contribution to the residual stream (act * its decoder direction,
in the model's units) is taken out of the final residual, the final norm is applied as the
model applies it, and the change of log p(next token) is the effect. Positive: the feature
makes the actual next token more likely (lowers the loss).

Memory stays within a budget of elements whatever d_sae and the prompt's length: the encode
runs a block of tokens at a time, and the effects a chunk of features at a time (one
[features, d_sae] ablation and one [features, d_vocab] logit table per chunk), with the same
results as in one piece. Both loops check the running job's time limit between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from saescope.errors import ConfigError, SaescopeError
from saescope.inference.limits import CHUNK_ELEMENTS, check_time, chunks
from saescope.models.hooked import HookedModel, parse_hook
from saescope.sae import SAE, InputStats

# Hook kinds whose values live in the residual stream: a decoder direction there reaches the
# unembedding directly.
RESIDUAL_KINDS = (
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_out",
    "hook_mlp_out",
)


@dataclass
class QuantileTable:
    """The stored activation quantiles: levels [n_levels] and, per feature, the activations at
    those levels. `values_of(features)` -> [n, n_levels]; max_act_of(features) -> [n]."""

    levels: np.ndarray
    values_of: Callable[[list[int]], np.ndarray]
    max_act_of: Callable[[list[int]], np.ndarray]

    @classmethod
    def from_arrays(
        cls, levels: np.ndarray, values: np.ndarray, max_act: np.ndarray
    ) -> QuantileTable:
        """From FeatureTables-shaped arrays: values [d_sae, n_levels], max_act [d_sae]."""
        return cls(
            np.asarray(levels, dtype=np.float64),
            lambda fs: np.asarray(values)[fs],
            lambda fs: np.asarray(max_act)[fs],
        )

    @classmethod
    def from_store(cls, store, sae_id: str) -> QuantileTable:
        """Reads each feature's quantiles from the store when first asked, then keeps them."""
        levels = np.asarray(store.sae_summary(sae_id)["quantile_levels"], dtype=np.float64)
        cache: dict[int, tuple[np.ndarray, float]] = {}

        def fetch(fs: list[int]) -> None:
            missing = [f for f in fs if f not in cache]
            for page in store.iter_features(sae_id, missing):
                check_time()
                cache[page["feature"]] = (
                    np.asarray(page["quantiles"]["values"], dtype=np.float64),
                    page["max_act"],
                )

        def values_of(fs: list[int]) -> np.ndarray:
            fetch(fs)
            return np.stack([cache[f][0] for f in fs]) if fs else np.zeros((0, len(levels)))

        def max_act_of(fs: list[int]) -> np.ndarray:
            fetch(fs)
            return np.array([cache[f][1] for f in fs], dtype=np.float64)

        return cls(levels, values_of, max_act_of)


def activation_quantiles(
    acts: np.ndarray, levels: np.ndarray, values: np.ndarray, max_act: np.ndarray
) -> np.ndarray:
    """Where each activation lies among its feature's stored non-zero activations.

    acts [n], values [n, n_levels] (the activations at `levels`), max_act [n] -> [n] in [0, 1]:
    piecewise linear between (0, 0), the stored (value, level) points and (max_act, 1); an
    activation above the stored maximum gives 1."""
    out = np.zeros(len(acts))
    for i, (a, row, top) in enumerate(zip(acts, values, max_act, strict=True)):
        xs = np.maximum.accumulate(
            np.concatenate([[0.0], row, [max(top, row[-1] if len(row) else 0.0)]])
        )
        ys = np.concatenate([[0.0], levels, [1.0]])
        out[i] = float(np.interp(a, xs, ys)) if a > 0 else 0.0
    return out


@dataclass
class PromptRow:
    feature: int
    act: float
    quantile: float | None  # None without a quantile table
    logprob_effect: float | None  # None at the last token or for SAEs off the residual stream


@dataclass
class TokenRanking:
    position: int
    by_act: list[PromptRow]
    by_quantile: list[PromptRow]
    by_effect: list[PromptRow]  # most helpful to the next token first


class PromptRun:
    """A prompt through the model and the SAE: token ids and strings, every token's feature
    activations, and what the effects on the next token need."""

    def __init__(
        self,
        model: HookedModel,
        sae: SAE,
        hook_point: str,
        token_ids: list[int],
        text: str | None,
        acts: torch.Tensor,
        final_resid: torch.Tensor | None,
        stats: InputStats | None,
        budget: int = CHUNK_ELEMENTS,
    ) -> None:
        self.model, self.sae, self.hook_point = model, sae, hook_point
        self.budget = budget  # elements of one chunk's tensors (see the module's docstring)
        self.token_ids, self.text = token_ids, text
        self.acts = acts  # [ctx, d_sae]
        self.final_resid = final_resid  # [ctx, d_model], None when effects are not defined
        self._stats = stats  # the SAE's input statistics, so decode undoes the normalisation
        tokenizer = model.tokenizer
        self.tokens = (
            [tokenizer.decode([t]) for t in token_ids]
            if tokenizer is not None
            else [str(t) for t in token_ids]
        )

    def __len__(self) -> int:
        return len(self.token_ids)

    def top_features(self, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k most active features of every token: (ids [ctx, k], acts [ctx, k]); inactive
        slots have id -1 and act 0."""
        k = min(k, self.acts.shape[1])
        values, ids = self.acts.topk(k, dim=-1)
        ids = torch.where(values > 0, ids, -1)
        return ids.numpy(), values.clamp_min(0).numpy()

    @torch.no_grad()
    def logprob_effects(self, position: int, features: list[int]) -> np.ndarray | None:
        """[n] each feature's direct effect on log p(token at position+1); None at the last
        token or when the SAE's output is not in the residual stream. Computed a chunk of
        features at a time, within self.budget elements."""
        self._check_position(position)
        if self.final_resid is None or position + 1 >= len(self) or not features:
            return None if self.final_resid is None or position + 1 >= len(self) else np.zeros(0)
        acts = self.acts[position]  # [d_sae]
        stats = _stats_at(self._stats, position)
        full = self.sae.decode_with_stats(acts[None], stats)  # [1, d_model]
        resid = self.final_resid[position]
        next_token = self.token_ids[position + 1]
        base = torch.log_softmax(self.model.unembed(resid[None]).float(), dim=-1)
        out = np.zeros(len(features))
        # per feature: a row of the ablation, the decode's outputs and three logit rows
        per_feature = self.sae.d_sae + 2 * self.sae.d_out + 3 * self.model.d_vocab
        for part in chunks(len(features), per_feature, self.budget):
            ids = torch.tensor(features[part])
            ablated = acts.repeat(len(ids), 1)  # [c, d_sae]: row i without feature i
            ablated[torch.arange(len(ids)), ids] = 0
            contribution = full - self.sae.decode_with_stats(ablated, stats)  # [c, d_model]
            logits = self.model.unembed(resid[None] - contribution.to(resid.dtype))
            logp = torch.log_softmax(logits.float(), dim=-1)[:, next_token]  # [c]
            out[part] = (base[0, next_token] - logp).numpy()
        return out

    def rank_at(
        self, position: int, quantiles: QuantileTable | None = None, n: int = 10
    ) -> TokenRanking:
        """The active features at `position`, n of them in each of the three orders."""
        self._check_position(position)
        check_time()
        row = self.acts[position]
        active = torch.nonzero(row > 0).flatten().tolist()
        act_values = row[active].numpy().astype(np.float64)
        q_values = None
        if quantiles is not None and active:
            q_values = activation_quantiles(
                act_values,
                quantiles.levels,
                quantiles.values_of(active),
                quantiles.max_act_of(active),
            )
        effects = self.logprob_effects(position, active)
        rows = [
            PromptRow(
                f,
                float(a),
                None if q_values is None else float(q_values[i]),
                None if effects is None else float(effects[i]),
            )
            for i, (f, a) in enumerate(zip(active, act_values, strict=True))
        ]
        by_act = sorted(rows, key=lambda r: (-r.act, r.feature))[:n]
        by_quantile = (
            sorted(rows, key=lambda r: (-(r.quantile or 0.0), -r.act, r.feature))[:n]
            if q_values is not None
            else []
        )
        by_effect = (
            sorted(rows, key=lambda r: (-(r.logprob_effect or 0.0), r.feature))[:n]
            if effects is not None
            else []
        )
        return TokenRanking(position, by_act, by_quantile, by_effect)

    def _check_position(self, position: int) -> None:
        if not 0 <= position < len(self):
            raise ConfigError("token", position, f"a token position in 0..{len(self) - 1}")


def run_prompt(
    model: HookedModel,
    sae: SAE,
    prompt: str | list[int],
    hook_point: str | None = None,
    prepend_bos: bool = True,
    budget: int = CHUNK_ELEMENTS,
) -> PromptRun:
    """Run `prompt` (text, or token ids as they are) through the model up to the SAE's hook
    point (and on to the last layer when the effects on the next token are defined).
    budget: elements of the tensors of one step (a block of tokens encoded, a chunk of
    features' effects), whatever d_sae and the prompt's length."""
    hook_point = hook_point or sae.cfg.hook_name
    if not hook_point:
        raise SaescopeError(
            "hook_point: the SAE does not say which hook point it reads; pass hook_point=..."
        )
    model.check_hooks([hook_point])
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ConfigError("prompt", prompt, "a non-empty text")
        tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
        text: str | None = prompt
    else:
        if not prompt:
            raise ConfigError("prompt", prompt, "a non-empty list of token ids")
        tokens, text = torch.tensor([list(prompt)], dtype=torch.long), None
    last = f"blocks.{model.n_layers - 1}.hook_resid_post"
    with_effects = _writes_residual(sae, hook_point, model.d_model)
    cache = model.run_with_cache(tokens, [hook_point, last] if with_effects else [hook_point])
    check_time()
    acts, stats = encode_rows(sae, cache[hook_point][0], budget)  # [ctx, d_sae]
    return PromptRun(
        model,
        sae,
        hook_point,
        tokens[0].tolist(),
        text,
        acts,
        cache[last][0].detach() if with_effects else None,
        stats,
        budget,
    )


def encode_rows(
    sae: SAE, x: torch.Tensor, budget: int = CHUNK_ELEMENTS
) -> tuple[torch.Tensor, InputStats | None]:
    """x [n, d_in] -> (acts [n, d_sae] float32, the input statistics of every row), encoded a
    block of rows at a time: the architecture's [rows, d_sae] intermediates (pre-activations,
    masks, a dtype copy) stay within `budget` elements each. Rows are encoded independently, so the
    result is that of one piece."""
    with torch.no_grad():
        if len(x) * sae.d_sae <= budget:
            acts, stats = sae.encode_with_stats(x)
            return acts.detach().float(), stats
        acts = torch.empty(len(x), sae.d_sae, dtype=torch.float32, device=x.device)
        parts: list[InputStats | None] = []
        for block in chunks(len(x), sae.d_sae, budget):
            acts[block], stats = sae.encode_with_stats(x[block])
            parts.append(stats)
    return acts, _cat_stats(parts)


def _writes_residual(sae: SAE, hook_point: str, d_model: int) -> bool:
    out_hook = sae.cfg.hook_name_out or hook_point
    parsed = parse_hook(out_hook)
    return parsed is not None and parsed[1] in RESIDUAL_KINDS and sae.d_out == d_model


def _cat_stats(parts: list[InputStats | None]) -> InputStats | None:
    """The statistics of consecutive blocks of rows as those of all the rows ([rows, 1] each)."""
    if not parts or parts[0] is None:
        return None
    fields = {
        name: (
            torch.cat([vars(p)[name] for p in parts if p is not None])
            if isinstance(value, torch.Tensor)
            else value
        )
        for name, value in vars(parts[0]).items()
    }
    return type(parts[0])(**fields)


def _stats_at(stats: InputStats | None, position: int) -> InputStats | None:
    """The SAE input statistics of one token ([ctx, 1] tensors -> [1, 1])."""
    if stats is None:
        return None
    fields = {
        name: (value[position : position + 1] if isinstance(value, torch.Tensor) else value)
        for name, value in vars(stats).items()
    }
    return type(stats)(**fields)
