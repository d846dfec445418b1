"""Benchmark: `saescope analyze` (all features) against SAEDashboard and sae_vis (a sample of features),
same model (SmolLM2-135M), same SAE file, same token contexts, in one run.

    .venv/bin/python bench/analyze.py [--tokens 4096] [--d-sae 4608] [--hook blocks.6.hook_resid_post]
        [--peer-features 256] [--peers saedash,saedash_cached,saevis] [--memory-scaling [--scales 4,16]]

Peers run in their own venvs under bench/results/venvs/ (built here if missing: torch==2.13.0
CPU first, then the tool with torch pinned), on a TransformerLens model built from SmolLM2's
config and weights. Each tool runs in its own process; time excludes loading the model; peak
memory is the process's max RSS. saescope's run is what `saescope analyze --store` does: the
streaming pass, the tables, then the store write, which runs the example pass as it reads the
examples; its time includes the store write, and its peak RSS is also given per stage.

The peers work through their features in batches (256 by default, kept here), each batch a new
pass of the model over every token, so a batch costs about the same whatever the features in it:
their features/s on one whole default batch is their rate on all features (the `all features`
column is that rate's time for d_sae features). A sample smaller than a batch pays a whole
pass for a few features and makes a peer look slower than it is: keep --peer-features >= 256.
saedash_cached is SAEDashboard with its cache_dir, on ALL features (no estimate): its first batch
saves the model's activations, the later ones read them instead of running the model again.
--memory-scaling also runs saescope on --scales times the tokens (default 4x and 16x).
Writes bench/results/analyze.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENVS = RESULTS / "venvs"
# What each peer's venv needs on top of torch (pins found by running them; each says why):
PEERS = {
    # PyPI's torchvision/torchaudio (pulled in by decode-clt) do not match the CPU torch build, and
    # transformers then fails to import its models (BertForPreTraining): SAEDashboard never uses them.
    # It keeps NumPy 1, and pyarrow >= 18 (through datasets) needs NumPy 2
    "saedash": {
        "install": ["sae-dashboard", "sae-lens", "pyarrow<18"],
        "remove": ["torchvision", "torchaudio"],
    },
    # sae_vis 0.3.7 reads sae.cfg.hook_name (SAELens < 6), keeps NumPy 1 (pyarrow >= 18 needs NumPy 2)
    # and imports frozendict and tabulate without declaring them
    "saevis": {
        "install": ["sae-vis", "sae-lens<6", "pyarrow<18", "frozendict", "tabulate"],
        "remove": [],
    },
}
HOOK = "blocks.6.hook_resid_post"  # the default; --hook picks another residual stream


def ensure_venv(name: str) -> Path:
    """The peer's python; its venv is built (or brought up to date with PEERS) on first use, with
    torch pinned to the CPU build on this disk."""
    spec = PEERS[name]
    python = VENVS / name / "bin" / "python"
    stamp = VENVS / name / "bench-spec.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == spec:
        return python
    VENVS.mkdir(parents=True, exist_ok=True)
    constraints = VENVS / "constraints.txt"
    constraints.write_text("torch==2.13.0\n")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
    pip = [str(python), "-m", "pip"]
    subprocess.run([*pip, "install", "-q", "torch==2.13.0"], check=True)
    subprocess.run([*pip, "install", "-q", "-c", str(constraints), *spec["install"]], check=True)
    if spec["remove"]:
        subprocess.run([*pip, "uninstall", "-y", "-q", *spec["remove"]], check=True)
    stamp.write_text(json.dumps(spec))
    return python


def build_sae(model, d_sae: int, k: int, hook: str, seed: int = 0):
    """A TopK SAE whose decoder rows are real centred residuals at the hook (features fire on real text)."""
    from saescope.corpus import CorpusConfig, iter_context_batches
    from saescope.sae import SAEConfig, build_sae

    rows = []
    corpus = CorpusConfig(context_length=128, seed=1000 + seed)  # not the benchmark's contexts
    for tokens in iter_context_batches(corpus, model.tokenizer, 16):
        rows.append(model.run_with_cache(tokens, [hook])[hook][:, 1:].reshape(-1, model.d_model))
        if sum(len(r) for r in rows) >= d_sae:
            break
    acts = torch.cat(rows)
    mean = acts.mean(0)
    directions = (
        acts[torch.randperm(len(acts), generator=torch.Generator().manual_seed(seed))[:d_sae]]
        - mean
    )
    directions = directions / directions.norm(dim=1, keepdim=True)
    sae = build_sae(
        SAEConfig(
            architecture="topk",
            d_in=model.d_model,
            d_sae=d_sae,
            k=k,
            model_name="smollm2",
            hook_name=hook,
        )
    )
    with torch.no_grad():
        sae.W_dec.copy_(directions)
        sae.W_enc.copy_(directions.T)
        sae.b_dec.copy_(mean)
    return sae


def prepare(work: Path, n_tokens: int, d_sae: int, k: int, hook: str) -> None:
    from saescope.corpus import CorpusConfig, iter_context_batches
    from saescope.models import load_model
    from saescope.sae import save_sae

    model = load_model("smollm2")
    if not (work / "hf_model" / "config.json").exists():
        model.hf_model.save_pretrained(work / "hf_model")
        model.tokenizer.save_pretrained(work / "hf_model")
    save_sae(build_sae(model, d_sae, k, hook), work / "sae")
    n_ctx = n_tokens // 128
    tokens = torch.cat(
        list(iter_context_batches(CorpusConfig(context_length=128), model.tokenizer, 64))
    )
    torch.save(tokens[:n_ctx].clone(), work / "tokens.pt")  # the contexts saescope analyses too


def run_tool(python: Path, args: list[str]) -> dict:
    proc = subprocess.run(
        [str(python), str(ROOT / "bench" / "analyze_peer.py"), *args],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return {
            "error": proc.stderr.strip().splitlines()[-1]
            if proc.stderr.strip()
            else f"exit {proc.returncode}",
            "stderr_tail": proc.stderr[-3000:],
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--d-sae", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument(
        "--hook", default=HOOK, help="a residual-stream hook (default: %(default)s)"
    )
    parser.add_argument(
        "--peer-features", type=int, default=256, help="one default batch of the peers'"
    )
    parser.add_argument("--peers", default="saedash,saedash_cached,saevis")
    parser.add_argument("--memory-scaling", action="store_true")
    parser.add_argument(
        "--scales",
        default="4,16",
        help="token multiples for --memory-scaling (default: %(default)s)",
    )
    parser.add_argument("--out", default=str(RESULTS / "analyze.json"))
    args = parser.parse_args()
    work = RESULTS / "analyze_work"
    prepare(work, args.tokens, args.d_sae, args.k, args.hook)
    sample = torch.linspace(0, args.d_sae - 1, args.peer_features).long().tolist()
    results = {
        "tokens": args.tokens,
        "d_sae": args.d_sae,
        "k": args.k,
        "hook": args.hook,
        "peer_features": sample,
        "load_average_start": os.getloadavg(),
        "runs": {},
    }
    common = ["--work", str(work), "--context-length", "128"]
    results["runs"]["saescope"] = run_tool(
        Path(sys.executable), ["--tool", "saescope", "--tokens", str(args.tokens), *common]
    )
    for peer in [p for p in args.peers.split(",") if p]:
        try:
            python = ensure_venv(peer.removesuffix("_cached"))
        except subprocess.CalledProcessError as err:
            results["runs"][peer] = {"error": f"could not build its venv: {err}"}
            continue
        features = range(args.d_sae) if peer.endswith("_cached") else sample
        results["runs"][peer] = run_tool(
            python,
            [
                "--tool",
                peer,
                "--hook",
                args.hook,
                "--features",
                ",".join(map(str, features)),
                *common,
            ],
        )
    for factor in [int(f) for f in args.scales.split(",") if f] if args.memory_scaling else ():
        results["runs"][f"saescope_{factor}x_tokens"] = run_tool(
            Path(sys.executable),
            ["--tool", "saescope", "--tokens", str(factor * args.tokens), *common],
        )
    ours = results["runs"]["saescope"].get("features_per_s")
    for run in results["runs"].values():
        if ours and run.get("features_per_s"):
            run["saescope_speedup"] = ours / run["features_per_s"]
    results["load_average_end"] = (
        os.getloadavg()
    )  # the machines are shared: read ratios, not seconds
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{args.tokens} tokens, d_sae {args.d_sae} (TopK k={args.k}) at {args.hook}; peers on {args.peer_features} features; "
        f"load average {results['load_average_start'][0]:.1f} -> {results['load_average_end'][0]:.1f}"
    )
    print(
        f"{'tool':<22}{'features':>9}{'seconds':>10}{'features/s':>12}{'all features s':>16}{'peak MiB':>10}"
        f"{'saescope x':>12}"
    )
    for name, run in results["runs"].items():
        if "error" in run:
            print(f"{name:<22} failed: {run['error']}")
            continue
        print(
            f"{name:<22}{run['features']:>9}{run['seconds']:>10.1f}{run['features_per_s']:>12.2f}"
            f"{args.d_sae / run['features_per_s']:>16.0f}{run['peak_rss_mib']:>10.0f}"
            f"{run.get('saescope_speedup', 1.0):>12.1f}"
        )
    stages = {
        name: run["phases"]
        for name, run in results["runs"].items()
        if "peak_rss_mib_by_stage" in run.get("phases", {})
    }
    if stages:
        names = ["stream", "tables", "examples", "store"]
        print(
            f"\n{'saescope run':<22}{'tokens':>9}{'examples':>10}"
            + "".join(f"{n + ' MiB':>14}" for n in names)
        )
        for name, phases in stages.items():
            by_stage = phases["peak_rss_mib_by_stage"]
            print(
                f"{name:<22}{results['runs'][name]['tokens']:>9}{phases['examples']:>10}"
                + "".join(f"{by_stage.get(n, 0):>14}" for n in names)
            )


if __name__ == "__main__":
    main()
