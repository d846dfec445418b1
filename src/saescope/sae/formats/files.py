"""Reading the files SAE formats are made of, with errors that name the file and the problem.

Every reader should go through these, so a truncated, corrupt or missing file never
surfaces as a bare traceback from json, safetensors, torch or numpy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from saescope.errors import SaescopeError


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise SaescopeError(f"{path}: file not found")
    return path


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from path; a clear error if missing, not JSON, or not an object."""
    require_file(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SaescopeError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise SaescopeError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_safetensors_file(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file on CPU; a clear error if truncated or corrupt."""
    require_file(path)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        size = path.stat().st_size
        raise SaescopeError(
            f"{path}: cannot read the safetensors file ({size} bytes; truncated or corrupt?): {err}"
        ) from None


def read_torch_file(path: Path, *, weights_only: bool = True) -> Any:
    """torch.load of a .pt/.pth file on CPU; a clear error if truncated or corrupt.

    weights_only=True refuses pickled classes; readers that must accept them pass a
    restricted pickle module instead (see saelens_legacy).
    """
    require_file(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=weights_only)
    except Exception as err:  # a weights-only load runs no code: whatever it raises means corrupt
        raise unreadable_torch_file(path, err) from None


def unreadable_torch_file(path: Path, err: Exception) -> SaescopeError:
    size = path.stat().st_size
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return SaescopeError(
        f"{path}: cannot read the torch file ({size} bytes; truncated or corrupt?): {first_line}"
    )
