"""The viewer's store API against the real app on a real run (tests/server/viewer_run.py)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from saescope.store import open_store
from tests.server.viewer_run import D_SAE, SAE_ID

BASE = f"/api/saes/{SAE_ID}"


@pytest.fixture(scope="module")
def store(viewer_run_dir):
    with open_store(viewer_run_dir / "features.db", create=False) as opened:
        yield opened


def test_list_saes_with_evals_and_live_state(client):
    saes = client.get("/api/saes").json()
    assert [s["sae_id"] for s in saes] == [SAE_ID]
    assert saes[0]["d_sae"] == D_SAE and saes[0]["live"] is True
    assert saes[0]["evals"]["l0"] == pytest.approx(8.0)  # TopK k=8 (BOS left out by the analysis)


def test_summary_has_density_histogram(client, store):
    summary = client.get(f"{BASE}/summary").json()
    hist = summary["density_histogram"]
    assert sum(hist["counts"]) + hist["n_dead"] == D_SAE
    assert summary["live"] is True and summary["live_unavailable"] is None
    assert summary["evals"] == store.sae_summary(SAE_ID)["evals"]


def test_feature_page_is_the_store_page(client, store):
    page = client.get(f"{BASE}/features/3").json()
    expected = store.feature(SAE_ID, 3)
    assert page["feature"] == 3 and page["examples"]["top"]
    assert page["examples"]["top"][0]["tokens"] == expected["examples"]["top"][0]["tokens"]
    assert page["max_act"] == pytest.approx(expected["max_act"])
    assert client.get(f"{BASE}/features/3").content == client.get(f"{BASE}/features/3").content


def test_sae_id_with_slashes_may_be_percent_encoded(client):
    assert client.get(f"/api/saes/{quote(SAE_ID, safe='')}/features/3").json()["feature"] == 3


def test_feature_panels_are_the_dashboard_data_shape(client):
    data = client.get(f"{BASE}/features/3/panels").json()
    assert data["version"] == 1 and [f["id"] for f in data["features"]] == [3]
    feature = data["features"][0]
    assert feature["top"] and all(0 <= t < len(data["vocab"]) for t in feature["top"][0]["t"])


def test_feature_list_sorted_and_paged(client, store):
    first = client.get(f"{BASE}/features", params={"sort_by": "max_act", "limit": 10}).json()
    second = client.get(
        f"{BASE}/features", params={"sort_by": "max_act", "limit": 10, "offset": 10}
    ).json()
    values = [item["max_act"] for item in first["items"] + second["items"]]
    assert values == sorted(values, reverse=True) and first["total"] == D_SAE
    assert {i["feature"] for i in first["items"]}.isdisjoint(i["feature"] for i in second["items"])
    ascending = client.get(
        f"{BASE}/features", params={"sort_by": "density", "descending": False}
    ).json()
    assert ascending["items"][0]["density"] == min(store.densities(SAE_ID))


def test_feature_list_filtered_by_density(client):
    page = client.get(f"{BASE}/features", params={"min_density": 0.1, "limit": 100}).json()
    assert page["items"] and all(item["density"] >= 0.1 for item in page["items"])


def test_search_finds_a_word_of_a_top_context(client, store):
    feature, word = next(
        (f, t.strip())
        for f in range(D_SAE)
        for t in store.feature(SAE_ID, f)["examples"]["top"][0]["tokens"]
        if len(t.strip()) >= 4 and t.strip().isalpha()
    )
    results = client.get("/api/search", params={"q": word, "sae_id": SAE_ID, "limit": 200}).json()[
        "results"
    ]
    assert any(r["feature"] == feature for r in results)
    assert all(word.lower() in r["snippet"].lower() for r in results)


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/saes/{sae_id}/steer" in paths and "/api/search" in paths


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/saes/no-such-sae/summary",
        "/api/saes/no-such-sae/features/1",
        "/api/saes/no-such-sae/features",
    ],
)
def test_unknown_sae_is_404_naming_the_saes_held(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "no-such-sae" in response.json()["detail"] and SAE_ID in response.json()["detail"]


@pytest.mark.parametrize("feature", [D_SAE, -1, 10**9])
def test_unknown_feature_is_404_saying_the_range(client, feature):
    response = client.get(f"{BASE}/features/{feature}")
    assert response.status_code == 404
    assert f"0..{D_SAE - 1}" in response.json()["detail"]


def test_non_integer_feature_is_422(client):
    response = client.get(f"{BASE}/features/abc")
    assert response.status_code == 422 and "feature" in response.json()["detail"]


@pytest.mark.parametrize(
    "params", [{"limit": -5}, {"limit": 0}, {"offset": -1}, {"limit": 100_000}]
)
def test_bad_page_size_is_422_and_the_server_keeps_serving(client, params):
    response = client.get(f"{BASE}/features", params=params)
    assert response.status_code == 422
    assert next(iter(params)) in response.json()["detail"]
    assert client.get(f"{BASE}/features").status_code == 200


def test_unknown_sort_column_is_422_listing_the_accepted_ones(client):
    response = client.get(f"{BASE}/features", params={"sort_by": "nonsense"})
    assert response.status_code == 422
    assert "nonsense" in response.json()["detail"] and "max_act" in response.json()["detail"]


def test_empty_search_is_422(client):
    assert client.get("/api/search", params={"q": ""}).status_code == 422
    assert client.get("/api/search", params={"q": "   "}).status_code == 422


def test_training_curves_absent_from_this_run(client):
    assert client.get("/api/training").json() == {"records": []}
    assert client.get("/api/training.png").status_code == 404
