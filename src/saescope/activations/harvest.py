"""Harvest: run the model over a corpus and write the activations at chosen hook points to a cache.

Several hook points come from one forward, which stops after the deepest of them. Shards are
written by a background thread so that disk writes overlap the next forward passes. An
interrupted harvest resumes after its last whole shard (the corpus is deterministic for a seed).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from saescope.activations.batching import ContextBatch, rebatch, take_contexts
from saescope.activations.cache import (
    ActivationCache,
    CacheWriter,
    Manifest,
    read_manifest,
    storage_dtype,
)
from saescope.activations.source import iter_model_activations
from saescope.config import REQUIRED, Config, section, setting
from saescope.corpus import CorpusConfig, describe_corpus
from saescope.errors import ConfigError, SaescopeError
from saescope.models import HookedModel, load_model
from saescope.progress import progress_bar

DEFAULT_HOOK = "blocks.6.hook_resid_post"


DTYPE_NAMES = ("float32", "float16", "bfloat16", "fp32", "fp16", "bf16")


@dataclass
class HarvestConfig(Config):
    """One harvest: which model, which hook points, how many tokens of which corpus, where to."""

    out: str = setting(REQUIRED, "output directory of the cache")
    model: str = setting("smollm2", "model spec: smollm2, an HF id or dir, a .gguf file")
    hooks: list[str] = setting(
        [DEFAULT_HOOK],
        "hook points; repeat --hook for several",
        flag="--hook",
        flag_help="hook point, repeatable",
    )
    corpus: CorpusConfig = section(CorpusConfig, "the text the model reads")
    n_tokens: int = setting(
        100_000, "tokens to harvest, e.g. 100k, 2M", low=1, count=True, flag="--tokens"
    )
    dtype: str = setting("float32", "storage dtype", choices=DTYPE_NAMES)
    batch_size: int = setting(8, "contexts per forward pass", low=1)
    shard_mb: float = setting(
        64.0, "approximate shard size in MB", low=1e-3, accepted="a positive size in MB"
    )
    device: str = setting("cpu", "torch device")

    def validate(self) -> None:
        super().validate()
        if not self.hooks:
            raise ConfigError(
                "hooks", self.hooks, "at least one hook point, e.g. blocks.6.hook_resid_post"
            )
        if len(set(self.hooks)) != len(self.hooks):
            raise ConfigError("hooks", self.hooks, "each hook point once")
        storage_dtype(self.dtype)
        self.corpus.validate()


def contexts_per_shard(cfg: HarvestConfig, widths: dict[str, int]) -> int:
    bytes_per_context = (
        cfg.corpus.context_length * sum(widths.values()) * storage_dtype(cfg.dtype).itemsize
    )
    return max(1, int(cfg.shard_mb * 2**20 / bytes_per_context))


def open_manifest(cfg: HarvestConfig, model: HookedModel) -> Manifest:
    """The manifest to continue: a fresh one, or the existing one if it is this same harvest."""
    widths = {h: model.hook_points()[h] for h in cfg.hooks}
    target = -(-cfg.n_tokens // cfg.corpus.context_length)
    fresh = Manifest(
        model=model.name,
        hooks=widths,
        corpus=describe_corpus(cfg.corpus),
        context_length=cfg.corpus.context_length,
        dtype=str(storage_dtype(cfg.dtype)).removeprefix("torch."),
        target_contexts=target,
    )
    out = Path(cfg.out)
    existing = read_manifest(out) if out.is_dir() else None
    if existing is None:
        if out.is_dir() and any(out.glob("shard_*.safetensors")):
            raise SaescopeError(
                f"--out {out}: holds activation shards but no manifest.json; choose an empty "
                "directory."
            )
        return fresh
    if existing.identity() != fresh.identity():
        differs = [k for k, v in fresh.identity().items() if existing.identity()[k] != v]
        raise SaescopeError(
            f"--out {out}: holds another harvest's cache (it differs in {', '.join(differs)}: "
            f"{', '.join(f'{k}={existing.identity()[k]!r}' for k in differs)}). "
            "Choose another output directory, or delete that one to start again."
        )
    existing.target_contexts = max(existing.target_contexts, target)
    return existing


class ShardWriterThread:
    """Writes shards in the background, at most `depth` waiting, in order."""

    def __init__(self, writer: CacheWriter, depth: int = 2) -> None:
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write_shard(*item)
                except BaseException as err:  # surfaced in the main thread by put() / close()
                    self.error = err

    def put(self, tokens: torch.Tensor, acts: dict[str, torch.Tensor]) -> None:
        self._raise_error()
        self.queue.put((tokens, acts))

    def close(self) -> None:
        """Finish the shards already handed over (they are whole), then stop."""
        self.queue.put(None)
        self.thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error


def to_storage(batch: ContextBatch, dtype: torch.dtype, bar: tqdm) -> ContextBatch:
    tokens, acts = batch
    bar.update(tokens.numel())
    return tokens, {h: a.to("cpu", dtype) for h, a in acts.items()}


def harvest(
    cfg: HarvestConfig, model: HookedModel | None = None, progress: bool = True
) -> ActivationCache:
    """Write cfg.n_tokens tokens of activations at cfg.hooks to
    cfg.out; resume if it was started."""
    cfg.validate()
    model = model or load_model(cfg.model, device=cfg.device)
    model.check_hooks(cfg.hooks)
    model.check_context_length(cfg.corpus.context_length)
    manifest = open_manifest(cfg, model)
    if manifest.complete:
        return ActivationCache(cfg.out)

    dtype = storage_dtype(cfg.dtype)
    per_shard = contexts_per_shard(cfg, manifest.hooks)
    writer = ShardWriterThread(CacheWriter(cfg.out, manifest))
    done = manifest.n_contexts
    bar = progress_bar(
        total=manifest.target_contexts * cfg.corpus.context_length,
        initial=manifest.n_tokens,
        unit="tok",
        unit_scale=True,
        desc="harvest",
        disable=not progress,
    )
    try:
        source = iter_model_activations(
            model, cfg.corpus, cfg.hooks, cfg.batch_size, skip_contexts=done
        )
        wanted = take_contexts(source, manifest.target_contexts - done)
        stored = (to_storage(batch, dtype, bar) for batch in wanted)
        for tokens, acts in rebatch(stored, per_shard):
            writer.put(tokens, acts)
    finally:
        bar.close()
        writer.close()
    if not manifest.complete:
        raise SaescopeError(
            f"corpus {cfg.corpus.source!r} ran out after {manifest.n_tokens:,} tokens; "
            f"asked for {cfg.n_tokens:,}. Ask for fewer tokens or use a larger corpus."
        )
    return ActivationCache(cfg.out)
