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
from saescope.distributed.data import shared_model_store
from saescope.distributed.feature_shard import FeatureShardedTopK, sharded_topk_loss
from saescope.distributed.group import is_main, rank, world_size
from saescope.errors import ConfigError, SaescopeError
from saescope.models import load_model
from saescope.sae import SAE, build_sae
from saescope.sae.architectures import architecture_names, get_architecture
from saescope.sae.training.losses import StepOutput
from saescope.train.checkpoint import save_checkpoint
from saescope.train.config import TrainConfig
from saescope.train.trainer import SAEState, Trainer, fused_adam_ok


class DistributedTrainer(Trainer):
    """Data parallel: each rank computes the loss on its slice of every global batch."""

    splits_batch = True

    def __init__(self, cfg: TrainConfig, model: Any = None, store: Any = None) -> None:
        if self.splits_batch and cfg.optim.batch_size % world_size():
            raise ConfigError(
                "optim.batch_size",
                cfg.optim.batch_size,
                f"a multiple of the number of ranks ({world_size()})",
            )
        # device "cuda" is already this rank's GPU: init_from_env set it (the config keeps plain
        # "cuda", so a resume on another number of ranks or nodes maps it again)
        if not is_main():
            cfg = cfg.replace(logging=cfg.logging.replace(progress=False, wandb=False))
        self.is_writer = is_main()
        self.comm_bytes = 0  # bytes this rank put into gradient all-reduces (bench/scale.py)
        super().__init__(cfg, model=model, store=store)

    def build_store(self) -> Any:
        if self.cfg.activations.cache is not None:
            return super().build_store()  # every rank reads the windows from disk
        cfg = self.cfg
        corpus = cfg.corpus
        corpus.validate()
        if self.model is None:
            self.model = load_model(cfg.model.name, device=cfg.device)
        self.model.check_hooks(cfg.hook_list)
        self.model.check_context_length(corpus.context_length)
        return shared_model_store(
            self.model,
            corpus,
            cfg.hook_list,
            cfg.model.batch_contexts,
            cfg.activations.normalize,
            cfg.optim.batch_size,
            cfg.activations.buffer_tokens,
            cfg.seed,
            cfg.device,
        )

    # ---- the hook points -----------------------------------------------------------------

    def local_batch(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] // world_size()
        return x[rank() * n : (rank() + 1) * n]

    def sync_gradients(self, sae: SAE) -> None:
        self.comm_bytes += average_gradients(sae.parameters())
        for (
            name,
            buffer,
        ) in sae.named_buffers():  # e.g. BatchTopK's running threshold: keep replicas equal
            if buffer.is_floating_point() and name != "input_scale":
                buffer.copy_(all_reduce(buffer, "mean"))

    def sync_counts(self, counts: torch.Tensor) -> torch.Tensor:
        return all_reduce(counts, "sum")

    def log(
        self,
        outputs: list[StepOutput],
        batch: dict[str, torch.Tensor],
        rate: float,
        metrics_file: Any,
        bar: Any,
    ) -> None:
        """Metrics of the whole batch: the slices' means averaged (equal
        slices), then logged by rank 0."""
        for out in outputs:
            stats = all_reduce(
                torch.stack([out.loss.detach(), out.mse, out.l0, out.aux_loss]).float(), "mean"
            )
            out.loss, out.mse, out.l0, out.aux_loss = stats.unbind()
        super().log(outputs, batch, rate, metrics_file, bar)


def sharded(s: SAEState) -> FeatureShardedTopK:
    """The feature-sharded SAE a FeatureShardedTrainer trains in place of s.sae's SAE."""
    if not isinstance(s.sae, FeatureShardedTopK):
        raise SaescopeError(
            f"{s.label}: expected a feature-sharded SAE, got {type(s.sae).__name__}"
        )
    return s.sae


def train_distributed(
    cfg: TrainConfig, model: Any = None, store: Any = None, shard_features: bool = False
):
    """train(cfg) on every rank of the launched group; rank 0 writes the run directory.

    shard_features: split each TopK SAE's features over the ranks instead of the batch."""
    cls = FeatureShardedTrainer if shard_features else DistributedTrainer
    return cls(cfg, model=model, store=store).run()


