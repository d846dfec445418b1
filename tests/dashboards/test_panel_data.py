"""The data the panels receive: every number the store holds reaches the page (rounded to 4
significant digits), token strings once in a vocabulary of the tokens used, contexts cut to
the layout; the HTML embeds it safely; selections and bad input give clear errors."""

from __future__ import annotations

import json
import math
import re

import pytest

from saescope.dashboards import Layout, feature_dashboard, parse_feature_ids
from saescope.dashboards.data import VocabTable, feature_data, rounded
from saescope.dashboards.html import embed_json, read_assets
from saescope.dashboards.sources import densest_features, random_live_features, resolve_sae_id
from saescope.errors import ConfigError, SaescopeError
from saescope.store import open_store


def close(a: float, b: float) -> bool:
    """Equal to 4 significant digits."""
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-12)


def test_rounding_keeps_four_digits_of_the_largest_value():
    assert rounded([12.3456, 0.0, -0.00123456, -0.019]) == [12.35, 0, 0, -0.02]
    assert rounded([[0.123456, 0.5]]) == [[0.1235, 0.5]]
    assert rounded([1234.5678, 1.0]) == [1235, 1]
    assert rounded([float("nan"), 1.0]) == [None, 1.0]
    assert rounded([]) == []


def test_vocab_table_holds_each_string_once():
    vocab = VocabTable()
    assert vocab.ids([" the", " cat", " the"]) == [0, 1, 0]
    assert vocab.ids([["\n", " cat"]]) == [[2, 1]]
    assert vocab.strings == [" the", " cat", "\n"]


def test_feature_data_carries_the_stored_numbers(constructed_store):
    path, sae_id = constructed_store
    with open_store(path) as store:
        page = store.feature(sae_id, 3)
    layout = Layout(n_top=4, n_per_group=2, n_logits=5, n_table=3)
    vocab = VocabTable()
    data = feature_data(page, vocab, layout, n_intervals=2)
    assert data["id"] == 3
    for key in ("density", "max_act", "mean_act"):
        assert close(data[key], page[key])
    assert data["act_hist"]["counts"] == page["act_hist"]["counts"]
    assert data["logit_hist"]["counts"] == page["logits"]["hist"]["counts"]
    assert [vocab.strings[t] for t in data["logits_top"]["t"]] == [
        r["token"] for r in page["logits"]["top"][:5]
    ]
    assert all(
        close(v, r["value"])
        for v, r in zip(data["logits_bottom"]["v"], page["logits"]["bottom"], strict=False)
    )
    assert data["neighbours"]["f"] == [n["feature"] for n in page["neighbours"][:3]]
    assert data["neurons"]["f"] == [n["neuron"] for n in page["neurons"][:3]]
    assert all(
        close(a, b) for a, b in zip(data["quantiles"], page["quantiles"]["values"], strict=True)
    )
    # contexts: cut to the layout, tokens and activations as stored, hover lists included
    assert len(data["top"]) == 4
    for ctx, ex in zip(data["top"], page["examples"]["top"], strict=False):
        assert [vocab.strings[t] for t in ctx["t"]] == ex["tokens"]
        assert ctx["c"] == ex["center"]
        assert close(ctx["a"][ctx["c"]], ex["max_act"])
        assert all(
            abs(a - b) <= 1e-3 * max(ex["acts"]) for a, b in zip(ctx["a"], ex["acts"], strict=True)
        )
        assert [[vocab.strings[t] for t in row] for row in ctx["b"]] == ex["top_boosted_tokens"]
        assert len(ctx["l"]) == len(ex["loss_effects"])
    # quantile groups: one per interval, equal-width ranges, share from the histogram
    intervals = sorted({ex["interval"] for ex in page["examples"]["quantile"]})
    assert [g["interval"] for g in data["groups"]] == intervals
    for group in data["groups"]:
        assert close(group["lo"], group["interval"] * page["max_act"] / 2)
        assert close(group["hi"], (group["interval"] + 1) * page["max_act"] / 2)
        assert 0 <= group["share"] <= 1 and len(group["contexts"]) == 2
    assert sum(g["share"] for g in data["groups"]) == pytest.approx(1, abs=1e-3)


