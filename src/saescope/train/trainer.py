"""The training loop: one pass over an activation store feeding one or more SAEs.

`train(cfg)` builds the store (harvested cache or live model), the SAEs and their optimisers,
resumes from the run's checkpoint when there is one (refusing a changed config), trains,
checkpoints every `checkpoint_every_tokens`, and writes the SAE(s), metrics.jsonl and the
training-curves PNG into the run directory. It returns the run directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.fileio import write_json
from saescope.progress import progress_bar
from saescope.runs.metrics import plot_training_curves, truncate_metrics
from saescope.sae import SAE, SAEConfig, build_sae, save_sae
from saescope.sae.architectures import Hyperparameters, get_architecture
from saescope.sae.training.losses import LossSettings, StepOutput
from saescope.train.checkpoint import load_checkpoint, save_checkpoint
from saescope.train.config import TrainConfig, changed_fields, flat_fields, with_defaults
from saescope.train.init import data_centre, init_weights
from saescope.train.optimizer import SAEAdam
from saescope.train.resample import resample_dead
from saescope.train.schedules import lr_factor, warmup_factor

# the hyperparameters a LossSettings field exists for (k, l1_coefficient, ...)
LOSS_FIELDS = {f.name for f in dataclasses.fields(LossSettings)}

# Fields that may change between a run and its resume: they do not change what is computed.
# What a resumed run may change. run_dir is where the run lies now, not part of what it is: a
# moved or copied run directory resumes where it is given.
RESUMABLE_CHANGES = (
    "run_dir",
    "logging.progress",
    "logging.wandb",
    "logging.wandb_project",
    "logging.log_every_steps",
    "logging.checkpoint_every_tokens",
    "device",
)


@dataclass
class SAEState:
    """One SAE being trained, with its optimiser and dead-latent bookkeeping."""

    label: str
    hook: str
    sae: SAE
    optimizer: torch.optim.Optimizer
    settings: dict[str, Any]  # the grid entry: hook, expansion_factor, k / l1_coefficient, label
    tokens_since_fired: torch.Tensor  # int64 [d_sae]
    fire_counts: torch.Tensor  # int64 [d_sae]: tokens each latent fired on (feature density)
    hyper: Hyperparameters  # the architecture's hyperparameters for this SAE (grid values picked)
    counted_tokens: int = 0
    last: dict[str, float] = field(default_factory=dict)


def train(cfg: TrainConfig, model: Any = None, store: Any = None) -> Path:
    """Train the SAE(s) cfg describes; resume the run in cfg.run_dir if it has a checkpoint.

    model: an already loaded HookedModel (else cfg.model.name is loaded for live activations);
    store: an ActivationStore to use instead of building one from cfg.
    """
    return Trainer(cfg, model=model, store=store).run()


class Trainer:
    def __init__(self, cfg: TrainConfig, model: Any = None, store: Any = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.checkpoint = load_checkpoint(self.run_dir)
        if self.checkpoint is not None:
            check_same_config(self.checkpoint["config"], cfg, self.run_dir)
        self.model = model
        self.store = store if store is not None else self.build_store()
        self.widths = self.hook_widths()
        cfg.check_k_fits(min(self.widths.values()))
        self.architecture = get_architecture(cfg.architecture.name)
        self.hyper = cfg.architecture
        self.step = 0
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.saes = [self.build_sae_state(i, entry) for i, entry in enumerate(cfg.sae_grid())]
        self.wandb_run = None

    # ---- hook points: one process does nothing here; saescope.distributed overrides them ------

    is_writer = True  # writes checkpoints, metrics and the SAE (rank 0 only under torchrun)

    def local_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the batch [batch, d_in] this process computes the loss on."""
        return x

    def compute_loss(self, s: SAEState, x: torch.Tensor) -> StepOutput:
        return self.architecture.loss(s.sae, self.local_batch(x), self.loss_settings(s))

    def sync_gradients(self, sae: SAE) -> None:
        """Called between backward and the optimiser step."""

    def sync_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """Fire counts of this process's part of the batch -> those of the whole batch."""
        return counts

    def write_checkpoint(self) -> None:
        if self.is_writer:
            save_checkpoint(self.run_dir, self.state_dict())

    # ---- set-up ------------------------------------------------------------------------------

    def build_store(self) -> Any:
        from saescope.activations import ActivationStore  # imports the model stack

        cfg = self.cfg
        common: dict[str, Any] = dict(
            normalize=cfg.activations.normalize,
            batch_size=cfg.optim.batch_size,
            buffer_tokens=cfg.activations.buffer_tokens,
            seed=cfg.seed,
            device=cfg.device,
        )
        if cfg.activations.cache is not None:
            from saescope.activations import ActivationCache

            cache = ActivationCache(cfg.activations.cache)
            missing = [h for h in cfg.hook_list if h not in cache.hooks]
            if missing:
                raise SaescopeError(
                    f"model.hooks: {', '.join(missing)} not in the activation cache "
                    f"{cfg.activations.cache} (it holds {', '.join(cache.hooks)})"
                )
            return ActivationStore.from_cache(cfg.activations.cache, hooks=cfg.hook_list, **common)
        corpus = self.cfg.corpus
        corpus.validate()
        if self.model is None:
            from saescope.models import load_model

            self.model = load_model(cfg.model.name, device=cfg.device)
        self.model.check_hooks(cfg.hook_list)
        self.model.check_context_length(corpus.context_length)
        return ActivationStore.from_model(
            self.model, corpus, cfg.hook_list, batch_contexts=cfg.model.batch_contexts, **common
        )

    def hook_widths(self) -> dict[str, int]:
        if self.model is not None:
            self.model.check_hooks(self.cfg.hook_list)
            points = self.model.hook_points()
            return {h: points[h] for h in self.cfg.hook_list}
        source = getattr(self.store, "widths", None)
        if source:
            return {h: source[h] for h in self.cfg.hook_list}
        from saescope.activations import ActivationCache

        if self.cfg.activations.cache is None:  # a store given without widths, and no model
            raise SaescopeError("model.hooks: their widths are unknown (no model, no cache)")
        cache = ActivationCache(self.cfg.activations.cache)
        return {h: cache.hooks[h] for h in self.cfg.hook_list}

    def sae_config(self, entry: dict[str, Any]) -> SAEConfig:
        cfg, hook = self.cfg, entry["hook"]
        d_in = self.widths[hook]
        d_sae = d_in * entry["expansion_factor"]
        corpus = self.cfg.corpus
        return SAEConfig(
            architecture=cfg.architecture.name,
            d_in=d_in,
            d_sae=d_sae,
            **self.architecture.sae_config_fields(self.hyper.pick(entry), d_sae),
            model_name=cfg.model.name,
            hook_name=hook,
            hook_layer=hook_layer(hook),
            context_size=getattr(self.store, "context_length", None),
            dataset_path=corpus.source if cfg.activations.cache is None else cfg.activations.cache,
            prepend_bos=corpus.prepend_bos,
        )

    def build_sae_state(self, index: int, entry: dict[str, Any]) -> SAEState:
        """One grid entry's SAE, initialised from the seeded generator, placed for training."""
        cfg = self.cfg
        sae = build_sae(self.sae_config(entry))  # on the host: placed on the device below
        init_weights(
            sae, self.generator, cfg.sae.init_encoder_as_decoder_t, cfg.sae.decoder_init_norm
        )
        trained = self.place_for_training(entry, sae)
        zeros = torch.zeros(trained.d_sae, dtype=torch.long)
        return SAEState(
            entry["label"],
            entry["hook"],
            trained,
            self.new_optimizer(trained),
            entry,
            zeros.clone(),
            zeros.clone(),
            self.hyper.pick(entry),
        )

    def place_for_training(self, entry: dict[str, Any], sae: SAE) -> SAE:
        """What trains: the SAE on cfg.device (the feature-sharded trainer keeps a slice of it)."""
        sae = sae.to(self.cfg.device)
        if self.architecture.sparse_backward:
            store_latent_major(sae)
        return sae

    def new_optimizer(self, sae: SAE) -> torch.optim.Optimizer:
        cfg = self.cfg
        # fused Adam: one kernel over all parameters, ~5x faster than the per-tensor loop on CPU
        return SAEAdam(
            sae.parameters(),
            lr=cfg.optim.lr,
            betas=(cfg.optim.adam_beta1, cfg.optim.adam_beta2),
            fused=fused_adam_ok(cfg.device),
        )

    @torch.no_grad()
    def init_b_dec(self) -> None:
        """b_dec of every SAE at its hook's data centre, from the first b_dec_init_tokens tokens."""
        if self.cfg.sae.b_dec_init == "zeros":
            return
        position = self.store.state_dict()
        samples: dict[str, list[torch.Tensor]] = {h: [] for h in self.cfg.hook_list}
        n = 0
        for batch in self.store:
            for h in samples:
                samples[h].append(batch[h])
            n += next(iter(batch.values())).shape[0]
            if n >= self.cfg.sae.b_dec_init_tokens:
                break
        self.store.load_state_dict(position)  # training still starts at the first batch
        centres = {
            h: data_centre(torch.cat(s)[: self.cfg.sae.b_dec_init_tokens], self.cfg.sae.b_dec_init)
            for h, s in samples.items()
        }
        for state in self.saes:
            state.sae.b_dec.copy_(centres[state.hook])

    # ---- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "step": self.step,
            "store": self.store.state_dict(),
            "scaling_factors": dict(self.store.scaling_factors),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "saes": {
                s.label: {
                    "sae": s.sae.state_dict(),
                    "optimizer": s.optimizer.state_dict(),
                    "tokens_since_fired": s.tokens_since_fired,
                    "fire_counts": s.fire_counts,
                    "counted_tokens": s.counted_tokens,
                }
                for s in self.saes
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.store.load_state_dict(state["store"])
        self.store.scaling_factors = dict(state["scaling_factors"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        for s in self.saes:
            saved = state["saes"][s.label]
            s.sae.load_state_dict(saved["sae"])
            s.optimizer.load_state_dict(saved["optimizer"])
            s.tokens_since_fired = saved["tokens_since_fired"]
            s.fire_counts = saved["fire_counts"]
            s.counted_tokens = saved["counted_tokens"]

    # ---- the loop ----------------------------------------------------------------------------

    def run(self) -> Path:
        cfg = self.cfg
        total = cfg.total_steps
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.checkpoint is not None:
            self.load_state_dict(self.checkpoint)
            if self.is_writer:
                truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        else:
            self.init_b_dec()
            if self.is_writer:
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        if self.is_writer:  # a resumed run records where it lies now
            write_json(self.run_dir / "train_config.json", cfg.to_dict())
        self.checkpoint = None  # free its memory
        if self.step < total:
            self.train_steps(total)
        self.finish()
        return self.run_dir

    def train_steps(self, total: int) -> None:
        cfg = self.cfg
        every = max(1, cfg.logging.checkpoint_every_tokens // cfg.optim.batch_size)
        self.wandb_run = (
            start_wandb(cfg, self.run_dir) if cfg.logging.wandb and self.is_writer else None
        )
        bar = progress_bar(
            total=total * cfg.optim.batch_size,
            initial=self.step * cfg.optim.batch_size,
            unit="tok",
            unit_scale=True,
            disable=not cfg.logging.progress,
            desc="train",
            smoothing=0.1,
        )
        started, start_step = time.perf_counter(), self.step
        metrics_path = self.run_dir / "metrics.jsonl" if self.is_writer else os.devnull
        with open(metrics_path, "a") as metrics_file:
            for batch in self.store:
                outputs = [self.train_one(s, batch[s.hook]) for s in self.saes]
                self.step += 1
                bar.update(cfg.optim.batch_size)
                if self.step % cfg.logging.log_every_steps == 0 or self.step == total:
                    rate = (
                        (self.step - start_step)
                        * cfg.optim.batch_size
                        / (time.perf_counter() - started)
                    )
                    self.log(outputs, batch, rate, metrics_file, bar)
                if self.step % every == 0 or self.step == total:
                    self.write_checkpoint()
                if self.step >= total:
                    break
        bar.close()
        if self.step < total:
            raise SaescopeError(
                "optim.training_tokens: the activations ran out after "
                f"{self.step * cfg.optim.batch_size} tokens; harvest more or lower "
                f"optim.training_tokens (asked for {cfg.optim.training_tokens})"
            )

    def train_one(self, s: SAEState, x: torch.Tensor) -> StepOutput:
        cfg, sae = self.cfg, s.sae
        for group in s.optimizer.param_groups:
            group["lr"] = cfg.optim.lr * lr_factor(
                self.step,
                cfg.total_steps,
                cfg.schedule.lr_warmup_fraction,
                cfg.schedule.lr_decay_fraction,
            )
        out = self.compute_loss(s, x)
        s.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.sync_gradients(sae)
        if cfg.optim.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.optim.max_grad_norm)
        out.fire_counts = self.sync_counts(out.fire_counts)
        if cfg.sae.decoder_unit_norm:
            remove_parallel_grad(sae.W_dec)
        s.optimizer.step()
        if cfg.sae.decoder_unit_norm:
            sae.set_W_dec_unit_norm()
        self.track_firing(s, out, x.shape[0])
        if cfg.dead_features.resample_every_tokens and self.architecture.resamples_dead:
            every = max(1, cfg.dead_features.resample_every_tokens // cfg.optim.batch_size)
            if self.step % every == every - 1:
                if not isinstance(s.optimizer, SAEAdam):
                    raise SaescopeError("resampling dead latents needs SAEAdam (its Adam moments)")
                resample_dead(sae, s.optimizer, x, self.dead_mask(s), self.generator)
        return out

    def loss_settings(self, s: SAEState) -> LossSettings:
        cfg = self.cfg
        hyper = s.hyper.ramped(
            warmup_factor(self.step, cfg.total_steps, cfg.schedule.l1_warmup_fraction)
        )
        # built-in losses read LossSettings' own fields; a plug-in may read `hyper` for the rest
        named = {name: value for name, value in vars(hyper).items() if name in LOSS_FIELDS}
        return LossSettings(
            decoder_unit_norm=cfg.sae.decoder_unit_norm,
            aux_k=cfg.dead_features.aux_k or s.sae.d_in // 2,
            aux_k_coefficient=cfg.dead_features.aux_k_coefficient,
            dead=self.dead_mask(s),
            hyper=hyper,
            **named,
        )

    def dead_mask(self, s: SAEState) -> torch.Tensor:
        return s.tokens_since_fired >= self.cfg.dead_features.dead_after_tokens

    @staticmethod
    def track_firing(s: SAEState, out: StepOutput, n_tokens: int) -> None:
        counts = out.fire_counts.cpu()
        s.tokens_since_fired += n_tokens
        s.tokens_since_fired[counts > 0] = 0
        s.fire_counts += counts
        s.counted_tokens += n_tokens

    # ---- logging and the end -----------------------------------------------------------------

    def log(
        self,
        outputs: list[StepOutput],
        batch: dict[str, torch.Tensor],
        rate: float,
        metrics_file: Any,
        bar: Any,
    ) -> None:
        cfg = self.cfg
        tokens = self.step * cfg.optim.batch_size
        remaining = (cfg.total_steps - self.step) * cfg.optim.batch_size / max(rate, 1e-9)
        for s, out in zip(self.saes, outputs, strict=True):
            x = batch[s.hook]
            variance = (x - x.mean(dim=0)).pow(2).sum(dim=-1).mean()
            record = {
                "kind": "train",
                "sae": s.label,
                "step": self.step,
                "tokens": tokens,
                "loss": float(out.loss.detach()),
                "mse": float(out.mse),
                "fvu": float(out.mse / variance),
                "l0": float(out.l0),
                "aux_loss": float(out.aux_loss),
                "dead_fraction": float(self.dead_mask(s).float().mean()),
                "lr": s.optimizer.param_groups[0]["lr"],
                "tokens_per_s": rate,
                "eta_s": remaining,
            }
            s.last = record
            metrics_file.write(json.dumps(record) + "\n")
            if self.wandb_run is not None:
                self.wandb_run.log(
                    {f"{s.label}/{k}": v for k, v in record.items() if isinstance(v, float)},
                    step=tokens,
                )
        metrics_file.flush()
        first = self.saes[0].last
        bar.set_postfix(
            loss=f"{first['loss']:.3g}",
            fvu=f"{first['fvu']:.3f}",
            L0=f"{first['l0']:.1f}",
            dead=f"{first['dead_fraction']:.1%}",
        )

    def finish(self) -> None:
        """Write each SAE in the native format, the curves PNG and run.json."""
        if not self.is_writer:
            return

        outputs = {}
        for s in self.saes:
            folder = self.sae_dir(s)
            sae = export_sae(s.sae, self.store.scaling_factors.get(s.hook))
            save_sae(sae, folder, log_feature_sparsity=log_density(s.fire_counts, s.counted_tokens))
            outputs[s.label] = str(folder)
        plot_training_curves(self.run_dir / "metrics.jsonl", self.run_dir / "training_curves.png")
        write_run_json(self.run_dir, self.cfg, outputs, self.step)
        if self.wandb_run is not None:
            self.wandb_run.finish()

    def sae_dir(self, s: SAEState) -> Path:
        if len(self.saes) == 1:
            return self.run_dir / "sae"
        return self.run_dir / "saes" / s.label


def store_latent_major(sae: SAE) -> None:
    """Keep W_enc [d_in, d_sae] as the transpose of a contiguous [d_sae, d_in] tensor.

    The sparse backward computes W_enc's gradient one latent row at a time ([d_sae, d_in]);
    with the parameter in that layout autograd takes the gradient as it is, instead of
    copying 4 * d_in * d_sae bytes into a row-major [d_in, d_sae] every step. The forward
    matmul reads either layout at the same speed, and a saved SAE is contiguous again.
    """
    sae.W_enc = torch.nn.Parameter(sae.W_enc.detach().T.contiguous().T)


@torch.no_grad()
def remove_parallel_grad(W_dec: torch.Tensor) -> None:
    """Drop the part of each decoder row's gradient along the row, so
    Adam's step barely changes its norm.

    W_dec's rows are unit-norm here (renormalised after every step), so the projection needs no
    division: two passes over W_dec instead of five for a general projection.
    """
    if W_dec.grad is None:
        return
    along = torch.linalg.vecdot(W_dec.grad, W_dec)  # [d_sae]
    W_dec.grad.addcmul_(W_dec, along[:, None], value=-1.0)  # in place: no [d_sae, d_in] temporary


def export_sae(trained: SAE, scaling_factor: float | None) -> SAE:
    """A copy that takes raw activations: the store's constant scaling kept as input_scale."""
    sae = build_sae(
        trained.cfg.replace(
            normalize_activations="expected_average_only_in" if scaling_factor else "none"
        )
    )
    sae.load_state_dict(trained.state_dict())
    if scaling_factor:
        sae.input_scale.fill_(scaling_factor)
    return sae.cpu().eval()


def check_same_config(saved: dict[str, Any], cfg: TrainConfig, run_dir: Path) -> None:
    current = cfg.to_dict()
    changed = changed_fields(saved, current, ignore=RESUMABLE_CHANGES)
    if changed:
        before, after = flat_fields(with_defaults(saved)), flat_fields(current)
        details = "; ".join(
            f"{name}: {before.get(name)!r} -> {after.get(name)!r}" for name in changed
        )
        raise SaescopeError(
            f"{run_dir} holds a run trained with a different config ({details}). Resume it with "
            f"the same config (saescope train --resume {run_dir}), or give run_dir a new folder "
            "to start another run."
        )


def write_run_json(run_dir: Path, cfg: TrainConfig, outputs: dict[str, str], step: int) -> None:
    import saescope

    path = run_dir / "run.json"
    run = json.loads(path.read_text()) if path.exists() else {}
    run["train"] = {
        "config": cfg.to_dict(),
        "saes": outputs,
        "steps": step,
        "tokens": step * cfg.optim.batch_size,
        "versions": {"saescope": getattr(saescope, "__version__", "?"), "torch": torch.__version__},
    }
    write_json(path, run)


def start_wandb(cfg: TrainConfig, run_dir: Path) -> Any:
    try:
        import wandb
    except ImportError as err:
        raise SaescopeError("wandb: true needs the wandb package (pip install wandb)") from err
    return wandb.init(
        project=cfg.logging.wandb_project,
        name=run_dir.name,
        config=flat_fields(cfg.to_dict()),  # dotted names: W&B's table filters by them
        dir=str(run_dir),
        resume="allow",
    )


def fused_adam_ok(device: str) -> bool:
    return torch.device(device).type in ("cpu", "cuda")


def hook_layer(hook: str) -> int | None:
    """The block a hook point is in ('blocks.6.hook_resid_post' -> 6), None if it names none."""
    from saescope.models.hooked import parse_hook  # saescope.models imports the model stack

    parsed = parse_hook(hook)
    return parsed[0] if parsed else None


def log_density(fire_counts: torch.Tensor, tokens: int) -> torch.Tensor:
    """log10 of the fraction of training tokens each latent fired on (SAELens's
    sparsity.safetensors)."""
    return torch.log10((fire_counts.double() / max(1, tokens)).clamp_min(1e-10)).float()
