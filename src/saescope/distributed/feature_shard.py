"""A TopK SAE whose features are split over the ranks: for dictionaries too wide for one device.

Rank r owns features [lo, hi): the columns W_enc[:, lo:hi], b_enc[lo:hi] and the rows
W_dec[lo:hi]; b_dec (d_in numbers) is replicated. Every rank sees the same tokens.

    forward(x [n, d_in]):
      local candidates   the k largest of rank r's pre-activations  (topk_encode, sparse backward)
      global TopK        all_gather of every rank's candidates [n, k] -> the k largest of
                         n x (world*k)
                         (the global top k are among the union of the local top k: exact)
      partial decode     the chosen latents rank r owns, through its W_dec rows     (sparse_decode)
      reconstruction     all_reduce(sum of the partials) + b_dec

Gradients are the unsharded SAE's: the reconstruction is replicated, so the all-reduce's backward
is the identity (each rank already holds d loss / d recon); b_dec reaches the encoder of every
rank's features, so that path's gradient is summed over the ranks in the backward (CopyToShards).
Adam is elementwise, so each rank stepping its own slice is the unsharded step.

Per step a rank sends n*k candidate values and ids (all_gather) and one [n, d_in] all-reduce;
no weight or gradient of size d_sae ever crosses the network.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from saescope.distributed.comm import all_gather, all_gather_uneven, all_reduce
from saescope.distributed.data import share
from saescope.distributed.group import active, rank, world_size
from saescope.errors import ConfigError
from saescope.sae import SAE, build_sae
from saescope.sae.architectures.topk import config_k
from saescope.sae.training.losses import LossSettings, StepOutput, squared_error
from saescope.sae.training.sparse_topk import sparse_decode, topk_encode


class ReduceFromShards(torch.autograd.Function):
    """Sum of every rank's partial [n, d]; backward: the identity (the sum is replicated)."""

    @staticmethod
    def forward(ctx, partial):
        return all_reduce(partial, "sum")

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad


class CopyToShards(torch.autograd.Function):
    """A replicated tensor fed to rank-local work: identity; backward sums the ranks' gradients."""

    @staticmethod
    def forward(ctx, tensor):
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return all_reduce(grad.contiguous(), "sum")


