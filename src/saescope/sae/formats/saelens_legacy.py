"""SAELens's oldest files (jbloom's mats_sae_training, sae-lens < 1): one .pt holding a pickled dict

{"cfg": LanguageModelSAERunnerConfig(...), "state_dict": {W_enc, b_enc, W_dec, b_dec[,
scaling_factor]}}

The config is a pickled dataclass from a package we do not import. We read it with torch's
weights-only unpickler, letting through only stand-in classes named after the globals the file
asks for: they record the pickled fields and run no code. The SAE itself is a standard ReLU SAE
(x - b_dec if apply_b_dec_to_input, decode with acts * scaling_factor).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from saescope.errors import SaescopeError
from saescope.sae.base import SAE
from saescope.sae.formats import saelens
from saescope.sae.formats.files import require_file, unreadable_torch_file
from saescope.sae.registry import sae_from_tensors

# (sae-lens 0.x could also write .pkl.gz with plain pickle; those are not read here)
SUFFIXES = (".pt", ".pth")
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class PickledConfig:
    """Stand-in for a pickled config class: keeps its fields as attributes, runs no code."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


def stand_in(qualified_name: str) -> type:
    module, _, name = qualified_name.rpartition(".")
    cls = type(name, (PickledConfig,), {"__module__": module, "__qualname__": name})
    return cls


def detect(path: Path) -> bool:
    """A .pt file whose pickle names both "cfg" and "state_dict" and the SAE tensor names."""
    if not path.is_file() or not path.name.endswith(SUFFIXES):
        return False
    pickle_bytes = read_pickle_bytes(path)
    return all(marker in pickle_bytes for marker in (b"cfg", b"state_dict", b"W_enc", b"W_dec"))


def read_pickle_bytes(path: Path) -> bytes:
    """The pickle stream of a torch zip file (no tensor data), or the
    first MiB of an older torch file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                return archive.read(name) if name else b""
        with open(path, "rb") as f:
            return f.read(1 << 20)
    except (OSError, zipfile.BadZipFile, EOFError, KeyError):
        return b""


def load_pickle(path: Path) -> Any:
    """torch.load with stand-ins for the file's unknown classes (weights-only: no code runs)."""
    require_file(path)
    allowed: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = []
    for _ in range(32):  # one retry per distinct unknown class
        try:
            with torch.serialization.safe_globals(allowed):
                return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            match = UNSUPPORTED_GLOBAL.search(str(err))
            if match is None:
                raise SaescopeError(
                    f"{path}: cannot read the pickled SAE: {str(err).strip().splitlines()[0]}"
                ) from None
            allowed.append(stand_in(match.group(1)))
        except Exception as err:  # weights-only: no code ran, so any error means a corrupt file
            raise unreadable_torch_file(path, err) from None
    raise SaescopeError(f"{path}: the pickle needs too many unknown classes to be an SAE file")


def load(path: Path, **_: Any) -> SAE:
    data = load_pickle(path)
    if not isinstance(data, dict) or "cfg" not in data or "state_dict" not in data:
        raise SaescopeError(
            f"{path}: expected a pickled dict with 'cfg' and 'state_dict' (a jbloom-era SAELens "
            "file)"
        )
    cfg_obj = data["cfg"]
    raw = dict(cfg_obj) if isinstance(cfg_obj, dict) else dict(vars(cfg_obj))
    raw = {key: json_safe(value) for key, value in raw.items()}
    raw.setdefault("architecture", "standard")
    cfg = saelens.config_from_saelens(raw, path)
    tensors = {
        name: t for name, t in dict(data["state_dict"]).items() if isinstance(t, torch.Tensor)
    }
    tensors = saelens.tensors_from_saelens(tensors, cfg, path)
    return sae_from_tensors(cfg.replace(source_format="saelens_legacy"), tensors, path)


def json_safe(value: Any) -> Any:
    """Config values as JSON would hold them (dtypes and devices as
    strings), so cfg.json can keep them."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)
