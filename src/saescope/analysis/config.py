"""AnalysisConfig: what the analysis pass computes and over which tokens."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError


@dataclass
class AnalysisConfig:
    """Settings of one analysis pass. Two passes with the same config give the same result."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    n_tokens: int = 65_536  # tokens of the corpus to analyse (whole contexts, rounded up)
    batch_size: int = 16  # contexts per model forward
    top_k: int = 20  # top-activating examples per feature
    n_exact_top: int = 64  # activations kept exactly per feature (quantiles near the top are exact)
    quantile_intervals: int = 10  # equal-width activation intervals over (0, max_act]
    per_interval: int = 5  # examples sampled per interval
    n_inactive: int = 3  # random examples where the feature is inactive
    window: tuple[int, int] = (16, 8)  # tokens before and after the example's token
    n_hist_bins: int = 40  # activation and logit-effect histograms
    n_logits: int = 10  # top / bottom tokens of each feature's logit effect
    n_hover: int = 3  # boosted / suppressed tokens per window position
    n_neighbours: int = 10  # nearest decoder directions and most correlated co-firing features
    n_neurons: int = 10  # aligned neurons (SAEs on mlp.hook_post only)
    cofiring_tokens: int = (
        65_536  # tokens (an evenly spaced subset) used for co-firing correlations
    )
    ablate_features: list[int] = field(default_factory=list)  # real ablation through the model
    include_bos: bool = False  # BOS positions are left out (SAEs are trained without them)
    seed: int = 0  # of the interval and inactive samples
    checkpoint_every: int = 65_536  # tokens between checkpoints of the accumulators
    # disk for the activations the example pass reads back instead of re-running the model (analysis.spool)
    spool_gib: float = 16.0

    def validate(self, d_sae: int | None = None) -> None:
        self.corpus.check_fields()
        for name in (
            "n_tokens",
            "batch_size",
            "top_k",
            "quantile_intervals",
            "per_interval",
            "n_hist_bins",
            "n_logits",
            "n_neighbours",
            "cofiring_tokens",
            "checkpoint_every",
        ):
            _positive(name, getattr(self, name))
        for name in ("n_exact_top", "n_inactive", "n_hover", "n_neurons", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, value, "an integer >= 0")
        if (
            isinstance(self.spool_gib, bool)
            or not isinstance(self.spool_gib, int | float)
            or not self.spool_gib >= 0
        ):
            raise ConfigError(
                "spool_gib",
                self.spool_gib,
                "a number of GiB >= 0 (0: the example pass re-runs the model)",
            )
        if self.n_exact_top < self.top_k:
            self.n_exact_top = self.top_k
        before, after = self.window
        if min(before, after) < 0:
            raise ConfigError(
                "window", f"{before},{after}", "two integers >= 0: tokens before,after"
            )
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AnalysisConfig:
        data = dict(data)
        data["corpus"] = CorpusConfig(**data["corpus"])
        data["window"] = tuple(data["window"])
        return cls(**data)

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


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, value, "an integer >= 1")
