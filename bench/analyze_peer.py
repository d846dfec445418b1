"""One timed feature-analysis run, in whichever venv runs it: saescope, SAEDashboard (also with its
cache of model activations: saedash_cached) or sae_vis.

Called by bench/analyze.py (one process per tool, so peak memory is that tool's own):

    PYTHON bench/analyze_peer.py --tool saedash --work DIR --features 0,1,...

DIR holds what bench/analyze.py prepared: hf_model/ (SmolLM2 as a plain HF checkpoint),
sae/ (native = SAELens layout), tokens.pt [n_ctx, ctx]. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from pathlib import Path

import torch


def tl_model(hf_dir: Path):
    """A TransformerLens HookedSAETransformer for SmolLM2, built from a config and the HF weights
    (TransformerLens has no SmolLM2 entry to load by name)."""
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
    c = hf.config
    cfg = HookedTransformerConfig(
        d_model=c.hidden_size,
        d_head=c.hidden_size // c.num_attention_heads,
        n_heads=c.num_attention_heads,
        n_key_value_heads=c.num_key_value_heads,
        d_mlp=c.intermediate_size,
        n_layers=c.num_hidden_layers,
        n_ctx=2048,
        d_vocab=c.vocab_size,
        act_fn="silu",
        normalization_type="RMS",
        positional_embedding_type="rotary",
        rotary_base=int(c.rope_theta),
        rotary_dim=c.hidden_size // c.num_attention_heads,
        gated_mlp=True,
        final_rms=True,
        eps=c.rms_norm_eps,
        original_architecture="LlamaForCausalLM",
        default_prepend_bos=False,
    )
    model = HookedSAETransformer(
        cfg, tokenizer=AutoTokenizer.from_pretrained(old_style_tokenizer(hf_dir))
    )
    model.load_state_dict(convert_llama_weights(hf, cfg), strict=False)
    return model.eval()


def old_style_tokenizer(hf_dir: Path) -> Path:
    """The tokenizer files with a tokenizer_config.json the peers' older transformers can read (ours
    names the class TokenizersBackend, which they lack; TransformerLens reloads it by path)."""
    import json
    import shutil

    out = hf_dir.parent / "tokenizer_compat"
    out.mkdir(exist_ok=True)
    shutil.copy(hf_dir / "tokenizer.json", out / "tokenizer.json")
    config = json.loads((hf_dir / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def run_saedash(
    work: Path, features: list[int], tokens: torch.Tensor, hook: str, cached: bool = False
) -> tuple[float, int]:
    """cached: SAEDashboard's cache_dir, where its first batch of features saves the model's activations
    and the later batches read them instead of running the model again."""
    import tempfile

    from sae_dashboard.sae_vis_data import SaeVisConfig
    from sae_dashboard.sae_vis_runner import SaeVisRunner
    from sae_lens import SAE

    model = tl_model(work / "hf_model")
    sae = SAE.load_from_disk(str(work / "sae"))
    # SaeVisRunner folds the decoder norms, which SAELens refuses for TopK unless acts are rescaled by
    # them; our decoder rows are unit norm, so rescaling changes nothing and folding is the identity
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(sae.cfg.d_sae), atol=1e-4)
    sae.cfg.rescale_acts_by_decoder_norm = True
    # features in SAEDashboard's default batches (256): each batch runs the model over every token again
    with tempfile.TemporaryDirectory() as cache:
        cfg = SaeVisConfig(
            hook_point=hook,
            features=features,
            minibatch_size_tokens=16,
            device="cpu",
            dtype="float32",
            cache_dir=Path(cache) if cached else None,
        )
        start = time.perf_counter()
        data = SaeVisRunner(cfg).run(encoder=sae, model=model, tokens=tokens)
        return time.perf_counter() - start, len(data.feature_data_dict)


def saelens5_topk(sae_class, config_class, sae_dir: Path, hook: str):
    """Our TopK SAE file as a SAELens 5 SAE (sae_vis needs SAELens < 6, which reads an older cfg.json
    layout): the same weights, TopK then ReLU as in our encoder, the hook point sae_vis reads."""
    import json

    from safetensors.torch import load_file

    cfg = json.loads((sae_dir / "cfg.json").read_text())
    sae = sae_class(
        config_class(
            architecture="topk",
            d_in=cfg["d_in"],
            d_sae=cfg["d_sae"],
            activation_fn_str="topk",
            activation_fn_kwargs={"k": cfg["k"]},
            apply_b_dec_to_input=cfg["apply_b_dec_to_input"],
            finetuning_scaling_factor=False,
            context_size=128,
            model_name="smollm2",
            hook_name=hook,
            hook_layer=int(hook.split(".")[1]),
            hook_head_index=None,
            prepend_bos=True,
            dataset_path="",
            dataset_trust_remote_code=False,
            normalize_activations="none",
            dtype="float32",
            device="cpu",
            sae_lens_training_version=None,
        )
    )
    sae.load_state_dict(load_file(sae_dir / "sae_weights.safetensors"))
    return sae


def run_saevis(
    work: Path, features: list[int], tokens: torch.Tensor, hook: str
) -> tuple[float, int]:
    from sae_lens import SAE, SAEConfig
    from sae_vis.data_config_classes import SaeVisConfig
    from sae_vis.data_storing_fns import SaeVisData

    model = tl_model(work / "hf_model")
    sae = saelens5_topk(SAE, SAEConfig, work / "sae", hook)
    cfg = SaeVisConfig(
        features=features, minibatch_size_tokens=16
    )  # sae_vis's default feature batches (256)
    start = time.perf_counter()
    data = SaeVisData.create(sae=sae, model=model, tokens=tokens, cfg=cfg)
    return time.perf_counter() - start, len(data.feature_data_dict)


class StagePeaks:
    """Peak RSS (MiB) of each stage of a run: /proc/self/statm sampled every 50 ms (Linux; else none)."""

    def __init__(self) -> None:
        self.stage, self.peaks = "load", {}
        if os.path.exists("/proc/self/statm"):
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page / 2**20
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0.0), rss)
            time.sleep(0.05)


def run_saescope(work: Path, n_tokens: int, context_length: int) -> tuple[float, int, dict]:
    """What `saescope analyze SAE --store FILE` does (analysis.run.analyze's two steps, then the store
    write, which reads the streamed examples), timed and with the peak RSS of each stage."""
    import sqlite3
    import tempfile

    from saescope.analysis import (
        AnalysisConfig,
        finish_analysis,
        open_spool,
        prepare_analysis,
        stream_pass,
    )
    from saescope.corpus import CorpusConfig
    from saescope.models import load_model
    from saescope.sae import load_sae
    from saescope.store import open_store

    peaks = StagePeaks()
    cfg = AnalysisConfig(
        corpus=CorpusConfig(context_length=context_length), n_tokens=n_tokens, batch_size=16
    )
    sae, cfg, model, _ = prepare_analysis(load_sae(work / "sae"), cfg, load_model("smollm2"))
    start = time.perf_counter()
    peaks.stage = "stream"
    spool = open_spool(model, sae, cfg, None)  # as analyze() without a checkpoint: a temporary file
    acc = stream_pass(model, sae, cfg, progress=False, spool=spool)
    stream_s = time.perf_counter() - start
    peaks.stage = "tables"  # statistics, co-firing and logit tables
    result = finish_analysis(
        model, sae, cfg, acc, progress=False, stream_examples=True, spool=spool
    )
    del acc
    peaks.stage = "examples"  # the example pass runs as the store reads the examples
    store_start: list[float] = []

    def on_progress(done: int, total: int) -> None:  # first called inside the write transaction
        if not store_start:
            store_start.append(time.perf_counter())
            peaks.stage = "store"

    with tempfile.TemporaryDirectory() as tmp:
        with open_store(Path(tmp) / "features.db") as store:
            store.write_analysis(result, on_progress=on_progress)
        elapsed = time.perf_counter() - start
        with sqlite3.connect(Path(tmp) / "features.db") as db:
            n_examples = db.execute("SELECT count(*) FROM examples").fetchone()[0]
    time.sleep(0.1)  # a last sample
    phases = {
        "stream_s": stream_s,
        **result.sae_info["analysis"]["timings"],
        "store_s": time.perf_counter() - store_start[0] if store_start else 0.0,
        "examples": n_examples,
        "peak_rss_mib_by_stage": {k: round(v) for k, v in peaks.peaks.items()},
    }
    return elapsed, len(result.features.density), phases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--tool", choices=["saescope", "saedash", "saedash_cached", "saevis"], required=True
    )
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--features", default="")
    parser.add_argument("--hook", default="")
    parser.add_argument("--tokens", type=int, default=0)
    parser.add_argument("--context-length", type=int, default=128)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    extra = {}
    if args.tool == "saescope":
        seconds, n_features, extra = run_saescope(args.work, args.tokens, args.context_length)
    else:
        tokens = torch.load(args.work / "tokens.pt")
        features = [int(f) for f in args.features.split(",")]
        if args.tool == "saevis":
            seconds, n_features = run_saevis(args.work, features, tokens, args.hook)
        else:
            seconds, n_features = run_saedash(
                args.work, features, tokens, args.hook, args.tool == "saedash_cached"
            )
        args.tokens = tokens.numel()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "tool": args.tool,
                "tokens": args.tokens,
                "seconds": seconds,
                "features": n_features,
                "peak_rss_mib": peak_mib,
                "features_per_s": n_features / seconds,
                **({"phases": extra} if extra else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
