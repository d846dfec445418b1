"""Live inference for the viewer: the model and the SAEs, loaded once, and one worker thread.

Every request that touches the model runs on the same single worker, one after another:
forward hooks and the SAE's stored input statistics are shared state, so two requests at
once could read each other's activations. Store reads never wait for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from saescope.dashboards.dashboard import prompt_dashboard_data
from saescope.errors import SaescopeError
from saescope.inference import PromptRun
from saescope.inference.steering import steer
from saescope.models import HookedModel, load_model
from saescope.sae import SAE, load_sae
from saescope.server.sources import ViewerSource
from saescope.store import FeatureStore

MAX_TEXT_CHARS = 4000  # longer texts are refused before tokenizing
MAX_TEXT_TOKENS = 256  # tokens of a live text (its BOS included)
T = TypeVar("T")


class TextTooLong(SaescopeError):
    """A live text over the limit (HTTP 413)."""


class LiveUnavailable(SaescopeError):
    """Live inference is off for this SAE: no weights found, or they did not load (HTTP 409)."""


class LiveEngine:
    def __init__(self, source: ViewerSource, model: HookedModel | None = None,
                 saes: dict[str, SAE] | None = None, threads: int = 1,
                 max_tokens: int = MAX_TEXT_TOKENS) -> None:
        self.max_tokens = max_tokens
        self.saes: dict[str, SAE] = dict(saes or {})
        self.models: dict[str, HookedModel] = {}
        self.unavailable: dict[str, str] = {}  # sae_id -> why it has no live inference
        self._sae_model: dict[str, HookedModel] = {}
        self._given_model = model
        # Intra-op threads: more than the free cores makes every forward far slower when
        # the machine is shared (the threads spin against each other).
        torch.set_num_threads(max(1, threads))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="saescope-live")
        self._lock = threading.Lock()
        self._load(source)

    # --- loading -------------------------------------------------------------------------

    def _load(self, source: ViewerSource) -> None:
        for brief in source.store.list_saes():
            sae_id = brief["sae_id"]
            try:
                if sae_id not in self.saes:
                    folder = source.sae_dirs.get(sae_id)
                    if folder is None:
                        raise LiveUnavailable(f"no SAE weights found for {sae_id!r} (looked in its analysis's "
                                              "source folder and the run directory)")
                    self.saes[sae_id] = load_sae(folder).eval()
                self._model_for(sae_id, brief.get("model"))
            except SaescopeError as err:
                self.saes.pop(sae_id, None)
                self.unavailable[sae_id] = str(err)

    def _model_for(self, sae_id: str, stored_name: str | None) -> HookedModel:
        sae = self.saes[sae_id]
        name = sae.cfg.model_name or stored_name
        if self._given_model is not None:
            model = self._given_model
        elif not name:
            raise LiveUnavailable(f"the SAE {sae_id!r} names no model (cfg.model_name)")
        else:
            if name not in self.models:
                self.models[name] = load_model(name)
            model = self.models[name]
        if not sae.cfg.hook_name:
            raise LiveUnavailable(f"the SAE {sae_id!r} names no hook point (cfg.hook_name)")
        model.check_hooks([sae.cfg.hook_name])
        self.models.setdefault(name or model.name, model)
        self._sae_model[sae_id] = model
        return model

    def live(self, sae_id: str) -> bool:
        return sae_id in self.saes

    def parts(self, sae_id: str) -> tuple[HookedModel, SAE]:
        if sae_id not in self.saes:
            reason = self.unavailable.get(sae_id, f"the SAE {sae_id!r} is not in the store")
            raise LiveUnavailable(f"live inference is off for this SAE: {reason}.")
        return self._sae_model[sae_id], self.saes[sae_id]

    # --- running -------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the inference worker, after the requests queued before it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._locked, fn, args)

    def _locked(self, fn: Callable[..., T], args: tuple) -> T:
        with self._lock, torch.inference_mode():
            return fn(*args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- what the endpoints ask for (called on the worker) ------------------------------

    def tokens(self, model: HookedModel, text: str) -> torch.Tensor:
        """[1, n] token ids of a live text, BOS first; refuses texts over the limits."""
        if len(text) > MAX_TEXT_CHARS:
            raise TextTooLong(f"text: got {len(text)} characters; the limit is {MAX_TEXT_CHARS} characters "
                              f"({self.max_tokens} tokens).")
        tokens = model.to_tokens(text)
        if tokens.shape[1] > self.max_tokens:
            raise TextTooLong(f"text: got {tokens.shape[1]} tokens; the limit is {self.max_tokens} tokens.")
        return tokens

    def prompt_run(self, sae_id: str, text: str) -> PromptRun:
        """The text through the model up to the SAE's hook point only (the live pages need no
        logits), as the prompt-centric code's PromptRun: tokens (BOS first) and acts [n, d_sae]."""
        model, sae = self.parts(sae_id)
        tokens = self.tokens(model, text)
        hook = sae.cfg.hook_name
        acts, stats = sae.encode_with_stats(model.run_with_cache(tokens, [hook])[hook][0])
        return PromptRun(model, sae, hook, tokens[0].tolist(), text, acts.float(), None, stats)

    def top_features(self, sae_id: str, text: str, k: int) -> dict[str, Any]:
        """Per token, its k most active features; over the text, the features by peak activation."""
        run = self.prompt_run(sae_id, text)
        ids, values = run.top_features(k)  # [n, k]
        per_token = [[{"feature": f, "act": v} for f, v in zip(fs, vs, strict=True) if f >= 0]
                     for fs, vs in zip(ids.tolist(), values.tolist(), strict=True)]
        peak = run.acts.max(dim=0).values
        order = peak.argsort(descending=True)[: 4 * k]
        overall = [{"feature": f, "max_act": v} for f, v in
                   zip(order.tolist(), peak[order].tolist(), strict=True) if v > 0]
        return {"sae_id": sae_id, "token_ids": run.token_ids, "tokens": run.tokens,
                "top_features": per_token, "features_by_max_act": overall}

    def one_feature(self, sae_id: str, feature: int, text: str) -> dict[str, Any]:
        """One feature's activation on every token of the text."""
        check_feature(self.parts(sae_id)[1], feature)
        run = self.prompt_run(sae_id, text)
        column = run.acts[:, feature]
        return {"sae_id": sae_id, "feature": feature, "token_ids": run.token_ids, "tokens": run.tokens,
                "acts": column.tolist(), "max_act": float(column.max())}

    def prompt_page(self, store: FeatureStore, sae_id: str, text: str, position: int | None,
                    n_rows: int) -> dict[str, Any]:
        """The prompt-centric page's data (the dashboards' DashboardData with its prompt part):
        every token's features ranked by activation, quantile and effect on the next token."""
        model, sae = self.parts(sae_id)
        self.tokens(model, text)
        return prompt_dashboard_data(store, sae_id, text, model=model, sae=sae, position=position,
                                     n_rows=n_rows)

    def steer(self, sae_id: str, prompt: str, feature: int, mode: str, value: float,
              max_new_tokens: int) -> dict[str, Any]:
        model, sae = self.parts(sae_id)
        self.tokens(model, prompt)  # the same length limits as every live text
        return {"sae_id": sae_id, **steer(model, sae, prompt, feature, mode, value, max_new_tokens).to_dict()}

    def decoder_directions(self, sae_id: str) -> torch.Tensor:
        """W_dec [d_sae, d_in] as float32 (the feature map projects it)."""
        return self.parts(sae_id)[1].W_dec.detach().float()


def check_feature(sae: SAE, feature: int) -> None:
    if not 0 <= feature < sae.d_sae:
        raise FeatureNotFound(f"feature: got {feature}; this SAE has features 0..{sae.d_sae - 1}.")


class FeatureNotFound(SaescopeError):
    """A feature id outside the SAE (HTTP 404)."""
