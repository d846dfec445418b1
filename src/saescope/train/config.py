"""TrainConfig: what to train, on what, for how long; from Python, YAML, and key=value overrides.

Declared once on the config schema (saescope.config), in one section per concern: the model and its
hook points, the activations, the SAEs' shape and initialisation, the architecture's own settings,
the optimiser, the schedules, dead features, and logging. Each field's help, accepted range or
choices give the checks, the messages (dotted field, value, what is accepted), the "did you mean"
for unknown names, dotted overrides (optim.lr=1e-3) and `saescope config-docs train`.

The `architecture` section belongs to the architecture it names: its class is the one the registry
holds for `architecture.name` (a plug-in brings its own), so `architecture.k` exists for topk and
`architecture.l0_coefficient` for jumprelu.

Several SAEs train in one pass when model.hooks, sae.expansion_factor or an architecture's grid
field (k, l1_coefficient) hold lists: one SAE per combination, all fed the same batches.

Configs written before the sections (flat keys: k, lr, hooks, activation_cache, ...), in YAML, in
overrides and in the train_config.json of older runs, are read into their sections.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import logging
from dataclasses import dataclass
from typing import Any

from saescope.config import Config, merge, parse_overrides, read_yaml, section, setting
from saescope.config.schema import nest_dotted, specs, validate_section
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError, SaescopeError
from saescope.sae.architectures import Hyperparameters, get_architecture
from saescope.sae.architectures.plugin import all_hyperparameters, default_hyperparameters

__all__ = ["TrainConfig", "as_list", "changed_fields", "flat_fields", "parse_overrides"]

log = logging.getLogger(__name__)

B_DEC_INITS = ("mean", "geometric_median", "zeros")
FRACTION = "a fraction of training from 0 to 1"
HOOKS = "a hook point name or a list of distinct ones, e.g. blocks.6.hook_resid_post"


def train_setting(default: Any, help: str, **checks: Any) -> Any:
    """A TrainConfig field: `saescope train` takes it as section.field=value, not as a flag."""
    return setting(default, help, cli=False, **checks)


@dataclass
class ModelSettings(Config):
    """The language model and the hook points whose activations the SAEs learn."""

    name: str = train_setting("smollm2", "the language model: smollm2, an HF id or a path")
    hooks: str | list[str] = train_setting(
        "blocks.6.hook_resid_post",
        "hook point(s) to train on; a list trains one SAE per hook",
        accepted=HOOKS,
    )
    batch_contexts: int = train_setting(8, "contexts per model forward (live activations)", low=1)

    @property
    def hook_list(self) -> list[str]:
        return as_list(self.hooks)

    def validate(self) -> None:
        super().validate()
        if not self.hook_list or len(set(self.hook_list)) != len(self.hook_list):
            raise ConfigError("hooks", self.hooks, HOOKS)


@dataclass
class ActivationSettings(Config):
    """Where the activation vectors come from and how they are fed to the SAEs."""

    cache: str | None = train_setting(
        None,
        "a harvested activation cache to train from (saescope harvest); null: live from the model",
        accepted="a harvested cache folder, or null",
    )
    buffer_tokens: int = train_setting(
        2**17, "activation vectors in the shuffle buffer, e.g. 128k", low=1, count=True
    )
    normalize: bool = train_setting(
        True, "scale activations to a mean norm of sqrt(d_in) (folded into the saved SAE)"
    )


@dataclass
class SAESettings(Config):
    """The SAEs' width and how their weights start."""

    expansion_factor: int | list[int] = train_setting(
        16, "d_sae / d_in; a list trains one SAE per value", low=1, high=1024
    )
    decoder_unit_norm: bool = train_setting(
        True, "keep decoder rows at norm 1 (false: L1 weighted by decoder norms instead)"
    )
    decoder_init_norm: float = train_setting(
        1.0,
        "norm of the decoder rows at the start (1 with decoder_unit_norm); SAELens starts a "
        "free decoder at 0.1",
        low=1e-6,
        high=1e6,
        accepted="a positive number (1e-6 to 1e6)",
    )
    b_dec_init: str = train_setting(
        "geometric_median", "how the decoder bias starts", choices=B_DEC_INITS
    )
    b_dec_init_tokens: int = train_setting(
        16_384, "activation vectors the decoder bias starts from", low=1, count=True
    )
    init_encoder_as_decoder_t: bool = train_setting(
        True, "start the encoder as the decoder's transpose"
    )

    def validate(self) -> None:
        super().validate()
        if self.decoder_unit_norm and self.decoder_init_norm != 1.0:
            raise ConfigError(
                "decoder_init_norm",
                self.decoder_init_norm,
                "1.0 while decoder_unit_norm is true (the rows are kept at norm 1); "
                "set sae.decoder_unit_norm: false to start them at another norm",
            )


