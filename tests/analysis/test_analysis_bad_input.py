"""Bad input to the analysis: an SAE that does not fit the hook point, a checkpoint of another
analysis, bad CLI values; each gets one clear message and leaves what was stored before intact."""

from __future__ import annotations

import pytest

from saescope.analysis import AnalysisConfig, analyze, stream_pass
from saescope.analysis.checkpoint import load_analysis_checkpoint
from saescope.cli import main
from saescope.corpus import CorpusConfig
from saescope.errors import SaescopeError
from saescope.sae import load_sae, save_sae


def tiny_cfg(**changes) -> AnalysisConfig:
    base = dict(
        corpus=CorpusConfig(context_length=16),
        n_tokens=32,
        batch_size=2,
        top_k=1,
        per_interval=1,
        quantile_intervals=2,
        n_inactive=1,
        window=(2, 1),
    )
    return AnalysisConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def wrong_width_sae(sae_dir, tmp_path_factory):
    """The test SAE (d_in 576) claiming the MLP neurons (width 1536) as its hook point."""
    sae = load_sae(sae_dir)
    sae.cfg = sae.cfg.replace(hook_name="blocks.3.mlp.hook_post")
    out = tmp_path_factory.mktemp("bad") / "wrong_width"
    save_sae(sae, out)
    return out


def test_d_in_mismatch_names_both_widths(smollm2, wrong_width_sae):
    with pytest.raises(
        SaescopeError,
        match=r"d_in: the SAE reads 576-wide inputs but hook point blocks\.3\.mlp\.hook_post "
        r".* is 1536 wide",
    ):
        analyze(wrong_width_sae, tiny_cfg(), model=smollm2, progress=False)


def test_cli_refuses_a_bad_sae_and_keeps_the_store(
    smollm2, sae_dir, wrong_width_sae, tmp_path, capsys
):
    from saescope.store import open_store

    store_path = tmp_path / "features.db"
    good = analyze(sae_dir, tiny_cfg(), model=smollm2, progress=False)
    with open_store(store_path) as store:
        store.write_analysis(good)
    before = store_path.read_bytes()
    code = main(
        [
            "analyze",
            str(wrong_width_sae),
            "--store",
            str(store_path),
            "--tokens",
            "32",
            "--context-length",
            "16",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "d_in" in err and "Traceback" not in err
    assert store_path.read_bytes() == before
    with open_store(store_path) as store:
        assert [s["sae_id"] for s in store.list_saes()] == [good.sae_id]


def test_checkpoint_of_another_analysis_is_refused_and_kept(smollm2, sae_dir, tmp_path):
    sae = load_sae(sae_dir)
    checkpoint = tmp_path / "acc.safetensors"
    stream_pass(smollm2, sae, tiny_cfg(), stop=1, checkpoint=checkpoint, progress=False)
    with pytest.raises(SaescopeError, match="checkpoint of another analysis"):
        load_analysis_checkpoint(checkpoint, tiny_cfg(n_tokens=64), sae)
    # still there, still usable
    assert load_analysis_checkpoint(checkpoint, tiny_cfg(), sae)[1] == 1
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(SaescopeError, match="damaged"):
        load_analysis_checkpoint(checkpoint, tiny_cfg(), sae)


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--window", "3"], "--window"),
        (["--ablate-features", "x"], "--ablate-features"),
        (["--top-k", "0"], "top_k"),
        (["--ablate-features", "100000"], "ablate_features"),
    ],
)
def test_cli_bad_values_name_the_field(sae_dir, tmp_path, capsys, argv, field):
    code = main(["analyze", str(sae_dir), "--out", str(tmp_path / "a.npz"), *argv])
    assert code == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "a.npz").exists()
