"""SAEs we save load in SAELens itself (SAE.load_from_disk) and give the same outputs.

Slow: needs a venv with sae-lens 6.54.12, built here if missing (set SAESCOPE_SAELENS_VENV to
reuse one). SAELens runs in a subprocess; the test suite itself never imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from saescope.sae import save_sae
from tests.sae.sae_testing import assert_close, random_sae

SAELENS_VERSION = "6.54.12"
TORCH_VERSION = "2.13.0"

CASES = {
    "standard": dict(architecture="standard"),
    "standard_layer_norm": dict(architecture="standard", normalize_activations="layer_norm"),
    "standard_norm_rescale_no_b_dec": dict(
        architecture="standard",
        normalize_activations="constant_norm_rescale",
        apply_b_dec_to_input=False,
    ),
    "standard_constant_scale_folded": dict(
        architecture="standard", normalize_activations="constant_scale"
    ),
    "topk": dict(architecture="topk", k=6),
    "topk_rescaled": dict(architecture="topk", k=6, rescale_acts_by_decoder_norm=True),
    "jumprelu": dict(architecture="jumprelu"),
    "gated": dict(architecture="gated"),
    "batchtopk": dict(architecture="batchtopk", k=6),
    "matryoshka_batchtopk": dict(architecture="matryoshka_batchtopk", k=6),
    "transcoder": dict(
        architecture="standard",
        d_out=24,
        apply_b_dec_to_input=False,
        hook_name_out="blocks.0.hook_mlp_out",
    ),
    "skip_transcoder": dict(
        architecture="standard", d_out=24, apply_b_dec_to_input=False, skip_connection=True
    ),
    "jumprelu_skip_transcoder": dict(
        architecture="jumprelu", d_out=24, apply_b_dec_to_input=False, skip_connection=True
    ),
}

RUN_SAELENS = """
import sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from sae_lens import SAE
root = Path(sys.argv[1])
x = load_file(str(root / "x.safetensors"))["x"]
for folder in sorted(p for p in root.iterdir() if p.is_dir()):
    sae = SAE.load_from_disk(str(folder))
    with torch.no_grad():
        acts = sae.encode(x)
        recon = sae.decode(acts)
        out = sae(x)
    save_file({"feature_acts": acts.contiguous(), "recon": recon.contiguous(), "out": out.contiguous()},
              str(folder / "saelens_outputs.safetensors"))
    print(folder.name, type(sae).__name__)
"""


def saelens_python() -> Path:
    """The python of a venv with sae-lens (built on first use: a few minutes)."""
    venv = Path(
        os.environ.get("SAESCOPE_SAELENS_VENV")
        or Path(tempfile.gettempdir()) / "saescope-peers" / "saelens"
    )
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import sae_lens"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, f"torch=={TORCH_VERSION}"], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(f"torch=={TORCH_VERSION}\n")
    subprocess.run([*pip, "-c", str(constraints), f"sae-lens=={SAELENS_VERSION}"], check=True)
    return python


@pytest.mark.slow
def test_saelens_loads_our_saes(tmp_path):
    python = saelens_python()
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(5)) * 2 + 0.5
    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    ours = {}
    for seed, (name, kwargs) in enumerate(CASES.items()):
        sae = random_sae(seed=seed, **kwargs)
        if kwargs.get("normalize_activations") == "constant_scale":
            sae.input_scale.fill_(0.3)
        save_sae(sae, tmp_path / name)
        with torch.no_grad():
            ours[name] = (sae.encode(x), sae.decode(sae.encode(x)), sae(x))
    result = subprocess.run(
        [str(python), "-c", RUN_SAELENS, str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (acts, recon, out) in ours.items():
        theirs = load_file(str(tmp_path / name / "saelens_outputs.safetensors"))
        assert_close(theirs["feature_acts"], acts, f"{name}: encode")
        assert_close(theirs["recon"], recon, f"{name}: decode")
        assert_close(theirs["out"], out, f"{name}: forward")
