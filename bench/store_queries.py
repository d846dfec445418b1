"""Feature store query latencies on a realistic store: 16k features x 40 examples.

Writes the store (SQLite file, and PostgreSQL on a throwaway local server), then times the
viewer's queries: the feature page (alone, and with 4 client processes at once), sorted
and filtered pages, search, the SAE summary. As a reference on the same data, reading one
feature from the Neuronpedia batch files SAEDashboard's runner writes (what a static viewer
of those files does). Writes bench/results/store_queries.json.

    .venv/bin/python bench/store_queries.py [--features 16384] [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests package: its PostgreSQL server and analyses

from saescope.store import open_store  # noqa: E402
from saescope.store.export import export_neuronpedia  # noqa: E402
from tests.postgres_server import start_server  # noqa: E402
from tests.store.store_data import make_analysis  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SAE_ID = "smollm2/blocks.6.hook_resid_post/topk-16384"


def percentiles(times_s: list[float]) -> dict[str, float]:
    ms = np.asarray(times_s) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "max_ms": round(float(ms.max()), 2),
        "n": len(ms),
    }


def timed(fn, args_list) -> dict[str, float]:
    times = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return percentiles(times)


def _load_worker(url: str, d_sae: int, n: int, seed: int, out: mp.Queue) -> None:
    rng = np.random.default_rng(seed)
    with open_store(url) as store:
        store.feature(SAE_ID, 0)  # connect, vocab cached
        times = []
        for f in rng.integers(0, d_sae, n).tolist():
            start = time.perf_counter()
            store.feature(SAE_ID, f)
            times.append(time.perf_counter() - start)
    out.put(times)


def feature_page_under_load(
    url: str, d_sae: int, clients: int = 4, n: int = 200
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_load_worker, args=(url, d_sae, n, i, queue)) for i in range(clients)
    ]
    for w in workers:
        w.start()
    times = [t for _ in workers for t in queue.get()]
    for w in workers:
        w.join()
    return {**percentiles(times), "clients": clients}


def bench_backend(url: str, analysis, rng) -> dict:
    d_sae = len(analysis.features.density)
    with open_store(url) as store:
        start = time.perf_counter()
        store.write_analysis(analysis)
        write_s = time.perf_counter() - start
        store.set_explanation(SAE_ID, 123, "Mentions of Paris and other capital cities")
        store.feature(SAE_ID, 0)  # warm: vocab cached, as in a running viewer
        features = rng.integers(0, d_sae, 300).tolist()
        offsets = rng.integers(0, d_sae - 50, 100).tolist()
        out = {
            "write_s": round(write_s, 1),
            "feature_page": timed(store.feature, [(SAE_ID, f) for f in features]),
            "sorted_page_max_act": timed(
                lambda o: store.features(SAE_ID, sort_by="max_act", offset=o, limit=50),
                [(o,) for o in offsets],
            ),
            "sorted_page_density_filtered": timed(
                lambda o: store.features(
                    SAE_ID,
                    sort_by="density",
                    min_density=1e-4,
                    max_density=1e-2,
                    offset=o % 2000,
                    limit=50,
                ),
                [(o,) for o in offsets],
            ),
            "sorted_page_by_score": timed(
                lambda o: store.features(SAE_ID, sort_by="autointerp", offset=o % 10000, limit=50),
                [(o,) for o in offsets],
            ),
            "search_rare_word": timed(
                lambda q: store.search(q, sae_id=SAE_ID), [("capital cities",)] * 30
            ),
            "search_planted_token": timed(
                lambda q: store.search(q, sae_id=SAE_ID), [("paris",)] * 30
            ),
            "search_common_text": timed(lambda q: store.search(q, sae_id=SAE_ID), [(" the",)] * 30),
            "search_two_chars": timed(lambda q: store.search(q, sae_id=SAE_ID), [("np",)] * 10),
            "sae_summary": timed(store.sae_summary, [(SAE_ID,)] * 20),
        }
    out["feature_page_4_clients"] = feature_page_under_load(url, d_sae)
    return out


def neuronpedia_files_reference(url: str, rng, d_sae: int) -> dict:
    """Reading one feature the way a viewer of SAEDashboard's batch files must."""
    with open_store(url) as store, tempfile.TemporaryDirectory() as tmp:
        folder = export_neuronpedia(store, SAE_ID, tmp)
        index = {}
        for path in folder.glob("batch-*.json"):
            for f in json.loads(path.read_text())["features"]:
                index[f["feature_index"]] = path

        def read(f: int) -> None:
            path = index.get(f)
            if path is not None:
                next(x for x in json.loads(path.read_text())["features"] if x["feature_index"] == f)

        return timed(read, [(f,) for f in rng.integers(0, d_sae, 100).tolist()])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=int, default=16384)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path, default=RESULTS / "store_queries.json")
    parser.add_argument("--sqlite-path", type=Path, default=None, help="keep the SQLite store here")
    parser.add_argument(
        "--neuronpedia-reference",
        action="store_true",
        help="also time reading a feature from SAEDashboard-layout batch files (exports them all)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    analysis = make_analysis(
        SAE_ID,
        d_sae=args.features,
        n_top=20,
        n_quantile=15,
        n_inactive=5,
        window=24,
        vocab=None,
        planted={123: 21, 456: 21},
    )
    analysis.vocab = [f"tok{i}" for i in range(49152)]
    analysis.vocab[21] = " Paris"
    analysis.vocab[1] = " the"
    print(
        f"built {args.features} features, {len(analysis.examples)} examples in {time.perf_counter() - start:.0f} s"
    )
    report = {
        "n_features": args.features,
        "n_examples": len(analysis.examples),
        "window": 24,
        "backends": {},
    }
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            server = start_server() if backend == "postgresql" else None
            try:
                url = server.url() if server else str(args.sqlite_path or Path(tmp) / "features.db")
                report["backends"][backend] = bench_backend(url, analysis, rng)
                if backend == "sqlite":
                    report["backends"][backend]["file_mb"] = round(Path(url).stat().st_size / 2**20)
                    if args.neuronpedia_reference:
                        report["neuronpedia_batch_files_feature_read"] = (
                            neuronpedia_files_reference(url, rng, args.features)
                        )
            finally:
                if server:
                    server.stop()
            print(backend, json.dumps(report["backends"][backend], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
