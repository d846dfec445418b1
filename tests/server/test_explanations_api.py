"""Explanations and interp scores through the viewer's API (issue 19), on a copy of the real
viewer run with explanations, labels and scores written by the store's own methods: the
feature page and panels carry them, the browser sorts and filters by every score, search
finds explanation and label words, the map names features, the overview sums the scores up,
and a new explanation shows while serving."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from saescope.server import create_app
from saescope.server.cache import CHECK_WRITES_EVERY_S
from saescope.server.schemas import DashboardData
from saescope.store import open_store
from tests.server.explained import EXPLAINER, PREDICTIONS, write_explanations
from tests.server.viewer_run import D_SAE, SAE_ID

LOCAL = "http://127.0.0.1"
BASE = f"/api/saes/{SAE_ID}"
INTERP = ["detection", "fuzzing", "simulation"]


@pytest.fixture(scope="module")
def explained_run(viewer_run_dir, tmp_path_factory):
    """(run directory copy, what was written): the viewer run with explanations."""
    run = tmp_path_factory.mktemp("explained") / "run"
    shutil.copytree(viewer_run_dir, run)
    with open_store(run / "features.db", create=False) as store:
        written = write_explanations(store, SAE_ID)
    return run, written


@pytest.fixture(scope="module")
def api(explained_run):
    app = create_app(explained_run[0], live=False, warm=False)
    with TestClient(app, base_url=LOCAL) as client:
        yield client


@pytest.fixture(scope="module")
def written(explained_run):
    return explained_run[1]


def test_feature_page_has_the_current_explanation_first_with_its_scores(api, written):
    page = api.get(f"{BASE}/features/3").json()
    assert page["explanation"] == written.explanations[3]
    assert page["label"] == written.labels[3]
    assert all(e["current"] for e in page["explanations"][:2])  # current first
    first = next(e for e in page["explanations"] if e["kind"] == "explanation")
    assert first["current"] and first["text"] == written.explanations[3]
    assert first["explainer"]["model"] == EXPLAINER.model
    assert {s["scorer"]: s["value"] for s in first["scores"]} == pytest.approx(written.scores[3])
    texts = {e["text"] for e in page["explanations"]}
    assert {written.older[3], written.labels[3]} <= texts
    assert api.get(f"{BASE}/features/4").json()["explanations"] == []


def test_a_scores_predictions_are_served_for_recomputing_it(api, written):
    page = api.get(f"{BASE}/features/3").json()
    current = next(e for e in page["explanations"] if e["kind"] == "explanation")
    detection = next(s for s in current["scores"] if s["scorer"] == "detection")
    assert detection["n_predictions"] == len(PREDICTIONS)
    record = api.get(f"{BASE}/explanation-scores/{detection['id']}").json()
    assert record["feature"] == 3 and record["explanation"] == written.explanations[3]
    assert record["value"] == pytest.approx(written.scores[3]["detection"])
    answers = [(p["activating"], p["predicted"]) for p in record["predictions"]]
    assert answers == [(p.activating, p.predicted) for p in PREDICTIONS]
    assert [p["ref"]["kind"] for p in record["predictions"]] == ["top", "top", "inactive"]
    missing = api.get(f"{BASE}/explanation-scores/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert api.get(f"{BASE}/explanation-scores/-1").status_code == 422


def test_panels_carry_the_explanations_as_the_dashboards_do(api, written):
    data = api.get(f"{BASE}/features/3/panels").json()
    DashboardData.model_validate(data)
    feature = data["features"][0]
    assert feature["label"] == written.labels[3]
    current = [e for e in feature["explanations"] if e["current"] and e["kind"] == "explanation"]
    assert [e["text"] for e in current] == [written.explanations[3]]
    assert current[0]["scores"] == pytest.approx(written.scores[3], rel=1e-3)
    assert current[0]["model"] == EXPLAINER.model and current[0]["backend"] == "openai"
    older = [e for e in feature["explanations"] if not e["current"]]
    assert [e["text"] for e in older] == [written.older[3]]
    assert api.get(f"{BASE}/features/4/panels").json()["features"][0]["explanations"] == []


def test_the_browser_sorts_and_filters_by_every_interp_score(api, written):
    assert set(INTERP) <= set(api.get(f"{BASE}/summary").json()["score_names"])
    for scorer in INTERP:
        listed = api.get(f"{BASE}/features", params={"sort_by": scorer}).json()
        expected = sorted(written.scores, key=lambda f: written.scores[f][scorer], reverse=True)
        assert [r["feature"] for r in listed["items"]] == expected
        assert [r["scores"][scorer] for r in listed["items"]] == pytest.approx(
            [written.scores[f][scorer] for f in expected]
        )
    kept = api.get(f"{BASE}/features", params={"range": "detection:0.7:", "sort_by": "max_act"})
    assert sorted(r["feature"] for r in kept.json()["items"]) == [3, 9]
    both = api.get(
        f"{BASE}/features", params=[("range", "detection:0.7:"), ("range", "simulation::0.5")]
    )
    assert [r["feature"] for r in both.json()["items"]] == [3]
    # every row carries its label and every score, null where it has none
    rows = api.get(f"{BASE}/features", params={"sort_by": "feature", "limit": D_SAE}).json()
    by_id = {r["feature"]: r for r in rows["items"]}
    assert by_id[9]["label"] == written.labels[9] and by_id[5]["label"] is None
    assert {s: by_id[4]["scores"][s] for s in INTERP} == dict.fromkeys(INTERP)
    assert {s: by_id[5]["scores"][s] for s in INTERP} == pytest.approx(written.scores[5])
    # the analysis's own scores are there too
    names = api.get(f"{BASE}/summary").json()["score_names"]
    assert set(by_id[4]["scores"]) == set(names) > set(INTERP)


def test_a_bad_range_names_the_field_and_the_form(api):
    for bad in ("detection", "detection:x:1", "detection:nan:", ":0:1"):
        answer = api.get(f"{BASE}/features", params={"range": bad})
        assert answer.status_code == 422, bad
        assert "range" in answer.json()["detail"] and "NAME:LOW:HIGH" in answer.json()["detail"]
    unknown = api.get(f"{BASE}/features", params={"range": "nonsense:0:1"})
    assert unknown.status_code == 422 and "detection" in unknown.json()["detail"]


def test_search_finds_explanation_and_label_words(api, written):
    for words, feature in (("running prose", 3), ("Punctuation", 9), ("keywords such", 5)):
        found = api.get("/api/search", params={"q": words, "sae_id": SAE_ID}).json()["results"]
        assert feature in [r["feature"] for r in found], words
        hit = next(r for r in found if r["feature"] == feature)
        assert hit["label"] == written.labels.get(feature)


def test_overview_and_sae_list_sum_up_the_interp_scores(api, written):
    summary = api.get(f"{BASE}/summary").json()
    assert summary["n_explained"] == len(written.explanations)
    for scorer in INTERP:
        held = summary["interp_scores"][scorer]
        values = [written.scores[f][scorer] for f in written.scores]
        assert held["n"] == len(values)
        assert held["mean"] == pytest.approx(sum(values) / len(values))
        assert sum(held["histogram"]["counts"]) == len(values)
        assert len(held["histogram"]["edges"]) == len(held["histogram"]["counts"]) + 1
    brief = api.get("/api/saes").json()[0]
    assert brief["n_explained"] == len(written.explanations)
    assert brief["interp_means"] == pytest.approx(
        {s: summary["interp_scores"][s]["mean"] for s in INTERP}
    )


def wait_map(client: TestClient) -> dict:
    deadline = time.monotonic() + 60
    while (answer := client.get(f"{BASE}/map")).status_code == 202:
        assert time.monotonic() < deadline, "the map took over 60 s"
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_map_labels_follow_a_new_explanation_without_a_restart(explained_run, written, tmp_path):
    run = tmp_path / "run"  # its own copy: the test writes to it while serving
    shutil.copytree(explained_run[0], run)
    app = create_app(run, live=False, warm=False)
    with TestClient(app, base_url=LOCAL) as client:
        labels = wait_map(client)["labels"]
        assert len(labels) == D_SAE
        assert labels[3] == written.labels[3] and labels[9] == written.labels[9]
        assert labels[5] == written.explanations[5]  # no label: the explanation's start
        assert labels[4] is None
        client.get(f"{BASE}/features/5/panels")  # cached before the write
        client.get(f"{BASE}/features", params={"sort_by": "feature", "limit": D_SAE})
        with open_store(run / "features.db", create=False) as store:
            store.add_explanation(SAE_ID, 4, "quotation marks", kind="label")
            store.set_explanation(SAE_ID, 5, "newly written words " * 10)
        time.sleep(CHECK_WRITES_EVERY_S + 0.3)
        labels = wait_map(client)["labels"]
        assert labels[4] == "quotation marks"
        assert labels[5].startswith("newly written words") and labels[5].endswith("…")
        assert len(labels[5]) <= 81
        page = client.get(f"{BASE}/features/5/panels").json()["features"][0]
        assert page["explanation"].startswith("newly written words")
        assert page["explanations"][0]["backend"] == "manual"
        listed = client.get(
            f"{BASE}/features", params={"sort_by": "feature", "limit": D_SAE}
        ).json()
        by_id = {r["feature"]: r for r in listed["items"]}
        assert by_id[5]["explanation"].startswith("newly written words")
        assert by_id[4]["label"] == "quotation marks"