class FeatureShardedTrainer(DistributedTrainer):
    """Every rank trains its slice of each TopK SAE's features on the whole batch (see
    feature_shard.py).

    Initialisation draws the whole SAE from the seeded generator, as one process does, and keeps
    this rank's slice. Checkpoints and the saved SAE hold the whole tensors (gathered), so a run
    resumes sharded or not, on any number of ranks.
    """

    splits_batch = False

    def __init__(self, cfg: TrainConfig, model: Any = None, store: Any = None) -> None:
        shardable = [n for n in architecture_names() if get_architecture(n).feature_shardable]
        if cfg.architecture.name not in shardable:
            raise ConfigError(
                "architecture.name",
                cfg.architecture.name,
                f"{' or '.join(shardable)} (feature sharding shards a TopK SAE)",
            )
        if (
            cfg.optim.max_grad_norm
        ):  # each rank holds a slice of the gradients: a local norm is wrong
            raise ConfigError(
                "optim.max_grad_norm",
                cfg.optim.max_grad_norm,
                "0 with --shard-features (not supported yet)",
            )
        self.templates: dict[str, SAE] = {}
        super().__init__(cfg, model=model, store=store)

    def place_for_training(self, entry: dict[str, Any], sae: SAE) -> Any:
        """This rank's slice of the whole SAE (initialised on the host, as one process does)."""
        self.templates[entry["label"]] = build_sae(sae.cfg)
        return FeatureShardedTopK.from_sae(sae).to(self.cfg.device)

    def new_optimizer(self, sae: Any) -> torch.optim.Optimizer:
        cfg = self.cfg
        return torch.optim.Adam(
            sae.parameters(),
            lr=cfg.optim.lr,
            betas=(cfg.optim.adam_beta1, cfg.optim.adam_beta2),
            fused=fused_adam_ok(cfg.device),
        )

    # every rank computes on the whole batch; the collectives are inside the loss
    def local_batch(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def compute_loss(self, s: Any, x: torch.Tensor) -> StepOutput:
        return sharded_topk_loss(s.sae, x, self.loss_settings(s))

    def sync_gradients(self, sae: Any) -> None:
        # exact already: each rank owns its features' gradients, b_dec's was summed in the backward
        pass

    def sync_counts(self, counts: torch.Tensor) -> torch.Tensor:
        return counts  # per feature: each rank counts its own

    # ---- whole tensors in checkpoints ------------------------------------------------------

    PER_FEATURE = {"tokens_since_fired": "b_enc", "fire_counts": "b_enc"}  # sliced like b_enc

    def write_checkpoint(self) -> None:
        state = self.state_dict()  # every rank: the gathers are collectives
        if self.is_writer:
            save_checkpoint(self.run_dir, state)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for s in self.saes:
            saved = state["saes"][s.label]
            saved["sae"] = {**self.templates[s.label].state_dict(), **sharded(s).full_state()}
            saved["optimizer"] = self.whole_optimizer_state(s)
            for key, like in self.PER_FEATURE.items():
                saved[key] = sharded(s).gather_full(like, saved[key])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for s in self.saes:
            saved = state["saes"][s.label]
            saved["sae"] = {
                n: sharded(s).slice_full(n, saved["sae"][n]) for n, _ in s.sae.named_parameters()
            }
            saved["optimizer"] = self.sliced_optimizer_state(s, saved["optimizer"])
            for key, like in self.PER_FEATURE.items():
                saved[key] = sharded(s).slice_full(like, saved[key]).clone()
        super().load_state_dict(state)

    def whole_optimizer_state(self, s: Any) -> dict[str, Any]:
        local = s.optimizer.state_dict()
        names = [n for n, _ in s.sae.named_parameters()]
        for index, per_param in local["state"].items():
            for key, value in per_param.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    per_param[key] = s.sae.gather_full(names[index], value)
        return local

    def sliced_optimizer_state(self, s: Any, whole: dict[str, Any]) -> dict[str, Any]:
        names = [n for n, _ in s.sae.named_parameters()]
        for index, per_param in whole["state"].items():
            for key, value in per_param.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    per_param[key] = s.sae.slice_full(names[index], value).clone()
        return whole

    def finish(self) -> None:
        """The whole SAEs, gathered on every rank, written by rank 0."""
        for s in self.saes:
            s.fire_counts = sharded(s).gather_full("b_enc", s.fire_counts)
            s.sae = sharded(s).to_sae(self.templates[s.label])
        super().finish()
