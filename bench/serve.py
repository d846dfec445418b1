"""Load test of the web viewer: `saescope serve` in one process, clients in another, on loopback.

The store holds two SAEs: the real test run (tests/server/viewer_run.py: SmolLM2 layer 6,
a 64-feature TopK SAE, the real analysis pass), which the live clients use, and a large
analysis in the shape of tests/store (8,192 features x 33 examples, 24-token windows),
whose random feature pages most page clients read: about half miss the 4,096-page cache.

For --seconds (default 60): --page-clients (32) loop on feature pages (random SAE and feature),
--live-clients (4) loop on live inference (top features per token of a short random text).
Reports requests/s and p50/p95/p99 latency per kind, errors, and the server's resident
memory sampled each second. Writes bench/results/serve.json.

    .venv/bin/python bench/serve.py [--seconds 60] [--page-clients 32] [--live-clients 4]
    .venv/bin/python bench/serve.py --big-features 1000 --warm --out serve_warm.json   # cached pages
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "server"), str(ROOT / "tests" / "store")]

from store_data import make_analysis  # noqa: E402
from viewer_run import SAE_ID as LIVE_SAE  # noqa: E402
from viewer_run import build_run  # noqa: E402

from saescope.store import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BIG_SAE, BIG_D_SAE = "synthetic/blocks.6.hook_resid_post/topk-8192", 8192
WORDS = ["the", "cat", "sat", "on", "a", "mat", "while", "Paris", "and", "London", "import", "numpy", "as", "np", "def", "return", "class", "for", "in", "range"]


def prepare_run(run_dir: Path) -> None:
    """The test run plus the large synthetic SAE, built once and kept under bench/results/."""
    if (run_dir / "features.db").exists():
        return
    from saescope.models import load_model

    run_dir.mkdir(parents=True, exist_ok=True)
    build_run(load_model("smollm2"), run_dir)
    big = make_analysis(BIG_SAE, d_sae=BIG_D_SAE, n_top=20, n_quantile=10, n_inactive=3, window=24, vocab=None)
    big.vocab = [f"tok{i}" for i in range(49152)]
    with open_store(run_dir / "features.db") as store:
        store.write_analysis(big)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(run_dir: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "saescope.cli", "serve", str(run_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stderr.read()}") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not answer within 180 s")


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"feature_page": [], "live": []}
        self.errors: list[str] = []


async def page_client(http: httpx.AsyncClient, rec: Recorder, stop_at: float, rng: random.Random,
                      n_big: int) -> None:
    while time.monotonic() < stop_at:
        # 9 in 10 pages from the large SAE (its first n_big features), 1 in 10 from the live one
        sae, d_sae = (BIG_SAE, n_big) if rng.random() < 0.9 else (LIVE_SAE, 64)
        # the feature page as the viewer loads it (the panels' data)
        await timed(http, rec, "feature_page", "GET", f"/api/saes/{sae}/features/{rng.randrange(d_sae)}/panels")


async def live_client(http: httpx.AsyncClient, rec: Recorder, stop_at: float, rng: random.Random) -> None:
    while time.monotonic() < stop_at:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24)))
        await timed(http, rec, "live", "POST", f"/api/saes/{LIVE_SAE}/activations", json={"text": text, "k": 5})


async def timed(http: httpx.AsyncClient, rec: Recorder, kind: str, method: str, url: str, **kwargs) -> None:
    start = time.perf_counter()
    try:
        response = await http.request(method, url, **kwargs)
        response.read()
        if response.status_code != 200:
            rec.errors.append(f"{kind} {url}: HTTP {response.status_code}")
            return
    except httpx.HTTPError as err:
        rec.errors.append(f"{kind} {url}: {type(err).__name__}")
        return
    rec.latencies[kind].append(time.perf_counter() - start)


async def sample_memory(pid: int, stop_at: float, samples: list[float]) -> None:
    while time.monotonic() < stop_at:
        samples.append(rss_mb(pid))
        await asyncio.sleep(1.0)


async def drive(base: str, pid: int, args: argparse.Namespace) -> tuple[Recorder, list[float], float]:
    rec, memory = Recorder(), []
    limits = httpx.Limits(max_connections=args.page_clients + args.live_clients + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        # warm-up: the first live request and the first page pay one-off costs
        await http.post(f"/api/saes/{LIVE_SAE}/activations", json={"text": "warm up"})
        await http.get(f"/api/saes/{BIG_SAE}/features/0")
        if args.warm:  # the popular-pages case: every page the clients will ask for is cached
            for sae, n in ((BIG_SAE, args.big_features), (LIVE_SAE, 64)):
                for f in range(n):
                    await http.get(f"/api/saes/{sae}/features/{f}/panels")
        started = time.monotonic()
        stop_at = started + args.seconds
        tasks = [page_client(http, rec, stop_at, random.Random(i), args.big_features) for i in range(args.page_clients)]
        tasks += [live_client(http, rec, stop_at, random.Random(1000 + i)) for i in range(args.live_clients)]
        await asyncio.gather(*tasks, sample_memory(pid, stop_at, memory))
        elapsed = time.monotonic() - started
    return rec, memory, elapsed


def summary(times_s: list[float], elapsed: float) -> dict[str, float]:
    if not times_s:
        return {"n": 0}
    ms = np.asarray(times_s) * 1000
    return {"n": len(ms), "requests_per_s": round(len(ms) / elapsed, 1),
            **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
            "max_ms": round(float(ms.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--page-clients", type=int, default=32)
    parser.add_argument("--live-clients", type=int, default=4)
    parser.add_argument("--run", type=Path, default=RESULTS / "serve_run")
    parser.add_argument("--big-features", type=int, default=BIG_D_SAE,
                        help="page clients read the large SAE's first N features (default: all)")
    parser.add_argument("--warm", action="store_true", help="request every page once before timing")
    parser.add_argument("--out", default="serve.json", help="file name under bench/results/")
    args = parser.parse_args()
    prepare_run(args.run)
    port = free_port()
    server = start_server(args.run, port)
    try:
        rss_before = rss_mb(server.pid)
        rec, memory, elapsed = asyncio.run(drive(f"http://127.0.0.1:{port}", server.pid, args))
        alive = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    half = len(memory) // 2
    result = {
        "what": f"saescope serve on loopback, {args.page_clients} feature-page clients + {args.live_clients} live "
                f"clients for {args.seconds:.0f} s (server and clients on the same {os.cpu_count()}-core machine)",
        "pages": f"first {args.big_features} of {BIG_D_SAE} features, cache {'warmed' if args.warm else 'cold'}",
        "load_average_1m_at_end": os.getloadavg()[0],
        "feature_page": summary(rec.latencies["feature_page"], elapsed),
        "live_top_features": summary(rec.latencies["live"], elapsed),
        "errors": len(rec.errors), "error_examples": rec.errors[:5], "server_alive_after": alive,
        "server_rss_mb": {"after_start": round(rss_before, 1), "first_half_mean": round(float(np.mean(memory[:half])), 1),
                          "second_half_mean": round(float(np.mean(memory[half:])), 1),
                          "max": round(float(np.max(memory)), 1), "samples": [round(m, 1) for m in memory]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "server_rss_mb"}, indent=2))
    print("server RSS MB:", {k: v for k, v in result["server_rss_mb"].items() if k != "samples"})


if __name__ == "__main__":
    main()
