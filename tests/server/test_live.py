"""Live endpoints: the real SmolLM2 and the run's SAE, checked against a direct computation;
bad input; and concurrent requests through a real uvicorn server on loopback."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from saescope.server.engine import MAX_TEXT_TOKENS
from tests.server.viewer_run import D_SAE, SAE_ID, TEXTS, direct_acts

BASE = f"/api/saes/{SAE_ID}"


def test_top_features_per_token_match_a_direct_computation(client, smollm2, sae):
    body = client.post(f"{BASE}/activations", json={"text": TEXTS[0], "k": 4}).json()
    acts = direct_acts(smollm2, sae, TEXTS[0])
    assert body["token_ids"] == smollm2.to_tokens(TEXTS[0])[0].tolist()
    assert "".join(body["tokens"][1:]) == TEXTS[0]
    for position, row in enumerate(body["top_features"]):
        values, ids = acts[position].topk(4)
        assert [r["feature"] for r in row] == [
            i for i, v in zip(ids.tolist(), values.tolist(), strict=True) if v > 0
        ]
        assert [r["act"] for r in row] == pytest.approx(
            [v for v in values.tolist() if v > 0], rel=1e-4
        )
    peaks = [r["max_act"] for r in body["features_by_max_act"]]
    assert peaks == sorted(peaks, reverse=True) and peaks[0] == pytest.approx(
        float(acts.max()), rel=1e-4
    )


def test_one_feature_over_a_text(client, smollm2, sae):
    acts = direct_acts(smollm2, sae, TEXTS[1])
    feature = int(acts[1:].max(dim=0).values.argmax())  # a feature that fires on this text
    body = client.post(f"{BASE}/features/{feature}/activations", json={"text": TEXTS[1]}).json()
    assert body["feature"] == feature and len(body["acts"]) == len(body["tokens"])
    assert body["acts"] == pytest.approx(acts[:, feature].tolist(), rel=1e-4, abs=1e-4)


def test_prompt_page_ranks_features_at_every_token(client, smollm2):
    data = client.post(f"{BASE}/prompt", json={"text": TEXTS[2], "n_rows": 5}).json()
    prompt = data["prompt"]
    n = smollm2.to_tokens(TEXTS[2]).shape[1]
    assert len(prompt["tokens"]) == len(prompt["rankings"]) == n
    ranking = prompt["rankings"][prompt["position"]]
    acts = [row["act"] for row in ranking["act"]]
    assert acts and acts == sorted(acts, reverse=True) and len(acts) <= 5
    assert all(0 <= row["quantile"] <= 1 for row in ranking["quantile"])
    assert ranking["loss"] and all(row["loss"] is not None for row in ranking["loss"])
    shown = {f["id"] for f in data["features"]}
    assert {
        row["f"] for row in ranking["act"]
    } <= shown  # the panels of every ranked feature come along


def test_text_over_the_token_limit_is_413_saying_the_limit(client):
    response = client.post(f"{BASE}/activations", json={"text": "word " * (MAX_TEXT_TOKENS + 10)})
    assert response.status_code == 413
    assert f"the limit is {MAX_TEXT_TOKENS} tokens" in response.json()["detail"]
    response = client.post(f"{BASE}/steer", json={"prompt": "x" * 10_000, "feature": 1})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert client.post(f"{BASE}/activations", json={"text": "still serving"}).status_code == 200


@pytest.mark.parametrize(
    "content", [b"{not json", b"", b"[1, 2]", b'{"txt": "typo"}', b'{"text": 5}']
)
def test_malformed_bodies_are_422_and_the_server_keeps_serving(client, content):
    response = client.post(
        f"{BASE}/activations", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["detail"]
    assert client.post(f"{BASE}/activations", json={"text": "fine"}).status_code == 200


def test_live_requests_for_unknown_sae_or_feature_are_404(client):
    assert client.post("/api/saes/nope/activations", json={"text": "a"}).status_code == 404
    response = client.post(f"{BASE}/features/{D_SAE}/activations", json={"text": "a"})
    assert response.status_code == 404 and f"0..{D_SAE - 1}" in response.json()["detail"]


def test_feature_map_covers_every_feature(client):
    for _ in range(200):
        response = client.get(f"{BASE}/map")
        if response.status_code != 202:
            break
        threading.Event().wait(0.1)
    body = response.json()
    assert response.status_code == 200, body
    assert len(body["x"]) == len(body["y"]) == len(body["density"]) == D_SAE
    assert body["method"] == "pca"  # 64 features: below UMAP's minimum
    assert min(body["x"]) == 0 and max(body["x"]) == 1


def test_concurrent_clients_get_their_own_results(live_server, smollm2, sae):
    """Six clients at once on a real server: each answer is the one for its own text."""

    def ask(text: str) -> tuple[str, list[float]]:
        with httpx.Client(base_url=live_server, timeout=120) as http:
            body = http.post(f"{BASE}/features/5/activations", json={"text": text}).json()
        return text, body["acts"]

    with ThreadPoolExecutor(len(TEXTS)) as pool:
        answers = list(pool.map(ask, TEXTS * 2))
    for text, acts in answers:
        assert acts == pytest.approx(
            direct_acts(smollm2, sae, text)[:, 5].tolist(), rel=1e-4, abs=1e-4
        )
