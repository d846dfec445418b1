"""Benchmark: throughput with 1 and 2 ranks under torchrun (gloo, CPU), the communication each
step needs, and the scaling to expect on N GPUs from that volume.

    .venv/bin/python bench/scale.py [--repeats 2] [--train-tokens 24576] [--harvest-tokens 8192]

Measured here, every run a fresh `torchrun -m saescope ...` (alternating, `--repeats` times):
- train, data parallel: 1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1 thread each;
- train, features sharded over 2 ranks x 1 thread;
- harvest (the model-bound stage): 1 rank x 1 thread, 2 ranks x 1 thread, timed from the first
  shard file written to the last (model loading left out).
A rank with one thread stands for one device: "2 ranks x 1 thread" / "1 rank x 1 thread" is the
2-device speed-up, and "1 rank x 2 threads" is what the same 2 cores give without torch.distributed.
Also measured: the time of a gloo all-reduce of one step's gradients between the 2 processes.

Expected N-GPU scaling is computed, not measured (no GPU here), from the bytes each step moves
(counted from the code's collectives; the gradient all-reduce's time is also measured here):
    data parallel, B tokens per rank:  speed-up = N * step(1) / (step(1) + 2 (N-1)/N * 4 * n_params / bw)
    features sharded, B tokens in all: speed-up = step(1) / (step(1)/N + ((N-1) * B * k * 12 + 2 (N-1)/N * B * d_in * 4) / bw)
with step(1) from the step's FLOPs and Adam's memory traffic at the GPU rates in ASSUMED, and the
link bandwidths in ASSUMED (stated in the output; change them for your cluster).
Writes bench/results/scale.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOOK = "blocks.6.hook_resid_post"
D_IN, EXPANSION, K, BATCH = 576, 16, 32, 4096
# Assumptions for the N-GPU estimate (not measured here): one GPU's achieved float32 matmul rate and
# memory bandwidth on the SAE step, and NCCL bus bandwidths of common links. Change them for your cluster.
ASSUMED = {
    "gpu_flops_per_s": 50e12,
    "gpu_memory_bytes_per_s": 3e12,
    "links_bytes_per_s": {
        "NVLink 4 (one H100 node)": 300e9,
        "PCIe 4 x16": 20e9,
        "InfiniBand 200 Gb/s (across nodes)": 22e9,
    },
}
# SAEs the estimate is made for: the one measured here, and one too wide for a single 80 GB GPU
# (d_in 4096 x 2^20 latents: 34 GB of float32 weights, three times that with Adam's state)
ESTIMATED_SAES = {
    "measured here": (D_IN, D_IN * EXPANSION, K),
    "wide: d_in 4096, 2^20 latents": (4096, 2**20, 64),
}


def env(threads: int) -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1"
    )


def torchrun(nproc: int, threads: int, args: list[str], cwd: Path) -> float:
    """Wall seconds of one `torchrun --nproc-per-node nproc -m saescope ARGS`."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "saescope",
        *args,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env(threads), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"failed: {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return time.perf_counter() - start


def train_rate(run_dir: Path) -> float:
    """Training tokens/s as rank 0 logged it at the last step (steps after the first, start-up excluded)."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return lines[-1]["tokens_per_s"]


def harvest_rate(cache: Path) -> float:
    """Steady harvest tokens/s: tokens in the shards finished after the first one, over the time
    from the first shard's file to the last (model loading and start-up left out)."""
    manifest = json.loads((cache / "manifest.json").read_text())
    shards = sorted(
        ((cache / s["file"]).stat().st_mtime, s["contexts"]) for s in manifest["shards"]
    )
    first, last = shards[0][0], shards[-1][0]
    tokens = (
        sum(contexts for mtime, contexts in shards if mtime > first) * manifest["context_length"]
    )
    return tokens / max(last - first, 1e-9)


def harvest_cache(work: Path, tokens: int) -> Path:
    cache = RESULTS / f"scale_cache_{tokens}"
    if not (cache / "manifest.json").exists():
        print(f"harvesting {tokens:,} tokens for the training runs -> {cache}", flush=True)
        torchrun(
            1,
            2,
            [
                "harvest",
                "--out",
                str(cache),
                "--hook",
                HOOK,
                "--tokens",
                str(tokens),
                "--context-length",
                "128",
                "--batch-size",
                "8",
            ],
            work,
        )
    return cache


