"""Hook points on Hugging Face causal LMs, with PyTorch forward hooks
placed by the architecture table.

Reading a hook registers a hook on the module that produces it; with stop_early the last
capture raises _StopForward, so the layers after the deepest requested hook never run.
Replacing a hook returns fn(activation) from the same hook, so the rest of the forward sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel

from saescope.errors import SaescopeError
from saescope.models.architectures import ArchSpec, get_module
from saescope.models.hooked import HOOK_KINDS, HookedModel, Replacement, hook_parts

TensorFn = Callable[[torch.Tensor], torch.Tensor | None]  # None: leave the activation as it is


class _StopForward(Exception):
    """Raised from a hook once every requested activation is captured."""


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, tuple) else x


def _with_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


def _hook_input(module: nn.Module, fn: TensorFn) -> RemovableHandle:
    """Call fn on the module's first input (positional, or
    hidden_states=); a tensor result replaces it."""

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> Any:
        if args:
            new = fn(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        new = fn(kwargs["hidden_states"])
        return None if new is None else (args, {**kwargs, "hidden_states": new})

    return module.register_forward_pre_hook(hook, with_kwargs=True)


def _hook_output(module: nn.Module, fn: TensorFn) -> RemovableHandle:
    """Call fn on the module's output (the first item of a tuple); a tensor result replaces it."""

    def hook(_module: nn.Module, _args: tuple, output: Any) -> Any:
        new = fn(_first(output))
        return None if new is None else _with_first(output, new)

    return module.register_forward_hook(hook)


def _in_features(module: nn.Module) -> int:
    """Input width of a projection: nn.Linear, or GPT-2's Conv1D (weight [in, out])."""
    if isinstance(module, nn.Linear):
        return module.in_features
    nx = getattr(module, "nx", None)
    return int(nx) if nx is not None else module.get_parameter("weight").shape[0]


