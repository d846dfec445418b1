"""Benchmark: SAE training tokens/s and quality, saescope vs SAELens vs EleutherAI sparsify.

    .venv/bin/python bench/train.py [--train-tokens 163840] [--tools saescope,saelens,sparsify]

Every tool trains on the same activations (SmolLM2 layer 6 resid_post, harvested once and
saved normalised to bench/results/train_acts.pt), with the same dims (d_in 576, 16x, k 32),
batch (4096 tokens), learning rate and token order; each runs in its own virtual environment
(bench/results/venvs/, built here with torch==2.13.0 and the tool from PyPI) through
bench/train_runner.py. Reported: tokens/s of one training step, the tokens/s of the encoder
matmul alone (x @ W_enc, the limit for a TopK SAE) measured in the same process, ratios, and
FVU / L0 on held-out tokens after training. Writes bench/results/train.json and prints a
Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOOK = "blocks.6.hook_resid_post"
PEERS = {"saelens": "sae-lens", "sparsify": "eai-sparsify"}
RUNS = [
    ("topk", "saescope"),
    ("topk", "saelens"),
    ("topk", "sparsify"),
    ("standard", "saescope"),
    ("standard", "saelens"),
]


def peer_python(venvs: Path, tool: str) -> Path:
    """The tool's venv interpreter, building the venv first if it is missing."""
    if tool == "saescope":
        return Path(sys.executable)
    venv = venvs / tool
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"building {venv} ({PEERS[tool]} from PyPI, torch==2.13.0) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        # torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        constraints = venvs / "constraints.txt"
        constraints.write_text("torch==2.13.0\n")
        subprocess.run([*pip, PEERS[tool], "-c", str(constraints)], check=True)
    return python


def peer_version(python: Path, tool: str) -> str:
    package = {"saescope": "saescope", **PEERS}[tool]
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def shared_activations(path: Path, cache_dir: Path, n_train: int, n_eval: int) -> Path:
    """Harvest (once) and save {"train": [n_train, 576], "eval": [n_eval, 576]}, normalised, shuffled."""
    if path.exists():
        saved = torch.load(path)
        if saved["train"].shape[0] >= n_train and saved["eval"].shape[0] >= n_eval:
            return path
    from saescope.activations import ActivationStore, HarvestConfig, harvest

    # 1/127 of the tokens are BOS positions, which the store leaves out
    needed = int((n_train + n_eval) * 128 / 127) + 2**15
    harvest(HarvestConfig(out=str(cache_dir), hooks=[HOOK], n_tokens=needed))
    store = ActivationStore.from_cache(cache_dir, batch_size=4096, buffer_tokens=2**17, seed=0)
    chunks, total = [], 0
    for batch in store:
        chunks.append(batch[HOOK])
        total += chunks[-1].shape[0]
        if total >= n_train + n_eval:
            break
    acts = torch.cat(chunks)
    if acts.shape[0] < n_train + n_eval:
        raise SystemExit(f"only {acts.shape[0]} tokens harvested; need {n_train + n_eval}")
    torch.save(
        {
            "train": acts[:n_train].clone(),
            "eval": acts[n_train : n_train + n_eval].clone(),
            "hook": HOOK,
        },
        path,
    )
    return path


def run_one(python: Path, tool: str, arch: str, acts: Path, args: argparse.Namespace) -> dict:
    out = RESULTS / f"train_{arch}_{tool}.json"
    command = [
        str(python),
        str(ROOT / "bench" / "train_runner.py"),
        f"--tool={tool}",
        f"--arch={arch}",
        f"--acts={acts}",
        f"--out={out}",
        f"--lr={args.lr}",
        f"--l1={args.l1}",
        f"--repeats={args.repeats}",
        f"--timing-steps={args.timing_steps}",
    ]
    if args.no_quality:
        command.append("--no-quality")
    print(f"[{time.strftime('%H:%M:%S')}] {arch} {tool} ...", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    result["version"] = peer_version(python, tool)
    return result


def table(results: list[dict]) -> str:
    by = {(r["arch"], r["tool"]): r for r in results}
    lines = [
        "| architecture | tool | version | tokens/s | x SAELens | x sparsify | of matmul limit | whole run tokens/s "
        "| FVU (held out) | L0 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lens, sparsify = by.get((r["arch"], "saelens")), by.get((r["arch"], "sparsify"))
        ratio_lens = f"{r['tokens_per_s'] / lens['tokens_per_s']:.2f}" if lens else "-"
        ratio_sparsify = f"{r['tokens_per_s'] / sparsify['tokens_per_s']:.2f}" if sparsify else "-"
        fvu = f"{r['fvu']:.4f}" if "fvu" in r else "-"
        l0 = f"{r['l0']:.1f}" if "l0" in r else "-"
        # the timed steps are the first ones; the whole training run also shows the later, sparser steps
        whole = f"{r['train_tokens'] / r['train_s']:,.0f}" if "train_s" in r else "-"
        lines.append(
            f"| {r['arch']} | {r['tool']} | {r['version']} | {r['tokens_per_s']:,.0f} | {ratio_lens} | {ratio_sparsify} "
            f"| {r['fraction_of_matmul']:.2f} | {whole} | {fvu} | {l0} |"
        )
    mm = max(r["matmul_tokens_per_s"] for r in results)
    lines.append(
        f"\nEncoder matmul alone (x @ W_enc, [4096, 576] x [576, 9216]): {mm:,.0f} tokens/s (best in-process measurement)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-tokens", type=int, default=40 * 4096)
    parser.add_argument("--eval-tokens", type=int, default=4 * 4096)
    parser.add_argument("--tools", default="saescope,saelens,sparsify")
    parser.add_argument("--archs", default="topk,standard")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--l1", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timing-steps", type=int, default=4)
    parser.add_argument("--no-quality", action="store_true", help="tokens/s only")
    parser.add_argument("--venvs", type=Path, default=RESULTS / "venvs")
    parser.add_argument(
        "--setup-only", action="store_true", help="build the venvs and the activations, then stop"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "train.json")
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    tools = args.tools.split(",")
    pythons = {tool: peer_python(args.venvs, tool) for tool in tools}
    acts = shared_activations(
        RESULTS / "train_acts.pt", RESULTS / "acts_l6", args.train_tokens, args.eval_tokens
    )
    if args.setup_only:
        return
    results = [
        run_one(pythons[tool], tool, arch, acts, args)
        for arch, tool in RUNS
        if tool in tools and arch in args.archs.split(",")
    ]
    report = {
        "command": " ".join(sys.argv),
        "machine": f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "train_tokens": args.train_tokens,
        "eval_tokens": args.eval_tokens,
        "results": results,
        "table": table(results),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["table"])


if __name__ == "__main__":
    main()
