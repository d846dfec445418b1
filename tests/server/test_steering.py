"""Steered generation on the real SmolLM2 with the run's SAE, and the steering endpoint."""

from __future__ import annotations

import pytest
import torch

from saescope.errors import ConfigError
from saescope.inference.steering import MAX_NEW_TOKENS, steer
from tests.server.viewer_run import SAE_ID

PROMPT = "The weather today is"


def plain_greedy(model, prompt: str, n: int) -> list[int]:
    """Greedy continuation by full forwards, no hooks, no cache: what unsteered must equal."""
    tokens = model.to_tokens(prompt)
    out = []
    for _ in range(n):
        next_id = int(model.forward(tokens)[0, -1].argmax())
        out.append(next_id)
        tokens = torch.cat([tokens, torch.tensor([[next_id]])], dim=1)
        if next_id == model.tokenizer.eos_token_id:
            break
    return out


def test_unsteered_is_the_models_own_greedy_continuation(smollm2, sae):
    result = steer(smollm2, sae, PROMPT, feature=5, mode="clamp", value=60.0, max_new_tokens=8)
    assert result.unsteered.token_ids == plain_greedy(smollm2, PROMPT, 8)
    assert result.unsteered.text == smollm2.tokenizer.decode(result.unsteered.token_ids)


def test_a_strong_clamp_changes_the_continuation(smollm2, sae):
    result = steer(smollm2, sae, PROMPT, feature=5, mode="clamp", value=200.0, max_new_tokens=8)
    assert result.steered.token_ids != result.unsteered.token_ids
    assert len(result.steered.token_ids) <= 8 and result.hook_point == sae.cfg.hook_name


def test_scaling_by_one_changes_nothing(smollm2, sae):
    result = steer(smollm2, sae, PROMPT, feature=5, mode="scale", value=1.0, max_new_tokens=6)
    assert result.steered.token_ids == result.unsteered.token_ids


def test_steered_equals_a_full_forward_with_the_same_replacement(smollm2, sae):
    """The KV-cached generation steers exactly what run_with_replacement would."""
    from saescope.inference.steering import steering_fn

    result = steer(smollm2, sae, PROMPT, feature=5, mode="clamp", value=200.0, max_new_tokens=5)
    tokens = smollm2.to_tokens(PROMPT).repeat(2, 1)
    fn = steering_fn(sae, 5, "clamp", 200.0)
    for expected in result.steered.token_ids:
        logits = smollm2.run_with_replacement(tokens, {sae.cfg.hook_name: fn})
        assert int(logits[0, -1].argmax()) == expected
        tokens = torch.cat([tokens, torch.tensor([[expected], [expected]])], dim=1)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"feature": 64}, "feature"),
        ({"feature": -1}, "feature"),
        ({"mode": "add"}, "mode"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": MAX_NEW_TOKENS + 1}, "max_new_tokens"),
        ({"value": float("nan")}, "value"),
    ],
)
def test_bad_arguments_name_the_field(smollm2, sae, kwargs, field):
    with pytest.raises(ConfigError) as err:
        steer(smollm2, sae, PROMPT, **{"feature": 5, **kwargs})
    assert err.value.field == field


def test_steer_endpoint_returns_both_continuations(client):
    body = client.post(
        f"/api/saes/{SAE_ID}/steer",
        json={"prompt": PROMPT, "feature": 5, "mode": "clamp", "value": 200, "max_new_tokens": 6},
    ).json()
    assert body["feature"] == 5 and body["mode"] == "clamp"
    assert body["steered"]["token_ids"] != body["unsteered"]["token_ids"]
    assert body["prompt_tokens"][1:] and "".join(body["prompt_tokens"][1:]) == PROMPT


@pytest.mark.parametrize(
    "payload",
    [
        {"prompt": PROMPT, "feature": 5, "max_new_tokens": MAX_NEW_TOKENS + 1},
        {"prompt": PROMPT, "feature": 5, "mode": "add"},
        {"prompt": PROMPT, "feature": -3},
        {"feature": 5},
    ],
)
def test_steer_endpoint_bad_input_is_422(client, payload):
    response = client.post(f"/api/saes/{SAE_ID}/steer", json=payload)
    assert response.status_code == 422 and response.json()["detail"]


def test_steer_endpoint_unknown_feature_is_404(client):
    assert (
        client.post(f"/api/saes/{SAE_ID}/steer", json={"prompt": PROMPT, "feature": 64}).status_code
        == 404
    )
