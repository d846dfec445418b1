"""The feature-sharded TopK SAE on 2 gloo processes equals the unsharded SAE: forward, gradients, Adam steps."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

D_IN, D_SAE, K, N = 48, 384, 8, 96


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def whole_sae():
    from saescope.sae import SAEConfig, build_sae

    sae = build_sae(SAEConfig(architecture="topk", d_in=D_IN, d_sae=D_SAE, k=K))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return sae


def batch(step: int) -> torch.Tensor:
    return torch.randn(N, D_IN, generator=torch.Generator().manual_seed(100 + step))


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    from saescope.distributed.feature_shard import FeatureShardedTopK

    sae = whole_sae()
    shard = FeatureShardedTopK.from_sae(sae)
    results = {"lo": shard.lo, "hi": shard.hi}
    # one forward and backward: the unsharded SAE's own (dense) encode/decode is the reference
    x = batch(0)
    recon = shard(x)
    (recon - x).pow(2).sum(-1).mean().backward()
    values, _, mine, (top_values, top_ids) = shard.encode(x)
    results.update(
        recon=recon.detach(),
        top_values=top_values,
        top_ids=top_ids,
        fired=int(((values > 0) & mine).sum()),
        grads={n: p.grad.clone() for n, p in shard.named_parameters()},
    )
    # Adam steps on the slices, gathered back into a whole SAE
    optimizer = torch.optim.Adam(shard.parameters(), lr=1e-2)
    for step in range(1, 4):
        optimizer.zero_grad()
        x = batch(step)
        (shard(x) - x).pow(2).sum(-1).mean().backward()
        optimizer.step()
    results["trained"] = shard.full_state()
    torch.save(results, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_feature_sharded_topk_equals_the_unsharded_sae(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    sae = whole_sae()
    x = batch(0)
    acts = sae.encode(x)  # [N, D_SAE] dense TopK
    recon = sae.decode(acts)
    (recon - x).pow(2).sum(-1).mean().backward()
    assert ranks[0]["hi"] == ranks[1]["lo"] and ranks[1]["hi"] == D_SAE  # two disjoint halves
    for r in ranks:
        torch.testing.assert_close(r["recon"], recon.detach(), rtol=1e-5, atol=1e-5)
        # the same k latents per token, with the same values
        chosen = torch.zeros_like(acts).scatter_(1, r["top_ids"], r["top_values"])
        torch.testing.assert_close(chosen, acts.detach())
        lo, hi = r["lo"], r["hi"]
        expected = {
            "W_enc": sae.W_enc.grad[:, lo:hi],
            "b_enc": sae.b_enc.grad[lo:hi],
            "W_dec": sae.W_dec.grad[lo:hi],
            "b_dec": sae.b_dec.grad,
        }
        for name, grad in expected.items():
            torch.testing.assert_close(r["grads"][name], grad, rtol=1e-4, atol=1e-5, msg=name)
    assert ranks[0]["fired"] + ranks[1]["fired"] == int((acts > 0).sum())
    assert ranks[0]["fired"] > 0 and ranks[1]["fired"] > 0  # both halves take part
    # three Adam steps: the gathered SAE is the unsharded SAE after the same steps
    sae = whole_sae()
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for step in range(1, 4):
        optimizer.zero_grad()
        x = batch(step)
        (sae.decode(sae.encode(x)) - x).pow(2).sum(-1).mean().backward()
        optimizer.step()
    for name, p in sae.named_parameters():
        for r in ranks:
            torch.testing.assert_close(
                r["trained"][name], p.detach(), rtol=1e-4, atol=1e-5, msg=name
            )
