"""The whole analysis job: load the SAE and its model, stream the corpus (resuming from a
checkpoint), then the results.

    acc = stream_pass(model, sae, cfg, spool=spool)  # model, encoder, accumulators (streaming.py)
    result = finish_analysis(model, sae, cfg, acc, spool=spool)  # tables + examples (finish.py)

`analyze(...)` does both, with checkpoints of the accumulators (resumable, checkpoint.py) and
progress. The spool (spool.py; optional) keeps the hook and final activations of the contexts
streamed, so that the example pass reads them instead of running the model again.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from saescope.analysis.checkpoint import load_analysis_checkpoint
from saescope.analysis.config import AnalysisConfig
from saescope.analysis.finish import finish_analysis
from saescope.analysis.results import SAEAnalysis
from saescope.analysis.spool import open_spool
from saescope.analysis.streaming import stream_pass
from saescope.models import HookedModel
from saescope.sae import SAE
from saescope.sae.with_model import load_sae_with_model


def prepare_analysis(
    sae: SAE | str | Path,
    cfg: AnalysisConfig | None,
    model: HookedModel | str | None,
) -> tuple[SAE, AnalysisConfig, HookedModel, str | None]:
    """The SAE loaded (if given by path or run directory) with its model, on one device, and the
    config validated against it: (sae, cfg, model, source path or None)."""
    cfg = cfg or AnalysisConfig()
    loaded = load_sae_with_model(sae, model)
    cfg.validate(loaded.sae.d_sae)
    return loaded.sae, cfg, loaded.model, loaded.source


def analyze(
    sae: SAE | str | Path,
    cfg: AnalysisConfig | None = None,
    model: HookedModel | str | None = None,
    checkpoint: str | Path | None = None,
    sae_id: str | None = None,
    progress: bool = True,
    stream_examples: bool = False,
) -> SAEAnalysis:
    """Analyse every feature of an SAE (a loaded SAE, an SAE path, or a run directory).

    With `checkpoint` (a file path) the accumulators are saved there as the pass goes; running
    again with the same arguments resumes from it. The caller deletes it once the result is
    stored. With `stream_examples` the examples are an ExampleStream, made as they are read once
    (by FeatureStore.write_analysis or save_analysis): no list of every example is held."""
    sae, cfg, model, source = prepare_analysis(sae, cfg, model)
    acc, start = None, 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None:
        resumed = load_analysis_checkpoint(checkpoint, cfg, sae)
        if resumed is not None:
            acc, start = resumed
            if progress:  # through tqdm, so that it does not break a progress bar's line
                tokens = start * cfg.context_length
                tqdm.write(f"resuming the analysis after {tokens:,} tokens ({checkpoint})")
    spool = open_spool(model, sae, cfg, checkpoint)
    if spool is not None:
        spool.resume(start)  # what the checkpoint vouches for (nothing, starting afresh)
    acc = stream_pass(
        model, sae, cfg, acc, start=start, checkpoint=checkpoint, progress=progress, spool=spool
    )
    return finish_analysis(
        model,
        sae,
        cfg,
        acc,
        sae_id=sae_id,
        source=source,
        progress=progress,
        stream_examples=stream_examples,
        spool=spool,
    )
