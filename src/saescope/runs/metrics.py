"""A run's metrics.jsonl (training and eval metrics, one JSON object a line) and the
training-curves PNG drawn from it: loss, FVU, L0 and dead fraction against tokens, one line per
SAE. Light on imports (matplotlib loads only when a PNG is drawn): the viewer reads these files
without the trainer."""

from __future__ import annotations

import json
from pathlib import Path

from saescope.fileio import atomic_write

PANELS = [
    ("loss", "loss", "log"),
    ("fvu", "FVU", "log"),
    ("l0", "L0", "linear"),
    ("dead_fraction", "dead fraction", "linear"),
]


def read_metrics(path: Path, kind: str = "train") -> list[dict]:
    """The records of one kind ("train", "eval") in a metrics.jsonl; [] when there is none.
    A line that is not a JSON object (the last one, torn by a kill mid-write) is skipped."""
    if not path.exists():
        return []
    return [r for r in parse_lines(path.read_text()) if r.get("kind") == kind]


def parse_lines(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the records up to `step`, the checkpoint a resume starts from (later ones will be
    logged again), and drop a torn last line; the file is replaced atomically."""
    if not path.exists():
        return
    kept = [r for r in parse_lines(path.read_text()) if r.get("step", 0) <= step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def plot_training_curves(metrics_path: Path, png_path: Path) -> Path | None:
    """Draw the curves from metrics.jsonl into png_path; None if there is nothing to draw."""
    records = read_metrics(Path(metrics_path))
    if not records:
        return None
    import matplotlib  # slow import, only when a PNG is drawn

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = sorted({r["sae"] for r in records})
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (key, title, scale) in zip(axes.flat, PANELS, strict=True):
        for label in labels:
            rows = [r for r in records if r["sae"] == label and r.get(key) is not None]
            ax.plot([r["tokens"] for r in rows], [r[key] for r in rows], label=label, linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("training tokens")
        if scale == "log" and all(r.get(key, 0) > 0 for r in records):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(png_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return Path(png_path)
