"""Data-parallel SAE training: the single-process Trainer with its hook points filled in.

Every rank holds the same SAE replicas and sees the same global batches (data.py); it computes
the loss on its slice of batch_size / world_size tokens, gradients are averaged over the ranks
in one flat all-reduce, and every rank takes the same optimiser step. The mean of the slices'
mean losses is the whole batch's mean loss, so N ranks follow one process's trajectory to float
tolerance. Fire counts are summed over the ranks so dead-latent masks agree. Rank 0 alone writes
the checkpoint, metrics and the SAE; the checkpoint holds nothing rank-specific, so a run
resumes on any number of ranks.

Exact for topk, standard, jumprelu and gated. Batch-level selections (batchtopk, matryoshka)
choose within each rank's slice, and AuxK normalises by the slice's residual variance.
"""

from __future__ import annotations

from typing import Any

import torch

from saescope.distributed.comm import all_reduce, average_gradients
from saescope.distributed.group import is_main, local_device, rank, world_size
from saescope.errors import ConfigError
from saescope.sae import SAE
from saescope.train.config import TrainConfig
from saescope.train.losses import StepOutput
from saescope.train.trainer import Trainer


class DistributedTrainer(Trainer):
    def __init__(self, cfg: TrainConfig, model: Any = None, store: Any = None) -> None:
        if cfg.batch_size % world_size():
            raise ConfigError(
                "batch_size", cfg.batch_size, f"a multiple of the number of ranks ({world_size()})"
            )
        cfg = cfg.replace(device=local_device(cfg.device))
        if not is_main():
            cfg = cfg.replace(progress=False, wandb=False)
        self.is_writer = is_main()
        self.comm_bytes = 0  # bytes this rank put into gradient all-reduces (bench/scale.py)
        super().__init__(cfg, model=model, store=store)

    def build_store(self) -> Any:
        if self.cfg.activation_cache is not None:
            return super().build_store()  # every rank reads the windows from disk
        from saescope.corpus import CorpusConfig  # noqa: PLC0415
        from saescope.distributed.data import shared_model_store  # noqa: PLC0415
        from saescope.models import load_model  # noqa: PLC0415

        cfg = self.cfg
        corpus = CorpusConfig(**cfg.corpus)
        corpus.validate()
        if self.model is None:
            self.model = load_model(cfg.model, device=cfg.device)
        self.model.check_hooks(cfg.hook_list)
        self.model.check_context_length(corpus.context_length)
        return shared_model_store(
            self.model, corpus, cfg.hook_list, cfg.model_batch_contexts, cfg.normalize_activations,
            cfg.batch_size, cfg.buffer_tokens, cfg.seed, cfg.device,
        )

    # ---- the hook points -----------------------------------------------------------------

    def local_batch(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] // world_size()
        return x[rank() * n : (rank() + 1) * n]

    def sync_gradients(self, sae: SAE) -> None:
        self.comm_bytes += average_gradients(sae.parameters())
        for name, buffer in sae.named_buffers():  # e.g. BatchTopK's running threshold: keep replicas equal
            if buffer.is_floating_point() and name != "input_scale":
                buffer.copy_(all_reduce(buffer, "mean"))

    def sync_counts(self, counts: torch.Tensor) -> torch.Tensor:
        return all_reduce(counts, "sum")

    def log(self, outputs: list[StepOutput], *args: Any) -> None:
        """Metrics of the whole batch: the slices' means averaged (equal slices), then logged by rank 0."""
        for out in outputs:
            stats = all_reduce(torch.stack([out.loss.detach(), out.mse, out.l0, out.aux_loss]).float(), "mean")
            out.loss, out.mse, out.l0, out.aux_loss = stats.unbind()
        super().log(outputs, *args)


def train_distributed(cfg: TrainConfig, model: Any = None, store: Any = None):
    """train(cfg) on every rank of the launched group; rank 0 writes the run directory."""
    return DistributedTrainer(cfg, model=model, store=store).run()
