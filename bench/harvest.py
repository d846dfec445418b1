"""Benchmark: `saescope harvest` tokens/s against the bare model forward truncated at the same layer.

The bare forward is the limit for this step: Hugging Face's own decoder stack cut after the hook's
layer, run on the same token contexts with the same batch size, with nothing stored. Runs
alternate (bare, harvest, bare, harvest, ...) so machine noise hits both alike.

    .venv/bin/python bench/harvest.py [--tokens 16384] [--layer 6] [--repeats 3]

Writes bench/results/harvest.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from saescope.activations import HarvestConfig, harvest
from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.models import load_model


def truncated_decoder(hf_model: torch.nn.Module, n_layers: int) -> torch.nn.Module:
    """The HF decoder (embeddings + the first n_layers blocks), sharing weights with hf_model."""
    decoder = copy.copy(hf_model.model)
    decoder.layers = torch.nn.ModuleList(list(hf_model.model.layers)[:n_layers])
    return decoder


def time_bare_forward(decoder: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for tokens in batches:
            decoder(input_ids=tokens, use_cache=False)
    return time.perf_counter() - start


def time_harvest(model, cfg: HarvestConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg.out = str(Path(tmp) / "cache")
        start = time.perf_counter()
        harvest(cfg, model=model, progress=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=16_384)
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/harvest.json")
    args = parser.parse_args()

    model = load_model("smollm2")
    corpus = CorpusConfig(context_length=128)
    hook = f"blocks.{args.layer}.hook_resid_post"
    n_contexts = args.tokens // corpus.context_length
    batches = [
        b
        for b, _ in zip(
            iter_context_batches(corpus, model.tokenizer, args.batch_size),
            range(n_contexts // args.batch_size),
            strict=False,
        )
    ]
    n_tokens = sum(b.numel() for b in batches)
    cfg = HarvestConfig(
        out="", hooks=[hook], corpus=corpus, n_tokens=n_tokens, batch_size=args.batch_size
    )
    decoder = truncated_decoder(model.hf_model, args.layer + 1)

    time_bare_forward(decoder, batches[:1])  # warm-up
    bare, ours = [], []
    for _ in range(args.repeats):
        bare.append(n_tokens / time_bare_forward(decoder, batches))
        ours.append(n_tokens / time_harvest(model, cfg))
    result = {
        "model": "smollm2",
        "hook": hook,
        "tokens": n_tokens,
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "bare_forward_tokens_per_s": statistics.median(bare),
        "harvest_tokens_per_s": statistics.median(ours),
        "ratio": statistics.median(ours) / statistics.median(bare),
        "runs": {"bare": bare, "harvest": ours},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
