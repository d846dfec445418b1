"""The architecture registry: what saescope needs to know about one SAE architecture, and the
table the architecture modules fill when they are imported (`@register`).

Everything architecture-specific that other code asks about goes through `get_architecture(name)`:
the inference class (sae.registry, loading), its SAEConfig checks (sae.config), its training
hyperparameters and their checks (train.config), initialisation (train.init), the loss and
training switches (train.trainer), and what distributed training may do with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from saescope.config import REQUIRED, Config, setting
from saescope.errors import ConfigError
from saescope.sae.architectures.shared import as_list

if TYPE_CHECKING:
    import torch

    from saescope.sae.base import SAE
    from saescope.sae.config import SAEConfig
    from saescope.sae.training.losses import LossSettings, StepOutput

DEFAULT_ARCHITECTURE = "topk"
# for the docs; the check asks the registry, which plug-ins extend at run time
BUILT_IN = ("standard", "topk", "batchtopk", "jumprelu", "gated", "matryoshka_batchtopk")
H = TypeVar("H", bound="Hyperparameters")


@dataclass
class Hyperparameters(Config):
    """An architecture's own section of TrainConfig (`architecture:` in YAML): its name, and the
    settings its training reads, declared with setting() like every config field.

    Subclasses are dataclasses whose fields use setting(): the declaration gives the checks, the
    messages, the overrides (`architecture.k=64`) and the rows of `saescope config-docs train`;
    override validate() only for checks one field cannot express (call super().validate()). A field
    named in `grid_fields` may hold a list: one SAE is trained per value (labelled with
    `label_formats`). Fields in `warmed_up` are penalty coefficients the trainer ramps in over
    schedule.l1_warmup_fraction. `legacy_names` maps the flat TrainConfig keys of older configs to
    fields (e.g. jumprelu_bandwidth -> bandwidth).
    """

    name: str = setting(
        REQUIRED,
        "the SAE architecture; its own settings are the other architecture.* fields",
        accepted="a registered architecture: " + ", ".join(BUILT_IN) + " or a plug-in's name",
    )

    grid_fields: ClassVar[tuple[str, ...]] = ()
    label_formats: ClassVar[dict[str, str]] = {}  # grid field -> label part, e.g. "k{}"
    warmed_up: ClassVar[tuple[str, ...]] = ()
    legacy_names: ClassVar[dict[str, str]] = {}  # flat key of older configs -> field

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "") -> Hyperparameters:
        """The section of the architecture `values["name"]` names (topk when absent), whichever
        class this is called on."""
        if not isinstance(values, dict):
            raise ConfigError(
                where.rstrip(".") or "architecture",
                values,
                "a mapping: name (an architecture) and its settings",
            )
        name = values.get("name", DEFAULT_ARCHITECTURE)
        target = get_architecture(name, field=f"{where}name").hyperparameters
        # another architecture's settings, left by a switch of name over a file (an override
        # architecture.name=jumprelu over k: 32), are not this one's: dropped, as in a flat config
        others = {f for other in all_hyperparameters() for f in other.field_names()}
        own = {key: value for key, value in values.items() if key in target.field_names()}
        own.update({k: v for k, v in values.items() if k not in others})  # unknown: refused
        section = super(Hyperparameters, target).from_dict({**own, "name": name}, where=where)
        if not isinstance(section, Hyperparameters):  # the registry holds Hyperparameters classes
            raise TypeError(f"{target.__name__} is not a Hyperparameters class")
        return section

    @classmethod
    def variants(cls) -> dict[str, type[Config]]:
        """Each registered architecture's section class, by the names that use it (docs)."""
        names: dict[type[Hyperparameters], list[str]] = {}
        for name, spec in _REGISTRY.items():
            names.setdefault(spec.hyperparameters, []).append(name)
        return {", ".join(users): section for section, users in names.items()}

    @classmethod
    def settings(cls) -> list[str]:
        """The architecture's own fields (all but name)."""
        return [name for name in cls.field_names() if name != "name"]

    def validate(self) -> None:
        super().validate()
        if type(self) is not get_architecture(self.name, field="name").hyperparameters:
            raise ConfigError(
                "name", self.name, f"an architecture whose settings are {type(self).__name__}"
            )

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

    def pick(self: H, values: dict[str, Any]) -> H:
        """The hyperparameters of one SAE: each grid field set to its value in `values`."""
        return dataclasses.replace(self, **{name: values[name] for name in self.grid_fields})

    def ramped(self: H, factor: float) -> H:
        """A copy with the warmed-up coefficients multiplied by factor (the warm-up's progress)."""
        return dataclasses.replace(
            self, **{name: getattr(self, name) * factor for name in self.warmed_up}
        )


def default_hyperparameters() -> Hyperparameters:
    """TrainConfig's architecture section when none is given: topk with its defaults."""
    return Hyperparameters.from_dict({})


class Architecture:
    """One SAE architecture as the rest of saescope sees it. Subclass,
    fill in, decorate with @register.

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
        """Raise ConfigError if cfg lacks what this architecture needs
        (SAEConfig.validate calls it)."""

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


def all_hyperparameters() -> list[type[Hyperparameters]]:
    """The section classes of the registered architectures, each once."""
    return list(dict.fromkeys(spec.hyperparameters for spec in _REGISTRY.values()))


def architecture_names() -> tuple[str, ...]:
    """The registered architecture names, in registration order."""
    return tuple(_REGISTRY)


def get_architecture(name: str, *, field: str = "architecture") -> Architecture:
    """The registered architecture called name; ConfigError (on `field`) naming the known ones and
    the nearest one otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        hint = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(field, name, f"one of {', '.join(_REGISTRY)}{suggestion}")
    return _REGISTRY[name]
