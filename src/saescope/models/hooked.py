"""HookedModel: a causal LM with TransformerLens-style hook points, whatever library built it.

The base class holds what every backend shares (hook names, checks, tokenizing, the linear
logit map of a direction); hf.py and tlens.py implement the forward passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch

from saescope.errors import SaescopeError

# Hook kinds in the order they happen inside one block.
HOOK_KINDS = [
    "hook_resid_pre",
    "hook_attn_out",
    "hook_resid_mid",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
]
_HOOK_RE = re.compile(r"blocks\.(\d+)\.(" + "|".join(re.escape(k) for k in HOOK_KINDS) + r")")

Replacement = Callable[[torch.Tensor], torch.Tensor]


def parse_hook(name: str) -> tuple[int, str] | None:
    """'blocks.6.hook_resid_post' -> (6, 'hook_resid_post'); None if not a hook name."""
    match = _HOOK_RE.fullmatch(name)
    return (int(match.group(1)), match.group(2)) if match else None


def hook_parts(name: str) -> tuple[int, str]:
    """parse_hook for a name already checked to be a hook point: (layer, kind)."""
    parsed = parse_hook(name)
    if parsed is None:
        raise SaescopeError(f"{name!r} is not a hook point name such as blocks.6.hook_resid_post")
    return parsed


def summarize_hooks(points: dict[str, int]) -> list[str]:
    """One line per hook kind: 'blocks.{0-29}.hook_resid_pre  width 576'."""
    layers: dict[str, list[int]] = {}
    widths: dict[str, set[int]] = {}
    for name, width in points.items():
        layer, kind = hook_parts(name)
        layers.setdefault(kind, []).append(layer)
        widths.setdefault(kind, set()).add(width)
    lines = []
    for kind in HOOK_KINDS:
        if kind in layers:
            span = (
                f"{min(layers[kind])}-{max(layers[kind])}"
                if len(layers[kind]) > 1
                else str(layers[kind][0])
            )
            width = "/".join(str(w) for w in sorted(widths[kind]))
            lines.append(f"blocks.{{{span}}}.{kind}  (width {width})")
    return lines


class HookedModel:
    """A causal LM whose activations can be read and replaced at named hook points.

    Subclasses set the attributes in __init__ and implement the forward-pass methods.
    """

    name: str
    tokenizer: Any
    hf_model: torch.nn.Module | None
    n_layers: int
    d_model: int
    d_vocab: int
    d_mlp: int
    max_context: int
    device: torch.device
    dtype: torch.dtype
    architecture: str

    # --- hook points -------------------------------------------------------------------

    def has_resid_mid(self) -> bool:
        return True

    def hook_points(self) -> dict[str, int]:
        """Every hook name -> its width, in forward order."""
        points: dict[str, int] = {}
        widths = {"mlp.hook_post": self.d_mlp}
        for layer in range(self.n_layers):
            for kind in HOOK_KINDS:
                if kind == "hook_resid_mid" and not self.has_resid_mid():
                    continue
                points[f"blocks.{layer}.{kind}"] = widths.get(kind, self.d_model)
        return points

    def check_hooks(self, names: list[str]) -> None:
        """Raise SaescopeError naming any unknown hook and listing the valid ones."""
        points = self.hook_points()
        unknown = [n for n in names if n not in points]
        if unknown:
            valid = "; ".join(summarize_hooks(points))
            raise SaescopeError(
                f"hook: {', '.join(repr(n) for n in unknown)} is not a hook point of {self.name} "
                f"({self.architecture}, {self.n_layers} layers). Valid hook points: {valid}."
            )

    def check_context_length(self, n: int) -> None:
        if n > self.max_context:
            raise SaescopeError(
                f"context_length: got {n}; {self.name} accepts at most {self.max_context} tokens "
                "per context."
            )

    # --- tokens ------------------------------------------------------------------------

    def to_tokens(self, text: str | list[str], prepend_bos: bool = True) -> torch.Tensor:
        """Text -> token ids [batch, ctx]; shorter texts are right-padded (causal: no effect on
        earlier positions)."""
        texts = [text] if isinstance(text, str) else list(text)
        if self.tokenizer is None:
            raise SaescopeError(f"{self.name} has no tokenizer; pass token ids instead of text.")
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        if prepend_bos:
            bos = self.tokenizer.bos_token_id
            if bos is None:
                raise SaescopeError(
                    f"prepend_bos: the tokenizer of {self.name} has no BOS token; use "
                    "prepend_bos=False."
                )
            ids = [[bos, *row] for row in ids]
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        width = max(len(row) for row in ids)
        rows = [row + [pad] * (width - len(row)) for row in ids]
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    # --- logits of directions ---------------------------------------------------------

    def final_norm_weight(self) -> torch.Tensor | None:
        """The final norm's effective elementwise scale [d_model] (None: no weight)."""
        raise NotImplementedError

    def final_norm_centers(self) -> bool:
        """True for LayerNorm, whose mean subtraction is part of the linear map."""
        raise NotImplementedError

    @property
    def W_U(self) -> torch.Tensor:  # the field's name for it
        raise NotImplementedError

    def direction_logits(self, v: torch.Tensor) -> torch.Tensor:
        """v [..., d_model] -> [..., d_vocab]: the logit effect of adding v to the final residual.

        The final norm's elementwise weight (and LayerNorm's centring) is folded in; its
        data-dependent scale is not, so this is a linear map.
        """
        v = v.to(device=self.device, dtype=self.dtype)
        if self.final_norm_centers():
            v = v - v.mean(dim=-1, keepdim=True)
        weight = self.final_norm_weight()
        if weight is not None:
            v = v * weight
        return v @ self.W_U

    # --- forward passes (backends) ----------------------------------------------------

    def run_with_cache(
        self,
        tokens: torch.Tensor,
        hooks: list[str],
        stop_early: bool = True,
        replacements: dict[str, Replacement] | None = None,
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run_with_replacement(
        self, tokens: torch.Tensor, replacements: dict[str, Replacement]
    ) -> torch.Tensor:
        raise NotImplementedError

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.forward(tokens)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, {self.architecture}, n_layers={self.n_layers}, "
            f"d_model={self.d_model}, d_vocab={self.d_vocab}, device={self.device}, "
            f"dtype={self.dtype})"
        )
