"""What the analysis pass produces for an SAE, and the shape the feature store persists.

This is the contract between analysis/ (which fills it), store/ (which writes and queries it)
and the dashboards and viewer (which render it). Arrays are numpy, indexed by feature id.

One `Example` is a token window from the corpus around a position where the feature was
looked at: top activations, samples from activation-quantile intervals, or random contexts
where it is inactive. The analysis pass fills its windows with compact numpy arrays;
examples read back from a store or file hold lists. Either compares equal by value.

A fresh analysis may hand its examples over as an `ExampleStream` instead of a list (up to
features x 73 of them): the example pass then runs as a store or file reads them, one batch of
contexts at a time, and nothing holds them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from saescope.errors import SaescopeError

EXAMPLE_KINDS = ("top", "quantile", "inactive")
# a window's values: a list, or a numpy array (int32 ids, float32 values)
Ids = list[int] | np.ndarray
Values = list[float] | np.ndarray


@dataclass(eq=False, slots=True)  # slots: a list of examples holds up to features x 73 of them
class Example:
    feature: int
    kind: str  # one of EXAMPLE_KINDS
    rank: int  # order within its kind (0 = highest activation for "top")
    interval: int  # quantile interval index for kind "quantile", else -1
    token_ids: Ids  # the window: [window]
    acts: Values  # the feature's activation on every token of the window: [window]
    center: int  # index in the window of the token the example was chosen for
    max_act: float  # activation at `center`
    # effect of the feature on the next-token log-prob at each window position (direct path
    # through the unembedding with the final norm as the model applies it): [window] or None
    loss_effects: Values | None = None
    # per window position, the tokens whose logits the feature boosts / suppresses most:
    # [window][n] token ids and values, or None
    top_boosted: Ids | None = None  # [window, n]
    top_boosted_values: Values | None = None
    top_suppressed: Ids | None = None
    top_suppressed_values: Values | None = None
    # where it came from, so a context can be found again: (context index, position)
    context_index: int = -1
    position: int = -1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Example):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str | int | float):
        return a == b
    return np.array_equal(np.asarray(a), np.asarray(b))


class ExampleStream:
    """A fresh analysis's examples, made as they are read: the example pass yields them one batch of
    contexts at a time while a store or file writes them away. Read once."""

    def __init__(self, batches: Iterator[list[Example]]) -> None:
        self._batches: Iterator[list[Example]] | None = batches

    def __iter__(self) -> Iterator[Example]:
        if self._batches is None:
            raise SaescopeError(
                "these examples were streamed once already (into a store or file); "
                "analyze(..., stream_examples=False) keeps them as a list."
            )
        batches, self._batches = self._batches, None  # the pass (and what it holds) goes once read
        for batch in batches:
            yield from batch
            batch.clear()  # the next batch is made without this one's examples alive


@dataclass
class FeatureTables:
    """Per-feature statistics, each array's first axis is the feature id: [d_sae, ...]."""

    density: np.ndarray  # [d_sae] fraction of tokens with act > 0
    max_act: np.ndarray  # [d_sae]
    mean_act: np.ndarray  # [d_sae] mean activation when active (0 if never active)
    # activation histogram of the non-zero activations: counts [d_sae, n_bins] over
    # per-feature linear bins from 0 to max_act
    act_hist_counts: np.ndarray
    # activation quantile table: values [d_sae, n_levels] at `quantile_levels` (fractions of
    # the non-zero activations, finer near 1)
    quantile_levels: np.ndarray  # [n_levels]
    quantile_values: np.ndarray  # [d_sae, n_levels]
    # logit effects of W_dec[f] through the unembedding (final norm weight folded in)
    logit_top_ids: np.ndarray  # [d_sae, n_logits] int
    logit_top_values: np.ndarray  # [d_sae, n_logits]
    logit_bottom_ids: np.ndarray  # [d_sae, n_logits] int
    logit_bottom_values: np.ndarray  # [d_sae, n_logits]
    logit_hist_counts: np.ndarray  # [d_sae, n_bins]
    logit_hist_range: np.ndarray  # [d_sae, 2] (min, max) of the bins
    # nearest features by decoder cosine similarity, and most correlated co-firing features
    neighbour_ids: np.ndarray  # [d_sae, n_neighbours] int
    neighbour_cos: np.ndarray  # [d_sae, n_neighbours]
    cofiring_ids: np.ndarray  # [d_sae, n_neighbours] int
    cofiring_corr: np.ndarray  # [d_sae, n_neighbours]
    # SAE on MLP neurons: the neurons W_dec[f] aligns with most; None otherwise
    neuron_ids: np.ndarray | None = None  # [d_sae, n_neurons] int
    neuron_weights: np.ndarray | None = None  # [d_sae, n_neurons]
    # any further per-feature scores (name -> [d_sae]), sortable and filterable in the store
    scores: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SAEAnalysis:
    """Everything the analysis pass found for one SAE."""

    sae_id: str  # a name unique in the store, e.g. "smollm2/blocks.6.hook_resid_post/topk-9216"
    sae_info: dict[str, Any]  # architecture, d_in, d_sae, hook point, model, source, cfg
    n_tokens: int
    corpus: dict[str, Any]  # describe_corpus(...) of what was analysed
    features: FeatureTables
    # any iterable of examples; an ExampleStream is read once
    examples: list[Example] | ExampleStream
    # SAE-level summary: evals (L0, FVU, CE loss recovered, ...) and the histogram of
    # log10 feature densities over all features
    evals: dict[str, float] = field(default_factory=dict)
    vocab: list[str] | None = None  # token id -> text, so stores and pages need no tokenizer
