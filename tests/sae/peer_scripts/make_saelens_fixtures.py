"""Write tests/fixtures/saelens/<case>/ with sae-lens itself (run in a venv with sae-lens==6.54.12).

    python make_saelens_fixtures.py OUT_DIR

Each case: the library's own files (save_model / save_inference_model) and reference.safetensors
with x, feature_acts = encode(x), recon = decode(feature_acts), out = forward(x), all computed by
SAELens. Not part of the test suite (CI has no sae-lens); the tests read the files it wrote.
"""

import json
import sys
from pathlib import Path

import sae_lens
import torch
from sae_lens.saes import (
    BatchTopKTrainingSAE,
    BatchTopKTrainingSAEConfig,
    JumpReLUSkipTranscoder,
    JumpReLUSkipTranscoderConfig,
    MatryoshkaBatchTopKTrainingSAE,
    MatryoshkaBatchTopKTrainingSAEConfig,
    SkipTranscoder,
    SkipTranscoderConfig,
    StandardSAE,
    StandardSAEConfig,
    TopKSAE,
    TopKSAEConfig,
    Transcoder,
    TranscoderConfig,
)
from safetensors.torch import save_file

D_IN, D_SAE, D_OUT, N = 16, 64, 24, 32
META = {
    "model_name": "smollm2-135m",
    "hook_name": "blocks.3.hook_resid_post",
    "context_size": 128,
    "dataset_path": "builtin:tiny",
    "prepend_bos": True,
}


def randomize(sae, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            scale = 0.3 if name in ("W_enc", "W_dec", "W_skip") else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * scale)
            if name == "threshold":
                p.copy_(torch.rand(p.shape, generator=g) * 0.2)
            if name == "W_dec":  # decoder rows of varied norms, so norm handling matters
                p.mul_(torch.rand(p.shape[0], 1, generator=g) + 0.5)
    return sae


def write(out, case, sae, save, x, note):
    folder = out / case
    save(folder)
    sae.eval()
    with torch.no_grad():
        acts = sae.encode(x)
        recon = sae.decode(acts)
        full = sae(x)
    save_file(
        {
            "x": x,
            "feature_acts": acts.contiguous(),
            "recon": recon.contiguous(),
            "out": full.contiguous(),
        },
        str(folder / "reference.safetensors"),
    )
    (folder / "SOURCE.txt").write_text(
        f"saved by sae-lens {sae_lens.__version__} ({note}); reference.safetensors: x, feature_acts=encode(x), "
        "recon=decode(feature_acts), out=forward(x), computed by that SAELens object.\n"
        "Recipe: build the SAE class with the config in cfg.json, fill parameters with seeded normal noise "
        "(thresholds uniform in [0, 0.2], W_dec rows scaled by 0.5-1.5), save with the method named above.\n"
        "Generator: tests/sae/peer_scripts/make_saelens_fixtures.py\n"
    )
    print(case, "ok", json.loads((folder / "cfg.json").read_text())["architecture"])


