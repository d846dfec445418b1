"""TrainConfig: what to train, on what, for how long; from Python, YAML, and key=value overrides.

Every field is checked in `validate()` with a message naming the field, the value and what
is accepted; an unknown field name gets the nearest known name suggested.
Several SAEs train in one pass when `hooks`, `expansion_factor`, `k` or `l1_coefficient`
hold lists: one SAE per combination, all fed the same activation batches.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from saescope.config import parse_count
from saescope.errors import ConfigError, SaescopeError
from saescope.sae.architectures import Hyperparameters, architecture_names, get_architecture

B_DEC_INITS = ("mean", "geometric_median", "zeros")


@dataclass
class TrainConfig:
    """One training run. Token counts are in activation vectors (tokens at a hook point)."""

    run_dir: str = "runs/train"
    model: str = "smollm2"
    hooks: str | list[str] = "blocks.6.hook_resid_post"
    # activations: from a harvested cache (saescope harvest) when set, else live from the model
    activation_cache: str | None = None
    corpus: dict[str, Any] = field(default_factory=dict)  # CorpusConfig fields (live activations)
    model_batch_contexts: int = 8
    # the SAE(s)
    architecture: str = "topk"
    expansion_factor: int | list[int] = 16
    k: int | list[int] = 32
    l1_coefficient: float | list[float] = 5.0
    jumprelu_l0_coefficient: float = 1.0
    jumprelu_bandwidth: float = 0.001
    matryoshka_fractions: list[float] = field(default_factory=lambda: [0.0625, 0.1875, 0.75])
    # optimisation
    training_tokens: int = 2_000_000
    batch_size: int = 4096
    lr: float = 2e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = (
        0.0  # clip the gradients' global norm to this (0: no clipping); SAELens clips at 1
    )
    lr_warmup_fraction: float = 0.01
    lr_decay_fraction: float = 0.2
    l1_warmup_fraction: float = 0.05
    decoder_unit_norm: bool = True  # False: L1 weighted by decoder norms instead
    # norm of the decoder rows at the start; with a free decoder norm SAELens starts at 0.1
    decoder_init_norm: float = 1.0
    b_dec_init: str = "geometric_median"
    b_dec_init_tokens: int = 16_384
    init_encoder_as_decoder_t: bool = True
    normalize_activations: bool = True
    buffer_tokens: int = 2**17
    # dead features
    dead_after_tokens: int = 1_000_000
    aux_k_coefficient: float = 1 / 32
    aux_k: int | None = None  # default d_in // 2
    resample_every_tokens: int = 0  # L1 SAEs: re-initialise dead features this often (0: never)
    # bookkeeping
    checkpoint_every_tokens: int = 1_000_000
    log_every_steps: int = 10
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    wandb: bool = False
    wandb_project: str = "saescope"

    def __post_init__(self) -> None:
        for name in COUNT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str | float) and not isinstance(value, bool):
                setattr(self, name, parse_count_field(name, value))
        for name in FLOAT_FIELDS:  # YAML reads 1e-3 (no dot) as a string
            setattr(self, name, as_float(getattr(self, name)))
        self.validate()

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        check_field_names(values, cls.field_names())
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise SaescopeError(f"{path}: no such config file")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise SaescopeError(f"{path}: not valid YAML ({err})") from err
        if not isinstance(values, dict):
            raise SaescopeError(
                f"{path}: expected a mapping of field: value, got {type(values).__name__}"
            )
        return cls.from_dict(merge_overrides(values, parse_overrides(overrides or [])))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        check_field_names(changes, self.field_names())
        return dataclasses.replace(self, **changes)

    # ---- derived -----------------------------------------------------------------------------

    @property
    def hook_list(self) -> list[str]:
        return as_list(self.hooks)

    def hyperparameters(self) -> Hyperparameters:
        """The fields this config's architecture reads (grid fields may still hold lists)."""
        return get_architecture(self.architecture).hyperparameters.from_values(self)

    def sae_grid(self) -> list[dict[str, Any]]:
        """One dict per SAE to train: hook, expansion_factor, the architecture's grid fields
        (k, l1_coefficient, ...) and label."""
        hyper = self.hyperparameters()
        grid = []
        for hook, factor, values in itertools.product(
            self.hook_list, as_list(self.expansion_factor), hyper.grid()
        ):
            label = f"{hook}-x{factor}" + hyper.label(values)
            grid.append({"hook": hook, "expansion_factor": factor, **values, "label": label})
        return grid

    @property
    def total_steps(self) -> int:
        return max(1, self.training_tokens // self.batch_size)

    # ---- validation --------------------------------------------------------------------------

    def validate(self) -> None:
        self._check_choice("architecture", architecture_names())
        self._check_choice("b_dec_init", B_DEC_INITS)
        hooks = as_list(self.hooks)
        if not hooks or not all(isinstance(h, str) and h for h in hooks):
            raise ConfigError(
                "hooks",
                self.hooks,
                "a hook point name or a list of them, e.g. blocks.6.hook_resid_post",
            )
        if len(set(hooks)) != len(hooks):
            raise ConfigError("hooks", self.hooks, "distinct hook point names")
        for name in ("run_dir", "model", "device", "wandb_project"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(name, getattr(self, name), "a non-empty string")
        if self.activation_cache is not None and not isinstance(self.activation_cache, str):
            raise ConfigError(
                "activation_cache", self.activation_cache, "a harvested cache folder, or null"
            )
        if not isinstance(self.corpus, dict):
            raise ConfigError(
                "corpus", self.corpus, "a mapping of corpus settings (source, context_length, ...)"
            )
        for factor in as_list(self.expansion_factor):
            self._check_int("expansion_factor", factor, 1, 1024)
        for name, low in (
            ("training_tokens", 1),
            ("batch_size", 1),
            ("b_dec_init_tokens", 1),
            ("buffer_tokens", 1),
            ("dead_after_tokens", 1),
            ("resample_every_tokens", 0),
            ("checkpoint_every_tokens", 1),
            ("log_every_steps", 1),
            ("model_batch_contexts", 1),
            ("seed", 0),
        ):
            self._check_int(name, getattr(self, name), low)
        if self.training_tokens < self.batch_size:
            raise ConfigError(
                "training_tokens", self.training_tokens, f"at least batch_size ({self.batch_size})"
            )
        if self.buffer_tokens < self.batch_size:
            raise ConfigError(
                "buffer_tokens", self.buffer_tokens, f"at least batch_size ({self.batch_size})"
            )
        # the architecture checks the fields it reads (k, l1_coefficient, jumprelu_*, ...)
        self.hyperparameters().validate()
        if self.aux_k is not None:
            self._check_int("aux_k", self.aux_k, 1)
        self._check_float(
            "lr", self.lr, 1e-8, 1.0, "a learning rate from 1e-8 to 1 (typical: 1e-4 to 1e-3)"
        )
        for name in ("adam_beta1", "adam_beta2"):
            self._check_float(name, getattr(self, name), 0.0, 0.9999999, "a number in [0, 1)")
        for name in ("lr_warmup_fraction", "lr_decay_fraction", "l1_warmup_fraction"):
            self._check_float(
                name, getattr(self, name), 0.0, 1.0, "a fraction of training from 0 to 1"
            )
        if self.lr_warmup_fraction + self.lr_decay_fraction > 1.0:
            raise ConfigError(
                "lr_decay_fraction",
                self.lr_decay_fraction,
                f"at most 1 - lr_warmup_fraction ({1 - self.lr_warmup_fraction:g})",
            )
        self._check_float(
            "aux_k_coefficient", self.aux_k_coefficient, 0.0, 100.0, "a number from 0 to 100"
        )
        self._check_float(
            "max_grad_norm",
            self.max_grad_norm,
            0.0,
            1e6,
            "0 (no clipping) or a positive number up to 1e6",
        )
        self._check_float(
            "decoder_init_norm",
            self.decoder_init_norm,
            1e-6,
            1e6,
            "a positive number (1e-6 to 1e6)",
        )
        if self.decoder_unit_norm is True and self.decoder_init_norm != 1.0:
            raise ConfigError(
                "decoder_init_norm",
                self.decoder_init_norm,
                "1.0 while decoder_unit_norm is true (the rows are kept at norm 1); "
                "set decoder_unit_norm: false to start them at another norm",
            )
        for name in (
            "decoder_unit_norm",
            "init_encoder_as_decoder_t",
            "normalize_activations",
            "progress",
            "wandb",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "true or false")

    def check_k_fits(self, d_in: int) -> None:
        """The architecture's checks that need d_in (known once the model is): e.g. k at most
        d_sae of the smallest SAE."""
        get_architecture(self.architecture).check_fits(
            self.hyperparameters(), d_in, min(as_list(self.expansion_factor))
        )

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in choices:
            hint = difflib.get_close_matches(str(value), choices, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(name, value, f"one of {', '.join(choices)}{suggestion}")

    @staticmethod
    def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
        ok = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= low
            and (high is None or value <= high)
        )
        if not ok:
            accepted = (
                f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
            )
            raise ConfigError(name, value, accepted)

    @staticmethod
    def _check_float(name: str, value: Any, low: float, high: float, accepted: str) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ConfigError(name, value, accepted)


COUNT_FIELDS = (
    "training_tokens",
    "batch_size",
    "b_dec_init_tokens",
    "buffer_tokens",
    "dead_after_tokens",
    "resample_every_tokens",
    "checkpoint_every_tokens",
)


FLOAT_FIELDS = (
    "lr",
    "adam_beta1",
    "adam_beta2",
    "lr_warmup_fraction",
    "lr_decay_fraction",
    "l1_warmup_fraction",
    "aux_k_coefficient",
    "l1_coefficient",
    "jumprelu_l0_coefficient",
    "jumprelu_bandwidth",
    "decoder_init_norm",
    "max_grad_norm",
)


def as_float(value: Any) -> Any:
    """'1e-3' -> 0.001 (also inside lists); anything else unchanged, for validate() to judge."""
    if isinstance(value, list):
        return [as_float(v) for v in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_count_field(name: str, value: str | float) -> Any:
    """'2M', '2e6', 2e6 -> 2000000 for the token-count fields; anything else is left for validate()."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    try:
        return parse_count(value)
    except argparse.ArgumentTypeError:
        return value


def merge_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; a mapping field (corpus) is merged key by key."""
    merged = dict(values)
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        else:
            merged[name] = value
    return merged


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def check_field_names(values: dict[str, Any], known: list[str]) -> None:
    """Raise for the first unknown field, suggesting the nearest known name."""
    for name in values:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise SaescopeError(
                f"unknown field {name!r}{suggestion} Known fields: {', '.join(known)}."
            )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['k=64', 'hooks=[blocks.3.hook_resid_post, blocks.6.hook_resid_post]'] -> {field: value}.

    Values are parsed as YAML, so numbers, booleans, lists and null work as in the file;
    `corpus.source=builtin` sets one key of a mapping field.
    """
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise SaescopeError(f"override {item!r}: expected field=value, e.g. k=64")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SaescopeError(f"override {item!r}: the value is not valid YAML ({err})") from err
        if isinstance(value, str) and value.replace("_", "").isdigit():
            value = int(value)  # '2_000_000' is a number, as in Python
        parent, dot, key = name.partition(".")
        if dot:
            values.setdefault(parent, {})[key] = value
        else:
            values[name] = value
    return values


def changed_fields(
    old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()
) -> list[str]:
    """Names of the fields whose values differ (for refusing a resume with a changed config)."""
    return sorted(
        name
        for name in set(old) | set(new)
        if name not in ignore and old.get(name) != new.get(name)
    )
