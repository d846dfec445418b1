"""The demo: the whole pipeline on built-in defaults (the bundled SmolLM2 and corpus).

harvest activations -> train a TopK SAE on them -> evaluate it -> analyse every feature into
the feature store -> explain and score a few features with the bundled model -> write
dashboards -> serve the web viewer. Every stage resumes or reuses
what an earlier (possibly interrupted) demo run left in the run directory. `saescope demo`
(saescope.cli.demo) runs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from saescope.activations import HarvestConfig, harvest
from saescope.analysis import AnalysisConfig, analyze, remove_analysis_checkpoint
from saescope.dashboards import (
    densest_features,
    random_live_features,
    write_dashboard,
    write_prompt_dashboard,
)
from saescope.evals import evaluate, format_table
from saescope.fileio import read_json
from saescope.models import load_model
from saescope.store import open_store
from saescope.train import TrainConfig, train

HOOK = "blocks.6.hook_resid_post"
N_EXPLAINED = 8  # features the demo explains and scores with the bundled 135M model
MAX_EXPLAINED_DENSITY = 0.05  # denser features fire on nearly everything: little to explain
SAMPLE_PROMPT = (
    "The function returns a list of the words in the string, using sep as the delimiter."
)


def stage(name: str, work: Callable[[], Any]) -> Any:
    print(f"\n== {name}", flush=True)
    start = time.perf_counter()
    result = work()
    print(f"   {name}: {time.perf_counter() - start:.0f} s", flush=True)
    return result


def run_demo(
    run_dir: Path,
    n_tokens: int = 400_000,
    analyze_tokens: int = 32_768,
    eval_tokens: int = 2048,
    serve: bool = True,
    port: int = 8000,
    explain: int = N_EXPLAINED,
) -> None:
    """Every stage in turn into run_dir, printing each stage's time, then (unless serve is
    false) the viewer until Ctrl-C."""
    print(f"saescope demo -> {run_dir}")
    model = stage("load SmolLM2-135M-Instruct", lambda: load_model("smollm2"))
    cache = stage("harvest", lambda: harvest_activations(model, run_dir, n_tokens))
    sae_dir = stage("train", lambda: train_sae(model, run_dir, cache.n_tokens))
    evals = stage(
        "evaluate",
        lambda: evaluate_sae(model, sae_dir, run_dir, eval_tokens, cache.manifest.n_contexts),
    )
    store_path = stage(
        "analyse", lambda: analyse_features(model, sae_dir, run_dir, analyze_tokens, evals)
    )
    if explain > 0:
        stage("explain + score", lambda: explain_some_features(store_path, run_dir, explain))
    pages = stage("dashboards", lambda: write_dashboards(model, store_path, run_dir))
    print_summary(run_dir, cache, evals, store_path, pages)
    if serve:
        serve_viewer(run_dir, model, port)


def harvest_activations(model: Any, run_dir: Path, n_tokens: int) -> Any:
    return harvest(
        HarvestConfig(out=str(run_dir / "activations"), hooks=[HOOK], n_tokens=n_tokens),
        model=model,
    )


def train_sae(model: Any, run_dir: Path, harvested_tokens: int) -> Path:
    if (run_dir / "sae" / "cfg.json").exists():  # written only when training finished
        return run_dir / "sae"
    batch_size = 4096
    # the store drops BOS and the part of each shuffle window short of a batch: stay below that
    steps = int(harvested_tokens * 0.9) // batch_size
    cfg = TrainConfig.from_dict(
        {
            "run_dir": str(run_dir),
            "model": {"hooks": HOOK},
            "activations": {"cache": str(run_dir / "activations")},
            "sae": {"expansion_factor": 8},
            "architecture": {"name": "topk", "k": 32},
            "optim": {"training_tokens": steps * batch_size, "batch_size": batch_size, "lr": 1e-3},
            "dead_features": {"dead_after_tokens": 200_000},
            "logging": {"checkpoint_every_tokens": 100_000},
        }
    )
    train(cfg, model=model)
    return run_dir / "sae"


def evaluate_sae(
    model: Any, sae_dir: Path, run_dir: Path, n_tokens: int, trained_contexts: int
) -> dict[str, Any]:
    written = run_dir / "evals" / "eval.json"
    if written.exists() and written.stat().st_mtime > (sae_dir / "cfg.json").stat().st_mtime:
        results = read_json(written)  # this SAE was evaluated by an earlier demo run
    else:
        # on contexts after the training data
        results = evaluate(
            sae_dir,
            model=model,
            n_tokens=n_tokens,
            skip_contexts=trained_contexts,
            out_dir=run_dir / "evals",
        )
    print(format_table([results]))
    return results


def analyse_features(
    model: Any, sae_dir: Path, run_dir: Path, n_tokens: int, evals: dict[str, Any]
) -> Path:
    store_path = run_dir / "features.db"
    checkpoint = run_dir / "analysis.checkpoint"
    # fewer, shorter top examples than the defaults: their next-token effects dominate the time
    cfg = AnalysisConfig(n_tokens=n_tokens, top_k=10, window=(12, 4))
    result = analyze(
        sae_dir, cfg, model=model, checkpoint=checkpoint, sae_id="demo", stream_examples=True
    )
    # the eval's numbers, but dead / dense from the analysis's longer window (one figure a name)
    result.evals = {
        **{
            k: float(v)
            for k, v in evals.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        },
        **result.evals,
        "l0": float(evals.get("l0", result.evals["l0"])),
    }
    with open_store(store_path) as store:
        store.write_analysis(result)
    remove_analysis_checkpoint(checkpoint)  # only once the result is safely stored
    return store_path


def explain_some_features(store_path: Path, run_dir: Path, n: int) -> None:
    """Explain, label and score (detection, fuzzing) the n densest features that fire on at
    most 5% of tokens, with the in-process SmolLM2-135M-Instruct, into the store. A rerun
    skips what is there; the requests are cached in run_dir/autointerp_cache."""
    from saescope.autointerp import AutoInterpConfig
    from saescope.autointerp.config import make_backend
    from saescope.autointerp.into_store import explain_into_store

    # few, short examples and answers, no retries: 4 batched generations of 8 in all
    cfg = AutoInterpConfig(
        scorers=("detection", "fuzzing"),
        labels=True,
        n_explain=8,
        n_activating=3,  # with 1 inactive and 1 hard negative: one prompt per scorer
        n_inactive=1,
        n_hard_negatives=1,
        explain_max_tokens=40,
        n_retries=0,  # a retry of the 135M model's answer seldom parses better
    )
    with open_store(store_path) as store:
        page = store.features(
            "demo", sort_by="density", ranges={"density": (1e-9, MAX_EXPLAINED_DENSITY)}, limit=n
        )
        features = [item["feature"] for item in page["items"]]
        tally = explain_into_store(
            store, "demo", features, make_backend(cfg.backend), cfg, score=True,
            cache_dir=run_dir / "autointerp_cache",
        )  # fmt: skip
        for f in features:
            rows = store.explanations("demo", f)
            text = next(
                (r["text"] for r in rows if r["current"] and r["kind"] == "explanation"), None
            )
            label = next((r["text"] for r in rows if r["current"] and r["kind"] == "label"), None)
            scores = next(
                (r["scores"] for r in rows if r["current"] and r["kind"] == "explanation"), []
            )
            shown = ", ".join(
                f"{s['scorer']} {s['value']:.2f}" for s in scores if s["value"] is not None
            )
            print(f"   #{f:<5} [{label or '-'}] {text or '-'}  ({shown or 'no score parsed'})")
    means = ", ".join(f"{k} {v:.2f}" for k, v in tally.mean_scores().items())
    print(
        f"   {tally.explained} explained, {tally.labelled} labelled, {tally.skipped} done before; "
        f"mean {means or '-'}; {tally.usage.requests} requests "
        f"({tally.usage.cached} cached), {tally.usage.prompt_tokens:,} + "
        f"{tally.usage.completion_tokens:,} tokens. A 135M model explains poorly: see "
        "docs/autointerp.md to use a real one."
    )


def write_dashboards(model: Any, store_path: Path, run_dir: Path) -> dict[str, Path]:
    out = run_dir / "dashboards"
    with open_store(store_path) as store:
        densest = densest_features(store, "demo", 50)
        random = random_live_features(store, "demo", 50, seed=0)
    return {
        "densest": write_dashboard(store_path, "demo", densest, out / "densest_50.html"),
        "random": write_dashboard(store_path, "demo", random, out / "random_50.html"),
        "prompt": write_prompt_dashboard(
            store_path, "demo", SAMPLE_PROMPT, out / "prompt.html", model=model, sae=run_dir / "sae"
        ),
    }


def print_summary(
    run_dir: Path, cache: Any, evals: dict[str, Any], store_path: Path, pages: dict[str, Path]
) -> None:
    m = cache.manifest
    print(f"\nactivations   {cache.directory}  ({m.n_tokens:,} tokens of {', '.join(m.hooks)})")
    print(f"SAE           {run_dir / 'sae'}  (TopK, k=32, d_sae={8 * 576})")
    print(f"training      {run_dir / 'metrics.jsonl'}, {run_dir / 'training_curves.png'}")
    print(f"evals         {run_dir / 'evals'}")
    shown = {
        k: evals[k] for k in ("l0", "fvu", "ce_loss_recovered", "unfired_fraction") if k in evals
    }
    print(f"              {json.dumps(shown)}")
    print(f"feature store {store_path}")
    for name, path in pages.items():
        print(f"dashboard     {path}  ({name})")


def serve_viewer(run_dir: Path, model: Any, port: int) -> None:
    from saescope.server import serve  # fastapi loads only when serving

    print("\nserving the viewer (Ctrl-C to stop)", flush=True)
    serve(run_dir, host="127.0.0.1", port=port, model=model)
