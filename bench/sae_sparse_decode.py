"""Benchmark: sparse decode (embedding_bag over k rows of W_dec) against dense decode (acts @ W_dec).

TopK SAEs touch k of d_sae decoder rows per token; decode_sparse reads only those. Runs
alternate (dense, sparse, dense, ...) so machine noise hits both alike; figures are ratios.

    .venv/bin/python bench/sae_sparse_decode.py [--d-in 576] [--d-sae 9216] [--k 32] [--tokens 4096]

Writes bench/results/sae_sparse_decode.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from saescope.sae import SAEConfig, build_sae


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=576)
    parser.add_argument("--d-sae", type=int, default=9216)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    sae = build_sae(SAEConfig(architecture="topk", d_in=args.d_in, d_sae=args.d_sae, k=args.k))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_()
    x = torch.randn(args.tokens, args.d_in)
    with torch.no_grad():
        values, indices = sae.encode_sparse(x)
        dense = sae.encode(x)
        assert torch.allclose(
            sae.decode_sparse(values, indices), sae.decode(dense), atol=1e-3, rtol=1e-4
        )
        dense_times, sparse_times = [], []
        for _ in range(args.repeats):  # interleaved
            dense_times += timed(lambda: sae.decode(dense), 1)
            sparse_times += timed(lambda: sae.decode_sparse(values, indices), 1)
    dense_s, sparse_s = statistics.median(dense_times), statistics.median(sparse_times)
    result = {
        "d_in": args.d_in,
        "d_sae": args.d_sae,
        "k": args.k,
        "tokens": args.tokens,
        "threads": torch.get_num_threads(),
        "dense_decode_s": dense_s,
        "sparse_decode_s": sparse_s,
        "speedup": dense_s / sparse_s,
    }
    out = Path(__file__).parent / "results" / "sae_sparse_decode.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
