"""Load test of the web viewer: `saescope serve` in one process, clients in another, on loopback.

The store holds two SAEs: the real test run (tests/server/viewer_run.py: SmolLM2 layer 6,
a 64-feature TopK SAE, the real analysis pass), which the live clients use, and a large
analysis in the shape of tests/store (8,192 features x 33 examples, 24-token windows),
whose random feature pages most page clients read.

The server fills its page cache in the background at start; by default the clients start
when it says it is done (/api/health), and the time that took is reported (--cold starts
at once, with the server's warming off: every first visit of a page reads the store).
For --seconds (default 60): --page-clients (32) loop on feature pages (random SAE and feature,
the panels' data the viewer loads), --live-clients (4) loop on live inference (top features
per token of a short random text). Reports requests/s and p50/p95/p99 latency per kind,
errors, the server's resident memory sampled each second, and the CPU used by the server,
its inference worker and this load generator (a lean keep-alive HTTP/1.1 client on raw
asyncio streams, so that the clients are not what is measured). Writes bench/results/serve.json.

    .venv/bin/python bench/serve.py [--seconds 60] [--page-clients 32] [--live-clients 4] [--cold]

The soak (--abusive-clients N, e.g. `nice -n 5 .venv/bin/python bench/serve.py --seconds 120
--abusive-clients 4 --out serve_soak.json`) adds N clients that send, in turn, oversize bodies
(a 200 MB Content-Length, then nothing), live requests they abandon after 0.1 s, malformed
JSON and huge or non-numeric ids: it reports how many they sent and what they got, and the
inference worker's memory beside the server's. The well-behaved clients must see no error.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests package: its viewer run and analyses

from saescope.store import open_store  # noqa: E402
from tests.server.viewer_run import SAE_ID as LIVE_SAE  # noqa: E402
from tests.server.viewer_run import build_run  # noqa: E402
from tests.store.store_data import make_analysis  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BIG_SAE, BIG_D_SAE = "synthetic/blocks.6.hook_resid_post/topk-8192", 8192
WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "Paris",
    "and",
    "London",
    "import",
    "numpy",
    "as",
    "np",
    "def",
    "return",
    "class",
    "for",
    "in",
    "range",
]
TICK = os.sysconf("SC_CLK_TCK")


def prepare_run(run_dir: Path) -> None:
    """The test run plus the large synthetic SAE, built once and kept under bench/results/."""
    if (run_dir / "features.db").exists():
        return
    from saescope.models import load_model

    run_dir.mkdir(parents=True, exist_ok=True)
    build_run(load_model("smollm2"), run_dir)
    big = make_analysis(
        BIG_SAE, d_sae=BIG_D_SAE, n_top=20, n_quantile=10, n_inactive=3, window=24, vocab=None
    )
    big.vocab = [f"tok{i}" for i in range(49152)]
    with open_store(run_dir / "features.db") as store:
        store.write_analysis(big)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what the server uses -------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    """Child processes, but multiprocessing's resource tracker."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in found if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


# --- a lean HTTP/1.1 keep-alive client --------------------------------------------------------


