"""Runner for bench/autointerp.py: EleutherAI delphi's detection and fuzzing scorers on given
explanations and examples, through its OpenRouter client pointed at an OpenAI-compatible server.
Runs in delphi's venv (bench/results/venvs/delphi), not saescope's.

    python bench/autointerp_delphi.py JOB.json      # prints one JSON line: times and predictions

JOB.json: base_url (".../v1"), model, concurrency, max_tokens, batch_size, threshold, and
features: [{feature, explanation, activating: [{id, tokens, acts}], non_activating: [...]}].

delphi 0.1.3 is installed with --no-deps: its vllm dependency does not install here. The
package __init__ files of delphi.clients, delphi.latents and delphi.scorers import everything
(vllm through the offline client, faiss and sentence-transformers through the latent
constructors, tiktoken and simple_parsing through the simulator), none of which the OpenRouter
client or the classifier scorers use; they are replaced by bare namespace modules so that only
the modules run below are imported (those need torch, transformers, jaxtyping, blobfile, orjson,
httpx, tqdm).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
import types
from pathlib import Path
from typing import Any


def import_delphi() -> dict[str, Any]:
    spec = importlib.util.find_spec("delphi")
    assert spec is not None and spec.submodule_search_locations
    root = Path(spec.submodule_search_locations[0])
    import delphi  # noqa: F401 (its own __init__ is light: a version and a logger)

    for name in ("clients", "latents", "scorers"):
        bare = types.ModuleType(f"delphi.{name}")
        bare.__path__ = [str(root / name)]
        sys.modules[bare.__name__] = bare
    import delphi.latents.latents as latents

    for name in ("ActivatingExample", "NonActivatingExample", "LatentRecord", "Latent", "Example"):
        setattr(sys.modules["delphi.latents"], name, getattr(latents, name))
    from delphi.clients.openrouter import OpenRouter
    from delphi.pipeline import Pipe, Pipeline
    from delphi.scorers.classifier.detection import DetectionScorer
    from delphi.scorers.classifier.fuzz import FuzzingScorer

    return {
        "latents": latents,
        "OpenRouter": OpenRouter,
        "Pipe": Pipe,
        "Pipeline": Pipeline,
        "DetectionScorer": DetectionScorer,
        "FuzzingScorer": FuzzingScorer,
        "version": sys.modules["delphi"].__version__,
    }


def capped_client(openrouter: type, concurrency: int, **kwargs: Any) -> Any:
    """delphi's OpenRouter client with at most `concurrency` requests in flight, as saescope's
    backend caps its own (delphi's pipeline caps features, and runs both scorers of a feature
    at once, so it alone would send up to 2x as many)."""

    class Capped(openrouter):  # type: ignore[misc, valid-type]
        slots: asyncio.Semaphore | None = None
        requests = 0

        async def generate(self, prompt: Any, **gen: Any) -> Any:
            if self.slots is None:
                self.slots = asyncio.Semaphore(concurrency)
            async with self.slots:
                Capped.requests += 1
                return await super().generate(prompt, **gen)

    return Capped(**kwargs)


def record_of(d: dict[str, Any], job: dict[str, Any]) -> Any:
    import torch

    lat = d["latents"]

    def tensors(ex: dict[str, Any]) -> dict[str, Any]:
        return {
            "tokens": torch.zeros(len(ex["tokens"]), dtype=torch.long),  # unused by the scorers
            "activations": torch.tensor(ex["acts"], dtype=torch.float32),
            "str_tokens": list(ex["tokens"]),
        }

    record = lat.LatentRecord(lat.Latent("bench", int(job["feature"])))
    # the example's index rides in quantile / distance (metadata the scorers pass through), so
    # each prediction can be matched with saescope's on the same example
    record.test = [
        lat.ActivatingExample(**tensors(ex), quantile=ex["id"]) for ex in job["activating"]
    ]
    record.examples = record.test
    record.not_active = [
        lat.NonActivatingExample(**tensors(ex), distance=ex["id"]) for ex in job["non_activating"]
    ]
    record.explanation = job["explanation"]
    return record


def balanced_accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """delphi's definition (delphi/log/result_analysis.py, compute_confusion and
    compute_classification_metrics): unanswered examples dropped, (TPR + TNR) / 2, a class with
    no examples counting 0."""
    answered = [r for r in rows if r["prediction"] is not None]
    pos = sum(1 for r in answered if r["activating"])
    neg = len(answered) - pos
    tp = sum(1 for r in answered if r["activating"] and r["prediction"])
    tn = sum(1 for r in answered if not r["activating"] and not r["prediction"])
    value = ((tp / pos if pos else 0.0) + (tn / neg if neg else 0.0)) / 2
    return {
        "balanced_accuracy": value,
        "n": len(rows),
        "n_answered": len(answered),
        "tp": tp,
        "tn": tn,
        "fp": neg - tn,
        "fn": pos - tp,
    }


async def run(job: dict[str, Any]) -> dict[str, Any]:
    d = import_delphi()
    concurrency = int(job["concurrency"])
    client = capped_client(
        d["OpenRouter"],
        concurrency,
        model=job["model"],
        api_key="unused",
        base_url=job["base_url"].rstrip("/") + "/chat/completions",
        max_tokens=int(job["max_tokens"]),
        temperature=0.0,
    )
    shown = int(job["batch_size"])
    detection = d["DetectionScorer"](client, n_examples_shown=shown, temperature=0.0)
    fuzzing = d["FuzzingScorer"](
        client, n_examples_shown=shown, threshold=float(job["threshold"]), temperature=0.0
    )
    records = [record_of(d, f) for f in job["features"]]
    pipeline = d["Pipeline"](lambda: iter(records), d["Pipe"](detection, fuzzing))
    started = time.perf_counter()
    results = await pipeline.run(max_concurrent=concurrency)
    seconds = time.perf_counter() - started
    scores: dict[str, Any] = {}
    for detected, fuzzed in results:
        feature = detected.record.latent.latent_index
        scores[str(feature)] = {}
        for name, result in (("detection", detected), ("fuzzing", fuzzed)):
            rows = [
                {
                    "id": int(out.distance),
                    "activating": bool(out.activating),
                    "prediction": out.prediction,
                }
                for out in result.score
            ]
            scores[str(feature)][name] = {**balanced_accuracy(rows), "predictions": rows}
    return {
        "delphi_version": d["version"],
        "seconds": seconds,
        "features": len(records),
        "features_per_min": 60 * len(records) / seconds,
        "requests": type(client).requests,
        "scores": scores,
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(job))))


if __name__ == "__main__":
    main()