@dataclass
class OptimSettings(Config):
    """How many activation vectors, in what batches, and the Adam optimiser's settings."""

    training_tokens: int = train_setting(
        2_000_000, "activation vectors to train on, e.g. 2M", low=1, count=True
    )
    batch_size: int = train_setting(
        4096, "activation vectors per step, e.g. 4096", low=1, count=True
    )
    lr: float = train_setting(
        2e-4,
        "Adam learning rate",
        low=1e-8,
        high=1.0,
        accepted="a learning rate from 1e-8 to 1 (typical: 1e-4 to 1e-3)",
    )
    adam_beta1: float = train_setting(
        0.9, "Adam beta1", low=0.0, high=0.9999999, accepted="a number in [0, 1)"
    )
    adam_beta2: float = train_setting(
        0.999, "Adam beta2", low=0.0, high=0.9999999, accepted="a number in [0, 1)"
    )
    max_grad_norm: float = train_setting(
        0.0,
        "clip the gradients' global norm to this (0: no clipping); SAELens clips at 1",
        low=0.0,
        high=1e6,
        accepted="0 (no clipping) or a positive number up to 1e6",
    )

    @property
    def total_steps(self) -> int:
        return max(1, self.training_tokens // self.batch_size)

    def validate(self) -> None:
        super().validate()
        if self.training_tokens < self.batch_size:
            raise ConfigError(
                "training_tokens",
                self.training_tokens,
                f"at least batch_size ({self.batch_size})",
            )


@dataclass
class ScheduleSettings(Config):
    """How the learning rate and the sparsity penalty change over training."""

    lr_warmup_fraction: float = train_setting(
        0.01, "share of training the lr warms up over", low=0.0, high=1.0, accepted=FRACTION
    )
    lr_decay_fraction: float = train_setting(
        0.2,
        "share of training the lr decays to 0 over, at the end",
        low=0.0,
        high=1.0,
        accepted=FRACTION,
    )
    l1_warmup_fraction: float = train_setting(
        0.05,
        "share of training the sparsity penalty (L1, L0) ramps in over",
        low=0.0,
        high=1.0,
        accepted=FRACTION,
    )

    def validate(self) -> None:
        super().validate()
        if self.lr_warmup_fraction + self.lr_decay_fraction > 1.0:
            raise ConfigError(
                "lr_decay_fraction",
                self.lr_decay_fraction,
                f"at most 1 - lr_warmup_fraction ({1 - self.lr_warmup_fraction:g})",
            )


@dataclass
class DeadFeatureSettings(Config):
    """When a feature counts as dead, and what revives it (AuxK for
    TopK-style, resampling for L1)."""

    dead_after_tokens: int = train_setting(
        1_000_000, "a feature that has not fired in this many tokens is dead", low=1, count=True
    )
    aux_k_coefficient: float = train_setting(
        1 / 32,
        "weight of the AuxK loss on dead features (TopK-style)",
        low=0.0,
        high=100.0,
        accepted="a number from 0 to 100",
    )
    aux_k: int | None = train_setting(
        None, "dead features the AuxK loss uses (null: d_in // 2)", low=1
    )
    resample_every_tokens: int = train_setting(
        0, "L1 SAEs: re-initialise dead features this often (0: never)", low=0, count=True
    )


@dataclass
class LoggingSettings(Config):
    """Checkpoints, metrics lines, the progress bar and Weights & Biases."""

    checkpoint_every_tokens: int = train_setting(
        1_000_000, "tokens between resumable checkpoints, e.g. 1M", low=1, count=True
    )
    log_every_steps: int = train_setting(10, "steps between metrics lines", low=1)
    progress: bool = train_setting(True, "show a progress bar (plain lines in logs)")
    wandb: bool = train_setting(False, "log metrics to Weights & Biases")
    wandb_project: str = train_setting("saescope", "the Weights & Biases project")


@dataclass
class TrainConfig(Config):
    """One training run. Token counts are in activation vectors (tokens at a hook point)."""

    run_dir: str = train_setting("runs/train", "folder of the run (SAEs, checkpoints, metrics)")
    seed: int = train_setting(0, "seed of the initialisation and the activation order", low=0)
    device: str = train_setting("cpu", "torch device to train on, e.g. cpu, cuda, cuda:1")
    model: ModelSettings = section(ModelSettings, "the model and its hook points", cli=False)
    corpus: CorpusConfig = section(
        CorpusConfig, "the text for live activations (unused with activations.cache)", cli=False
    )
    activations: ActivationSettings = section(
        ActivationSettings, "where activations come from", cli=False
    )
    sae: SAESettings = section(SAESettings, "the SAEs' width and initialisation", cli=False)
    # its class is the registry's for the name it holds
    architecture: Hyperparameters = section(
        Hyperparameters,
        "the SAE architecture (name) and its own settings",
        cli=False,
        factory=default_hyperparameters,
    )
    optim: OptimSettings = section(OptimSettings, "tokens, batches and Adam", cli=False)
    schedule: ScheduleSettings = section(
        ScheduleSettings, "warm-up and decay of the lr and the penalty", cli=False
    )
    dead_features: DeadFeatureSettings = section(
        DeadFeatureSettings, "dead features: when, and their revival", cli=False
    )
    logging: LoggingSettings = section(LoggingSettings, "checkpoints and metrics", cli=False)

    def __post_init__(self) -> None:
        super().__post_init__()  # normalises: "2M" -> 2000000, "1e-3" -> 0.001, mappings
        self.validate()

    # ---- construction: the nested form, and the flat one of older configs ---------------------

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "") -> TrainConfig:
        """Build from a mapping: nested sections, or the flat keys of older configs."""
        nested = nest_legacy(values)
        if isinstance(nested, dict):
            check_top_level_names(nested, where)
        return super().from_dict(nested, where=where)

    @classmethod
    def from_yaml(cls, path: Any, overrides: list[str] | None = None) -> TrainConfig:
        return cls.from_layers(read_yaml(path), parse_overrides(overrides or []))

    @classmethod
    def from_layers(cls, *layers: dict[str, Any]) -> TrainConfig:
        """Later layers win; each may be flat or nested (a flat k=64 over a nested file)."""
        merged: dict[str, Any] = {}
        for layer in layers:
            merged = merge(merged, nest_legacy(layer))
        return cls.from_dict(merged)

    def with_overrides(self, overrides: list[str]) -> TrainConfig:
        return self.from_layers(self.to_dict(), parse_overrides(overrides))

    def updated(self, changes: dict[str, Any]) -> TrainConfig:
        """This config with {"optim.lr": 1e-3, ...} applied (flat keys of older configs too)."""
        return self.from_layers(self.to_dict(), nest_dotted(changes))

    # ---- derived -----------------------------------------------------------------------------

    @property
    def hook_list(self) -> list[str]:
        return self.model.hook_list

    @property
    def total_steps(self) -> int:
        return self.optim.total_steps

    def sae_grid(self) -> list[dict[str, Any]]:
        """One dict per SAE to train: hook, expansion_factor, the architecture's grid fields
        (k, l1_coefficient, ...) and label."""
        hyper = self.architecture
        grid = []
        for hook, factor, values in itertools.product(
            self.hook_list, as_list(self.sae.expansion_factor), hyper.grid()
        ):
            label = f"{hook}-x{factor}" + hyper.label(values)
            grid.append({"hook": hook, "expansion_factor": factor, **values, "label": label})
        return grid

    # ---- validation: the declared checks, then what they cannot express ------------------------

    def validate(self) -> None:
        super().validate()
        for spec in specs(type(self)):
            value = getattr(self, spec.name)
            if spec.is_section and not isinstance(value, CorpusConfig):  # corpus: opened later
                validate_section(spec.name, value)
        if self.activations.buffer_tokens < self.optim.batch_size:
            raise ConfigError(
                "activations.buffer_tokens",
                self.activations.buffer_tokens,
                f"at least optim.batch_size ({self.optim.batch_size})",
            )

    def check_k_fits(self, d_in: int) -> None:
        """The architecture's checks that need d_in (known once the model is): e.g. k at most
        d_sae of the smallest SAE."""
        get_architecture(self.architecture.name).check_fits(
            self.architecture, d_in, min(as_list(self.sae.expansion_factor))
        )


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


