"""The layout of a run directory, and the one test that tells a run directory from other folders.

runs/<name>/
  run.json              what produced this directory (written when training finishes)
  train_config.json     the training config (written when training starts)
  sae/                  the trained SAE (saes/<label>/ when one run trains several)
  checkpoints/          resumable training state
  metrics.jsonl         training and eval metrics, one JSON object a line
  features.db           the feature store
"""

from __future__ import annotations

from pathlib import Path

RUN_FILE = "run.json"
TRAIN_CONFIG_FILE = "train_config.json"
SAE_DIR = "sae"
SAES_DIR = "saes"
SAE_CONFIG_FILE = "cfg.json"  # what makes a folder an SAE folder (SAELens's layout)
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
STORE_FILE = "features.db"
CURVES_FILE = "training_curves.png"


def sae_dir(run_dir: str | Path) -> Path:
    """The folder of a run's SAE (a run training one SAE)."""
    return Path(run_dir) / SAE_DIR


def sae_dirs(run_dir: str | Path) -> Path:
    """The folder holding one folder per SAE (a run training several)."""
    return Path(run_dir) / SAES_DIR


def store_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STORE_FILE


def metrics_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / METRICS_FILE


def run_file(run_dir: str | Path) -> Path:
    return Path(run_dir) / RUN_FILE


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR


def is_sae_dir(path: str | Path) -> bool:
    return (Path(path) / SAE_CONFIG_FILE).exists()


def holds_trained_sae(path: str | Path) -> bool:
    """A run directory whose SAE is trained: sae/cfg.json is written only when training ends."""
    return is_sae_dir(sae_dir(path))


def is_run_dir(path: str | Path) -> bool:
    """A folder a pipeline writes into: its run.json, its training config or its trained SAE."""
    path = Path(path)
    return (
        (path / RUN_FILE).exists() or (path / TRAIN_CONFIG_FILE).exists() or holds_trained_sae(path)
    )


def sae_dir_of(path: str | Path) -> Path:
    """A run directory with a trained SAE -> its sae/; any other path as it is."""
    return sae_dir(path) if holds_trained_sae(path) else Path(path)


def trained_sae_dirs(path: str | Path) -> list[Path]:
    """A run directory -> its SAE folders (sae/, or each saes/<label>/); any other path as it is."""
    if holds_trained_sae(path):
        return [sae_dir(path)]
    several = sae_dirs(path)
    if several.is_dir():
        found = sorted(p for p in several.iterdir() if is_sae_dir(p))
        if found:
            return found
    return [Path(path)]


def run_dir_around(path: str | Path) -> Path | None:
    """The run directory a file or folder lies in (its parent or the parent's parent: a run's
    sae/, saes/<label>/ or features.db), or None when it lies in none."""
    parent = Path(path).parent
    for folder in (parent, parent.parent):
        if is_run_dir(folder):
            return folder
    return None
