"""EvalConfig: what an evaluation reads (corpus, tokens) and what it computes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saescope.config import Config, section, setting
from saescope.corpus import CorpusConfig


@dataclass
class EvalConfig(Config):
    """Settings of `evaluate` / `evaluate_path` (their keyword arguments, declared once)."""

    corpus: CorpusConfig = section(CorpusConfig, "the text evaluated on")
    n_tokens: int = setting(8192, "tokens to evaluate on", low=1, count=True, flag="--tokens")
    batch_contexts: int = setting(8, "contexts per forward pass", low=1)
    skip_contexts: int = setting(
        0, "contexts of the corpus to skip first, e.g. those trained on", low=0
    )
    hook: str | None = setting(None, "hook point (default: the SAE's hook_name)")
    with_ce: bool = setting(
        True,
        "compute the downstream metrics (CE loss recovered, KL) with the SAE spliced in",
        flag="--no-ce",
        flag_help="reconstruction metrics only (one partial forward pass)",
    )
    dense_threshold: float = setting(
        0.1, "firing rate above which a feature counts as dense", low=0.0, high=1.0, cli=False
    )
    out_dir: str | None = setting(
        None, "write results here instead of next to the SAE", flag="--out"
    )

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of evaluate() / evaluate_path()."""
        return {name: getattr(self, name) for name in self.field_names()}