# ---- the flat keys of configs written before the sections ----------------------------------------

# flat keys whose name changed inside their section (the rest keep their name)
RENAMED = {
    "model": "model.name",
    "model_batch_contexts": "model.batch_contexts",
    "activation_cache": "activations.cache",
    "normalize_activations": "activations.normalize",
    "architecture": "architecture.name",
}
SECTIONS_OF_FLAT_KEYS = (
    "model",
    "activations",
    "sae",
    "optim",
    "schedule",
    "dead_features",
    "logging",
)
_warned = False


def legacy_paths() -> dict[str, str]:
    """Every flat key of the old TrainConfig (but the architecture's) -> its dotted path."""
    paths = {}
    by_name = {spec.name: spec for spec in specs(TrainConfig)}
    for name in SECTIONS_OF_FLAT_KEYS:
        for leaf in by_name[name].type.field_names():
            path = f"{name}.{leaf}"
            if path not in RENAMED.values():
                paths[leaf] = path
    return {**paths, **RENAMED}


def nest_legacy(values: dict[str, Any]) -> dict[str, Any]:
    """Flat keys of an older config moved into their sections; the nested form is left as it is.

    The old config held every architecture's fields side by side: all go to `architecture`, where
    those the architecture named does not have are dropped (unused then, too).
    """
    if not isinstance(values, dict):
        return values
    paths = {**legacy_paths(), **architecture_paths()}
    nested: dict[str, Any] = {}
    moved = []
    for key, value in values.items():
        # model: smollm2 and architecture: topk were strings; the sections are mappings
        is_new_section = key in ("model", "architecture") and not isinstance(value, str)
        if key in paths and not is_new_section:
            section_name, leaf = paths[key].split(".")
            nested = merge(nested, {section_name: {leaf: value}})
            moved.append(key)
        else:
            nested = merge(nested, {key: value})
    if moved:
        _warn_once(moved)
    return nested


