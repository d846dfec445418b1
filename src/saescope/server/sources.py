"""What a viewer serves: a feature store, the run directory around it (when there is one),
and for each stored SAE the folder of its weights, which live inference needs.

`saescope serve RUN_OR_STORE` takes a run directory (its features.db, sae/ and metrics),
a store file or a postgresql:// URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saescope.runs.layout import CURVES_FILE, metrics_path, run_file, sae_dir
from saescope.sae.pretrained import is_published_name
from saescope.store import FeatureStore, open_store
from saescope.store.connect import resolve_store_argument


@dataclass
class ViewerSource:
    store: FeatureStore
    run_dir: Path | None  # the run directory, when one was given (or holds the store file)
    sae_dirs: dict[str, Path] = field(default_factory=dict)  # sae_id -> folder of its weights

    @property
    def metrics_path(self) -> Path | None:
        return metrics_path(self.run_dir) if self.run_dir else None

    @property
    def curves_png(self) -> Path | None:
        return self.run_dir / CURVES_FILE if self.run_dir else None


def open_source(
    store_or_run: str | Path | FeatureStore, sae_dirs: dict[str, str | Path] | None = None
) -> ViewerSource:
    """Open the store of a run directory, store file or URL (or take an open store), and find
    each SAE's weights: `sae_dirs` first, then the folder its analysis names, then the
    run's own sae/ or saes/<label>/ folders."""
    if isinstance(store_or_run, FeatureStore):
        store = store_or_run
        run_dir = resolve_store_argument(store.where).run_dir
    else:
        target = resolve_store_argument(store_or_run, must_exist=True, field="RUN_OR_STORE")
        store, run_dir = open_store(target.where, create=False), target.run_dir
    found = {sae_id: Path(p) for sae_id, p in (sae_dirs or {}).items()}
    for sae in store.list_saes():
        if sae["sae_id"] not in found:
            folder = _find_sae_dir(store.sae_summary(sae["sae_id"]), run_dir)
            if folder is not None:
                found[sae["sae_id"]] = folder
    return ViewerSource(store=store, run_dir=run_dir, sae_dirs=found)


def _find_sae_dir(summary: dict[str, Any], run_dir: Path | None) -> Path | None:
    info = summary.get("info", {})
    source = info.get("source")
    if isinstance(source, str) and is_published_name(source):
        return Path(source)  # a published SAE's name: load_sae finds (or downloads) its files
    candidates: list[Path] = []
    for key in ("path", "source"):
        value = info.get(key)
        if isinstance(value, str) and value:
            candidates.append(Path(value).expanduser())
            if run_dir is not None:
                candidates.append(run_dir / value)
    if run_dir is not None:
        candidates += [Path(p) for p in _trained_sae_folders(run_dir)]
        candidates.append(sae_dir(run_dir))
    for folder in candidates:
        if _matches(folder, summary):
            return folder.resolve()
    return None


def _trained_sae_folders(run_dir: Path) -> list[str]:
    try:
        run = json.loads(run_file(run_dir).read_text())
    except (OSError, ValueError):
        return []
    return list(run.get("train", {}).get("saes", {}).values())


def _matches(folder: Path, summary: dict[str, Any]) -> bool:
    """A folder whose cfg.json has the stored SAE's width and hook point."""
    try:
        cfg = json.loads((folder / "cfg.json").read_text())
    except (OSError, ValueError):
        return False
    hook = summary.get("hook_point")
    return cfg.get("d_sae") == summary["d_sae"] and (
        hook is None or cfg.get("hook_name") in (None, hook)
    )
