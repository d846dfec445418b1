"""torch.distributed for saescope: data-parallel training, feature-sharded SAEs, token-sharded
analysis merged by collectives, and harvests whose ranks write disjoint shards of one cache.

Launch any stage with torchrun (`torchrun --nproc-per-node N -m saescope train ...`); with no
launcher every helper here behaves as rank 0 of 1.
"""

from saescope.distributed.group import (
    active,
    barrier,
    init_from_env,
    is_main,
    launched_by_torchrun,
    local_rank,
    rank,
    shutdown,
    world_size,
)

__all__ = [
    "active",
    "barrier",
    "init_from_env",
    "is_main",
    "launched_by_torchrun",
    "local_rank",
    "rank",
    "shutdown",
    "world_size",
]
