"""A small run made by the real pipeline for the viewer's overview and feature map: SmolLM2
layer-6 activations harvested, a 576-feature TopK SAE trained on them by the real trainer
(metrics.jsonl and training_curves.png), analysed into the run's feature store.

576 features is above the feature map's UMAP minimum, so the map of this run is a UMAP.
"""

from __future__ import annotations

from pathlib import Path

from saescope.activations import HarvestConfig, harvest
from saescope.analysis import AnalysisConfig, analyze
from saescope.corpus import CorpusConfig
from saescope.sae import load_sae
from saescope.store import open_store
from saescope.train import TrainConfig, train

HOOK = "blocks.6.hook_resid_post"
SAE_ID = f"smollm2/{HOOK}/trained-576"
D_SAE = 576
CONTEXT = 64


def build_trained_run(model, work: Path) -> Path:
    """Harvest, train and analyse under `work`; return the run directory (work/run)."""
    acts = work / "acts"
    harvest(
        HarvestConfig(
            out=str(acts),
            hooks=[HOOK],
            corpus=CorpusConfig(context_length=CONTEXT),
            n_tokens=6144,
            batch_size=16,
        ),
        model=model,
        progress=False,
    )
    run_dir = work / "run"
    train(
        TrainConfig(
            run_dir=str(run_dir),
            model={"hooks": HOOK},
            activations={"cache": str(acts), "buffer_tokens": 2048},
            sae={"expansion_factor": 1, "b_dec_init_tokens": 1024},
            architecture={"name": "topk", "k": 16},
            optim={"batch_size": 256, "training_tokens": 16 * 256, "lr": 3e-3},
            logging={"checkpoint_every_tokens": 8 * 256, "log_every_steps": 2, "progress": False},
        ),
        model=model,
    )
    sae = load_sae(run_dir / "sae").eval()
    cfg = AnalysisConfig(
        corpus=CorpusConfig(context_length=CONTEXT),
        n_tokens=512,
        batch_size=8,
        top_k=4,
        quantile_intervals=2,
        per_interval=1,
        n_inactive=1,
        window=(6, 3),
        cofiring_tokens=512,
    )
    analysis = analyze(sae, cfg, model=model, sae_id=SAE_ID, progress=False)
    with open_store(run_dir / "features.db") as store:
        store.write_analysis(analysis)
    return run_dir
