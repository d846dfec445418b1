"""An already-built TransformerLens HookedTransformer behind the HookedModel interface.

Duck-typed (transformer_lens is not a dependency): our hook names are TransformerLens's own,
so reading goes through its run_with_cache and replacing through its run_with_hooks.
"""

from __future__ import annotations

from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.models.hooked import HookedModel, Replacement, hook_parts


class TLHookedModel(HookedModel):
    def __init__(self, tl_model: Any) -> None:
        cfg = tl_model.cfg
        self.tl_model = tl_model.eval()
        self.hf_model = None
        self.tokenizer = tl_model.tokenizer
        self.name = str(getattr(cfg, "model_name", "HookedTransformer"))
        self.n_layers, self.d_model, self.d_vocab = (
            int(cfg.n_layers),
            int(cfg.d_model),
            int(cfg.d_vocab_out),
        )
        self.d_mlp = int(cfg.d_mlp or 0)
        self.max_context = int(cfg.n_ctx)
        self.device, self.dtype = torch.device(cfg.device), tl_model.W_U.dtype
        self.architecture = str(getattr(cfg, "original_architecture", None) or "HookedTransformer")
        self.final_norm = tl_model.ln_final
        self._available = set(tl_model.hook_dict)

    def has_resid_mid(self) -> bool:
        return not getattr(self.tl_model.cfg, "parallel_attn_mlp", False)

    def hook_points(self) -> dict[str, int]:
        # attn-only models have no MLP hooks: keep only the names TransformerLens really has
        return {
            name: width for name, width in super().hook_points().items() if name in self._available
        }

    def _prepare(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
            raise SaescopeError(
                "tokens: expected a LongTensor [batch, ctx]; got "
                f"{getattr(tokens, 'shape', type(tokens))}."
            )
        self.check_context_length(tokens.shape[1])
        return tokens.to(self.device)

    @staticmethod
    def _fwd_hooks(replacements: dict[str, Replacement]) -> list[tuple[str, Any]]:
        return [(name, lambda act, hook, fn=fn: fn(act)) for name, fn in replacements.items()]

    @torch.no_grad()  # not inference_mode: the activations stay usable with autograd
    def run_with_cache(
        self,
        tokens: torch.Tensor,
        hooks: list[str],
        stop_early: bool = True,
        replacements: dict[str, Replacement] | None = None,
    ) -> dict[str, torch.Tensor]:
        replacements = replacements or {}
        self.check_hooks([*hooks, *replacements])
        tokens = self._prepare(tokens)
        if not hooks:
            return {}
        deepest = max(hook_parts(h)[0] for h in hooks)
        cache: dict[str, torch.Tensor] = {}

        def save(act: torch.Tensor, hook: Any) -> None:
            cache[hook.name] = act

        # stop_at_layer=L+1 runs blocks 0..L and returns the residual instead of logits
        stop = deepest + 1 if stop_early and deepest + 1 < self.n_layers else None
        self.tl_model.run_with_hooks(
            tokens,
            fwd_hooks=[*self._fwd_hooks(replacements), *[(h, save) for h in dict.fromkeys(hooks)]],
            stop_at_layer=stop,
            return_type=None,  # the cache is all we need; with stop_at_layer it returns the residual anyway
        )
        return {name: cache[name] for name in hooks}

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.tl_model(self._prepare(tokens), return_type="logits")

    @torch.no_grad()
    def run_with_replacement(
        self, tokens: torch.Tensor, replacements: dict[str, Replacement]
    ) -> torch.Tensor:
        self.check_hooks(list(replacements))
        return self.tl_model.run_with_hooks(
            self._prepare(tokens), fwd_hooks=self._fwd_hooks(replacements), return_type="logits"
        )

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        return self.tl_model.unembed(self.final_norm(resid))

    @property
    def W_U(self) -> torch.Tensor:
        return self.tl_model.W_U

    def final_norm_weight(self) -> torch.Tensor | None:
        # TransformerLens already folds Gemma's (1 + w) into w; folded
        # norms (LayerNormPre) have none
        return getattr(self.final_norm, "w", None)

    def final_norm_centers(self) -> bool:
        return type(self.final_norm).__name__.startswith("LayerNorm")