def train_args(cache: Path, run_dir: Path, tokens: int) -> list[str]:
    config = run_dir.parent / "scale.yaml"
    config.write_text("architecture: topk\n")
    return [
        "train",
        str(config),
        f"run_dir={run_dir}",
        f"activation_cache={cache}",
        f"hooks={HOOK}",
        f"expansion_factor={EXPANSION}",
        f"k={K}",
        f"batch_size={BATCH}",
        f"training_tokens={tokens}",
        "buffer_tokens=16384",
        "log_every_steps=1000",
        "b_dec_init=zeros",
        "--no-progress",
    ]


def measure(work: Path, cache: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Alternating repeats of every configuration; tokens/s of each run."""
    runs = {
        "train 1 rank x 1 thread": (1, 1, []),
        "train 1 rank x 2 threads": (1, 2, []),
        "train 2 ranks x 1 thread": (2, 1, []),
        "train 2 ranks x 1 thread, features sharded": (2, 1, ["--shard-features"]),
        "harvest 1 rank x 1 thread": (1, 1, None),
        "harvest 2 ranks x 1 thread": (2, 1, None),
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for i, (name, (nproc, threads, extra)) in enumerate(runs.items()):
            out = work / f"r{repeat}-{i}"
            if extra is None:
                torchrun(
                    nproc,
                    threads,
                    [
                        "harvest",
                        "--out",
                        str(out),
                        "--hook",
                        HOOK,
                        "--tokens",
                        str(args.harvest_tokens),
                        "--context-length",
                        "128",
                        "--batch-size",
                        "4",
                        "--shard-mb",
                        "1",
                    ],
                    work,
                )
                rates[name].append(harvest_rate(out))
            else:
                torchrun(nproc, threads, [*train_args(cache, out, args.train_tokens), *extra], work)
                rates[name].append(train_rate(out))
            print(
                f"{name}: {rates[name][-1]:,.0f} tokens/s (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    return rates


ALLREDUCE_SCRIPT = """
import os, sys, time, torch, torch.distributed as dist
dist.init_process_group("gloo")
n = int(sys.argv[1])
x = torch.ones(n)
for _ in range(2):
    dist.all_reduce(x)
times = []
for _ in range(5):
    dist.barrier(); t = time.perf_counter(); dist.all_reduce(x); times.append(time.perf_counter() - t)
if dist.get_rank() == 0:
    print(min(times))
dist.destroy_process_group()
"""


def allreduce_seconds(work: Path, n_floats: int) -> float:
    script = work / "allreduce.py"
    script.write_text(ALLREDUCE_SCRIPT)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        str(script),
        str(n_floats),
    ]
    done = subprocess.run(command, env=env(1), capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def volumes(d_in: int, d_sae: int, k: int, batch: int, n: int) -> dict[str, float]:
    """Bytes one rank sends per step with n ranks (ring all-reduce: 2 (n-1)/n of the message)."""
    params = 2 * d_in * d_sae + d_sae + d_in
    ring = 2 * (n - 1) / n
    return {
        "data_parallel": ring * 4 * params + ring * 8 * d_sae,  # gradients + fire counts
        "feature_sharded": (n - 1) * batch * k * 12
        + ring * batch * d_in * 4,  # candidates + partial decodes
    }


def step_seconds_on_gpu(d_in: int, d_sae: int, batch: int, shards: int = 1) -> float:
    """One device's share of a training step: the dense encoder matmul (the sparse decode and backward
    are small next to it) plus Adam's passes over its parameters (memory-bound: ~16 float32 reads/writes each)."""
    matmul = 2 * batch * d_in * d_sae / shards / ASSUMED["gpu_flops_per_s"]
    adam = 16 * 4 * (2 * d_in * d_sae / shards) / ASSUMED["gpu_memory_bytes_per_s"]
    return matmul + adam


