"""Benchmark: auto-interpretability throughput, and saescope's detection / fuzzing scores against
EleutherAI delphi's on the same server, the same examples and the same explanations.

    .venv/bin/python bench/autointerp.py [--features 3] [--concurrency 1,4,16] [--run RUN_DIR]
        [--base-url http://HOST:PORT/v1 --model NAME] [--no-delphi] [--no-in-process]

1. An OpenAI-compatible server: `transformers serve` of the bundled SmolLM2-135M-Instruct on
   127.0.0.1, started as the tests start it (tests/autointerp/llm_server.py: behind a proxy that
   counts requests and the most in flight), or an external one given by --base-url / --model.
   A feature store: the given run directory's (the demo's, say), else a small real one built
   here (SmolLM2 layer 6, a TopK SAE whose decoder rows are real residual directions, as
   bench/analyze.py builds it, analysed over a few thousand tokens).
2. saescope: features explained + scored (detection and fuzzing) per minute through the server
   at each concurrency (requests in flight at most), and in-process (TransformersBackend); the
   prompt and completion tokens per feature; then features scored (no explaining) per minute,
   which is the work delphi does below. Each measurement starts with an empty request cache.
3. delphi (eai-delphi 0.1.3 in its own venv, bench/results/venvs/delphi, built here; see
   bench/autointerp_delphi.py for what it needs): its DetectionScorer and FuzzingScorer, through
   its OpenRouter client pointed at the same server, on saescope's examples and saescope's
   explanations (from the concurrency-1 run), at the same concurrency, in delphi's own Pipeline.
   Both tools ask for at most as many answer tokens per scoring prompt (saescope's 8 + 3 per
   example; delphi's client would otherwise allow 3,000).
4. Agreement per feature and scorer: both balanced accuracies, their difference, and a paired
   bootstrap interval of that difference over the examples (stratified by class): inside it 0
   means the tools agree within the sampling noise of that many examples.
Writes bench/results/autointerp.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # the tests' server starter, analyze.py's SAE

from saescope.autointerp import (  # noqa: E402
    AutoInterpConfig,
    FeatureResult,
    LLMBackend,
    OpenAIBackend,
    TransformersBackend,
    explain_features,
)
from saescope.autointerp.examples import ExampleSets  # noqa: E402
from saescope.autointerp.runner import feature_pages_to_sets  # noqa: E402
from saescope.store import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VENVS = RESULTS / "venvs"
WORK = RESULTS / "autointerp_work"
# delphi 0.1.3 with --no-deps (its vllm pin does not install here) plus what the modules it runs
# import: torch (CPU build from this disk), transformers (tokenizer types), jaxtyping, blobfile
# and orjson (delphi.latents.latents), httpx (the OpenRouter client), tqdm (the Pipeline)
DELPHI = {
    "package": "eai-delphi==0.1.3",
    "needs": ["transformers", "jaxtyping", "blobfile", "orjson", "httpx", "tqdm"],
}
SCORERS = ("detection", "fuzzing")
BOOTSTRAP = 2000


def ensure_delphi_venv() -> Path:
    """delphi's python; its venv is built (or brought up to date with DELPHI) on first use."""
    python = VENVS / "delphi" / "bin" / "python"
    stamp = VENVS / "delphi" / "bench-spec.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == DELPHI:
        return python
    VENVS.mkdir(parents=True, exist_ok=True)
    constraints = VENVS / "constraints.txt"
    constraints.write_text("torch==2.13.0\n")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / "delphi")], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "--no-deps", DELPHI["package"]], check=True)
    subprocess.run([*pip, "-c", str(constraints), *DELPHI["needs"]], check=True)
    stamp.write_text(json.dumps(DELPHI))
    return python


# --- the feature store --------------------------------------------------------------------


