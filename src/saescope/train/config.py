"""TrainConfig: what to train, on what, for how long; from Python, YAML, and key=value overrides.

Declared once on the config schema (saescope.config): each field's help, accepted range or
choices and count parsing give the checks, the messages (field, value, what is accepted), the
"did you mean" for unknown names, dotted overrides (corpus.seed=3) and `saescope config-docs train`.
Several SAEs train in one pass when `hooks`, `expansion_factor`, `k` or `l1_coefficient`
hold lists: one SAE per combination, all fed the same activation batches.
The architecture-specific fields stay flat (YAML compatibility); their checks are the
architecture's Hyperparameters.validate(), nowhere else.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
from dataclasses import dataclass
from typing import Any

from saescope.config import Config, parse_overrides, section, setting
from saescope.config.schema import specs
from saescope.corpus import CorpusConfig
from saescope.errors import ConfigError, SaescopeError
from saescope.sae.architectures import Hyperparameters, architecture_names, get_architecture

__all__ = ["TrainConfig", "as_list", "changed_fields", "parse_overrides"]

B_DEC_INITS = ("mean", "geometric_median", "zeros")
FRACTION = "a fraction of training from 0 to 1"
HOOKS = "a hook point name or a list of distinct ones, e.g. blocks.6.hook_resid_post"
# shown in the docs; the check itself asks the registry, which plug-ins extend at run time
ARCHITECTURES = f"a registered architecture: {', '.join(architecture_names())} or a plug-in's name"
# the architecture's Hyperparameters check these (only the type comes from the declaration)
BY_ARCHITECTURE = "checked by the architecture"


def by_architecture(default: Any, help: str) -> Any:
    """An architecture-specific field: declared here for YAML, its range checked by the architecture."""
    return setting(default, help, note=BY_ARCHITECTURE, cli=False)


def train_setting(default: Any, help: str, **checks: Any) -> Any:
    """A TrainConfig field: `saescope train` takes it as field=value, not as a flag."""
    return setting(default, help, cli=False, **checks)


@dataclass
class TrainConfig(Config):
    """One training run. Token counts are in activation vectors (tokens at a hook point)."""

    run_dir: str = train_setting("runs/train", "folder of the run (SAEs, checkpoints, metrics)")
    model: str = train_setting("smollm2", "the language model: smollm2, an HF id or a path")
    hooks: str | list[str] = train_setting(
        "blocks.6.hook_resid_post",
        "hook point(s) to train on; a list trains one SAE per hook",
        accepted=HOOKS,
    )
    activation_cache: str | None = train_setting(
        None,
        "a harvested activation cache to train from (saescope harvest); null: live from the model",
        accepted="a harvested cache folder, or null",
    )
    corpus: CorpusConfig = section(
        CorpusConfig, "the text for live activations (unused with activation_cache)", cli=False
    )
    model_batch_contexts: int = train_setting(
        8, "contexts per model forward (live activations)", low=1
    )
    # the SAE(s)
    architecture: str = train_setting("topk", "the SAE architecture", accepted=ARCHITECTURES)
    expansion_factor: int | list[int] = train_setting(
        16, "d_sae / d_in; a list trains one SAE per value", low=1, high=1024
    )
    k: int | list[int] = by_architecture(
        32, "active features per token (TopK-style); a list trains one SAE per value"
    )
    l1_coefficient: float | list[float] = by_architecture(
        5.0, "L1 penalty (standard, gated); a list trains one SAE per value"
    )
    jumprelu_l0_coefficient: float = by_architecture(1.0, "L0 penalty of a JumpReLU SAE")
    jumprelu_bandwidth: float = by_architecture(
        0.001, "width of the JumpReLU threshold's pseudo-derivative"
    )
    matryoshka_fractions: list[float] = by_architecture(
        [0.0625, 0.1875, 0.75], "Matryoshka: the nested groups' shares of d_sae"
    )
    # optimisation
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
        "share of training the sparsity penalty ramps in over",
        low=0.0,
        high=1.0,
        accepted=FRACTION,
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
    normalize_activations: bool = train_setting(
        True, "scale activations to a mean norm of sqrt(d_in) (folded into the saved SAE)"
    )
    buffer_tokens: int = train_setting(
        2**17, "activation vectors in the shuffle buffer, e.g. 128k", low=1, count=True
    )
    # dead features
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
    # bookkeeping
    checkpoint_every_tokens: int = train_setting(
        1_000_000, "tokens between resumable checkpoints, e.g. 1M", low=1, count=True
    )
    log_every_steps: int = train_setting(10, "steps between metrics lines", low=1)
    seed: int = train_setting(0, "seed of the initialisation and the activation order", low=0)
    device: str = train_setting("cpu", "torch device to train on, e.g. cpu, cuda, cuda:1")
    progress: bool = train_setting(True, "show a progress bar (plain lines in logs)")
    wandb: bool = train_setting(False, "log metrics to Weights & Biases")
    wandb_project: str = train_setting("saescope", "the Weights & Biases project")

    def __post_init__(self) -> None:
        super().__post_init__()  # normalises: "2M" -> 2000000, "1e-3" -> 0.001, corpus mapping
        self.validate()

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

    # ---- validation: the declared checks, then what they cannot express ------------------------

    def validate(self) -> None:
        super().validate()
        if self.architecture not in architecture_names():
            hint = difflib.get_close_matches(self.architecture, architecture_names(), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(
                "architecture",
                self.architecture,
                f"one of {', '.join(architecture_names())}{suggestion}",
            )
        if not self.hook_list or len(set(self.hook_list)) != len(self.hook_list):
            raise ConfigError("hooks", self.hooks, HOOKS)
        for name in ("training_tokens", "buffer_tokens"):
            if getattr(self, name) < self.batch_size:
                raise ConfigError(
                    name, getattr(self, name), f"at least batch_size ({self.batch_size})"
                )
        self.hyperparameters().validate()  # k, l1_coefficient, jumprelu_*, ...
        if self.lr_warmup_fraction + self.lr_decay_fraction > 1.0:
            raise ConfigError(
                "lr_decay_fraction",
                self.lr_decay_fraction,
                f"at most 1 - lr_warmup_fraction ({1 - self.lr_warmup_fraction:g})",
            )
        if self.decoder_unit_norm and self.decoder_init_norm != 1.0:
            raise ConfigError(
                "decoder_init_norm",
                self.decoder_init_norm,
                "1.0 while decoder_unit_norm is true (the rows are kept at norm 1); "
                "set decoder_unit_norm: false to start them at another norm",
            )

    def check_k_fits(self, d_in: int) -> None:
        """The architecture's checks that need d_in (known once the model is): e.g. k at most
        d_sae of the smallest SAE."""
        get_architecture(self.architecture).check_fits(
            self.hyperparameters(), d_in, min(as_list(self.expansion_factor))
        )


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def changed_fields(
    old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()
) -> list[str]:
    """Names of the fields whose values differ (for refusing a resume with a changed config).

    A section saved by an older saescope holds only the keys its YAML gave (corpus: {}):
    its defaults are filled in before comparing, so an unchanged run still resumes.
    """
    old, new = with_section_defaults(old), with_section_defaults(new)
    return sorted(
        name
        for name in set(old) | set(new)
        if name not in ignore and old.get(name) != new.get(name)
    )


def with_section_defaults(values: dict[str, Any]) -> dict[str, Any]:
    filled = dict(values)
    for spec in specs(TrainConfig):
        value = values.get(spec.name)
        if spec.is_section and isinstance(value, dict):
            # unreadable: compared as it is, so it counts as changed
            with contextlib.suppress(SaescopeError, ValueError, TypeError):
                filled[spec.name] = spec.type.from_dict(value).to_dict()
    return filled