class Connection:
    """One keep-alive connection; a request writes prepared bytes and reads Content-Length bytes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        try:
            response = await self.reader.readuntil(b"\r\n\r\n")
            status, length = _parse_head(response)
            return status, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _parse_head(head: bytes) -> tuple[int, int]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            return status, int(value)
    raise ValueError(f"no Content-Length in the response ({lines[0]})")


async def get_json(port: int, path: str) -> dict:
    conn = Connection(port)
    try:
        status, body = await conn.request("GET", path)
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}")
    return json.loads(body)


# --- the load ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"feature_page": [], "live": []}
        self.errors: list[str] = []
        self.abusive: dict[str, dict[str, int]] = {}  # kind -> answer (status or what) -> count

    def abused(self, kind: str, answer: str) -> None:
        counts = self.abusive.setdefault(kind, {})
        counts[answer] = counts.get(answer, 0) + 1


async def timed(
    conn: Connection, rec: Recorder, kind: str, method: str, path: str, body: bytes = b""
) -> None:
    start = time.perf_counter()
    try:
        status, _ = await conn.request(method, path, body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
        rec.errors.append(f"{kind} {path}: {type(err).__name__} {err}")
        return
    if status != 200:
        rec.errors.append(f"{kind} {path}: HTTP {status}")
        return
    rec.latencies[kind].append(time.perf_counter() - start)


async def page_client(
    port: int, rec: Recorder, stop_at: float, rng: random.Random, n_big: int
) -> None:
    conn = Connection(port)
    while time.monotonic() < stop_at:
        # 9 in 10 pages from the large SAE (its first n_big features), 1 in 10 from the live one
        sae, d_sae = (BIG_SAE, n_big) if rng.random() < 0.9 else (LIVE_SAE, 64)
        await timed(
            conn,
            rec,
            "feature_page",
            "GET",
            f"/api/saes/{sae}/features/{rng.randrange(d_sae)}/panels",
        )
    conn.close()


async def live_client(port: int, rec: Recorder, stop_at: float, rng: random.Random) -> None:
    conn = Connection(port)
    while time.monotonic() < stop_at:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24)))
        body = json.dumps({"text": text, "k": 5}).encode()
        await timed(conn, rec, "live", "POST", f"/api/saes/{LIVE_SAE}/activations", body)
    conn.close()


async def abusive_client(port: int, rec: Recorder, stop_at: float, rng: random.Random) -> None:
    """Oversize bodies, abandoned live requests, malformed JSON and huge ids, in turn."""
    kinds = [_oversize_body, _abandoned_live, _malformed_json, _huge_id]
    turn = rng.randrange(len(kinds))
    while time.monotonic() < stop_at:
        abuse = kinds[turn % len(kinds)]
        turn += 1
        try:
            answer = await abuse(port, rng)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            answer = type(err).__name__
        rec.abused(abuse.__name__.strip("_"), answer)


async def _raw(port: int, head: str, body: bytes = b"", wait_s: float | None = 10) -> str:
    """Send a request as given; the answer's status (or "abandoned" when not waited for)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        if wait_s is None:
            await asyncio.sleep(0.1)
            return "abandoned"
        line = await asyncio.wait_for(reader.readline(), wait_s)
        return line.decode("latin-1").split(" ")[1]
    finally:
        writer.close()


async def _oversize_body(port: int, rng: random.Random) -> str:
    head = (
        f"POST /api/saes/{LIVE_SAE}/activations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {200 * 2**20}\r\n"
    )
    return await _raw(port, head, b'{"text": "')


