"""The on-disk activation cache: sharded safetensors files plus a JSON manifest.

Layout of a cache directory:
    manifest.json            model, hook points and widths, corpus, dtype, counts, norm statistics,
                             and the list of complete shards (a shard is listed only once it is whole)
    shard_00000.safetensors  "tokens" [contexts, ctx] int32 and one "acts/<hook>" [contexts, ctx, d]
                             tensor per hook point

Shards are written under a temporary name and renamed, and the manifest is rewritten after each
shard, so a killed harvest leaves only whole shards behind and resumes after the last one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from saescope.activations.batching import rebatch
from saescope.errors import SaescopeError
from saescope.fileio import confined, read_json, save_tensors, write_json

MANIFEST = "manifest.json"
FORMAT_NAME = "saescope-activations"
FORMAT_VERSION = 1
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def storage_dtype(name: str) -> torch.dtype:
    aliases = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
    name = aliases.get(name, name)
    if name not in DTYPES:
        raise SaescopeError(f"dtype: got {name!r}; expected one of fp32, fp16, bf16.")
    return DTYPES[name]


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.safetensors"


@dataclass
class NormStats:
    """Running mean of activation norms (BOS positions excluded), kept across resumes."""

    norm_sum: float = 0.0
    count: int = 0

    def update(self, acts: torch.Tensor) -> None:  # acts: [n_tokens, d]
        self.norm_sum += acts.float().norm(dim=-1).sum().item()
        self.count += acts.shape[0]

    @property
    def mean_norm(self) -> float:
        return self.norm_sum / max(self.count, 1)

    def scaling_factor(self, d: int) -> float:
        """Factor that scales activations to a mean norm of sqrt(d), as SAELens and sparsify do."""
        return math.sqrt(d) / self.mean_norm if self.count else 1.0


@dataclass
class Manifest:
    model: str
    hooks: dict[str, int]  # hook point -> width
    corpus: dict[str, Any]
    context_length: int
    dtype: str
    target_contexts: int
    shards: list[dict[str, Any]] = field(default_factory=list)  # [{"file", "contexts"}]
    norms: dict[str, NormStats] = field(default_factory=dict)

    @property
    def n_contexts(self) -> int:
        return sum(s["contexts"] for s in self.shards)

    @property
    def n_tokens(self) -> int:
        return self.n_contexts * self.context_length

    @property
    def complete(self) -> bool:
        return self.n_contexts >= self.target_contexts

    def identity(self) -> dict[str, Any]:
        """What must match for a directory to be resumed (rather than refused as another run's)."""
        return {
            "model": self.model,
            "hooks": self.hooks,
            "corpus": self.corpus,
            "context_length": self.context_length,
            "dtype": self.dtype,
        }

    def scaling_factors(self) -> dict[str, float]:
        return {
            h: self.norms[h].scaling_factor(d) for h, d in self.hooks.items() if h in self.norms
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            **self.identity(),
            "target_contexts": self.target_contexts,
            "n_contexts": self.n_contexts,
            "n_tokens": self.n_tokens,
            "complete": self.complete,
            "shards": self.shards,
            "norms": {
                h: {
                    "norm_sum": s.norm_sum,
                    "count": s.count,
                    "mean_norm": s.mean_norm,
                    "scaling_factor": s.scaling_factor(self.hooks[h]),
                }
                for h, s in self.norms.items()
            },
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Manifest:
        return cls(
            model=obj["model"],
            hooks=obj["hooks"],
            corpus=obj["corpus"],
            context_length=obj["context_length"],
            dtype=obj["dtype"],
            target_contexts=obj["target_contexts"],
            shards=obj["shards"],
            norms={h: NormStats(s["norm_sum"], s["count"]) for h, s in obj["norms"].items()},
        )


def read_manifest(directory: str | Path) -> Manifest | None:
    """The manifest of an activation cache, None if the directory holds none."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    try:
        obj = read_json(path)
    except ValueError as err:
        raise SaescopeError(
            f"{path}: not valid JSON ({err}); is this an activation cache?"
        ) from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise SaescopeError(
            f"{path}: not a saescope activation cache manifest (no format {FORMAT_NAME!r})."
        )
    if obj.get("version") != FORMAT_VERSION:
        raise SaescopeError(
            f"{path}: activation cache version {obj.get('version')}; this saescope reads version "
            f"{FORMAT_VERSION}."
        )
    try:
        manifest = Manifest.from_json(obj)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise SaescopeError(
            f"{path}: a damaged activation cache manifest ({type(err).__name__}: {err}); "
            "re-run the harvest into a new directory."
        ) from None
    for shard in manifest.shards:
        check_shard_entry(shard, Path(directory), path)
    return manifest


def check_shard_entry(shard: Any, directory: Path, manifest_path: Path) -> None:
    """A manifest's shard entry names a file inside the cache and a count of contexts."""
    if not isinstance(shard, dict) or not isinstance(shard.get("contexts"), int):
        raise SaescopeError(
            f"{manifest_path}: shard entry {shard!r} should be {{'file': NAME, 'contexts': N}}"
        )
    confined(directory, shard.get("file"), f"{manifest_path}: shard file")


class CacheWriter:
    """Appends whole shards to a cache directory and keeps the manifest in step."""

    def __init__(self, directory: str | Path, manifest: Manifest) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json(self.directory / MANIFEST, manifest.to_json())

    def write_shard(self, tokens: torch.Tensor, acts: dict[str, torch.Tensor]) -> None:
        """tokens: [contexts, ctx]; acts[hook]: [contexts, ctx, d] already in the storage dtype."""
        m = self.manifest
        name = shard_name(len(m.shards))
        tensors = {"tokens": tokens.to(torch.int32)}
        tensors.update({f"acts/{h}": a for h, a in acts.items()})
        save_tensors(self.directory / name, tensors)
        skip_first = 1 if m.corpus.get("prepend_bos", False) else 0
        for h, a in acts.items():
            m.norms.setdefault(h, NormStats()).update(a[:, skip_first:].reshape(-1, a.shape[-1]))
        m.shards.append({"file": name, "contexts": int(tokens.shape[0])})
        write_json(self.directory / MANIFEST, m.to_json())


class ActivationCache:
    """Read access to a harvested activation cache."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise SaescopeError(f"activation cache {self.directory}: no such directory.")
        manifest = read_manifest(self.directory)
        if manifest is None:
            raise SaescopeError(
                f"activation cache {self.directory}: no {MANIFEST}; run `saescope harvest` first."
            )
        self.manifest = manifest

    @property
    def hooks(self) -> dict[str, int]:
        return self.manifest.hooks

    @property
    def n_tokens(self) -> int:
        return self.manifest.n_tokens

    def iter_batches(
        self, batch_size: int | None = None, hooks: list[str] | None = None
    ) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """(token_ids [batch, ctx] int64, {hook: acts [batch, ctx, d]}) in harvest order.

        batch_size counts contexts (batches span shard boundaries; the last may be smaller);
        None yields one batch per shard.
        """
        hooks = list(self.hooks) if hooks is None else hooks
        for h in hooks:
            if h not in self.hooks:
                raise SaescopeError(
                    f"hook {h!r} is not in the cache {self.directory}; it holds "
                    f"{sorted(self.hooks)}."
                )
        shards = (self._read_shard(self.directory / s["file"], hooks) for s in self.manifest.shards)
        yield from shards if batch_size is None else rebatch(shards, batch_size)

    def _read_shard(
        self, path: Path, hooks: list[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        try:
            with safe_open(str(path), framework="pt") as f:
                tokens = f.get_tensor("tokens").long()
                acts = {h: f.get_tensor(f"acts/{h}") for h in hooks}
        except (
            Exception
        ) as err:  # safetensors raises its own SafetensorError; a missing key a KeyError
            raise SaescopeError(
                f"{path}: cannot read this activation shard ({err}); re-run the harvest."
            ) from err
        return tokens, acts


def load_cache(
    directory: str | Path, batch_size: int | None = None, hooks: list[str] | None = None
) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Iterate over a harvested cache: (token_ids [batch, ctx], {hook: acts [batch, ctx, d]})."""
    return ActivationCache(directory).iter_batches(batch_size=batch_size, hooks=hooks)