def test_layout_leaves_out_the_contexts_of_hidden_panels(constructed_store):
    path, sae_id = constructed_store
    with open_store(path) as store:
        page = store.feature(sae_id, 3)
    data = feature_data(page, VocabTable(), Layout(panels=["table", "logits"]))
    assert data["top"] == [] and data["groups"] == []


def test_dashboard_vocab_holds_only_the_tokens_used(constructed_store):
    path, sae_id = constructed_store
    dashboard = feature_dashboard(path, sae_id, [0, 2, 3])
    data = dashboard.data
    used = {t for f in data["features"] for ctx in f["top"] for t in ctx["t"]}
    assert len(data["vocab"]) == len(set(data["vocab"])) >= len(used)
    assert [f["id"] for f in data["features"]] == [0, 2, 3]
    assert data["sae"]["sae_id"] == sae_id and data["layout"] == Layout().to_dict()
    # the page embeds exactly this data
    embedded = re.search(
        r'<script id="saescope-data" type="application/json">(.*?)</script>', dashboard.html, re.S
    )
    assert json.loads(embedded.group(1)) == json.loads(json.dumps(data))


def test_embedded_json_cannot_close_its_script_element():
    text = embed_json({"token": "</script><script>alert(1)</script><!--"})
    assert "<" not in text
    assert json.loads(text) == {"token": "</script><script>alert(1)</script><!--"}


def test_html_inlines_the_built_panels_and_asks_for_nothing(constructed_store):
    path, sae_id = constructed_store
    html = feature_dashboard(path, sae_id, [3]).html
    script, style = read_assets()
    assert style in html and script.replace("</script", "<\\/script") in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "connect-src 'none'" in html


def test_missing_web_build_names_the_fix(tmp_path):
    with pytest.raises(SaescopeError, match="scripts/setup.sh"):
        read_assets(tmp_path)


def test_feature_selections(constructed_store):
    path, sae_id = constructed_store
    assert parse_feature_ids("0-3,10,2") == [0, 1, 2, 3, 10]
    for bad in ("3-1", "a", "1,,2", "-1"):
        with pytest.raises(ConfigError, match="features"):
            parse_feature_ids(bad)
    with open_store(path) as store:
        densities = store.densities(sae_id)
        densest = densest_features(store, sae_id, 5)
        assert list(densities[densest]) == sorted(densities, reverse=True)[:5]
        chosen = random_live_features(store, sae_id, 50, seed=1)
        assert len(chosen) == 50 and all(densities[f] > 0 for f in chosen)
        assert (
            chosen
            == random_live_features(store, sae_id, 50, seed=1)
            != random_live_features(store, sae_id, 50, seed=2)
        )
        assert resolve_sae_id(store, None) == sae_id


def test_bad_requests_say_what_is_accepted(constructed_store, tmp_path):
    path, sae_id = constructed_store
    with pytest.raises(ConfigError, match=r"features: got \[120\]; expected feature ids in 0..119"):
        feature_dashboard(path, sae_id, [5, 120])
    with pytest.raises(SaescopeError, match="has no SAE 'nope'"):
        feature_dashboard(path, "nope", [1])
    with pytest.raises(ConfigError, match="panels"):
        feature_dashboard(path, sae_id, [1], Layout(panels=["table", "pie"]))
    with pytest.raises(SaescopeError, match="no feature store there"):
        feature_dashboard(tmp_path, None, [1])


def test_file_size_for_100_features(constructed_store, tmp_path):
    """The default layout's file for 100 features of full analysis data (10 of 20 top contexts
    with hover tokens, 3 per quantile group) stays near 1 MB: the data is gzipped above 1 MB.
    The 1,000-feature figure is in the slow test."""
    path, sae_id = constructed_store
    out = feature_dashboard(path, sae_id, list(range(100))).save(tmp_path / "d.html")
    size = out.stat().st_size
    print(f"100 features: {size / 2**20:.2f} MiB")
    assert 'data-encoding="gzip+base64"' in out.read_text()
    assert size < 1.5 * 2**20
