"""Atomic file writes (a killed job never leaves a half-written artefact under the final name),
and paths built from file contents kept inside the folder they belong to."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from saescope.errors import SaescopeError


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp_path), fsync, then rename tmp_path to path (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)  # the rename itself survives a power cut only once synced
    finally:
        tmp.unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def confined(base: str | Path, relative: Any, what: str) -> Path:
    """base / relative, refused unless it is a relative path that stays inside base.

    For paths read from files (manifests, configs, stores): a crafted file must not make saescope
    read or write elsewhere. `what` names the value in the message."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise SaescopeError(f"{what} {relative!r} is not a file name")
    base = Path(base)
    candidate = Path(relative)
    inside = base.resolve()
    if candidate.is_absolute() or ".." in candidate.parts:
        raise SaescopeError(f"{what} {relative!r} must be a path inside {base.name}/, without '..'")
    if not (inside / candidate).resolve().is_relative_to(inside):  # through a symlink
        raise SaescopeError(f"{what} {relative!r} leads outside {base.name}/")
    return base / candidate


def path_component(text: str) -> str:
    """text as one safe file or folder name: no separators, no leading dots, never empty."""
    name = re.sub(r"[^\w.+-]+", "-", text).lstrip(".-")
    return name or "unnamed"


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n"))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_tensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(contiguous, str(tmp), metadata=metadata))
