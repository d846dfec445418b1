"""Checkpoints of the analysis's streaming pass: the accumulators and how many contexts they hold,
in one safetensors file written atomically, so that an interrupted pass resumes.

A checkpoint resumes only the same analysis: the same SAE (a hash of its weights) and the same
settings that shape the accumulators (AnalysisConfig.accumulator_key). The names say "analysis"
because train/checkpoint.py has checkpoints of its own (a training run's whole state).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import safe_open

from saescope.analysis.accumulators import FeatureAccumulators, accumulators_for
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.spool import ActivationSpool, spool_path
from saescope.errors import SaescopeError
from saescope.fileio import save_tensors
from saescope.sae import SAE

FINGERPRINT_BYTES = 1 << 22  # of each weight tensor hashed: enough to tell SAEs apart, quickly


def sae_fingerprint(sae: SAE) -> str:
    """A short hash of the SAE's weights: a checkpoint resumes only for the same SAE."""
    digest = hashlib.sha256()
    for tensor in (sae.W_enc, sae.W_dec, sae.b_dec):
        digest.update(tensor.detach().float().cpu().numpy().tobytes()[:FINGERPRINT_BYTES])
    return digest.hexdigest()[:16]


def settings_key(cfg: AnalysisConfig) -> str:
    return json.dumps(cfg.accumulator_key(), sort_keys=True, default=str)


def save_analysis_checkpoint(
    path: Path,
    acc: FeatureAccumulators,
    contexts_done: int,
    cfg: AnalysisConfig,
    sae: SAE,
    spool: ActivationSpool | None = None,
) -> None:
    """One file (tensors + metadata), written under a temporary name and renamed; the spool's
    contexts are on disk first (a resumed pass trusts the spool up to contexts_done)."""
    if spool is not None:
        spool.sync()
    meta = {
        "contexts_done": str(contexts_done),
        "key": settings_key(cfg),
        "sae": sae_fingerprint(sae),
    }
    save_tensors(path, acc.state_dict(), metadata=meta)


def load_analysis_checkpoint(
    path: Path, cfg: AnalysisConfig, sae: SAE
) -> tuple[FeatureAccumulators, int] | None:
    """(accumulators, contexts done) from a checkpoint of this SAE and config; None if there is
    none."""
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            # safe_open has no __iter__: keys() it is
            state = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception as err:  # any damage: say which file
        raise SaescopeError(
            f"{path}: the analysis checkpoint is damaged ({err}); delete it to start again."
        ) from None
    if meta.get("sae") != sae_fingerprint(sae) or meta.get("key") != settings_key(cfg):
        raise SaescopeError(
            f"{path} is a checkpoint of another analysis (other SAE, corpus, token count or "
            "settings); delete it, or write this analysis elsewhere (--out)."
        )
    acc = accumulators_for(sae, cfg)
    acc.load_state_dict(state)
    return acc, int(meta["contexts_done"])


def remove_analysis_checkpoint(checkpoint: Path) -> None:
    """The checkpoint and the spool beside it: once the result is safely stored."""
    spool_path(checkpoint).unlink(missing_ok=True)
    checkpoint.unlink(missing_ok=True)
