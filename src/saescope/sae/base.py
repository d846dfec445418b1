"""The SAE base class every architecture shares: weights, input handling, encode/decode, folding.

Shapes (SAELens's orientation, which is also the native file layout):
    W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out],
    W_skip [d_out, d_in] (transcoders with a skip connection, as sparsify and SAELens store it).
For a plain SAE d_out == d_in. An architecture subclass only says how pre-activations
become feature activations (`activation`), plus any extra tensors it owns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from saescope.errors import SaescopeError
from saescope.sae.config import SAEConfig

PER_TOKEN_NORMS = ("constant_norm_rescale", "layer_norm")
CONSTANT_SCALE_NORMS = ("expected_average_only_in", "constant_scale")


@dataclass
class InputStats:
    """What normalising one batch of inputs took, so decode can undo it.

    constant_norm_rescale: x * scale, undone by y / scale.
    layer_norm: (x - shift) / (std + 1e-5), undone by y * std + shift (as SAELens does it).
    All [..., 1].
    """

    scale: torch.Tensor | None = None
    shift: torch.Tensor | None = None
    std: torch.Tensor | None = None


def torch_dtype(name: str) -> torch.dtype:
    return {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "float64": torch.float64,
    }[name]


class SAE(nn.Module):
    """A sparse autoencoder (or transcoder). Subclasses set `architecture` and `activation`."""

    architecture: ClassVar[str] = ""
    # the per-feature encoder tensors besides W_enc (what resampling a dead feature resets)
    encoder_biases: ClassVar[tuple[str, ...]] = ("b_enc",)
    # a buffer (register_buffer), declared for the type checker
    input_scale: torch.Tensor

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        if cfg.architecture != self.architecture:
            raise SaescopeError(
                f"{type(self).__name__} needs architecture {self.architecture!r}, got "
                f"{cfg.architecture!r}"
            )
        self.cfg = cfg
        dtype = torch_dtype(cfg.dtype)
        d_in, d_sae, d_out = self.d_in, self.d_sae, self.d_out
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae, dtype=dtype))
        self.b_enc = nn.Parameter(torch.zeros(d_sae, dtype=dtype))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_out, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(d_out, dtype=dtype))
        self.W_skip = (
            nn.Parameter(torch.zeros(d_out, d_in, dtype=dtype)) if cfg.skip_connection else None
        )
        # the constant input multiplier of the constant-scale normalisations (1 otherwise)
        self.register_buffer("input_scale", torch.ones((), dtype=dtype))
        self._last_stats: InputStats | None = None
        # log10 feature densities when the file had them (SAELens's sparsity.safetensors): [d_sae]
        self.log_feature_sparsity: torch.Tensor | None = None
        # the format load_sae read this SAE from (cfg.source_format says where it came from first)
        self.file_format: str | None = None

    # ---- sizes ---------------------------------------------------------------------------

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def d_out(self) -> int:
        # SAEConfig.__post_init__ sets d_out (to d_in when not given)
        return self.cfg.d_out if self.cfg.d_out is not None else self.cfg.d_in

    @property
    def hook_name(self) -> str:
        """The hook point this SAE reads (running it on a model needs one)."""
        if self.cfg.hook_name is None:
            raise SaescopeError("this SAE's config has no hook_name: set the hook point it reads")
        return self.cfg.hook_name

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape of every tensor this SAE holds (what a file must provide)."""
        d_in, d_sae, d_out = self.d_in, self.d_sae, self.d_out
        shapes: dict[str, tuple[int, ...]] = {
            "W_enc": (d_in, d_sae),
            "b_enc": (d_sae,),
            "W_dec": (d_sae, d_out),
            "b_dec": (d_out,),
        }
        if self.W_skip is not None:
            shapes["W_skip"] = (d_out, d_in)
        return shapes

    # ---- input handling ------------------------------------------------------------------

    def normalize_input(self, x: torch.Tensor) -> tuple[torch.Tensor, InputStats | None]:
        """x: [..., d_in] -> the normalised input and what decode needs to undo it."""
        mode = self.cfg.normalize_activations
        if mode == "constant_norm_rescale":
            scale = math.sqrt(self.d_in) / x.norm(dim=-1, keepdim=True)
            return x * scale, InputStats(scale=scale)
        if mode == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            centred = x - mu
            std = centred.std(dim=-1, keepdim=True)
            # the 1e-5 is in the scale (not the std kept for decode), as SAELens and OpenAI do
            return centred / (std + 1e-5), InputStats(shift=mu, std=std)
        if mode in CONSTANT_SCALE_NORMS:
            return x * self.input_scale, None
        return x, None

    def denormalize_output(self, y: torch.Tensor, stats: InputStats | None) -> torch.Tensor:
        """y: [..., d_out] in normalised units -> the units of the input."""
        mode = self.cfg.normalize_activations
        if not self.cfg.denormalize_outputs:
            return y
        if mode in PER_TOKEN_NORMS:
            if stats is None:
                raise SaescopeError(
                    f"decode needs the statistics of the inputs (normalize_activations={mode!r}): "
                    "call encode first"
                )
            if stats.std is not None and stats.shift is not None:
                return y * stats.std + stats.shift
            if stats.scale is not None:
                return y / stats.scale
            raise SaescopeError(
                "decode got input statistics with neither a scale nor std and shift "
                f"(normalize_activations={mode!r})"
            )
        if mode in CONSTANT_SCALE_NORMS:
            return y / self.input_scale
        return y

    def sae_input(self, x_normed: torch.Tensor) -> torch.Tensor:
        """Subtract b_dec first if the source did (apply_b_dec_to_input)."""
        return x_normed - self.b_dec if self.cfg.apply_b_dec_to_input else x_normed

    # ---- encode / decode -----------------------------------------------------------------

    def pre_acts(self, sae_in: torch.Tensor) -> torch.Tensor:
        """sae_in: [..., d_in] (normalised, b_dec handled) -> hidden_pre [..., d_sae]."""
        return sae_in @ self.W_enc + self.b_enc

    def activation(self, hidden_pre: torch.Tensor) -> torch.Tensor:
        """hidden_pre [..., d_sae] -> feature activations [..., d_sae]."""
        raise NotImplementedError

    def encode_with_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, InputStats | None]:
        """x: [..., d_in] -> (feature acts [..., d_sae], input statistics for decode)."""
        x = x.to(self.dtype)
        x_normed, stats = self.normalize_input(x)
        return self.activation(self.pre_acts(self.sae_input(x_normed))), stats

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., d_in] -> feature acts [..., d_sae] (dense).

        With a per-token normalisation the statistics of x are kept for the next decode.
        """
        acts, self._last_stats = self.encode_with_stats(x)
        return acts

    def decode_with_stats(self, acts: torch.Tensor, stats: InputStats | None) -> torch.Tensor:
        """acts: [..., d_sae] -> reconstruction [..., d_out] in input units (no skip connection)."""
        return self.denormalize_output(self.decoder_input(acts) @ self.W_dec + self.b_dec, stats)

    def decoder_input(self, acts: torch.Tensor) -> torch.Tensor:
        """What multiplies W_dec; architectures that rescale activations override this."""
        return acts

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """acts: [..., d_sae] -> reconstruction [..., d_out], undoing
        the last encode's normalisation."""
        return self.decode_with_stats(acts, self._last_stats)

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The skip connection's contribution x @ W_skip.T: [..., d_out] (zero without one)."""
        if self.W_skip is None:
            return torch.zeros(*x.shape[:-1], self.d_out, dtype=self.dtype, device=x.device)
        return x.to(self.dtype) @ self.W_skip.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., d_in] -> the source's full output [..., d_out], skip connection included."""
        acts, stats = self.encode_with_stats(x)
        out = self.decode_with_stats(acts, stats)
        if self.W_skip is not None:
            out = out + self.skip(x)
        return out

    def sparse_codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [n, d_in] -> (token row [m], feature [m], value [m]) of the non-zero activations.

        What analysis reads; architectures that pick their features directly (TopK) skip the
        dense [n, d_sae] tensor.
        """
        with torch.no_grad():
            acts = self.encode(x)
        rows, features = torch.nonzero(acts > 0, as_tuple=True)
        return rows, features, acts[rows, features].float()

    # ---- sparse decode -------------------------------------------------------------------

    def decode_sparse(
        self, values: torch.Tensor, indices: torch.Tensor, stats: InputStats | None = None
    ) -> torch.Tensor:
        """values, indices: [..., k] (active features) -> reconstruction [..., d_out].

        Same result as decode() of the dense acts, reading only k rows of W_dec per token.
        Uses the last encode's statistics when `stats` is not given.
        """
        k = values.shape[-1]
        lead = values.shape[:-1]
        weights = self.decoder_input_sparse(values.to(self.dtype), indices).reshape(-1, k)
        out = F.embedding_bag(
            indices.reshape(-1, k), self.W_dec, per_sample_weights=weights, mode="sum"
        )
        out = out.reshape(*lead, self.d_out) + self.b_dec
        return self.denormalize_output(out, stats if stats is not None else self._last_stats)

    def decoder_input_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """decoder_input() for sparse activations: values [..., k] at indices [..., k]."""
        return values

    # ---- weight helpers (analysis and training) --------------------------------------------

    def W_dec_norms(self) -> torch.Tensor:
        """[d_sae]: the L2 norm of each feature's decoder row."""
        return self.W_dec.norm(dim=-1)

    @torch.no_grad()
    def fold_W_dec_norm(self) -> None:
        """Make every decoder row unit-norm, moving its norm into the encoder.

        Reconstructions are unchanged; feature activations become acts * ||W_dec[i]||, so
        they are comparable across features (what analysis wants).
        """
        norms = self.W_dec_norms().clamp_min(1e-12)  # [d_sae]
        self.check_foldable(norms)
        self.W_enc.mul_(norms)
        if self.b_enc is not None:  # gated SAEs have none
            self.b_enc.mul_(norms)
        self.W_dec.div_(norms[:, None])
        self.scale_feature_tensors(norms)

    def check_foldable(self, norms: torch.Tensor) -> None:
        """Raise if folding these norms would change this architecture's outputs."""

    def scale_feature_tensors(self, norms: torch.Tensor) -> None:
        """Scale the architecture's own per-feature tensors
        (thresholds, biases) by norms [d_sae]."""

    @torch.no_grad()
    def set_W_dec_unit_norm(self) -> None:
        """Rescale decoder rows to unit norm in place (training constraint; changes outputs)."""
        self.W_dec.div_(self.W_dec_norms().clamp_min(1e-12)[:, None])

    @torch.no_grad()
    def fold_input_scale(self) -> None:
        """Fold a constant input scale into the weights, leaving normalize_activations 'none'.

        encode((x*s - b_dec) @ W_enc) == encode((x - b_dec/s) @ (s*W_enc)), and decode's /s
        moves into W_dec and b_dec; so outputs are unchanged for every architecture.
        """
        if self.cfg.normalize_activations not in CONSTANT_SCALE_NORMS:
            return
        s = self.input_scale.clone()
        self.W_enc.mul_(s)
        self.W_dec.div_(s)
        self.b_dec.div_(s)
        self.input_scale.fill_(1.0)
        self.cfg = self.cfg.replace(normalize_activations="none")

    def extra_repr(self) -> str:
        cfg = self.cfg
        text = f"architecture={cfg.architecture}, d_in={cfg.d_in}, d_sae={cfg.d_sae}"
        if cfg.d_out != cfg.d_in:
            text += f", d_out={cfg.d_out}"
        if cfg.k is not None:
            text += f", k={cfg.k}"
        return text
