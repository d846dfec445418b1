"""SAEConfig: an SAE's sizes, architecture and provenance (model, hook
point, normalisation, corpus).

The field names follow SAELens's cfg.json where SAELens has the idea, so that the native
format (SAELens's layout) needs little translation; keys we do not know are kept in
`extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from saescope.errors import ConfigError


class RegisteredArchitectures(Sequence[str]):
    """The registered architecture names, read from the registry each time (so plug-ins count).

    The architecture modules import this module, so the registry is imported on first use.
    """

    @staticmethod
    def names() -> tuple[str, ...]:
        from saescope.sae.architectures import architecture_names  # cycle

        return architecture_names()

    def __getitem__(self, index: Any) -> Any:
        return self.names()[index]

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __repr__(self) -> str:
        return repr(self.names())


ARCHITECTURES = RegisteredArchitectures()

# How inputs are scaled before encoding; decode undoes it.
#   none                      inputs used as they are
#   constant_norm_rescale     per token: x * sqrt(d_in) / ||x|| (SAELens)
#   layer_norm                per token: (x - mean) / (std + 1e-5) (SAELens, OpenAI v5)
#   expected_average_only_in  x * input_scale, a constant kept in the file; outputs are divided back
#   constant_scale            x * input_scale (same as above; the name other readers use)
#   covariance_whitening      SAELens: the whitening is folded into the weights after training,
#                             so at inference inputs are used as they are (as SAELens does)
NORMALIZE_MODES = (
    "none",
    "constant_norm_rescale",
    "layer_norm",
    "expected_average_only_in",
    "constant_scale",
    "covariance_whitening",
)

DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass
class SAEConfig:
    """What an SAE is (architecture, sizes, input handling) and where it came from.

    d_out is the output width: d_in for an SAE, the output hook's width for a transcoder.
    """

    architecture: str
    d_in: int
    d_sae: int
    d_out: int | None = None
    dtype: str = "float32"
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    # decode undoes the input normalisation (SAELens transcoders do not:
    # their outputs stay normalised)
    denormalize_outputs: bool = True
    # TopK-style sparsity: k per token (TopK) or the average k per token (BatchTopK)
    k: int | None = None
    # TopK: multiply pre-activations by ||W_dec[i]|| before choosing, divide
    # back in decode (SAELens option)
    rescale_acts_by_decoder_norm: bool = False
    # Matryoshka: the nested dictionaries' widths, increasing, the last == d_sae (as SAELens);
    # dictionary_learning's group sizes [a, b, c] are widths [a, a+b, a+b+c]
    matryoshka_widths: list[int] | None = None
    # a transcoder: reads hook_name, reconstructs hook_name_out (set too when d_out differs or
    # hook_name_out is set)
    transcoder: bool = False
    skip_connection: bool = False
    # provenance
    model_name: str | None = None
    hook_name: str | None = None
    hook_name_out: str | None = None  # transcoders: the hook point the output reconstructs
    hook_layer: int | None = None
    hook_layer_out: int | None = None
    hook_head_index: int | None = None
    context_size: int | None = None
    dataset_path: str | None = None
    prepend_bos: bool | None = None
    source_format: str | None = None
    source_path: str | None = None
    # keys of the source's config that have no field here, written back unchanged
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.d_out is None:
            self.d_out = self.d_in
        self.validate()

    @property
    def is_transcoder(self) -> bool:
        return self.transcoder or self.hook_name_out is not None or self.d_out != self.d_in

    def validate(self) -> None:
        from saescope.sae.architectures import get_architecture  # cycle

        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                "architecture", self.architecture, f"one of {', '.join(ARCHITECTURES)}"
            )
        for name in ("d_in", "d_sae", "d_out"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(name, value, "a positive integer")
        if self.normalize_activations not in NORMALIZE_MODES:
            raise ConfigError(
                "normalize_activations",
                self.normalize_activations,
                f"one of {', '.join(NORMALIZE_MODES)}",
            )
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", self.dtype, f"one of {', '.join(DTYPES)}")
        get_architecture(self.architecture).check_sae_config(self)
        if self.apply_b_dec_to_input and self.d_out != self.d_in:
            raise ConfigError(
                "apply_b_dec_to_input",
                True,
                f"false for a transcoder whose d_out ({self.d_out}) differs from d_in "
                f"({self.d_in})",
            )

    def to_dict(self) -> dict[str, Any]:
        """Every field, with `extra` kept as a nested dict."""
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def replace(self, **changes: Any) -> SAEConfig:
        return dataclasses.replace(self, **changes)
