"""Write tests/fixtures/saelens_legacy/ with sae-lens 0.5.1 itself (the jbloom-era API).

    PYTHONPATH=<unpacked sae_lens-0.5.1 wheel> python make_saelens_legacy_fixtures.py OUT_DIR

(sae-lens 0.5.1 imports fine beside the deps of a sae-lens 6 venv.) Writes save_model_legacy's
.pt (a pickled {"cfg": LanguageModelSAERunnerConfig, "state_dict": ...}) and save_model's folder
(pre-6.0 flat cfg.json + sae_weights.safetensors), each with reference.safetensors: x,
feature_acts and recon (= sae_out) from that SparseAutoencoder's own forward.
"""

import sys
from pathlib import Path

import sae_lens
import torch
from sae_lens.training.config import LanguageModelSAERunnerConfig
from sae_lens.training.sparse_autoencoder import SparseAutoencoder
from safetensors.torch import save_file


def main():
    out = Path(sys.argv[1])
    import wandb  # sae-lens 0.5.1's config asks wandb for a run id; newer wandb moved that helper

    if not hasattr(wandb.util, "generate_id"):
        wandb.util.generate_id = lambda: "fixture"
    cfg = LanguageModelSAERunnerConfig(
        model_name="gelu-2l",
        hook_point="blocks.1.hook_resid_pre",
        hook_point_layer=1,
        d_in=16,
        expansion_factor=4,
        dataset_path="NeelNanda/c4-tokenized-2b",
        context_size=128,
        device="cpu",
        log_to_wandb=False,
        dtype=torch.float32,
    )
    sae = SparseAutoencoder(cfg)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        sae.scaling_factor.copy_(torch.rand(sae.d_sae, generator=g) + 0.5)  # exercised by decode
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    with torch.no_grad():
        result = sae(x)
    reference = {
        "x": x,
        "feature_acts": result.feature_acts.contiguous(),
        "recon": result.sae_out.contiguous(),
    }
    note = (
        f"written by sae-lens {sae_lens.__version__ if hasattr(sae_lens, '__version__') else '0.5.1'} "
        "(SparseAutoencoder, the jbloom-era API); reference.safetensors: x, feature_acts and recon = sae_out "
        "from SparseAutoencoder.forward(x). Recipe: LanguageModelSAERunnerConfig(model_name='gelu-2l', "
        "hook_point='blocks.1.hook_resid_pre', hook_point_layer=1, d_in=16, expansion_factor=4), parameters "
        "seeded normal * 0.3, scaling_factor uniform in [0.5, 1.5]. Generator: "
        "tests/sae/peer_scripts/make_saelens_legacy_fixtures.py\n"
    )
    (out / "pt").mkdir(parents=True, exist_ok=True)
    sae.save_model_legacy(str(out / "pt" / "final_sparse_autoencoder.pt"))
    save_file(reference, str(out / "pt" / "reference.safetensors"))
    (out / "pt" / "SOURCE.txt").write_text("save_model_legacy (.pt); " + note)
    sae.save_model(str(out / "flat_cfg"))
    save_file(reference, str(out / "flat_cfg" / "reference.safetensors"))
    (out / "flat_cfg" / "SOURCE.txt").write_text("save_model (pre-6.0 flat cfg.json); " + note)


if __name__ == "__main__":
    main()
