"""SAEs on the Hugging Face hub: `hf:ORG/NAME[/PATH][@REVISION]` -> a local folder, via
huggingface_hub.

Only the files under PATH are fetched. HF_HUB_OFFLINE=1 (read at call time) uses the local
hub cache only; HF_HUB_CACHE / HF_HOME choose the cache, as everywhere in huggingface_hub.
"""

from __future__ import annotations

import os
from pathlib import Path

from saescope.errors import SaescopeError


def parse_hub_spec(spec: str) -> tuple[str, str, str | None]:
    """ "ORG/NAME/sub/path@rev" -> (repo_id, subpath, revision)."""
    revision = None
    if "@" in spec:
        spec, revision = spec.rsplit("@", 1)
    parts = [part for part in spec.strip("/").split("/") if part]
    if len(parts) < 2:
        raise SaescopeError(f"hf:{spec}: expected hf:ORG/NAME[/PATH][@REVISION]")
    if any(part in (".", "..") for part in parts) or "\\" in spec:
        # the path must stay inside the repository's snapshot in the cache
        raise SaescopeError(f"hf:{spec}: a path inside the repository, without '.' or '..'")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def hub_cache_dir() -> str | None:
    """The cache folder from the environment now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_sae_files(spec: str, label: str | None = None) -> Path:
    """Fetch (or find in the cache) the files of `spec` and return the local path of PATH.

    label: how errors name what was asked for (default hf:SPEC; a published SAE's name).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id, subpath, revision = parse_hub_spec(spec)
    label = f"{label} (hf:{spec})" if label else f"hf:{spec}"
    patterns = [subpath, f"{subpath}/*"] if subpath else None
    try:
        root = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=patterns,
            cache_dir=hub_cache_dir(),
            local_files_only=is_offline(),
        )
    except LocalEntryNotFoundError:
        raise SaescopeError(
            f"{label}: not in the local hub cache ({hub_cache_dir() or 'the default cache'}) and "
            f"{'HF_HUB_OFFLINE is set' if is_offline() else 'the hub cannot be reached'}"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise SaescopeError(
            f"{label}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    path = Path(root) / subpath if subpath else Path(root)
    if not path.exists() and is_offline():  # a cached snapshot of other files of the repository
        raise SaescopeError(
            f"{label}: the cached repository {repo_id} has no {subpath!r}: it is not in the local "
            f"hub cache ({hub_cache_dir() or 'the default cache'}) and HF_HUB_OFFLINE is set"
        )
    if not path.exists():
        raise SaescopeError(f"{label}: the repository {repo_id} has no {subpath!r}")
    return path
