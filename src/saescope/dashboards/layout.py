"""Layout of a feature's panels: which panels, in which order, and how many rows and contexts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from saescope.errors import ConfigError

PANELS = ("table", "act_hist", "logit_hist", "logits", "top", "quantiles")


@dataclass
class Layout:
    panels: list[str] = field(default_factory=lambda: list(PANELS))
    n_top: int = 10  # top-activating contexts shown
    n_per_group: int = 3  # contexts per quantile group
    n_logits: int = 10  # rows of each logit table
    n_table: int = 5  # rows of the nearest / co-firing / neuron tables

    def validate(self) -> Layout:
        unknown = [p for p in self.panels if p not in PANELS]
        if unknown or not self.panels:
            raise ConfigError(
                "panels", ",".join(self.panels), f"a comma-separated list of {', '.join(PANELS)}"
            )
        for name in ("n_top", "n_per_group", "n_logits", "n_table"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, value, "an integer >= 0")
        return self

    def to_dict(self) -> dict:
        return asdict(self)
