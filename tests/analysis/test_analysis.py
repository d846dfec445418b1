"""The analysis pass against brute-force recomputation on a small real run (SmolLM2, built-in
corpus, a real TopK SAE file): dense activations of every token give density, maxima, top examples,
histograms, quantiles and co-firing; explicit forwards give logit tables and log-prob effects."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest
import torch

from saescope.analysis import (
    AnalysisConfig,
    Example,
    ExampleStream,
    analyze,
    load_analysis,
    save_analysis,
    stream_pass,
)
from saescope.analysis.checkpoint import load_analysis_checkpoint
from saescope.analysis.finish import feature_tables, wanted_examples
from saescope.analysis.sketch import SUB
from saescope.corpus import CorpusConfig, iter_context_batches
from saescope.errors import ConfigError, SaescopeError
from saescope.sae import load_sae

ABLATED = 1


@pytest.fixture(scope="module")
def cfg():
    return AnalysisConfig(
        corpus=CorpusConfig(context_length=32),
        n_tokens=32 * 16,
        batch_size=8,
        top_k=5,
        n_exact_top=12,
        quantile_intervals=4,
        per_interval=3,
        n_inactive=2,
        window=(4, 2),
        cofiring_tokens=10**6,
        ablate_features=[ABLATED],
    )


@pytest.fixture(scope="module")
def sae(sae_dir):
    return load_sae(sae_dir)


@pytest.fixture(scope="module")
def result(smollm2, sae_dir, cfg):
    return analyze(sae_dir, cfg, model=smollm2, progress=False)


@pytest.fixture(scope="module")
def dense(smollm2, sae, cfg):
    """tokens [n_ctx, C] and dense feature acts [n_ctx, C, d_sae] (BOS position zeroed: not
    analysed)."""
    tokens = torch.cat(list(iter_context_batches(cfg.corpus, smollm2.tokenizer, 8)))[
        : cfg.n_contexts
    ]
    hook = sae.cfg.hook_name
    x = smollm2.run_with_cache(tokens, [hook])[hook]
    with torch.no_grad():
        acts = sae.encode(x).float()
    acts[:, 0] = 0
    return tokens, acts


def nonzero_values(acts: torch.Tensor, f: int) -> np.ndarray:
    column = acts[:, 1:, f].reshape(-1).numpy()
    return np.sort(column[column > 0])


def test_density_max_and_mean(result, dense, cfg):
    _, acts = dense
    body = acts[:, 1:]  # the analysed tokens
    n = body.shape[0] * body.shape[1]
    assert result.n_tokens == n
    active = body > 0
    np.testing.assert_allclose(result.features.density, active.sum((0, 1)).numpy() / n)
    np.testing.assert_allclose(result.features.max_act, body.amax((0, 1)).numpy(), rtol=1e-6)
    mean = body.sum((0, 1)) / active.sum((0, 1)).clamp_min(1)
    np.testing.assert_allclose(result.features.mean_act, mean.numpy(), rtol=1e-5)
    # a real, busy SAE
    assert (result.features.density > 0).sum() > 0.8 * len(result.features.density)
    # dead means "fired on none of these tokens", and says how many tokens that was
    dead = (active.sum((0, 1)) == 0).double().mean().item()
    assert result.evals["dead_fraction"] == pytest.approx(dead)
    assert result.evals["dead_window_tokens"] == n


def test_top_examples_are_the_largest_activations_with_their_windows(result, dense, cfg):
    tokens, acts = dense
    C = cfg.context_length
    flat = acts.reshape(-1, acts.shape[-1])  # [tokens, d_sae], global token index = row
    top = {}
    for ex in result.examples:
        if ex.kind == "top":
            top.setdefault(ex.feature, {})[ex.rank] = ex
    for f in range(acts.shape[-1]):
        values = flat[:, f]
        order = sorted(
            torch.nonzero(values > 0)[:, 0].tolist(), key=lambda t: (-values[t].item(), t)
        )[: cfg.top_k]
        got = [top.get(f, {})[r] for r in range(len(order))]
        assert len(top.get(f, {})) == len(order)
        for ex, token in zip(got, order, strict=True):
            assert (ex.context_index, ex.position) == divmod(token, C)
            assert ex.max_act == pytest.approx(values[token].item(), rel=1e-6)
            lo = max(0, ex.position - cfg.window[0])
            hi = min(C, ex.position + cfg.window[1] + 1)
            assert list(ex.token_ids) == tokens[ex.context_index, lo:hi].tolist()
            np.testing.assert_allclose(
                ex.acts, acts[ex.context_index, lo:hi, f].numpy(), rtol=1e-4, atol=1e-5
            )
            assert ex.acts[ex.center] == pytest.approx(ex.max_act, rel=1e-4)


def test_histogram_counts_every_activation_within_one_sketch_bucket(result, dense):
    _, acts = dense
    hist = result.features.act_hist_counts
    n_bins = hist.shape[1]
    for f in range(acts.shape[-1]):
        values = nonzero_values(acts, f)
        assert hist[f].sum() == len(values)
        if not len(values):
            continue
        edges = np.linspace(0, values.max(), n_bins + 1)[1:-1]
        ours = np.cumsum(hist[f])[:-1]
        brute = np.array([(values < e).sum() for e in edges])
        # a value may land in a neighbouring bin only if it lies within one sketch bucket of the
        # edge
        slack = np.array([(np.abs(values - e) <= e / SUB).sum() for e in edges])
        assert np.all(np.abs(ours - brute) <= slack), f


def test_quantiles_exact_near_the_top_and_within_a_bucket_below(result, dense, cfg):
    _, acts = dense
    levels = result.features.quantile_levels
    assert levels[-1] == 1.0 and np.all(np.diff(levels) > 0) and (levels > 0.99).sum() >= 5
    for f in range(acts.shape[-1]):
        values = nonzero_values(acts, f)
        if not len(values):
            assert np.all(result.features.quantile_values[f] == 0)
            continue
        index = np.floor(levels * (len(values) - 1)).astype(int)
        expected = values[index]
        got = result.features.quantile_values[f]
        exact = len(values) - 1 - index < cfg.n_exact_top
        np.testing.assert_allclose(got[exact], expected[exact], rtol=1e-6)
        np.testing.assert_allclose(got[~exact], expected[~exact], rtol=1.0 / SUB)


def test_interval_and_inactive_examples_are_real(result, dense, cfg):
    tokens, acts = dense
    max_act = result.features.max_act
    n = cfg.quantile_intervals
    counts: dict[tuple[int, int], int] = {}
    kinds = {"quantile": 0, "inactive": 0}
    for ex in result.examples:
        if ex.kind == "top":
            continue
        kinds[ex.kind] += 1
        act = acts[ex.context_index, ex.position, ex.feature].item()
        assert ex.token_ids[ex.center] == tokens[ex.context_index, ex.position].item()
        if ex.kind == "quantile":
            assert act == pytest.approx(ex.max_act, rel=1e-5)
            lo, hi = (
                ex.interval / n * max_act[ex.feature],
                (ex.interval + 1) / n * max_act[ex.feature],
            )
            assert lo - 1e-5 <= act <= hi + 1e-5
            counts[ex.feature, ex.interval] = counts.get((ex.feature, ex.interval), 0) + 1
        else:
            assert act == 0 and ex.max_act == 0
    assert kinds["quantile"] > 0 and kinds["inactive"] > 0
    assert max(counts.values()) <= cfg.per_interval
    # the top interval of a feature with several activations near its max is sampled
    assert any(interval == n - 1 for _, interval in counts)


def test_cofiring_is_the_pearson_correlation_over_all_tokens(result, dense):
    _, acts = dense
    x = acts[:, 1:].reshape(-1, acts.shape[-1]).double()
    corr = torch.corrcoef(x.T)
    corr.fill_diagonal_(-torch.inf)
    ids, values = result.features.cofiring_ids, result.features.cofiring_corr
    for f in range(x.shape[1]):
        if x[:, f].std() == 0:
            continue
        expected = torch.nan_to_num(corr[f], nan=-torch.inf).topk(ids.shape[1]).values
        np.testing.assert_allclose(values[f], expected.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(corr[f, ids[f]].numpy(), values[f], rtol=1e-4, atol=1e-6)


@torch.no_grad()
def test_logit_tables_and_neighbours(result, smollm2, sae):
    W_dec = sae.W_dec.detach()
    # unembed(v) * rms(v) is the norm-weighted linear map of v through the head, as the model
    # computes it
    logits = smollm2.unembed(W_dec)
    eps = smollm2.final_norm.variance_epsilon
    effects = logits * (W_dec.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    top = effects.topk(result.features.logit_top_ids.shape[1])
    bottom = effects.topk(result.features.logit_bottom_ids.shape[1], largest=False)
    np.testing.assert_allclose(
        result.features.logit_top_values, top.values.numpy(), rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(
        result.features.logit_bottom_values, bottom.values.numpy(), rtol=1e-3, atol=1e-4
    )
    assert (result.features.logit_top_ids == top.indices.numpy()).mean() > 0.99
    assert result.features.logit_hist_counts.sum(1).tolist() == [smollm2.d_vocab] * len(W_dec)
    n_bins = result.features.logit_hist_counts.shape[1]
    # equal bins from each row's min to max; values this close move a token or two
    for f in range(0, len(W_dec), 7):
        row = effects[f].numpy()
        expected, _ = np.histogram(row, bins=n_bins, range=(row.min(), row.max()))
        assert np.abs(result.features.logit_hist_counts[f] - expected).sum() <= 4
    cos = (
        torch.nn.functional.normalize(W_dec, dim=1) @ torch.nn.functional.normalize(W_dec, dim=1).T
    )
    cos.fill_diagonal_(-2)
    np.testing.assert_allclose(
        result.features.neighbour_cos,
        cos.topk(result.features.neighbour_ids.shape[1]).values.numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def final_resid(model, tokens: torch.Tensor) -> torch.Tensor:
    """[ctx, d_model]: the final residual (the final norm's input) of one context, by a plain
    forward."""
    final = model.run_with_cache(tokens[None], [f"blocks.{model.n_layers - 1}.hook_resid_post"])
    return next(iter(final.values()))[0]


@torch.no_grad()
def test_direct_path_loss_effect_equals_an_explicit_forward(result, smollm2, sae, dense, cfg):
    tokens, acts = dense
    checked = 0
    for ex in result.examples:
        if ex.kind != "top" or ex.feature == ABLATED or ex.rank > 0 or checked >= 3:
            continue
        lo = ex.position - ex.center
        resid = final_resid(smollm2, tokens[ex.context_index])  # one forward per context
        for offset, act in enumerate(ex.acts):
            p = lo + offset
            if act <= 0 or p + 1 >= cfg.context_length:
                continue
            with_f = torch.log_softmax(smollm2.unembed(resid[p]), -1)
            without = torch.log_softmax(
                smollm2.unembed(resid[p] - act * sae.W_dec[ex.feature].detach()), -1
            )
            delta = with_f - without
            nxt = tokens[ex.context_index, p + 1]
            assert ex.loss_effects[offset] == pytest.approx(delta[nxt].item(), abs=2e-3)
            assert list(ex.top_boosted[offset]) == delta.topk(cfg.n_hover).indices.tolist()
            assert list(ex.top_suppressed[offset]) == (-delta).topk(cfg.n_hover).indices.tolist()
            checked += 1
        assert all(e == 0 for e, a in zip(ex.loss_effects, ex.acts, strict=True) if a <= 0)
    assert checked >= 3


def assert_same_top_effects(examples: list[Example], others: list[Example]) -> None:
    """Two passes' top examples carry the same log-prob effects (to float32 rounding) and hover
    tokens."""
    key = lambda ex: (ex.feature, ex.kind, ex.interval, ex.rank)  # noqa: E731
    pairs = [
        (a, b)
        for a, b in zip(sorted(examples, key=key), sorted(others, key=key), strict=True)
        if a.kind == "top"
    ]
    assert len(pairs) > 100
    for a, b in pairs:
        assert key(a) == key(b)
        for name in ("loss_effects", "top_boosted_values", "top_suppressed_values"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=2e-5, rtol=1e-5)
        for name in ("top_boosted", "top_suppressed"):  # (near) ties aside, the same tokens
            assert np.mean(getattr(a, name) == getattr(b, name)) > 0.99


def test_direct_effects_are_the_same_with_torch_instead_of_the_kernels(
    result, smollm2, sae_dir, cfg, monkeypatch
):
    """The C++ cell-effects kernel (and top-k kernel) against their torch fallbacks, on the whole
    pass."""
    from saescope import kernels

    assert kernels.available()
    monkeypatch.setattr(kernels, "available", lambda: False)
    assert_same_top_effects(
        result.examples, analyze(sae_dir, cfg, model=smollm2, progress=False).examples
    )


@pytest.mark.parametrize("kept_fraction", [0.0, 0.5])
def test_loss_effects_past_the_kept_logit_table_are_the_same(
    result, smollm2, sae, sae_dir, cfg, monkeypatch, kept_fraction
):
    """An SAE whose [d_sae, d_vocab] logit table is over the memory budget: the features past what
    fits have their rows recomputed through the unembedding per chunk of cells, to the same
    effects."""
    from saescope.analysis import finish

    assert finish.logit_table_budget() >= finish.MIN_LOGIT_TABLE_BUDGET
    budget = int(kept_fraction * sae.cfg.d_sae) * smollm2.d_vocab * 4
    monkeypatch.setattr(finish, "logit_table_budget", lambda: budget)
    assert_same_top_effects(
        result.examples, analyze(sae_dir, cfg, model=smollm2, progress=False).examples
    )


@torch.no_grad()
def test_ablated_feature_effects_equal_run_with_replacement(result, smollm2, sae, dense, cfg):
    tokens, _ = dense
    ex = next(
        e for e in result.examples if e.kind == "top" and e.feature == ABLATED and e.rank == 0
    )
    lo = ex.position - ex.center
    row = tokens[ex.context_index][None]

    def remove(x):
        a = sae.encode(x)[..., ABLATED]
        return x - a[..., None] * sae.W_dec[ABLATED].detach()

    clean = torch.log_softmax(smollm2.forward(row)[0], -1)
    ablated = torch.log_softmax(
        smollm2.run_with_replacement(row, {sae.cfg.hook_name: remove})[0], -1
    )
    for offset in range(len(ex.token_ids)):
        p = lo + offset
        if p + 1 < cfg.context_length:
            expected = (clean[p] - ablated[p])[tokens[ex.context_index, p + 1]].item()
            assert ex.loss_effects[offset] == pytest.approx(expected, abs=2e-3)
    # after the feature fires, later positions feel it too: the real ablation is not the direct path
    assert any(abs(e) > 1e-4 for e, a in zip(ex.loss_effects, ex.acts, strict=True) if a == 0)


def test_shards_merge_into_the_single_pass(smollm2, sae, cfg):
    whole = stream_pass(smollm2, sae, cfg, progress=False)
    first = stream_pass(smollm2, sae, cfg, start=0, stop=5, progress=False)
    second = stream_pass(smollm2, sae, cfg, start=5, stop=11, progress=False)
    third = stream_pass(smollm2, sae, cfg, start=11, progress=False)
    second.merge(third)
    first.merge(second)
    a, b = whole.state_dict(), first.state_dict()
    for name in a:
        x, y = a[name], b[name]
        if name == "cofire":  # rows: (row, feature, activation as float32 bits)
            assert torch.equal(x[:2], y[:2]), name
            x, y = x[2].view(torch.float32), y[2].view(torch.float32)
        if x.is_floating_point():
            # other batch shapes move the activations' last float32 bits (sums, maxima)
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-4)
        else:
            assert torch.equal(x, y), name


def test_cofiring_sample_is_bounded_by_its_token_cap(smollm2, sae, cfg):
    """However many tokens are analysed, the co-firing sample keeps at most cofiring_tokens tokens'
    activations, 12 bytes each (int32 row, feature and value bits)."""
    for n_contexts in (8, 32):
        capped = dataclasses.replace(
            cfg, n_tokens=n_contexts * cfg.context_length, cofiring_tokens=64
        )
        acc = stream_pass(smollm2, sae, capped, progress=False)
        sample = acc.cofire_sample()
        assert acc.n_cofire_tokens <= 64 < acc.n_tokens
        assert sample.dtype == torch.int32 and len(torch.unique(sample[0])) <= 64
        assert sample.numel() * sample.element_size() <= 12 * 64 * sae.cfg.k


def test_resume_after_interruption_equals_uninterrupted(smollm2, sae, cfg, tmp_path):
    checkpoint = tmp_path / "acc.safetensors"
    # the pass stops here
    stream_pass(smollm2, sae, cfg, stop=7, checkpoint=checkpoint, progress=False)
    acc, done = load_analysis_checkpoint(checkpoint, cfg, sae)
    assert done == 7 and acc.n_tokens == 7 * (cfg.context_length - 1)
    resumed = stream_pass(smollm2, sae, cfg, acc, start=done, progress=False)
    whole = stream_pass(smollm2, sae, cfg, progress=False)
    a, b = whole.state_dict(), resumed.state_dict()
    for name in a:
        x, y = a[name], b[name]
        if name == "cofire":  # rows: (row, feature, activation as float32 bits)
            assert torch.equal(x[:2], y[:2]), name
            x, y = x[2].view(torch.float32), y[2].view(torch.float32)
        if x.is_floating_point():
            # other batch shapes move the activations' last float32 bits (sums, maxima)
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-4)
        else:
            assert torch.equal(x, y), name
    # the result is a function of the accumulators alone (the example pass reads them)
    tables_a = feature_tables(smollm2, sae, cfg, whole)
    tables_b = feature_tables(smollm2, sae, cfg, resumed)
    for name in (
        "density",
        "max_act",
        "act_hist_counts",
        "quantile_values",
        "cofiring_ids",
        "neighbour_ids",
    ):
        np.testing.assert_array_equal(getattr(tables_a, name), getattr(tables_b, name))
    wanted_a, wanted_b = wanted_examples(cfg, whole), wanted_examples(cfg, resumed)
    for column in dataclasses.fields(wanted_a):
        assert torch.equal(getattr(wanted_a, column.name), getattr(wanted_b, column.name)), (
            column.name
        )


def test_analysis_file_round_trip(result, tmp_path):
    path = save_analysis(result, tmp_path / "a.npz")
    back = load_analysis(path)
    assert back.sae_id == result.sae_id and back.n_tokens == result.n_tokens
    np.testing.assert_array_equal(back.features.act_hist_counts, result.features.act_hist_counts)
    assert back.examples[0] == result.examples[0]


def live_examples(exclude: set[int]) -> list[Example]:
    return [o for o in gc.get_objects() if type(o) is Example and id(o) not in exclude]


def test_streamed_examples_are_made_a_batch_at_a_time_as_they_are_read(
    smollm2, sae_dir, cfg, result
):
    """With stream_examples nothing is made until the examples are read, and then one batch of
    contexts at a time: the examples alive at any moment come from at most batch_size contexts
    (the inactive ones, from the sampled pool, come last). Read, they are the list's examples."""
    before = {id(o) for o in live_examples(set())}  # the result fixture's list, and any others
    streamed = analyze(sae_dir, cfg, model=smollm2, progress=False, stream_examples=True)
    assert isinstance(streamed.examples, ExampleStream)
    assert "examples_s" not in streamed.sae_info["analysis"]["timings"]  # the pass has not run
    got, most_contexts = [], 0
    for i, ex in enumerate(streamed.examples):
        got.append(dataclasses.asdict(ex))  # a copy: the Example itself is let go
        del ex
        if i % 25 == 0:
            contexts = {o.context_index for o in live_examples(before) if o.kind != "inactive"}
            most_contexts = max(most_contexts, len(contexts))
    assert 0 < most_contexts <= cfg.batch_size < cfg.n_contexts
    assert streamed.sae_info["analysis"]["timings"]["examples_s"] > 0
    key = lambda ex: (ex.feature, ex.kind, ex.interval, ex.rank)  # noqa: E731
    assert sorted((Example(**d) for d in got), key=key) == sorted(result.examples, key=key)
    with pytest.raises(SaescopeError, match="streamed once already"):
        list(streamed.examples)


# --- the activation spool: the example pass reads the streaming pass's activations back -------


def count_model_runs(model, monkeypatch) -> list[int]:
    """Batch sizes of every run_with_cache call on model from now on."""
    calls: list[int] = []
    real = model.run_with_cache

    def counted(tokens, *args, **kwargs):
        calls.append(len(tokens))
        return real(tokens, *args, **kwargs)

    monkeypatch.setattr(model, "run_with_cache", counted)
    return calls


def assert_same_examples(examples: list[Example], others: list[Example]) -> None:
    key = lambda ex: (ex.feature, ex.kind, ex.interval, ex.rank)  # noqa: E731
    pairs = list(zip(sorted(examples, key=key), sorted(others, key=key), strict=True))
    for a, b in pairs:
        assert key(a) == key(b) and (a.context_index, a.position) == (b.context_index, b.position)
        np.testing.assert_array_equal(a.token_ids, b.token_ids)
        np.testing.assert_allclose(a.acts, b.acts, rtol=1e-4, atol=1e-5)
    assert_same_top_effects(examples, others)


@pytest.mark.parametrize("spooled_contexts", [None, 5])
def test_the_example_pass_reads_spooled_contexts_instead_of_running_the_model(
    smollm2, sae_dir, cfg, result, monkeypatch, spooled_contexts
):
    """With the whole spool (default budget) the example pass runs no model; with room for 5
    contexts it runs the model for the others only. Either way the examples are those of re-running
    the model."""
    from saescope.analysis.spool import ActivationSpool, open_spool

    if spooled_contexts is not None:
        record = cfg.context_length * 2 * smollm2.d_model * 4
        cfg = dataclasses.replace(cfg, spool_gib=spooled_contexts * record / 2**30)
    streamed = analyze(sae_dir, cfg, model=smollm2, progress=False, stream_examples=True)
    calls = count_model_runs(smollm2, monkeypatch)
    spools = [o for o in gc.get_objects() if type(o) is ActivationSpool and not o.file.closed]
    assert len(spools) == 1 and spools[0].n_contexts == (spooled_contexts or cfg.n_contexts)
    examples = list(streamed.examples)
    # (ablation runs another way)
    assert sum(calls) == cfg.n_contexts - (spooled_contexts or cfg.n_contexts)
    assert spools[0].file.closed and not spools[0].path.exists()  # a temporary spool goes once read
    monkeypatch.undo()
    assert_same_examples(
        examples,
        analyze(
            sae_dir, dataclasses.replace(cfg, spool_gib=0), model=smollm2, progress=False
        ).examples,
    )
    assert (
        open_spool(smollm2, load_sae(sae_dir), dataclasses.replace(cfg, spool_gib=0), None) is None
    )


def test_a_resumed_pass_keeps_the_spool_its_checkpoint_vouches_for(
    smollm2, sae, sae_dir, cfg, result, tmp_path, monkeypatch
):
    """Interrupted after 7 contexts with 2 more half-written to the spool: the resumed analysis
    drops those, appends from context 7 on, and gives the uninterrupted result;
    remove_analysis_checkpoint removes both."""
    from saescope.analysis.checkpoint import remove_analysis_checkpoint
    from saescope.analysis.spool import open_spool, spool_path

    checkpoint = tmp_path / "acc.safetensors"
    spool = open_spool(smollm2, sae, cfg, checkpoint)
    stream_pass(smollm2, sae, cfg, stop=7, checkpoint=checkpoint, progress=False, spool=spool)
    assert spool.n_contexts == 7
    with open(spool_path(checkpoint), "ab") as f:  # what a kill between checkpoints leaves behind
        f.write(b"\xff" * (spool.record * 2 - 100))
    spool.close()
    calls = count_model_runs(smollm2, monkeypatch)
    resumed = analyze(sae_dir, cfg, model=smollm2, checkpoint=checkpoint, progress=False)
    # the streaming pass of the rest; the example pass read everything back
    assert sum(calls) == cfg.n_contexts - 7
    monkeypatch.undo()
    assert_same_examples(resumed.examples, result.examples)
    assert spool_path(checkpoint).stat().st_size == cfg.n_contexts * spool.record
    remove_analysis_checkpoint(checkpoint)
    assert not checkpoint.exists() and not spool_path(checkpoint).exists()


def test_spool_budget_must_be_a_size():
    for bad in (-1, "8G", True):
        with pytest.raises(ConfigError, match="spool_gib"):
            AnalysisConfig(spool_gib=bad).validate()
