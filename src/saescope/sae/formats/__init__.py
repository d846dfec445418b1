"""The registry of on-disk SAE formats: name -> a module with detect(path) and load(path, **kw).

Adding a format is one module in this package exposing

    def detect(path: Path) -> bool      # cheap: looks at file names / config keys only
    def load(path: Path, **kw) -> SAE   # an SAE with our interface (see saescope.sae.base)

plus one line in FORMAT_MODULES. Modules are imported on first use, so a reader that is
missing or broken only affects its own format. Detection tries formats in the order below
(most specific first) and takes the first that claims the path.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from saescope.errors import ConfigError, SaescopeError

FORMAT_MODULES: dict[str, str] = {
    "saelens": "saescope.sae.formats.saelens",  # also our native format
    "saelens_legacy": "saescope.sae.formats.saelens_legacy",  # jbloom-era .pt files
    "sparsify": "saescope.sae.formats.sparsify",
    "lm_saes": "saescope.sae.formats.lm_saes",
    "dictionary_learning": "saescope.sae.formats.dictionary_learning",
    "openai": "saescope.sae.formats.openai",
    "gemma_scope": "saescope.sae.formats.gemma_scope",
}


def format_module(name: str) -> ModuleType:
    """The reader module for a format name; a clear error for an unknown or unavailable one."""
    if name not in FORMAT_MODULES:
        raise ConfigError("format", name, f"one of {', '.join(FORMAT_MODULES)}")
    try:
        return importlib.import_module(FORMAT_MODULES[name])
    except ModuleNotFoundError as err:
        if err.name == FORMAT_MODULES[name]:
            raise SaescopeError(
                f"format {name!r} has no reader in this version of saescope"
            ) from None
        raise


def available_formats() -> list[str]:
    """Format names whose reader module exists."""
    names = []
    for name in FORMAT_MODULES:
        try:
            format_module(name)
        except SaescopeError:
            continue
        names.append(name)
    return names


def detect_format(path: Path) -> str:
    """The first format whose detect() claims path; an error listing what was tried otherwise."""
    for name in available_formats():
        if format_module(name).detect(path):
            return name
    listing = sorted(p.name for p in path.iterdir())[:20] if path.is_dir() else [path.name]
    raise SaescopeError(
        f"{path}: not a known SAE format (files: {', '.join(listing) or 'none'}); "
        f"tried {', '.join(available_formats())}; pass format= to name one"
    )
