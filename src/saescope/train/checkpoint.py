"""Training checkpoints: one file holding everything a bit-exact resume needs, written atomically.

What a resume needs: every SAE's weights and optimiser state, each latent's tokens since it
last fired, the step (the schedules are functions of it), the activation store's position,
the scaling factors, and the random generators. The config rides along so a resume with a
changed config is refused. Checkpoints hold only tensors and plain data, and are read with
weights_only=True: a crafted file in a shared run directory cannot run code on resume.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.fileio import atomic_write

CHECKPOINT_FILE = "checkpoints/checkpoint.pt"


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write state to run_dir/checkpoints/checkpoint.pt (temporary name, then rename)."""
    path = checkpoint_path(run_dir)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(run_dir: str | Path) -> dict[str, Any] | None:
    """The last checkpoint of a run, or None if it has none."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # objects beyond tensors and plain data: never run them
        raise SaescopeError(
            f"{path}: the checkpoint holds Python objects other than tensors and plain data, which "
            "saescope does not load (loading them could run code). If you wrote it with an older "
            "saescope and trust it, start the run again without it (delete checkpoints/); "
            f"otherwise delete it. ({str(err).splitlines()[0]})"
        ) from err
    except Exception as err:  # a damaged file: say which, do not guess
        raise SaescopeError(
            f"{path}: cannot read the checkpoint ({err}); delete it to start the run again"
        ) from err
