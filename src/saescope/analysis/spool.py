"""Model activations kept on disk by the streaming pass, so that the example pass does not run the
model again.

The example pass needs, for every context holding a chosen example, the SAE's input at the hook
(to encode the windows) and, for top examples, the final residual (their direct-path effects).
Up to millions of tokens every context holds some feature's top example, so a second run of the
model over them cost more than the streaming pass itself (the whole model, against the layers up
to the hook). Instead, while the spool has room, the streaming pass runs the whole model and
writes both activations of each context here; the example pass reads them back and runs no model.
Contexts past the spool's byte budget are streamed up to the hook only and re-run by the example
pass, as before.

Contexts are kept in order from the first one streamed: the spool holds contexts [0, n_contexts).
It is read with pread, not a memory map: the pages of a mapped file count in the process's
resident memory, and the analysis's peak must not grow with the tokens.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from saescope.models import HookedModel

if TYPE_CHECKING:
    from saescope.analysis.config import AnalysisConfig
    from saescope.sae import SAE

MIN_FREE_DISK_FRACTION = 0.5  # the spool takes at most half of the disk space free when it starts


def final_residual_hook(model: HookedModel) -> str:
    """The hook holding the final norm's input (what the direct-path effects start from)."""
    return f"blocks.{model.n_layers - 1}.hook_resid_post"


def spool_path(checkpoint: Path) -> Path:
    """The spool of an analysis checkpointed at `checkpoint`: beside it, resumed with it."""
    return checkpoint.with_name(checkpoint.name + ".spool")


class ActivationSpool:
    """Activations [context_length, width] at each of `hooks`, contexts [0, n_contexts): one
    file."""

    def __init__(
        self,
        path: Path | None,
        model: HookedModel,
        hooks: list[str],
        context_length: int,
        max_bytes: int,
    ) -> None:
        """path None: a temporary file, removed when the spool is closed or collected."""
        self.hooks = list(dict.fromkeys(hooks))
        widths = model.hook_points()
        self.widths = [widths[h] for h in self.hooks]
        self.dtype = model.dtype
        self.context_length = context_length
        self.record = context_length * sum(self.widths) * self.dtype.itemsize  # bytes per context
        if path is None:
            fd, name = tempfile.mkstemp(prefix="saescope-spool-")
            os.close(fd)
            path, self.temporary = Path(name), True
        else:
            self.temporary = False
        self.path = path
        free = shutil.disk_usage(path.parent).free
        # in contexts: the byte budget, or half the free disk if that is less
        self.capacity = min(max_bytes, int(free * MIN_FREE_DISK_FRACTION)) // self.record
        # closed in close(), not by a with block
        self.file = open(path, "r+b" if path.exists() else "w+b", buffering=0)  # noqa: SIM115
        self.fd = self.file.fileno()
        self.n_contexts = min(os.fstat(self.fd).st_size // self.record, self.capacity)
        # a temporary spool nobody closes is still removed
        self._remove = weakref.finalize(self, _remove, path) if self.temporary else None

    def resume(self, contexts_done: int) -> None:
        """Keep only what a checkpoint that had streamed `contexts_done` contexts vouches for."""
        self.n_contexts = min(self.n_contexts, contexts_done)
        os.ftruncate(self.fd, self.n_contexts * self.record)

    def room(self, first_context: int) -> int:
        """How many contexts from first_context on the spool takes: it extends its prefix only."""
        return self.capacity - self.n_contexts if first_context == self.n_contexts else 0

    def append(self, cache: dict[str, torch.Tensor]) -> None:
        """Activations {hook: [b, context_length, width]} of the next b contexts."""
        block = torch.cat([cache[h].to(self.dtype) for h in self.hooks], dim=-1).cpu().contiguous()
        data = block.view(torch.uint8).numpy()
        written = os.pwrite(self.fd, data.data.cast("B"), self.n_contexts * self.record)
        if written != data.nbytes:
            raise OSError(f"{self.path}: wrote {written} of {data.nbytes} bytes (disk full?)")
        self.n_contexts += len(block)

    def sync(self) -> None:
        """On disk before a checkpoint says these contexts are done."""
        os.fsync(self.fd)

    def holds(self, contexts: torch.Tensor) -> torch.Tensor:
        return contexts < self.n_contexts

    def read(self, contexts: list[int], length: int) -> dict[str, torch.Tensor]:
        """{hook: [len(contexts), length, width]} of contexts the spool holds, on the CPU."""
        width = sum(self.widths)
        out = torch.empty(len(contexts), self.context_length, width, dtype=self.dtype)
        raw = out.view(torch.uint8).numpy().reshape(len(contexts), -1)
        for i, context in enumerate(contexts):
            if os.preadv(self.fd, [memoryview(raw[i])], context * self.record) != self.record:
                raise OSError(f"{self.path}: context {context} is not in the spool")
        parts = out[:, :length].split(self.widths, dim=-1)
        return dict(zip(self.hooks, parts, strict=True))

    def close(self) -> None:
        """Close the file; a temporary spool is removed."""
        self.file.close()
        if self._remove is not None:
            self._remove()


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def open_spool(
    model: HookedModel, sae: SAE, cfg: AnalysisConfig, checkpoint: Path | None
) -> ActivationSpool | None:
    """The spool of an analysis (beside its checkpoint, or a temporary file); None with
    spool_gib 0."""
    if not cfg.spool_gib:
        return None
    hooks = [sae.cfg.hook_name, final_residual_hook(model)]
    path = spool_path(checkpoint) if checkpoint is not None else None
    return ActivationSpool(path, model, hooks, cfg.context_length, int(cfg.spool_gib * 2**30))
