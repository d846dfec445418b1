"""Write tests/fixtures/sparsify/<case>/ with EleutherAI sparsify itself (run in a venv with eai-sparsify==1.3.3).

    python make_sparsify_fixtures.py OUT_DIR

Each case: files from SparseCoder.save_to_disk and reference.safetensors with x, top_acts /
top_indices = encode(x), recon = decode(top_acts, top_indices), out = the SparseCoder's forward
output (skip connection included), all computed by sparsify. Not part of the test suite.
"""

import sys
from pathlib import Path

import sparsify
import torch
from safetensors.torch import save_file
from sparsify import SparseCoder, SparseCoderConfig

D_IN, N = 16, 32


def randomize(sae, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return sae


def reference(sae, x, folder, note):
    with torch.no_grad():
        top_acts, top_indices, _ = sae.encode(x)
        recon = sae.decode(top_acts, top_indices)
        out = sae(x).sae_out
    save_file(
        {
            "x": x,
            "top_acts": top_acts.contiguous(),
            "top_indices": top_indices.contiguous(),
            "recon": recon.contiguous(),
            "out": out.contiguous(),
        },
        str(folder / "reference.safetensors"),
    )
    (folder / "SOURCE.txt").write_text(
        f"saved by eai-sparsify {getattr(sparsify, '__version__', '1.3.3')} ({note}); reference.safetensors: x, "
        "top_acts/top_indices=encode(x), recon=decode(top_acts, top_indices), out=forward(x).sae_out "
        "(skip connection included), computed by that SparseCoder.\n"
        "Recipe: SparseCoder(d_in=16, SparseCoderConfig(...)) with the cfg.json values, parameters filled "
        "with seeded normal noise * 0.3, saved with save_to_disk.\n"
        "Generator: tests/sae/peer_scripts/make_sparsify_fixtures.py\n"
    )


def main():
    out = Path(sys.argv[1])
    x = torch.randn(N, D_IN, generator=torch.Generator().manual_seed(0)) * 2 + 0.5

    # a folder of layers, as sparsify's trainer writes one per hook point
    root = out / "layers"
    for seed, hookpoint in enumerate(["layers.2", "layers.10"]):
        sae = randomize(SparseCoder(D_IN, SparseCoderConfig(k=4, num_latents=48)), 10 + seed)
        sae.save_to_disk(root / hookpoint)
        reference(
            sae,
            x,
            root / hookpoint,
            f"SparseCoder.save_to_disk into a folder of layers, {hookpoint}",
        )

    # a transcoder with a skip connection
    folder = out / "transcoder_skip"
    sae = randomize(
        SparseCoder(
            D_IN, SparseCoderConfig(k=6, expansion_factor=4, transcode=True, skip_connection=True)
        ),
        20,
    )
    sae.save_to_disk(folder)
    reference(sae, x, folder, "SparseCoder.save_to_disk, transcode=True, skip_connection=True")


if __name__ == "__main__":
    main()
