"""Regenerate saescope's registry of published SAEs from SAELens's `pretrained_saes.yaml`.

The yaml is data SAELens publishes (release -> repository, loader, model; sae id -> path,
L0, norm scaling factor, Neuronpedia id). This script maps each release's loader onto the
saescope reader that reads those files (or says why none does), fills in what the yaml only
implies (the model's Hugging Face id, the hook point, the width) and writes
src/saescope/sae/pretrained/registry.json.

    python scripts/make_pretrained_registry.py PATH/TO/pretrained_saes.yaml

Get the yaml from the sae-lens wheel (`pip download --no-deps sae-lens -d /tmp/w` and unzip
sae_lens/pretrained_saes.yaml) or from SAELens's repository (a .yaml.gz is read too), and
gzip it into tests/fixtures/saelens_registry/pretrained_saes.yaml.gz, which
tests/sae/test_pretrained.py compares the registry against.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "saescope"
    / "sae"
    / "pretrained"
    / "registry.json"
)

# SAELens's conversion_func -> (saescope format, None) or (None, why saescope cannot read it)
LOADER_FORMATS: dict[str, tuple[str | None, str | None]] = {
    "sae_lens": ("saelens", None),
    "gemma_2": ("gemma_scope", None),
    "llama_scope": ("lm_saes", None),
    "llama_scope_r1_distill": ("lm_saes", None),
    "dictionary_learning_1": ("dictionary_learning", None),
    "gemma_3": (
        None,
        "Gemma Scope 2 (params.safetensors with w_enc/w_dec, affine transcoders): "
        "the gemma_scope reader reads Gemma Scope 1's params.npz only",
    ),
    "gemma_2_transcoder": (
        None,
        "Gemma Scope transcoders: the gemma_scope reader reads SAEs, not the transcoders' "
        "MLP-input to MLP-output hook pair",
    ),
    "mwhanna_transcoder": (None, "per-layer transcoder .safetensors files (no reader yet)"),
    "mntss_clt_layer_transcoder": (None, "cross-layer transcoders (no reader yet)"),
    "goodfire": (None, "Goodfire's .pt state dict (no reader yet)"),
    "deepseek_r1": (None, "a bare .pt state dict without a config (no reader yet)"),
    "connor_rob_hook_z": (None, "hook_z attention SAEs saved as pickled .pt runs (no reader yet)"),
    "temporal": (None, "temporal SAEs (an attention-based architecture saescope does not have)"),
    "qwen_scope": (None, "Qwen Scope .sae.pt files (no reader yet)"),
}

# SAELens model names (TransformerLens's) -> Hugging Face ids; names with a "/" are ids already
HF_MODEL_IDS = {
    "gpt2-small": "openai-community/gpt2",
    "gemma-2b": "google/gemma-2b",
    "gemma-2b-it": "google/gemma-2b-it",
    "gemma-2-2b": "google/gemma-2-2b",
    "gemma-2-9b": "google/gemma-2-9b",
    "gemma-2-9b-it": "google/gemma-2-9b-it",
    "gemma-2-27b": "google/gemma-2-27b",
    "gemma-3-1b": "google/gemma-3-1b-pt",
    "pythia-70m-deduped": "EleutherAI/pythia-70m-deduped",
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "qwen3-0.6b": "Qwen/Qwen3-0.6B",
    "qwen3-1.7b": "Qwen/Qwen3-1.7B",
    "qwen3-4b": "Qwen/Qwen3-4B",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen3-14b": "Qwen/Qwen3-14B",
}

GEMMA_SCOPE_SITES = {
    "res": "blocks.{layer}.hook_resid_post",
    "mlp": "blocks.{layer}.hook_mlp_out",
    "att": "blocks.{layer}.attn.hook_z",
}
LLAMA_SCOPE_SITES = {
    "R": "blocks.{layer}.hook_resid_post",
    "A": "blocks.{layer}.hook_attn_out",
    "M": "blocks.{layer}.hook_mlp_out",
}
TL_HOOK = re.compile(
    r"blocks\.\d+\.(?:attn\.)?hook_[a-z_]+?(?=_\d|__|$)|blocks\.\d+\.(?:attn\.)?hook_[a-z_]+"
)
LAYER = re.compile(r"layer_(\d+)")
LLAMA_SCOPE_FOLDER = re.compile(r"L(\d+)([RAM])\b")
DL_SITE = re.compile(r"(resid_post|mlp_out|attn_out)_layer_(\d+)")
GEMMA_SCOPE_2_SITE = re.compile(r"\b(resid_post|attn_out|mlp_out)(?:_all)?/layer_(\d+)_")
END = r"(?![a-z0-9])"
WIDTH_PATTERNS = (
    re.compile(rf"width[_-](\d+)([km]){END}", re.IGNORECASE),
    re.compile(r"2pow(\d+)"),
    re.compile(rf"(?<![a-z0-9.])w(\d+)(k){END}", re.IGNORECASE),
    re.compile(rf"[-_](\d+)(k){END}"),
    re.compile(r"(?<!step)_(\d{3,7})(?:_|$)"),
)


def loader_name(release: dict[str, Any]) -> str:
    return release.get("conversion_func") or "sae_lens"


def hook_point(release_name: str, release: dict[str, Any], sae: dict[str, Any]) -> str | None:
    """The TransformerLens hook point the SAE reads, when the names say it."""
    sae_id, path = str(sae["id"]), str(sae["path"])
    for text in (sae_id, path):
        found = TL_HOOK.search(text)
        if found:
            return found.group(0)
    loader = loader_name(release)
    layer = LAYER.search(path) or LAYER.search(sae_id)
    if loader == "gemma_2" and layer:
        site = re.search(r"-(res|mlp|att)\b", release["repo_id"])
        if site:
            return GEMMA_SCOPE_SITES[site.group(1)].format(layer=layer.group(1))
    if loader.startswith("llama_scope"):
        folder = LLAMA_SCOPE_FOLDER.search(path)
        if folder:
            return LLAMA_SCOPE_SITES[folder.group(2)].format(layer=folder.group(1))
    site = GEMMA_SCOPE_2_SITE.search(path)
    if site:
        return f"blocks.{site.group(2)}.hook_{site.group(1)}"
    site = DL_SITE.search(path)
    if site:
        return f"blocks.{site.group(2)}.hook_{site.group(1)}"
    return None


def width_of(release: dict[str, Any], sae: dict[str, Any]) -> int | None:
    """The number of latents, when the id, path, Neuronpedia id or repository name says it."""
    # the Neuronpedia id before the path: paths name data sets too ("OpenR1-Math-220k")
    texts = [
        str(sae["id"]),
        str(sae.get("neuronpedia") or ""),
        str(sae["path"]),
        release["repo_id"],
    ]
    for pattern in WIDTH_PATTERNS:
        for text in texts:
            found = pattern.search(text)
            if not found:
                continue
            if pattern.pattern == r"2pow(\d+)":
                return 2 ** int(found.group(1))
            unit = found.group(2).lower() if found.lastindex and found.lastindex > 1 else ""
            return latents(int(found.group(1)), unit)
    return None


def latents(number: int, unit: str) -> int:
    """ "16k" is 16384 and "1m" 2**20: a rounded power of two when one is within 5%, else N * 1024."""
    if not unit:
        return number
    rounded = number * {"k": 1000, "m": 1000_000}[unit]
    power = 2 ** round(math.log2(rounded))
    return power if abs(power - rounded) <= 0.05 * power else number * {"k": 1024, "m": 2**20}[unit]


def sae_entry(release_name: str, release: dict[str, Any], sae: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": str(sae["id"])}
    if str(sae["path"]) != entry["id"]:
        entry["path"] = str(sae["path"])
    facts = {
        "hook": hook_point(release_name, release, sae),
        "width": width_of(release, sae),
        "l0": sae.get("l0"),
        "norm_scaling_factor": sae.get("norm_scaling_factor"),
        "neuronpedia": sae.get("neuronpedia"),
    }
    entry |= {key: value for key, value in facts.items() if value is not None}
    return entry


def release_entry(name: str, release: dict[str, Any]) -> dict[str, Any]:
    loader = loader_name(release)
    if loader not in LOADER_FORMATS:
        sys.exit(f"{name}: SAELens loader {loader!r} is new; add it to LOADER_FORMATS")
    fmt, why = LOADER_FORMATS[loader]
    model = str(release["model"])
    entry: dict[str, Any] = {
        "repo_id": release["repo_id"],
        "format": fmt,
        "loader": loader,
        "model": model if "/" in model else HF_MODEL_IDS.get(model, model),
        "model_name": model,
    }
    if why:
        entry["unsupported"] = why
    if release.get("config_overrides"):
        entry["config_overrides"] = release["config_overrides"]
    entry["saes"] = [sae_entry(name, release, sae) for sae in release["saes"]]
    return entry


def build(saelens_yaml: Path) -> dict[str, Any]:
    raw = saelens_yaml.read_bytes()
    data = yaml.safe_load(gzip.decompress(raw) if saelens_yaml.suffix == ".gz" else raw)
    return {
        "source": "SAELens pretrained_saes.yaml (scripts/make_pretrained_registry.py)",
        "releases": {name: release_entry(name, release) for name, release in data.items()},
    }


def write(registry: dict[str, Any], out: Path) -> None:
    """One SAE per line: small diffs when the yaml changes."""
    lines = ["{", f'"source": {json.dumps(registry["source"])},', '"releases": {']
    releases = list(registry["releases"].items())
    for i, (name, release) in enumerate(releases):
        head = {key: value for key, value in release.items() if key != "saes"}
        lines.append(f'{json.dumps(name)}: {json.dumps(head)[:-1]}, "saes": [')
        saes = release["saes"]
        lines += [
            json.dumps(sae) + ("," if j < len(saes) - 1 else "") for j, sae in enumerate(saes)
        ]
        lines.append("]}" + ("," if i < len(releases) - 1 else ""))
    lines += ["}", "}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    json.loads(out.read_text())  # the hand-built layout must stay valid JSON


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("yaml", type=Path, help="SAELens's sae_lens/pretrained_saes.yaml")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args()
    registry = build(args.yaml)
    write(registry, args.out)
    n_saes = sum(len(r["saes"]) for r in registry["releases"].values())
    readable = sum(1 for r in registry["releases"].values() if r["format"])
    print(
        f"wrote {args.out}: {len(registry['releases'])} releases ({readable} readable), {n_saes} SAEs"
    )


if __name__ == "__main__":
    main()