def main():
    out = Path(sys.argv[1])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D_IN, generator=g) * 2 + 0.5
    base = dict(d_in=D_IN, d_sae=D_SAE)

    for case, kw in [
        ("standard_constant_norm_rescale", dict(normalize_activations="constant_norm_rescale")),
        ("standard_layer_norm", dict(normalize_activations="layer_norm")),
        ("standard_no_b_dec_input", dict(apply_b_dec_to_input=False)),
        ("standard_expected_average", dict(normalize_activations="expected_average_only_in")),
    ]:
        sae = randomize(StandardSAE(StandardSAEConfig(**base, **kw)), 1)
        for key, value in META.items():
            setattr(sae.cfg.metadata, key, value)
        write(out, case, sae, sae.save_model, x, "StandardSAE.save_model")

    sae = randomize(TopKSAE(TopKSAEConfig(**base, k=6, rescale_acts_by_decoder_norm=True)), 2)
    write(
        out,
        "topk_rescaled",
        sae,
        sae.save_model,
        x,
        "TopKSAE.save_model, rescale_acts_by_decoder_norm=True",
    )

    sae = randomize(StandardSAE(StandardSAEConfig(**base)), 3)

    def save_with_sparsity(folder, sae=sae):
        sae.save_model(folder)
        log_sparsity = torch.log10(
            torch.rand(D_SAE, generator=torch.Generator().manual_seed(9)) * 0.1 + 1e-6
        )
        save_file({"sparsity": log_sparsity}, str(folder / "sparsity.safetensors"))

    write(
        out,
        "standard_with_sparsity",
        sae,
        save_with_sparsity,
        x,
        "StandardSAE.save_model + sparsity.safetensors as SAELens's trainer writes it",
    )

    hooks = {"hook_name": "blocks.3.ln2.hook_normalized", "hook_name_out": "blocks.3.hook_mlp_out"}
    tc = randomize(Transcoder(TranscoderConfig(**base, d_out=D_OUT, apply_b_dec_to_input=False)), 4)
    [setattr(tc.cfg.metadata, k, v) for k, v in hooks.items()]
    write(out, "transcoder", tc, tc.save_model, x, "Transcoder.save_model")

    tc = randomize(
        SkipTranscoder(SkipTranscoderConfig(**base, d_out=D_OUT, apply_b_dec_to_input=False)), 5
    )
    [setattr(tc.cfg.metadata, k, v) for k, v in hooks.items()]
    write(out, "skip_transcoder", tc, tc.save_model, x, "SkipTranscoder.save_model")

    tc = randomize(
        JumpReLUSkipTranscoder(
            JumpReLUSkipTranscoderConfig(
                **base, d_out=D_OUT, apply_b_dec_to_input=False, normalize_activations="layer_norm"
            )
        ),
        6,
    )
    [setattr(tc.cfg.metadata, k, v) for k, v in hooks.items()]
    write(
        out,
        "jumprelu_skip_transcoder_layer_norm",
        tc,
        tc.save_model,
        x,
        "JumpReLUSkipTranscoder.save_model, layer_norm inputs",
    )

    # BatchTopK: the inference file (a JumpReLU with the global threshold) and the training checkpoint
    bt = randomize(BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(**base, k=6)), 7)
    bt.topk_threshold = torch.tensor(0.25, dtype=torch.double)

    def save_inference(folder, bt=bt):
        bt.save_inference_model(folder)

    # reference through the JumpReLU SAELens loads from that inference file
    folder = out / "batchtopk_inference"
    save_inference(folder)
    inference = sae_lens.SAE.load_from_disk(folder)
    write(
        out,
        "batchtopk_inference",
        inference,
        lambda f: None,
        x,
        "BatchTopKTrainingSAE.save_inference_model; reference from SAE.load_from_disk of it",
    )

    mt = randomize(
        MatryoshkaBatchTopKTrainingSAE(
            MatryoshkaBatchTopKTrainingSAEConfig(**base, k=6, matryoshka_widths=[8, 24, 64])
        ),
        8,
    )
    mt.topk_threshold = torch.tensor(0.3, dtype=torch.double)
    folder = out / "matryoshka_batchtopk_checkpoint"
    mt.save_model(folder)
    # a training checkpoint: SAELens's training encode is batch-level; the inference function is
    # the JumpReLU save_inference_model writes, so the reference comes from that
    mt.save_inference_model(out / "_tmp_matryoshka_inference")
    inference = sae_lens.SAE.load_from_disk(out / "_tmp_matryoshka_inference")
    write(
        out,
        "matryoshka_batchtopk_checkpoint",
        inference,
        lambda f: None,
        x,
        "MatryoshkaBatchTopKTrainingSAE.save_model (training checkpoint, topk_threshold buffer); reference from the same SAE's save_inference_model loaded with SAE.load_from_disk",
    )
    import shutil

    shutil.rmtree(out / "_tmp_matryoshka_inference")


if __name__ == "__main__":
    main()
