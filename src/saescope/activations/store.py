"""Shuffled batches of token activations for training, from a
harvested cache or live from the model.

Contexts are read in windows of `buffer_tokens` tokens; each window is flattened to tokens and
shuffled with a generator seeded by (seed, window index), then cut into batches. Mixing is
therefore over many contexts at once, and the exact position in the stream is just
(window, batch), which is all a training checkpoint needs to resume bit-for-bit.
Tokens left over at the end of a window, fewer than one batch, are dropped (as drop_last).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from saescope.activations.batching import drop_contexts, rebatch
from saescope.activations.cache import ActivationCache
from saescope.activations.source import iter_model_activations
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError
from saescope.models import HookedModel

# A source yields (token_ids [batch, ctx], {hook: acts [batch, ctx, d]}) starting after
# `skip_contexts` contexts.
SourceFactory = Callable[[int], Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]]


def estimate_scaling_factors(
    batches: Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]], n_tokens: int, skip_first: int
) -> dict[str, float]:
    """sqrt(d) / mean activation norm per hook, from about n_tokens tokens."""
    sums: dict[str, float] = {}
    widths: dict[str, int] = {}
    count = 0
    for _, acts in batches:
        widths = {h: a.shape[-1] for h, a in acts.items()}
        for h, a in acts.items():
            sums[h] = sums.get(h, 0.0) + a[:, skip_first:].float().norm(dim=-1).sum().item()
        count += next(iter(acts.values()))[:, skip_first:].shape[:2].numel()
        if count >= n_tokens:
            break
    return {h: (widths[h] ** 0.5) / (s / count) for h, s in sums.items()} if count else {}


class ActivationStore:
    """Iterate to get {hook: acts [batch_size, d]} (float32, normalised
    if asked), aligned across hooks."""

    def __init__(
        self,
        source: SourceFactory,
        hooks: list[str],
        context_length: int,
        batch_size: int = 4096,
        buffer_tokens: int = 2**17,
        scaling_factors: dict[str, float] | None = None,
        exclude_bos: bool = True,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if batch_size <= 0:
            raise ConfigError("batch_size", batch_size, "a positive number of tokens")
        if buffer_tokens < batch_size:
            raise ConfigError("buffer_tokens", buffer_tokens, f"at least batch_size ({batch_size})")
        self.source, self.hooks = source, hooks
        self.context_length, self.batch_size = context_length, batch_size
        self.window_contexts = max(1, buffer_tokens // context_length)
        self.scaling_factors = scaling_factors or {}
        self.skip_first = 1 if exclude_bos else 0
        self.seed, self.device = seed, torch.device(device)
        self.window, self.batch = 0, 0  # the next batch to yield

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_cache(
        cls, directory: str | Path, hooks: list[str] | None = None, normalize: bool = True, **kwargs
    ) -> ActivationStore:
        cache = ActivationCache(directory)
        hooks = list(cache.hooks) if hooks is None else hooks

        def source(skip_contexts: int) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
            return drop_contexts(cache.iter_batches(hooks=hooks), skip_contexts)

        factors = cache.manifest.scaling_factors() if normalize else None
        exclude_bos = kwargs.pop("exclude_bos", cache.manifest.corpus.get("prepend_bos", True))
        return cls(
            source,
            hooks,
            cache.manifest.context_length,
            scaling_factors=factors,
            exclude_bos=exclude_bos,
            **kwargs,
        )

    @classmethod
    def from_model(
        cls,
        model: HookedModel,
        corpus: CorpusConfig,
        hooks: list[str],
        batch_contexts: int = 8,
        normalize: bool = True,
        norm_sample_tokens: int = 2**14,
        **kwargs,
    ) -> ActivationStore:
        def source(skip_contexts: int) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
            return iter_model_activations(
                model, corpus, hooks, batch_contexts, skip_contexts=skip_contexts
            )

        exclude_bos = kwargs.pop("exclude_bos", corpus.prepend_bos)
        factors = None
        if normalize:
            factors = estimate_scaling_factors(
                source(0), norm_sample_tokens, 1 if exclude_bos else 0
            )
        return cls(
            source,
            hooks,
            corpus.context_length,
            scaling_factors=factors,
            exclude_bos=exclude_bos,
            **kwargs,
        )

    # --- position, for checkpoints ----------------------------------------------------------

    def state_dict(self) -> dict[str, int]:
        return {"window": self.window, "batch": self.batch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.window, self.batch, self.seed = state["window"], state["batch"], state["seed"]

    # --- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        windows = rebatch(self.source(self.window * self.window_contexts), self.window_contexts)
        for _, acts in windows:
            window = {
                h: a[:, self.skip_first :].reshape(-1, a.shape[-1])
                for h, a in acts.items()
                if h in self.hooks
            }
            order = torch.randperm(
                next(iter(window.values())).shape[0],
                generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.window),
            )
            n_batches = order.shape[0] // self.batch_size
            while self.batch < n_batches:
                idx = order[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
                self.batch += 1
                yield {h: self._prepare(h, a[idx]) for h, a in window.items()}
            self.window, self.batch = self.window + 1, 0

    def _prepare(self, hook: str, acts: torch.Tensor) -> torch.Tensor:
        acts = acts.to(self.device, torch.float32)
        factor = self.scaling_factors.get(hook)
        return acts * factor if factor is not None else acts
