"""An SAE and the model it reads, loaded together: the one place that decides which model and
which hook point an SAE runs on (and says so clearly when they do not fit).

Evals, the analysis and the viewer all need "this SAE on its model at its hook point". The
fallbacks, in order: the model given, else the one the SAE's cfg.json names (model_name), else
the bundled SmolLM2; the hook point given, else the SAE's hook_name, else an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saescope.errors import SaescopeError
from saescope.models import HookedModel, load_model
from saescope.runs.layout import sae_dir_of
from saescope.sae.base import SAE
from saescope.sae.loading import load_sae

DEFAULT_MODEL = "smollm2"  # the bundled model, when neither the caller nor the SAE names one

log = logging.getLogger(__name__)


@dataclass
class SAEOnModel:
    sae: SAE  # on the model's device, in eval mode
    model: HookedModel
    hook: str  # the hook point the SAE reads
    source: str | None  # the path or spec the SAE was loaded from, as given (None for an object)
    folder: Path | None  # the SAE's folder or file (a run directory's sae/); None for an object


def load_sae_with_model(
    sae: SAE | str | Path,
    model: HookedModel | Any = None,
    hook: str | None = None,
) -> SAEOnModel:
    """The SAE (an object, a path, a run directory or an hf: spec) and its model, checked to fit.

    model: a HookedModel as it is, anything else load_model takes (a name, a path, a
    transformers or TransformerLens model), or None for the SAE's model_name (else smollm2).
    """
    source = folder = None
    if not isinstance(sae, SAE):
        source = str(sae)
        local = sae_dir_of(sae)
        sae = load_sae(local)
        # hf: specs and published names have no folder of their own (not the hub cache)
        folder = local if local.exists() else None
    hook = hook or sae.cfg.hook_name
    if not hook:
        raise SaescopeError(
            "hook_name: the SAE's cfg.json names no hook point; "
            "pass the hook point it reads (hook=..., or --hook where the command has it)."
        )
    if not isinstance(model, HookedModel):
        model = load_model(model or model_name_of(sae))
    check_fits(model, sae, hook)
    return SAEOnModel(sae.to(model.device).eval(), model, hook, source, folder)


def model_name_of(sae: SAE) -> str:
    """The model an SAE reads: its cfg.json's model_name, else the bundled model (said so)."""
    if sae.cfg.model_name:
        return sae.cfg.model_name
    log.warning("the SAE's cfg.json names no model (model_name); using %s", DEFAULT_MODEL)
    return DEFAULT_MODEL


def check_fits(model: HookedModel, sae: SAE, hook: str) -> None:
    """The hook point exists in the model and is as wide as the SAE's input (d_in)."""
    model.check_hooks([hook])
    width = model.hook_points()[hook]
    if width != sae.d_in:
        raise SaescopeError(
            f"d_in: the SAE reads {sae.d_in}-wide inputs but hook point {hook} of {model.name} "
            f"is {width} wide; use the model this SAE was trained on (--model) or an SAE with "
            f"d_in={width}."
        )
