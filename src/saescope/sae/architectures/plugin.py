"""The architecture registry: what saescope needs to know about one SAE architecture, and the
table the architecture modules fill when they are imported (`@register`).

Everything architecture-specific that other code asks about goes through `get_architecture(name)`:
the inference class (sae.registry, loading), its SAEConfig checks (sae.config), its training
hyperparameters and their checks (train.config), initialisation (train.init), the loss and
training switches (train.trainer), and what distributed training may do with it.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from saescope.errors import ConfigError
from saescope.sae.architectures.shared import as_list

if TYPE_CHECKING:
    import torch

    from saescope.sae.base import SAE
    from saescope.sae.config import SAEConfig
    from saescope.sae.training.losses import LossSettings, StepOutput


@dataclass
class Hyperparameters:
    """An architecture's training hyperparameters: the TrainConfig fields it reads, by their names.

    Subclasses are dataclasses. A field named in `grid_fields` may hold a list: one SAE is
    trained per value (labelled with `label_formats`). Fields in `warmed_up` are penalty
    coefficients the trainer ramps in over l1_warmup_fraction.
    """

    grid_fields: ClassVar[tuple[str, ...]] = ()
    label_formats: ClassVar[dict[str, str]] = {}  # grid field -> label part, e.g. "k{}"
    warmed_up: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_values(cls, source: Any) -> Hyperparameters:
        """Read this architecture's fields from a TrainConfig (or any object with those attributes)."""
        return cls(**{name: getattr(source, name) for name in cls.field_names()})

    def validate(self) -> None:
        """Raise ConfigError (field, value, what is accepted) for a bad value; grid fields per value."""

    def grid(self) -> list[dict[str, Any]]:
        """One {grid field: value} per SAE to train (a single {} when there is no grid field)."""
        lists = [as_list(getattr(self, name)) for name in self.grid_fields]
        return [
            dict(zip(self.grid_fields, values, strict=True)) for values in itertools.product(*lists)
        ]

    def label(self, values: dict[str, Any]) -> str:
        """The run label's part for one grid entry, e.g. "-k32" or "-l1_5"."""
        return "".join(
            "-" + self.label_formats.get(name, name + "{}").format(values[name])
            for name in self.grid_fields
        )

    def pick(self, values: dict[str, Any]) -> Hyperparameters:
        """The hyperparameters of one SAE: each grid field set to its value in `values`."""
        return dataclasses.replace(self, **{name: values[name] for name in self.grid_fields})

    def ramped(self, factor: float) -> Hyperparameters:
        """A copy with the warmed-up coefficients multiplied by factor (the warm-up's progress)."""
        return dataclasses.replace(
            self, **{name: getattr(self, name) * factor for name in self.warmed_up}
        )


class Architecture:
    """One SAE architecture as the rest of saescope sees it. Subclass, fill in, decorate with @register.

    Only `sae_class` and `loss` are required; the rest has defaults that fit a plain ReLU-style SAE.
    """

    sae_class: ClassVar[type[SAE]]  # the inference SAE; its `architecture` is the registry key
    hyperparameters: ClassVar[type[Hyperparameters]] = Hyperparameters
    # init: ReLU-style SAEs (every positive pre-activation is active) start with a 0.1x encoder
    dense_start: ClassVar[bool] = False
    # the loss uses the sparse backward (sae/training/sparse_topk.py): keep W_enc latent-major
    sparse_backward: ClassVar[bool] = False
    # L1-style: resample dead latents when resample_every_tokens is set
    resamples_dead: ClassVar[bool] = False
    # distributed: its features can be split over ranks (distributed/feature_shard.py)
    feature_shardable: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return self.sae_class.architecture

    def check_sae_config(self, cfg: SAEConfig) -> None:
        """Raise ConfigError if cfg lacks what this architecture needs (SAEConfig.validate calls it)."""

    def check_fits(self, hyper: Hyperparameters, d_in: int, expansion_factor: int) -> None:
        """Training checks that need the input width: d_in, the smallest expansion factor."""

    def sae_config_fields(self, hyper: Hyperparameters, d_sae: int) -> dict[str, Any]:
        """SAEConfig fields this architecture sets from one SAE's hyperparameters (e.g. k)."""
        return {}

    def init_tensors(self, sae: SAE) -> None:
        """Initialise the architecture's own tensors (thresholds, gate biases) for training."""

    def loss(self, sae: SAE, x: torch.Tensor, s: LossSettings) -> StepOutput:
        """The training loss on normalised activations x [batch, d_in]."""
        raise NotImplementedError


_REGISTRY: dict[str, Architecture] = {}


def register(cls: type[Architecture]) -> type[Architecture]:
    """Class decorator: add an architecture to the registry under its SAE class's `architecture`."""
    spec = cls()
    if not spec.name:
        raise ValueError(f"{cls.__name__}.sae_class must set `architecture` (the registry key)")
    _REGISTRY[spec.name] = spec
    return cls


def unregister(name: str) -> None:
    """Remove an architecture from the registry (a test's or an interactive session's plug-in)."""
    _REGISTRY.pop(name, None)


def architecture_names() -> tuple[str, ...]:
    """The registered architecture names, in registration order."""
    return tuple(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """The registered architecture called name; ConfigError naming the known ones otherwise."""
    if name not in _REGISTRY:
        raise ConfigError("architecture", name, f"one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
