"""AnalysisConfig: what the analysis pass computes and over which tokens."""

from __future__ import annotations

from dataclasses import dataclass

from saescope.config import Config, section, setting
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError


@dataclass
class AnalysisConfig(Config):
    """Settings of one analysis pass. Two passes with the same config give the same result."""

    corpus: CorpusConfig = section(CorpusConfig, "the text analysed")
    n_tokens: int = setting(
        65_536,
        "tokens to analyse (whole contexts, rounded up)",
        low=1,
        count=True,
        flag="--tokens",
    )
    batch_size: int = setting(16, "contexts per forward", low=1)
    top_k: int = setting(20, "top-activating examples per feature", low=1)
    n_exact_top: int = setting(
        64,
        "activations kept exactly per feature (quantiles near the top are exact); at least top_k",
        low=0,
        cli=False,
    )
    quantile_intervals: int = setting(
        10, "activation intervals sampled (equal-width over (0, max_act])", low=1
    )
    per_interval: int = setting(5, "examples per interval", low=1)
    n_inactive: int = setting(3, "inactive examples per feature (random)", low=0, flag="--inactive")
    window: tuple[int, int] = setting(
        (16, 8),
        "tokens before,after each example's token",
        low=0,
        accepted="two integers >= 0: tokens before,after",
    )
    n_hist_bins: int = setting(
        40, "bins of the activation and logit-effect histograms", low=1, cli=False
    )
    n_logits: int = setting(
        10, "top / bottom tokens of each feature's logit effect", low=1, cli=False
    )
    n_hover: int = setting(3, "boosted / suppressed tokens per window position", low=0, cli=False)
    n_neighbours: int = setting(
        10, "nearest decoder directions and most correlated co-firing features", low=1, cli=False
    )
    n_neurons: int = setting(10, "aligned neurons (SAEs on mlp.hook_post only)", low=0, cli=False)
    cofiring_tokens: int = setting(
        65_536, "tokens (evenly spaced) for co-firing correlations", low=1, count=True
    )
    ablate_features: list[int] = setting(
        [],
        "feature ids whose loss effects come from real ablation through the model, e.g. 3,17",
        low=0,
    )
    include_bos: bool = setting(
        False, "analyse BOS positions too (SAEs are trained without them)", cli=False
    )
    seed: int = setting(0, "seed of the interval and inactive samples", low=0, cli=False)
    checkpoint_every: int = setting(
        65_536,
        "tokens between checkpoints of the pass; an interrupted run resumes from the last",
        low=1,
        count=True,
    )
    spool_gib: float = setting(
        16.0,
        "disk for the model activations the example pass reads back instead of re-running the "
        "model; 0 re-runs it",
        low=0,
        accepted="a number of GiB >= 0 (0: the example pass re-runs the model)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if _is_int(self.n_exact_top) and _is_int(self.top_k) and self.n_exact_top < self.top_k:
            self.n_exact_top = self.top_k  # the exact top must hold the top examples

    def validate(self, d_sae: int | None = None) -> None:
        """Every field's range; with d_sae, also that the ablated features exist."""
        super().validate()
        for f in self.ablate_features:
            if d_sae is not None and not 0 <= f < d_sae:
                raise ConfigError("ablate_features", f, f"feature ids in 0..{d_sae - 1}")

    @property
    def context_length(self) -> int:
        return self.corpus.context_length

    @property
    def n_contexts(self) -> int:
        return -(-self.n_tokens // self.context_length)

    @property
    def cofiring_stride(self) -> int:
        """Every cofiring_stride-th token (by global index) goes into the co-firing sample."""
        return max(1, -(-self.n_contexts * self.context_length // self.cofiring_tokens))

    def accumulator_key(self) -> dict:
        """The fields the accumulated state depends on: a checkpoint resumes only if they match."""
        keep = (
            "corpus",
            "n_tokens",
            "n_exact_top",
            "per_interval",
            "cofiring_tokens",
            "include_bos",
            "seed",
        )
        return {k: v for k, v in self.to_dict().items() if k in keep}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