class HFHookedModel(HookedModel):
    """A Hugging Face CausalLM (Llama family, Gemma 1-3, GPT-2, GPT-NeoX...) with hook points."""

    hf_model: PreTrainedModel  # narrower than HookedModel's Module | None: always a model here

    def __init__(
        self, hf_model: PreTrainedModel, tokenizer: Any, name: str, arch: ArchSpec
    ) -> None:
        self.hf_model = hf_model.eval()  # pyright: ignore[reportIncompatibleVariableOverride]
        self.tokenizer = tokenizer
        self.name = name
        self.arch = arch
        self.config = hf_model.config
        self.blocks = get_module(hf_model, arch.blocks)
        self.final_norm = get_module(hf_model, arch.final_norm)
        self.lm_head = get_module(hf_model, arch.lm_head)
        self.embed = get_module(hf_model, arch.embed)
        self.n_layers = len(self.blocks)
        self.d_model = int(self.config.hidden_size)
        self.d_vocab = int(self.lm_head.weight.shape[0])
        self.d_mlp = _in_features(get_module(self.blocks[0], arch.down_proj))
        self.max_context = int(getattr(self.config, "max_position_embeddings", None) or 10**9)
        param = next(hf_model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.architecture = type(hf_model).__name__
        self.softcap = getattr(self.config, "final_logit_softcapping", None)

    def has_resid_mid(self) -> bool:
        return not self.arch.parallel(self.config)

    # --- placing hooks -----------------------------------------------------------------

    def _site(self, name: str) -> tuple[nn.Module, bool]:
        """(module, True if the hook reads its input / False if its output) for a hook name."""
        layer, kind = hook_parts(name)
        block, arch = self.blocks[layer], self.arch
        path, reads_input = {
            "hook_resid_pre": (None, True),
            "hook_attn_out": (arch.attn_out, False),
            "hook_resid_mid": (arch.mlp_in, True),
            "mlp.hook_post": (arch.down_proj, True),
            "hook_mlp_out": (arch.mlp_out, False),
            "hook_resid_post": (None, False),
        }[kind]
        return (block if path is None else get_module(block, path)), reads_input

    def _hook(self, name: str, fn: TensorFn) -> RemovableHandle:
        module, reads_input = self._site(name)
        return _hook_input(module, fn) if reads_input else _hook_output(module, fn)

    def _add_replacements(
        self, replacements: dict[str, Replacement], handles: list[RemovableHandle]
    ) -> None:
        def order(name: str) -> tuple[int, int]:
            layer, kind = hook_parts(name)
            return layer, HOOK_KINDS.index(kind)

        for name in sorted(replacements, key=order):
            fn = replacements[name]
            if name.endswith("hook_resid_mid"):
                self._replace_resid_mid(name, fn, handles)
            else:
                handles.append(self._hook(name, fn))

    def _replace_resid_mid(
        self, name: str, fn: Replacement, handles: list[RemovableHandle]
    ) -> None:
        """resid_mid is not any module's output: the block keeps its
        own copy for the skip connection.

        So the MLP's input norm gets fn(resid_mid), and the block's output gets the difference
        added, which leaves the block output equal to fn(resid_mid) + mlp_out.
        """
        layer, _ = hook_parts(name)
        deltas: list[torch.Tensor] = []

        def on_mid(x: torch.Tensor) -> torch.Tensor:
            new = fn(x)
            deltas.append(new - x)
            return new

        handles.append(_hook_input(get_module(self.blocks[layer], self.arch.mlp_in), on_mid))
        handles.append(_hook_output(self.blocks[layer], lambda out: out + deltas.pop()))

    def _prepare(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
            raise SaescopeError(
                "tokens: expected a LongTensor [batch, ctx]; got "
                f"{getattr(tokens, 'shape', type(tokens))}."
            )
        self.check_context_length(tokens.shape[1])
        return tokens.to(self.device)

    # --- forward passes ------------------------------------------------------------------

    def run_with_cache(
        self,
        tokens: torch.Tensor,
        hooks: list[str],
        stop_early: bool = True,
        replacements: dict[str, Replacement] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Activations {hook: [batch, ctx, width]}; stop_early skips
        every layer after the deepest hook."""
        with torch.inference_mode():
            cache = self._run_with_cache(tokens, hooks, stop_early, replacements or {})
        # Copied out of inference mode so that callers may use them with autograd (SAE training);
        # a copy is cheap next to the forward that made them.
        return {name: act.clone() for name, act in cache.items()}

    def _run_with_cache(
        self,
        tokens: torch.Tensor,
        hooks: list[str],
        stop_early: bool,
        replacements: dict[str, Replacement],
    ) -> dict[str, torch.Tensor]:
        self.check_hooks([*hooks, *replacements])
        tokens = self._prepare(tokens)
        if not hooks:
            return {}
        cache: dict[str, torch.Tensor] = {}
        remaining = set(hooks)

        def capturer(name: str) -> TensorFn:
            def capture(x: torch.Tensor) -> None:
                cache[name] = x
                remaining.discard(name)
                if stop_early and not remaining:
                    raise _StopForward

            return capture

        handles: list[RemovableHandle] = []
        try:
            self._add_replacements(replacements, handles)  # first: captures see replaced values
            handles += [self._hook(name, capturer(name)) for name in dict.fromkeys(hooks)]
            # The base model (no LM head): the cache never needs logits.
            self.hf_model.base_model(input_ids=tokens, use_cache=False)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return {name: cache[name] for name in hooks}

    @torch.no_grad()  # not inference_mode: logits stay usable with autograd, e.g. in a loss
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [batch, ctx, d_vocab]."""
        return self.hf_model(input_ids=self._prepare(tokens), use_cache=False).logits

    @torch.no_grad()
    def run_with_replacement(
        self, tokens: torch.Tensor, replacements: dict[str, Replacement]
    ) -> torch.Tensor:
        """Logits with each hook's activation replaced by
        fn(activation) for the rest of the forward."""
        self.check_hooks(list(replacements))
        tokens = self._prepare(tokens)
        handles: list[RemovableHandle] = []
        try:
            self._add_replacements(replacements, handles)
            return self.hf_model(input_ids=tokens, use_cache=False).logits
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def replacements_installed(self, replacements: dict[str, Replacement]) -> Iterator[None]:
        """Inside the block, every forward of `hf_model` replaces these hooks' activations;
        lets a caller drive the HF model itself (e.g. generation with a KV cache)."""
        self.check_hooks(list(replacements))
        handles: list[RemovableHandle] = []
        try:
            self._add_replacements(replacements, handles)
            yield
        finally:
            for handle in handles:
                handle.remove()

    # --- unembedding -------------------------------------------------------------------

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """resid [..., d_model] (after the last block) -> logits [...,
        d_vocab], as the model computes them."""
        logits = self.lm_head(self.final_norm(resid))
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    @property
    def W_U(self) -> torch.Tensor:
        """[d_model, d_vocab]; the embedding matrix itself when the model ties them."""
        return self.lm_head.weight.T

    def final_norm_weight(self) -> torch.Tensor | None:
        weight = getattr(self.final_norm, "weight", None)
        return None if weight is None else weight + self.arch.norm_offset

    def final_norm_centers(self) -> bool:
        return isinstance(self.final_norm, nn.LayerNorm)
