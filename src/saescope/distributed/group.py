"""The process group: set up from torchrun's environment, and the few rank helpers the stages use.

torchrun (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)
starts one process per device; `init_from_env()` joins them into the default group, NCCL when
CUDA is there and gloo otherwise. Without those variables everything runs as one process and
every helper here answers as rank 0 of 1, so the stages need no second code path for one process.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

from saescope.errors import ConfigError

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_started_here = False  # shutdown() ends only a group that init_from_env() started


def launched_by_torchrun() -> bool:
    """True when the environment describes a group of more than one process."""
    return all(v in os.environ for v in LAUNCH_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Join the default process group if torchrun launched us; True if a group is up."""
    if dist.is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    backend = backend or os.environ.get("SAESCOPE_DIST_BACKEND") or default_backend()
    if backend not in ("gloo", "nccl", "mpi"):
        raise ConfigError("SAESCOPE_DIST_BACKEND", backend, "gloo, nccl or mpi")
    if torch.cuda.is_available() and local_rank() < torch.cuda.device_count():
        torch.cuda.set_device(local_rank())  # "cuda" now means this rank's GPU everywhere
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    global _started_here
    _started_here = True
    return True


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """The rank that writes files and prints: rank 0."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def local_device(device: str) -> str:
    """'cuda' -> this process's GPU (cuda:LOCAL_RANK) under torchrun; other devices as given."""
    if device == "cuda" and active():
        return f"cuda:{local_rank()}"
    return device


def comm_device() -> torch.device:
    """Where tensors must live for the group's collectives (NCCL: the GPU; gloo: the CPU)."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def shutdown() -> None:
    """End the group init_from_env() started (a group the caller set up is left to the caller)."""
    global _started_here
    if _started_here and dist.is_initialized():
        dist.destroy_process_group()
    _started_here = False