def architecture_paths() -> dict[str, str]:
    """The flat keys of the registered architectures' settings (k, jumprelu_bandwidth, ...) -> their
    dotted paths (architecture.k, architecture.bandwidth, ...)."""
    paths = {}
    for cls in all_hyperparameters():
        paths.update({name: f"architecture.{name}" for name in cls.settings()})
        paths.update({old: f"architecture.{name}" for old, name in cls.legacy_names.items()})
    return paths


def _warn_once(keys: list[str]) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "TrainConfig: read the flat keys of an older config (%s) into their sections; "
            "saescope config-docs train shows the nested form",
            ", ".join(sorted(keys)[:6]) + (", ..." if len(keys) > 6 else ""),
        )


# ---- comparing a saved run's config with the current one ---------------------------------------


def flat_fields(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optim': {'lr': 1e-3}} -> {'optim.lr': 1e-3}: one entry per leaf field."""
    flat = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update(flat_fields(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


def changed_fields(
    old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()
) -> list[str]:
    """Dotted names of the fields whose values differ (for refusing a resume with a changed config).
    Either side may be flat (an older run's) or nested.

    A section saved by an older saescope holds only the keys its YAML gave (corpus: {}):
    its defaults are filled in before comparing, so an unchanged run still resumes.
    """
    old, new = flat_fields(with_defaults(old)), flat_fields(with_defaults(new))
    return sorted(
        name
        for name in set(old) | set(new)
        if name not in ignore and old.get(name) != new.get(name)
    )


def with_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The nested form with every section's missing keys filled with their defaults."""
    filled = nest_legacy(values)
    for spec in specs(TrainConfig):
        value = filled.get(spec.name, {} if spec.is_section else None)
        if spec.is_section and isinstance(value, dict):
            # unreadable: compared as it is, so it counts as changed
            with contextlib.suppress(SaescopeError, ValueError, TypeError):
                filled[spec.name] = spec.type.from_dict(value).to_dict()
    return filled


def check_top_level_names(values: dict[str, Any], where: str = "") -> None:
    """An unknown key is refused with the nearest field, looked for among the sections' fields too
    (a misspelt flat key of an older config gets its dotted path)."""
    known = TrainConfig.field_names()
    for name in values:
        if name not in known:
            hint = suggest_field(str(name))
            suggestion = f"; did you mean {where + hint!r}?" if hint else ""
            raise SaescopeError(
                f"unknown field {where + str(name)!r}{suggestion} Known fields: "
                f"{', '.join(known)} (each section's: saescope config-docs train)."
            )


def suggest_field(name: str) -> str | None:
    """The dotted field nearest to an unknown name (flat names of older configs included)."""
    section_hint = difflib.get_close_matches(name, TrainConfig.field_names(), n=1, cutoff=0.8)
    if section_hint:
        return section_hint[0]
    leaves = {**legacy_paths(), **architecture_paths()}
    hint = difflib.get_close_matches(name, list(leaves), n=1, cutoff=0.6)
    return leaves[hint[0]] if hint else None
