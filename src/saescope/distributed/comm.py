"""Collectives on plain tensors: sums, maxima, gathers of uneven sizes, gradient averaging.

Each moves its tensor to the group's device (the GPU under NCCL, the CPU under gloo) and back,
so callers keep their tensors wherever they live; with no group every helper is the identity.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist

from saescope.distributed.group import active, comm_device, world_size


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce a tensor over the ranks (op: sum, max, min, mean); a new tensor on tensor's device."""
    if not active():
        return tensor.clone()
    buf = tensor.detach().to(comm_device()).clone()
    reduce_op = {
        "sum": dist.ReduceOp.SUM,
        "mean": dist.ReduceOp.SUM,
        "max": dist.ReduceOp.MAX,
        "min": dist.ReduceOp.MIN,
    }[op]
    dist.all_reduce(buf, op=reduce_op)
    if op == "mean":
        buf /= world_size()
    return buf.to(tensor.device)


def all_gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's tensor (same shape on all ranks), in rank order."""
    if not active():
        return [tensor]
    buf = tensor.detach().to(comm_device()).contiguous()
    out = [torch.empty_like(buf) for _ in range(world_size())]
    dist.all_gather(out, buf)
    return [t.to(tensor.device) for t in out]


def all_gather_uneven(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's tensor when only the first dimension may differ between ranks: padded to
    the longest for the collective (all_gather needs equal shapes), then cut back."""
    if not active():
        return [tensor]
    lengths = all_gather(torch.tensor([tensor.shape[0]], dtype=torch.int64))
    longest = int(max(int(n) for n in lengths))
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    return [t[: int(n)] for t, n in zip(all_gather(padded), lengths, strict=True)]


def average_gradients(params: Iterable[torch.nn.Parameter]) -> int:
    """Replace each gradient by its mean over the ranks, in one flat all-reduce; returns bytes sent.

    A parameter with no gradient on every rank stays without one (Adam then skips it, as in one
    process); one with a gradient on some rank only gets zeros elsewhere before the sum.
    """
    params = [p for p in params if p.requires_grad]
    if not active() or not params:
        return 0
    has = all_reduce(torch.tensor([p.grad is not None for p in params], dtype=torch.int32), "max")
    chosen = [p for p, h in zip(params, has.tolist(), strict=True) if h]
    grads: list[torch.Tensor] = []
    for p in chosen:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    if not chosen:
        return 0
    flat = torch.cat([g.reshape(-1) for g in grads]).to(comm_device())
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
    return flat.numel() * flat.element_size()