def build_store(path: Path, d_sae: int, k: int, n_tokens: int, n_inactive: int) -> str:
    """A real analysed store: SmolLM2 layer 6, a TopK SAE of real residual directions."""
    from analyze import HOOK, build_sae

    from saescope.analysis import AnalysisConfig, analyze
    from saescope.corpus import CorpusConfig
    from saescope.models import load_model

    model = load_model("smollm2")
    sae = build_sae(model, d_sae, k, HOOK)
    cfg = AnalysisConfig(
        corpus=CorpusConfig(context_length=128),
        n_tokens=n_tokens,
        n_inactive=n_inactive,
        window=(16, 8),
    )
    analysis = analyze(sae, cfg, model=model, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.db")
    partial.unlink(missing_ok=True)
    with open_store(partial) as store:
        store.write_analysis(analysis)
    partial.rename(path)
    return analysis.sae_id


def prepare_store(args: argparse.Namespace) -> tuple[Path, str, dict[str, Any]]:
    if args.run:
        path = Path(args.run) / "features.db"
        source = {"run": str(args.run)}
    else:
        spec = {"d_sae": args.d_sae, "k": 16, "tokens": args.tokens, "inactive": 12}
        path = WORK / "features.db"
        stamp = WORK / "store-spec.json"
        if not (path.exists() and stamp.exists() and json.loads(stamp.read_text()) == spec):
            path.unlink(missing_ok=True)
            started = time.perf_counter()
            build_store(path, spec["d_sae"], spec["k"], spec["tokens"], spec["inactive"])
            stamp.write_text(json.dumps(spec))
            print(f"built the store in {time.perf_counter() - started:.0f} s", flush=True)
        source = {"built": spec}
    with open_store(path, create=False) as store:
        sae_id = store.list_saes()[0]["sae_id"]
    return path, sae_id, source


def pick_features(
    path: Path, sae_id: str, config: AutoInterpConfig, n: int
) -> tuple[list[int], list[ExampleSets]]:
    """n features, evenly spread over those with full example sets (so every prompt batch of
    both tools is full: delphi's parser expects exactly batch_size answers)."""
    with open_store(path, create=False) as store:
        ids = store.feature_ids(sae_id)
        sets = feature_pages_to_sets(store, sae_id, list(ids), config)
    full = [
        s
        for s in sets
        if len(s.explain) >= config.n_explain
        and len(s.activating) >= config.n_activating
        and len(s.inactive) >= config.n_inactive
        and len(s.hard_negatives) >= config.n_hard_negatives
    ]
    if len(full) < n:
        raise SystemExit(f"--features: {n} asked, but only {len(full)} have full example sets")
    chosen = [full[int(i * len(full) / n)] for i in range(n)]
    return [s.feature for s in chosen], chosen


# --- the server ---------------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    model: str
    stop: Callable[[], None]
    counter: Any = None  # the tests' request counter, when the server is started here

    def reset(self) -> None:
        if self.counter is not None:
            self.counter.reset()

    def seen(self) -> dict[str, int]:
        if self.counter is None:
            return {}
        return {
            "server_requests": len(self.counter.received),
            "server_max_in_flight": self.counter.max_in_flight,
        }


def start_server(args: argparse.Namespace) -> Server:
    if args.base_url:
        if not args.model:
            raise SystemExit("--model: required with --base-url (the name the server serves)")
        return Server(args.base_url, args.model, lambda: None)
    from tests.autointerp import llm_server

    started = time.perf_counter()
    server = llm_server.start()
    print(f"transformers serve up in {time.perf_counter() - started:.0f} s", flush=True)
    return Server(server.base_url, server.model, server.stop, server.counter)


# --- measurements -------------------------------------------------------------------------


def tokens_per_feature(results: Sequence[FeatureResult]) -> dict[str, float]:
    prompt = completion = 0
    for r in results:
        if r.explanation is not None:
            prompt += r.explanation.prompt_tokens
            completion += r.explanation.completion_tokens
        for s in r.scores:
            prompt += s.prompt_tokens
            completion += s.completion_tokens
    return {
        "prompt_tokens_per_feature": prompt / len(results),
        "completion_tokens_per_feature": completion / len(results),
    }


def measure_saescope(
    backend: LLMBackend,
    store: Path,
    sae_id: str,
    features: list[int],
    config: AutoInterpConfig,
    explanations: dict[int, str] | None = None,
) -> tuple[dict[str, Any], list[FeatureResult]]:
    """One timed run with an empty request cache: explain + score, or score `explanations`."""
    with tempfile.TemporaryDirectory(prefix="ibench-cache-") as cache:
        started = time.perf_counter()
        results = explain_features(
            store,
            sae_id,
            features,
            backend,
            config=config,
            explanations=explanations,
            explain=explanations is None,
            cache_dir=cache,
            progress=False,
        )
        seconds = time.perf_counter() - started
    requests = sum(
        (len(r.explanation.attempts) if r.explanation else 0) + sum(s.n_requests for s in r.scores)
        for r in results
    )
    failed = sum(s.n_failed for r in results for s in r.scores)
    return {
        "seconds": seconds,
        "features": len(features),
        "features_per_min": 60 * len(features) / seconds,
        "requests": requests,
        "unparsed_scoring_prompts": failed,
        "errors": [r.error for r in results if r.error],
        **tokens_per_feature(results),
    }, results


def delphi_examples(sets: ExampleSets) -> dict[str, list[dict[str, Any]]]:
    """The scoring examples, numbered in the order saescope holds them (activating first)."""
    shown = [*sets.activating, *sets.non_activating]
    rows = [
        {"id": i, "tokens": ex.tokens, "acts": ex.acts or [0.0] * len(ex.tokens)}
        for i, ex in enumerate(shown)
    ]
    n = len(sets.activating)
    return {"activating": rows[:n], "non_activating": rows[n:]}


def measure_delphi(
    python: Path,
    server: Server,
    concurrency: int,
    all_sets: list[ExampleSets],
    explanations: dict[int, str],
    config: AutoInterpConfig,
) -> dict[str, Any]:
    job = {
        "base_url": server.base_url,
        "model": server.model,
        "concurrency": concurrency,
        "max_tokens": 8 + 3 * config.batch_size,  # saescope's cap per scoring prompt
        "batch_size": config.batch_size,
        "threshold": config.threshold,
        "features": [
            {"feature": s.feature, "explanation": explanations[s.feature], **delphi_examples(s)}
            for s in all_sets
            if s.feature in explanations
        ],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        proc = subprocess.run(
            [str(python), str(ROOT / "bench" / "autointerp_delphi.py"), f.name],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": ""},
        )
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        return {
            "error": (proc.stderr.strip().splitlines() or [""])[-1],
            "stderr": proc.stderr[-3000:],
        }
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    found["logged_errors"] = proc.stderr.count("Error generating text") + proc.stderr.count(
        "Parsing selections failed"
    )
    return found


# --- agreement ----------------------------------------------------------------------------


def balanced(pairs: Sequence[tuple[bool, bool | None]]) -> float | None:
    """(TPR + TNR) / 2 over answered (label, prediction) pairs; None unless both classes occur."""
    answered = [(y, p) for y, p in pairs if p is not None]
    pos = [p for y, p in answered if y]
    neg = [p for y, p in answered if not y]
    if not pos or not neg:
        return None
    return (sum(pos) / len(pos) + sum(not p for p in neg) / len(neg)) / 2


def ours_by_id(result: FeatureResult, sets: ExampleSets, scorer: str) -> dict[int, bool | None]:
    index = {astuple(ex.ref): i for i, ex in enumerate([*sets.activating, *sets.non_activating])}
    score = result.score(scorer)
    assert score is not None
    return {index[astuple(p.ref)]: p.predicted for p in score.predictions}


def paired_bootstrap(
    labels: dict[int, bool],
    ours: dict[int, bool | None],
    theirs: dict[int, bool | None],
    rng: random.Random,
) -> list[float]:
    """Differences of balanced accuracy (ours - delphi's) over resamples of the examples, drawn
    with replacement within each class."""
    pos = [i for i, y in labels.items() if y]
    neg = [i for i, y in labels.items() if not y]
    diffs = []
    for _ in range(BOOTSTRAP):
        ids = rng.choices(pos, k=len(pos)) + rng.choices(neg, k=len(neg))
        a = balanced([(labels[i], ours.get(i)) for i in ids])
        b = balanced([(labels[i], theirs.get(i)) for i in ids])
        if a is not None and b is not None:
            diffs.append(a - b)
    return diffs


def interval(values: list[float]) -> list[float] | None:
    if not values:
        return None
    values = sorted(values)
    return [
        values[int(0.025 * len(values))],
        values[min(len(values) - 1, int(0.975 * len(values)))],
    ]


def pearson(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return statistics.correlation(x, y)


def agreement(
    ours: list[FeatureResult], all_sets: list[ExampleSets], delphi: dict[str, Any]
) -> dict[str, Any]:
    rng = random.Random(0)
    rows: list[dict[str, Any]] = []
    resampled: dict[str, list[list[float]]] = {s: [] for s in SCORERS}
    for result, sets in zip(ours, all_sets, strict=True):
        theirs_all = delphi["scores"].get(str(sets.feature))
        if theirs_all is None or result.error:
            continue
        n_act = len(sets.activating)
        labels = {i: i < n_act for i in range(n_act + len(sets.non_activating))}
        for scorer in SCORERS:
            mine = ours_by_id(result, sets, scorer)
            theirs = {p["id"]: p["prediction"] for p in theirs_all[scorer]["predictions"]}
            # one definition for both: delphi's counts a class with no answers as 0 (see
            # autointerp_delphi.balanced_accuracy), saescope's leaves the score undefined
            ba_ours = balanced([(labels[i], mine.get(i)) for i in labels])
            ba_theirs = balanced([(labels[i], theirs.get(i)) for i in labels])
            diffs = paired_bootstrap(labels, mine, theirs, rng)
            ci = interval(diffs)
            resampled[scorer].append(diffs)
            same = [mine.get(i) == theirs.get(i) for i in labels]
            rows.append(
                {
                    "feature": sets.feature,
                    "scorer": scorer,
                    "saescope": ba_ours,
                    "delphi": ba_theirs,
                    "delphi_as_delphi_reports_it": theirs_all[scorer]["balanced_accuracy"],
                    "difference": None
                    if ba_ours is None or ba_theirs is None
                    else ba_ours - ba_theirs,
                    "answered": [
                        sum(v is not None for v in mine.values()),
                        sum(v is not None for v in theirs.values()),
                    ],
                    "difference_95": ci,
                    "within_noise": None if ci is None else ci[0] <= 0 <= ci[1],
                    "same_answer_fraction": sum(same) / len(same),
                    "n_examples": len(labels),
                    "saescope_said_yes": sum(1 for v in mine.values() if v) / len(labels),
                    "delphi_said_yes": sum(1 for v in theirs.values() if v) / len(labels),
                }
            )
    return {"per_feature": rows, "summary": summarize(rows, resampled)}


def summarize(rows: list[dict[str, Any]], resampled: dict[str, list[list[float]]]) -> dict:
    out: dict[str, Any] = {}
    for scorer in (*SCORERS, "both"):
        chosen = [
            r for r in rows if r["difference"] is not None and scorer in (r["scorer"], "both")
        ]
        if not chosen:
            continue
        runs = [d for s in SCORERS if scorer in (s, "both") for d in resampled[s] if d]
        # the mean difference over features, its spread from resampling each feature's examples
        k = min(len(d) for d in runs)
        means = [statistics.fmean(d[j] for d in runs) for j in range(k)]
        out[scorer] = {
            "features": len(chosen),
            "mean_saescope": statistics.fmean(r["saescope"] for r in chosen),
            "mean_delphi": statistics.fmean(r["delphi"] for r in chosen),
            "mean_difference": statistics.fmean(r["difference"] for r in chosen),
            "mean_difference_95": interval(means),
            "mean_absolute_difference": statistics.fmean(abs(r["difference"]) for r in chosen),
            "correlation": pearson([r["saescope"] for r in chosen], [r["delphi"] for r in chosen]),
            "within_noise": sum(1 for r in chosen if r["within_noise"]) / len(chosen),
            "same_answer_fraction": statistics.fmean(r["same_answer_fraction"] for r in chosen),
        }
    return out


# --- the run ------------------------------------------------------------------------------


def bench_config(args: argparse.Namespace) -> AutoInterpConfig:
    config = AutoInterpConfig(
        n_explain=args.explain_examples,
        n_activating=args.activating,
        n_inactive=args.inactive,
        n_hard_negatives=args.hard_negatives,
        batch_size=5,
        explain_max_tokens=args.explain_max_tokens,
    )
    shown = config.n_activating + config.n_inactive + config.n_hard_negatives
    if shown % config.batch_size:
        raise SystemExit(
            f"--activating + --inactive + --hard-negatives: {shown}; expected a multiple of "
            f"{config.batch_size}, since delphi's parser wants every prompt batch full"
        )
    return config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--features", type=int, default=3, help="features per measurement")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--run", help="a run directory with features.db (the demo's)")
    parser.add_argument("--base-url", help="an external OpenAI-compatible server's /v1 URL")
    parser.add_argument("--model", help="the model the external server serves")
    parser.add_argument("--d-sae", type=int, default=512, help="width of the SAE built here")
    parser.add_argument("--tokens", type=int, default=8192, help="tokens analysed for the store")
    parser.add_argument("--explain-examples", type=int, default=5)
    parser.add_argument("--activating", type=int, default=5)
    parser.add_argument("--inactive", type=int, default=3)
    parser.add_argument("--hard-negatives", type=int, default=2)
    parser.add_argument("--explain-max-tokens", type=int, default=60)
    parser.add_argument("--in-process-batch", type=int, default=8)
    parser.add_argument("--no-delphi", action="store_true")
    parser.add_argument("--no-in-process", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "autointerp.json"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    config = bench_config(args)
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "config": config.to_dict(),
        "runs": {},
    }
    bench_started = time.perf_counter()
    store, sae_id, results["store"] = prepare_store(args)
    features, all_sets = pick_features(store, sae_id, config, args.features)
    results["store"].update(sae_id=sae_id, features=features)
    python = None if args.no_delphi else ensure_delphi_venv()
    server = start_server(args)
    results["server"] = {"base_url": server.base_url, "model": server.model}
    runs = results["runs"]
    explanations: dict[int, str] = {}
    ours_scored: dict[int, list[FeatureResult]] = {}
    try:
        for c in levels:
            backend = OpenAIBackend(server.base_url, server.model, max_concurrency=c)
            server.reset()
            runs[f"saescope_explain_score_c{c}"], found = measure_saescope(
                backend, store, sae_id, features, config
            )
            runs[f"saescope_explain_score_c{c}"].update(server.seen())
            report(f"saescope_explain_score_c{c}", runs)
            if not explanations:
                explanations = {
                    r.feature: r.explanation.text
                    for r in found
                    if r.explanation is not None and r.explanation.text
                }
                results["explanations"] = {str(k): v for k, v in explanations.items()}
        # one greedy answer per prompt, as delphi asks (it does not retry an answer it cannot
        # parse; saescope's default asks again, sampling, up to n_retries times)
        score_config = replace(config, n_retries=0)
        scored = [f for f in features if f in explanations]
        scored_sets = [s for s in all_sets if s.feature in explanations]
        for c in levels:
            backend = OpenAIBackend(server.base_url, server.model, max_concurrency=c)
            server.reset()
            runs[f"saescope_score_c{c}"], ours_scored[c] = measure_saescope(
                backend, store, sae_id, scored, score_config, explanations
            )
            runs[f"saescope_score_c{c}"].update(server.seen())
            report(f"saescope_score_c{c}", runs)
            if python is None:
                continue
            server.reset()
            delphi = measure_delphi(python, server, c, scored_sets, explanations, score_config)
            delphi.update(server.seen())
            runs[f"delphi_score_c{c}"] = delphi
            report(f"delphi_score_c{c}", runs)
            if "scores" in delphi:
                results.setdefault("agreement", {})[f"c{c}"] = agreement(
                    ours_scored[c], scored_sets, delphi
                )
                delphi.pop("scores")
    finally:
        server.stop()
    if not args.no_in_process:
        backend = TransformersBackend(batch_size=args.in_process_batch, threads=1)
        asyncio.run(backend.check())  # loading the model is not part of the rate
        runs["saescope_in_process"], _ = measure_saescope(backend, store, sae_id, features, config)
        report("saescope_in_process", runs)
    for c in levels:
        ours, theirs = runs.get(f"saescope_score_c{c}"), runs.get(f"delphi_score_c{c}")
        if ours and theirs and theirs.get("features_per_min"):
            ours["speedup_over_delphi"] = ours["features_per_min"] / theirs["features_per_min"]
    results["load_average_end"] = os.getloadavg()
    results["bench_seconds"] = time.perf_counter() - bench_started
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")


def report(name: str, runs: dict[str, Any]) -> None:
    run = runs[name]
    if "error" in run:
        print(f"{name}: error {run['error']}", flush=True)
        return
    print(
        f"{name}: {run['features_per_min']:.2f} features/min ({run['seconds']:.0f} s, "
        f"{run.get('requests', '?')} requests); load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def print_summary(results: dict[str, Any]) -> None:
    print(
        f"load average {results['load_average_start'][0]:.1f} -> "
        f"{results['load_average_end'][0]:.1f}; {results['bench_seconds'] / 60:.1f} min in all"
    )
    for name, run in results["runs"].items():
        if "features_per_min" in run:
            tokens = ""
            if "prompt_tokens_per_feature" in run:
                tokens = (
                    f"  tokens/feature {run['prompt_tokens_per_feature']:.0f} in + "
                    f"{run['completion_tokens_per_feature']:.0f} out"
                )
            print(f"{name:<28}{run['features_per_min']:>8.2f} features/min{tokens}")
    for level, found in results.get("agreement", {}).items():
        for scorer, s in found["summary"].items():
            print(
                f"{level} {scorer:<10} saescope {s['mean_saescope']:.3f} delphi "
                f"{s['mean_delphi']:.3f} |diff| {s['mean_absolute_difference']:.3f} "
                f"mean diff 95% {s['mean_difference_95']} r {s['correlation']} "
                f"within noise {s['within_noise']:.0%}"
            )


if __name__ == "__main__":
    main()