class FeatureShardedTopK(nn.Module):
    """This rank's slice of a TopK SAE (same parameter names and order as
    SAE: W_enc, b_enc, W_dec, b_dec)."""

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: int,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.d_in, self.d_sae_total, self.k = d_in, d_sae, k
        self.lo, self.hi = share(d_sae)
        if min(share(d_sae, r)[1] - share(d_sae, r)[0] for r in range(world_size())) < k:
            raise ConfigError(
                "architecture.k",
                k,
                f"at most d_sae / ranks ({d_sae // world_size()}) to shard features",
            )
        d_local = self.hi - self.lo
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_local, dtype=dtype, device=device))
        self.b_enc = nn.Parameter(torch.zeros(d_local, dtype=dtype, device=device))
        self.W_dec = nn.Parameter(torch.zeros(d_local, d_in, dtype=dtype, device=device))
        self.b_dec = nn.Parameter(torch.zeros(d_in, dtype=dtype, device=device))

    @property
    def d_sae(self) -> int:
        """Features held here (the trainer's per-latent bookkeeping is per rank)."""
        return self.hi - self.lo

    @classmethod
    def from_sae(cls, sae: SAE) -> FeatureShardedTopK:
        """This rank's slice of an unsharded TopK SAE."""
        if sae.cfg.architecture != "topk":
            raise ConfigError(
                "architecture", sae.cfg.architecture, "topk (the feature-sharded SAE is TopK)"
            )
        shard = cls(sae.d_in, sae.d_sae, config_k(sae.cfg), sae.dtype, sae.device)
        shard.load_full_state({n: p.detach() for n, p in sae.named_parameters()})
        return shard

    # ---- slicing and gathering whole tensors -----------------------------------------------

    def slice_full(self, name: str, full: torch.Tensor) -> torch.Tensor:
        """A whole-SAE tensor of parameter `name` -> this rank's part (b_dec: all of it)."""
        if name == "W_enc":
            return full[:, self.lo : self.hi]
        if name in ("b_enc", "W_dec"):
            return full[self.lo : self.hi]
        return full

    def gather_full(self, name: str, local: torch.Tensor) -> torch.Tensor:
        """This rank's part of a tensor shaped like parameter `name` ->
        the whole tensor, on every rank."""
        if name == "b_dec":
            return local.detach().clone()
        if name == "W_enc":
            return torch.cat(all_gather_uneven(local.detach().T.contiguous())).T.contiguous()
        return torch.cat(all_gather_uneven(local.detach().contiguous()))

    @torch.no_grad()
    def load_full_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, p in self.named_parameters():
            p.copy_(self.slice_full(name, state[name].to(p.device, p.dtype)))

    def full_state(self) -> dict[str, torch.Tensor]:
        return {name: self.gather_full(name, p) for name, p in self.named_parameters()}

    def to_sae(self, template: SAE) -> SAE:
        """The whole SAE (template's config), gathered on every rank."""
        sae = build_sae(template.cfg)
        sae.load_state_dict(
            {**sae.state_dict(), **{k: v.cpu() for k, v in self.full_state().items()}}
        )
        return sae

    # ---- the forward ---------------------------------------------------------------------

    def encode(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x [n, d_in] -> (local values [n, k] with grad, local ids [n, k], mine [n, k] bool: which
        of them made the global top k, global (values, ids) [n, k] of the global top k, detached).
        """
        b_dec = CopyToShards.apply(self.b_dec)
        values, local_ids = topk_encode(x, self.W_enc, self.b_enc, b_dec, self.k)  # [n, k]
        mine, top_values, top_ids = self.choose_globally(values.detach(), local_ids)
        return values, local_ids, mine, (top_values, top_ids)

    def choose_globally(self, values: torch.Tensor, local_ids: torch.Tensor):
        """Of every rank's candidates values [n, k] (ids local to each rank), the k largest per
        token: (mine [n, k] bool over this rank's candidates, their values [n, k], global ids
        [n, k])."""
        k, n = values.shape[1], values.shape[0]
        if not active():
            return torch.ones_like(values, dtype=torch.bool), values, local_ids + self.lo
        candidates = torch.cat(all_gather(values), dim=1)  # [n, world * k]
        ids = torch.cat(all_gather(local_ids + self.lo), dim=1)
        top_values, position = candidates.topk(k, dim=1, sorted=False)
        owner, slot = position // k, position % k
        mine = torch.zeros_like(values, dtype=torch.bool)
        token = torch.arange(n, device=values.device)[:, None].expand_as(slot)
        ours = owner == rank()
        mine[token[ours], slot[ours]] = True
        return mine, top_values, ids.gather(1, position)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, d_in] -> reconstruction [n, d_in], replicated on every rank."""
        values, local_ids, mine, _ = self.encode(x)
        return self.decode(values * mine, local_ids)

    def decode(self, values: torch.Tensor, local_ids: torch.Tensor) -> torch.Tensor:
        partial = sparse_decode(values, local_ids, self.W_dec)  # [n, d_in]: this rank's latents
        return ReduceFromShards.apply(partial) + self.b_dec

    # ---- what the trainer calls on an SAE --------------------------------------------------

    @torch.no_grad()
    def set_W_dec_unit_norm(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def sharded_topk_loss(shard: FeatureShardedTopK, x: torch.Tensor, s: LossSettings) -> StepOutput:
    """The TopK loss (sae.architectures.topk) on a feature-sharded SAE: the same loss, L0 and AuxK;
    fire counts of this rank's features. x [n, d_in] is the same on every rank."""
    values, local_ids, mine, (top_values, _) = shard.encode(x)
    chosen = values * mine
    recon = shard.decode(chosen, local_ids)
    mse = squared_error(recon, x)
    aux = sharded_auxk_loss(shard, x, (x - recon).detach(), s)
    fired = chosen.detach() > 0
    counts = torch.bincount(local_ids[fired], minlength=shard.d_sae)
    l0 = (top_values > 0).sum(dim=-1).float().mean()
    return StepOutput(mse + s.aux_k_coefficient * aux, mse.detach(), l0, counts, aux.detach())


def sharded_auxk_loss(
    shard: FeatureShardedTopK, x: torch.Tensor, residual: torch.Tensor, s: LossSettings
) -> torch.Tensor:
    """AuxK over the dead latents of every rank: local top-k_aux candidates (padded with -inf where
    a rank has fewer dead latents), the global k_aux chosen, the partial decodes summed."""
    dead = s.dead if s.dead is not None else torch.zeros(shard.d_sae, dtype=torch.bool)
    n_dead = int(all_reduce(dead.sum().reshape(1).cpu(), "sum"))
    if n_dead == 0:
        return x.new_zeros(())
    k_aux = min(s.aux_k, n_dead)
    dead_ids = dead.nonzero().squeeze(1).to(x.device)  # [n_dead_local]
    sae_in = (x - shard.b_dec).detach()
    pre = torch.addmm(shard.b_enc[dead_ids], sae_in, shard.W_enc[:, dead_ids])  # [n, n_dead_local]
    take = min(k_aux, len(dead_ids))
    local_values, local_slot = pre.topk(take, dim=-1, sorted=False)
    pad = k_aux - take  # all_gather needs the same shape on every rank
    padded = torch.cat(
        [local_values.detach(), local_values.new_full((len(x), pad), -torch.inf)], dim=1
    )
    slots = torch.cat([local_slot, local_slot.new_zeros((len(x), pad))], dim=1)
    ids = dead_ids[slots] if len(dead_ids) else slots
    mine, _, _ = shard.choose_globally(padded, ids)
    weights = torch.cat([F.relu(local_values), local_values.new_zeros((len(x), pad))], dim=1) * mine
    aux_recon = ReduceFromShards.apply(sparse_decode(weights, ids, shard.W_dec))  # [n, d_in]
    variance = (residual - residual.mean(dim=0)).pow(2).sum(dim=-1).mean()
    return squared_error(aux_recon, residual) / variance.clamp_min(1e-12)