async def _abandoned_live(port: int, rng: random.Random) -> str:
    body = json.dumps({"prompt": "The cat sat on", "feature": 3, "max_new_tokens": 24}).encode()
    head = (
        f"POST /api/saes/{LIVE_SAE}/steer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    return await _raw(port, head, body, wait_s=None)


async def _malformed_json(port: int, rng: random.Random) -> str:
    body = rng.choice([b'{"text": "abc', b"\xff\xfe", b'{"text": 5, "k": "x"}', b"[]"])
    head = (
        f"POST /api/saes/{LIVE_SAE}/activations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    return await _raw(port, head, body)


async def _huge_id(port: int, rng: random.Random) -> str:
    feature = rng.choice(["9" * 5000, "9" * 20, "-1", "abc", "1e9"])
    offset = rng.choice(["9" * 25, "-5", "x"])
    path = rng.choice(
        [
            f"/api/saes/{BIG_SAE}/features/{feature}/panels",
            f"/api/saes/{BIG_SAE}/features?offset={offset}",
        ]
    )
    return await _raw(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n")


async def sample_memory(
    pid: int, stop_at: float, samples: list[float], worker_samples: list[float]
) -> None:
    while time.monotonic() < stop_at:
        samples.append(rss_mb(pid))
        worker_samples.append(sum(rss_mb(p) for p in children(pid)))
        await asyncio.sleep(1.0)


async def wait_warm(port: int, timeout_s: float = 900) -> float:
    """Seconds until the server's page cache is warm (its /api/health says finished)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        warming = (await get_json(port, "/api/health"))["warming"]
        if warming.get("finished"):
            return warming.get("seconds", time.monotonic() - started)
        await asyncio.sleep(1.0)
    raise RuntimeError(f"the page cache was not warm within {timeout_s:.0f} s")


async def drive(port: int, pid: int, args: argparse.Namespace) -> dict:
    rec, memory, worker_memory = Recorder(), [], []
    # warm-up: the first live request and the first page pay one-off costs
    warm_s = None if args.cold else await wait_warm(port)
    conn = Connection(port)
    await conn.request("POST", f"/api/saes/{LIVE_SAE}/activations", b'{"text": "warm up"}')
    conn.close()
    processes = {
        "server": [pid],
        "inference_worker": children(pid),
        "load_generator": [os.getpid()],
    }
    cpu_before = {k: sum(cpu_s(p) for p in pids) for k, pids in processes.items()}
    own_cpu_before = time.process_time()  # a cross-check of /proc for the load generator
    started = time.monotonic()
    stop_at = started + args.seconds
    tasks = [
        page_client(port, rec, stop_at, random.Random(i), args.big_features)
        for i in range(args.page_clients)
    ]
    tasks += [
        live_client(port, rec, stop_at, random.Random(1000 + i)) for i in range(args.live_clients)
    ]
    tasks += [
        abusive_client(port, rec, stop_at, random.Random(2000 + i))
        for i in range(args.abusive_clients)
    ]
    await asyncio.gather(*tasks, sample_memory(pid, stop_at, memory, worker_memory))
    elapsed = time.monotonic() - started
    cpu = {
        k: round((sum(cpu_s(p) for p in pids) - cpu_before[k]) / elapsed, 2)
        for k, pids in processes.items()
    }
    cpu["load_generator_process_time"] = round((time.process_time() - own_cpu_before) / elapsed, 2)
    return {
        "rec": rec,
        "memory": memory,
        "worker_memory": worker_memory,
        "elapsed": elapsed,
        "warm_s": warm_s,
        "cpu_cores": cpu,
    }


def _memory(samples: list[float]) -> dict[str, float]:
    half = len(samples) // 2
    if not samples:
        return {}
    return {
        "first_half_mean": round(float(np.mean(samples[:half] or samples)), 1),
        "second_half_mean": round(float(np.mean(samples[half:])), 1),
        "max": round(float(np.max(samples)), 1),
    }


def summary(times_s: list[float], elapsed: float) -> dict[str, float]:
    if not times_s:
        return {"n": 0}
    ms = np.asarray(times_s) * 1000
    return {
        "n": len(ms),
        "requests_per_s": round(len(ms) / elapsed, 1),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
        "max_ms": round(float(ms.max()), 1),
    }


def start_server(run_dir: Path, port: int, cold: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "saescope.cli", "serve", str(run_dir), "--port", str(port)]
    proc = subprocess.Popen(
        command + (["--no-warm"] if cold else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            asyncio.run(get_json(port, "/api/health"))
            return proc
        except (OSError, RuntimeError):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stderr.read()}") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not answer within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--page-clients", type=int, default=32)
    parser.add_argument("--live-clients", type=int, default=4)
    parser.add_argument("--run", type=Path, default=RESULTS / "serve_run")
    parser.add_argument(
        "--big-features",
        type=int,
        default=BIG_D_SAE,
        help="page clients read the large SAE's first N features (default: all)",
    )
    parser.add_argument(
        "--cold", action="store_true", help="server warming off, clients start at once"
    )
    parser.add_argument(
        "--abusive-clients",
        type=int,
        default=0,
        help="clients sending oversize bodies, abandoned live requests, malformed JSON, huge ids",
    )
    parser.add_argument("--out", default="serve.json", help="file name under bench/results/")
    args = parser.parse_args()
    prepare_run(args.run)
    port = free_port()
    server = start_server(args.run, port, args.cold)
    try:
        rss_before = rss_mb(server.pid)
        run = asyncio.run(drive(port, server.pid, args))
        load_at_end = os.getloadavg()
        alive = asyncio.run(get_json(port, "/api/health"))["ok"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    rec, memory, elapsed = run["rec"], run["memory"], run["elapsed"]
    half = len(memory) // 2
    result = {
        "what": f"saescope serve on loopback, {args.page_clients} feature-page clients + {args.live_clients} live "
        f"clients for {args.seconds:.0f} s (server and clients on the same {os.cpu_count()}-core machine)",
        "pages": f"random among the first {args.big_features} of {BIG_D_SAE} features (9 in 10) and the live SAE's 64",
        "cache": "cold (server warming off)"
        if args.cold
        else f"warmed by the server at start in {run['warm_s']} s",
        "load_average_at_end": [round(x, 2) for x in load_at_end],
        "feature_page": summary(rec.latencies["feature_page"], elapsed),
        "live_top_features": summary(rec.latencies["live"], elapsed),
        "errors": len(rec.errors),
        "error_examples": rec.errors[:5],
        "server_alive_after": alive,
        "cpu_cores_used": run["cpu_cores"],
        "abusive_clients": args.abusive_clients,
        "abusive_requests": sum(sum(c.values()) for c in rec.abusive.values()),
        "abusive_answers": rec.abusive,
        "inference_worker_rss_mb": _memory(run["worker_memory"]),
        "server_rss_mb": {
            "after_start": round(rss_before, 1),
            "first_half_mean": round(float(np.mean(memory[:half])), 1),
            "second_half_mean": round(float(np.mean(memory[half:])), 1),
            "max": round(float(np.max(memory)), 1),
            "samples": [round(m, 1) for m in memory],
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2))
    shown = {k: v for k, v in result.items() if k != "server_rss_mb"}
    print(json.dumps(shown, indent=2))
    print("server RSS MB:", {k: v for k, v in result["server_rss_mb"].items() if k != "samples"})


if __name__ == "__main__":
    main()
