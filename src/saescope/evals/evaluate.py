"""evaluate(): any SAE load_sae reads (or a training run's SAEs) on its model, hook point and a
corpus.

Writes eval.json, feature_density.json and feature_density.png next to the SAE (or into
out_dir), appends {"kind": "eval", ...} lines to a run's metrics.jsonl, and returns the
numbers; format_table() prints them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.errors import SaescopeError
from saescope.evals.metrics import EvalAccumulator, evaluate_batch
from saescope.fileio import atomic_write, write_json
from saescope.models import load_model
from saescope.progress import progress_bar
from saescope.runs.layout import metrics_path, run_dir_around, trained_sae_dirs
from saescope.sae import SAE, load_sae
from saescope.sae.with_model import load_sae_with_model, model_name_of

TABLE_ROWS = [
    ("l0", "L0", "{:.1f}"),
    ("mse", "MSE", "{:.4g}"),
    ("fvu", "FVU", "{:.4f}"),
    ("explained_variance", "explained variance", "{:.4f}"),
    ("ce_loss_clean", "CE loss, clean", "{:.4f}"),
    ("ce_loss_sae", "CE loss, SAE spliced in", "{:.4f}"),
    ("ce_loss_ablated", "CE loss, zero-ablated", "{:.4f}"),
    ("ce_loss_recovered", "CE loss recovered", "{:.4f}"),
    ("kl_div", "KL to clean (nats)", "{:.4f}"),
    ("unfired_fraction", "not fired in these tokens", "{:.2%}"),
    ("dense_fraction", "dense (> 10% of these)", "{:.2%}"),
    ("n_tokens", "tokens evaluated", "{:,}"),
]


def find_saes(path: str | Path) -> list[Path]:
    """A run directory -> its SAE folders (sae/ or saes/*/); anything else is returned as is."""
    return trained_sae_dirs(path)


def evaluate(
    sae: SAE | str | Path,
    model: Any = None,
    corpus: Any = None,
    n_tokens: int = 8192,
    batch_contexts: int = 8,
    skip_contexts: int = 0,
    out_dir: str | Path | None = None,
    hook: str | None = None,
    with_ce: bool = True,
    dense_threshold: float = 0.1,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate one SAE; returns the metrics (see metrics.py for the definitions).

    sae: an SAE or anything load_sae reads; model: a HookedModel (default: the SAE's model_name,
    else smollm2); corpus: a CorpusConfig (default: built-in, the SAE's context size).
    out_dir: where to write eval.json and the density files (default: the SAE's folder when
    given a path; nothing is written for an SAE object without out_dir).
    """
    loaded = load_sae_with_model(sae, model, hook)
    sae, model, hook = loaded.sae, loaded.model, loaded.hook
    if out_dir is None:
        out_dir = loaded.folder
    if corpus is None:
        corpus = CorpusConfig(context_length=min(sae.cfg.context_size or 128, model.max_context))

    acc = EvalAccumulator(sae.d_sae)
    bar = progress_bar(
        total=n_tokens, unit="tok", unit_scale=True, desc="eval", disable=not progress
    )
    for tokens in iter_context_batches(
        corpus, model.tokenizer, batch_contexts, skip_contexts=skip_contexts
    ):
        evaluate_batch(
            sae,
            model,
            hook,
            tokens.to(model.device),
            acc,
            skip_first=corpus.prepend_bos,
            with_ce=with_ce,
        )
        bar.update(tokens.numel())
        if acc.n_tokens + acc.n_tokens // max(1, corpus.context_length - 1) >= n_tokens:
            break
    bar.close()
    if acc.n_tokens == 0:
        raise SaescopeError(f"corpus {corpus.source!r} gave no contexts to evaluate on")
    results = {
        "sae": loaded.source,
        "hook": hook,
        "model": model.name,
        **acc.results(dense_threshold),
    }
    if out_dir is not None:
        write_outputs(Path(out_dir), results, acc)
        run_dir = run_dir_around(out_dir)
        if run_dir is not None:
            append_metrics(metrics_path(run_dir), {"kind": "eval", **results})
    return results


def evaluate_path(path: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    """Evaluate every SAE of a run directory (or the one SAE at path); the model is loaded once."""
    folders = find_saes(path)
    if kwargs.get("model") is None:
        kwargs["model"] = load_model(model_name_of(load_sae(folders[0])))
    out_dir = kwargs.pop("out_dir", None)
    results = []
    for folder in folders:
        out = (
            None
            if out_dir is None
            else (Path(out_dir) / folder.name if len(folders) > 1 else Path(out_dir))
        )
        results.append(evaluate(folder, out_dir=out, **kwargs))
    return results


def write_outputs(out_dir: Path, results: dict[str, Any], acc: EvalAccumulator) -> None:
    """eval.json, feature_density.json (log10 densities + histogram) and feature_density.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "eval.json", results)
    log_density = acc.log10_density()
    finite = log_density[torch.isfinite(log_density)]
    counts, edges = (
        torch.histogram(finite.float(), bins=50, range=(-8.0, 0.0))
        if finite.numel()
        else (torch.zeros(50), torch.linspace(-8, 0, 51))
    )
    write_json(
        out_dir / "feature_density.json",
        {
            "log10_density": [
                None if not torch.isfinite(v) else round(float(v), 5) for v in log_density
            ],
            "histogram": {
                "bin_edges": edges.tolist(),
                "counts": counts.long().tolist(),
                "never_fired": int((~torch.isfinite(log_density)).sum()),
            },
            "n_tokens": acc.n_tokens,
        },
    )
    plot_density(
        out_dir / "feature_density.png",
        finite,
        int((~torch.isfinite(log_density)).sum()),
        acc.n_tokens,
    )


def plot_density(
    path: Path, finite_log_density: torch.Tensor, never_fired: int, n_tokens: int
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(finite_log_density.numpy(), bins=50, range=(-8, 0), color="#3b6ea5")
    ax.set_xlabel("log10 feature density (fraction of tokens a latent is active on)")
    ax.set_ylabel("latents")
    ax.set_title(f"feature density over {n_tokens:,} tokens ({never_fired} latents never fired)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table: one column per SAE."""
    names = [Path(r["sae"]).name if r.get("sae") else r.get("hook", "sae") for r in results]
    width = max(12, *(len(n) for n in names))
    lines = [f"{'metric':<26}" + "".join(f"{n:>{width + 2}}" for n in names)]
    for key, label, fmt in TABLE_ROWS:
        if any(key in r for r in results):
            cells = [
                fmt.format(r[key]) if key in r and r[key] is not None else "-" for r in results
            ]
            lines.append(f"{label:<26}" + "".join(f"{c:>{width + 2}}" for c in cells))
    return "\n".join(lines)