def expected_scaling() -> dict[str, dict[str, dict[str, dict[int, float]]]]:
    """Throughput on N GPUs over 1 GPU, per SAE, link and mode (communication not overlapped with compute):
    data parallel with BATCH tokens per rank (the global batch grows with N), and features sharded
    with a global batch of BATCH tokens (every rank computes d_sae/N of the features on all of it)."""
    out: dict[str, dict[str, dict[str, dict[int, float]]]] = {}
    for sae_name, (d_in, d_sae, k) in ESTIMATED_SAES.items():
        one = step_seconds_on_gpu(d_in, d_sae, BATCH)
        out[sae_name] = {}
        for link, bandwidth in ASSUMED["links_bytes_per_s"].items():
            dp, fs = {}, {}
            for n in (2, 8, 64):
                sent = volumes(d_in, d_sae, k, BATCH, n)
                dp[n] = round(n * one / (one + sent["data_parallel"] / bandwidth), 2)
                fs[n] = round(
                    one
                    / (
                        step_seconds_on_gpu(d_in, d_sae, BATCH, n)
                        + sent["feature_sharded"] / bandwidth
                    ),
                    2,
                )
            out[sae_name][link] = {"data_parallel": dp, "feature_sharded": fs}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-tokens", type=int, default=24_576)
    parser.add_argument("--harvest-tokens", type=int, default=8_192)
    parser.add_argument("--out", default=str(RESULTS / "scale.json"))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    d_sae = D_IN * EXPANSION
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="saescope-scale-") as tmp:
        work = Path(tmp)
        cache = harvest_cache(work, args.train_tokens + 8192)
        rates = measure(work, cache, args)
        params = 2 * D_IN * d_sae + d_sae + D_IN
        allreduce_s = allreduce_seconds(work, params)
    best = {name: max(values) for name, values in rates.items()}
    one = best["train 1 rank x 1 thread"]
    step_compute_s = BATCH / one
    result = {
        "setup": {
            "hook": HOOK,
            "d_in": D_IN,
            "d_sae": d_sae,
            "k": K,
            "batch_tokens": BATCH,
            "train_tokens": args.train_tokens,
            "harvest_tokens": args.harvest_tokens,
            "device": "CPU, gloo",
            "cores": os.cpu_count(),
        },
        "tokens_per_s": rates,
        "best_tokens_per_s": best,
        "ratios": {
            "train: 2 ranks / 1 rank (1 thread each)": best["train 2 ranks x 1 thread"] / one,
            "train: 2 ranks x 1 thread / 1 rank x 2 threads": best["train 2 ranks x 1 thread"]
            / best["train 1 rank x 2 threads"],
            "train, features sharded: 2 ranks / 1 rank (1 thread each)": best[
                "train 2 ranks x 1 thread, features sharded"
            ]
            / one,
            "harvest: 2 ranks / 1 rank (1 thread each)": best["harvest 2 ranks x 1 thread"]
            / best["harvest 1 rank x 1 thread"],
        },
        "communication_per_step": {
            "bytes_sent_per_rank_2_ranks": volumes(D_IN, d_sae, K, BATCH, 2),
            "gradient_message_bytes": 4 * params,
            "gloo_allreduce_of_the_gradients_s": allreduce_s,
            "cpu_step_compute_s_1_thread": step_compute_s,
            "allreduce_share_of_a_2_rank_step_here": allreduce_s
            / (step_compute_s / 2 + allreduce_s),
        },
        "expected_speedup_on_n_gpus": {
            "assumed": ASSUMED,
            "saes": ESTIMATED_SAES,
            "speedup": expected_scaling(),
        },
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["ratios"], indent=2))
    print("\n| run | tokens/s (best of repeats) |\n|---|---|")
    for name, value in best.items():
        print(f"| {name} | {value:,.0f} |")
    print(
        "\n| SAE | link | data parallel, N = 2 / 8 / 64 | features sharded, N = 2 / 8 / 64 |\n|---|---|---|---|"
    )
    for sae_name, links in result["expected_speedup_on_n_gpus"]["speedup"].items():
        for link, modes in links.items():
            cells = [
                " / ".join(f"{v:g}" for v in modes[m].values())
                for m in ("data_parallel", "feature_sharded")
            ]
            print(f"| {sae_name} | {link} | {cells[0]} | {cells[1]} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
