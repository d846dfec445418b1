"""Live inference: the limits of a live text, and the endpoints that run the model (each a
typed command for the inference worker, saescope.server.engine)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from saescope.inference.steering import MAX_NEW_TOKENS, STEER_MODES
from saescope.server.engine import (
    MAX_TEXT_CHARS,
    MAX_TEXT_TOKENS,
    OneFeature,
    PromptPage,
    Steer,
    TopFeatures,
)
from saescope.server.routes.common import (
    MAX_ID,
    brief_of,
    check_feature,
    json_bytes,
    run_live,
)
from saescope.server.schemas import (
    DashboardData,
    FeatureActs,
    Limits,
    SteerResult,
    TokenActs,
    error_responses,
)

router = APIRouter(tags=["live"])


# Over MAX_TEXT_CHARS a text is refused by validation (413), before it reaches the worker.
class TextRequest(BaseModel):
    text: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="the text to run through the model (limits: see /api/limits)",
    )


class TopFeaturesRequest(TextRequest):
    k: int = Field(8, ge=1, le=64, description="features listed per token")


class PromptRequest(TextRequest):
    position: int | None = Field(
        None, ge=-MAX_ID, le=MAX_ID, description="token shown first (default: the last but one)"
    )
    n_rows: int = Field(10, ge=1, le=50, description="features in each ranking")


class SteerRequest(BaseModel):
    prompt: str = Field(max_length=MAX_TEXT_CHARS)
    feature: int = Field(ge=0, le=MAX_ID)
    mode: Literal["clamp", "scale"] = "clamp"
    value: float = Field(10.0, allow_inf_nan=False)
    max_new_tokens: int = Field(24, ge=1, le=MAX_NEW_TOKENS)


@router.get("/api/limits")
def limits() -> Limits:
    return Limits(
        max_text_chars=MAX_TEXT_CHARS,
        max_text_tokens=MAX_TEXT_TOKENS,
        max_new_tokens=MAX_NEW_TOKENS,
        steer_modes=list(STEER_MODES),
    )


# The longer path first: routes match in order and sae_id may hold slashes.
@router.post(
    "/api/saes/{sae_id:path}/features/{feature}/activations",
    response_model=FeatureActs,
    responses=error_responses(400, 404, 409, 413, 422),
)
async def feature_activations(
    request: Request, sae_id: str, feature: int, body: TextRequest
) -> Response:
    """One feature's activation on every token of the text."""
    check_feature(request, sae_id, feature)
    return json_bytes(await run_live(request, OneFeature(sae_id, feature, body.text)))


@router.post(
    "/api/saes/{sae_id:path}/activations",
    response_model=TokenActs,
    responses=error_responses(400, 404, 409, 413, 422),
)
async def activations(request: Request, sae_id: str, body: TopFeaturesRequest) -> Response:
    """Per token of the text, its most active features."""
    brief_of(request, sae_id)
    return json_bytes(await run_live(request, TopFeatures(sae_id, body.text, body.k)))


@router.post(
    "/api/saes/{sae_id:path}/prompt",
    response_model=DashboardData,
    responses=error_responses(400, 404, 409, 413, 422),
)
async def prompt(request: Request, sae_id: str, body: PromptRequest) -> Response:
    """The prompt-centric page: at every token the features ranked by activation, by
    activation quantile (against the stored analysis) and by effect on the next token."""
    brief_of(request, sae_id)
    command = PromptPage(sae_id, body.text, body.position, body.n_rows)
    return json_bytes(await run_live(request, command))


@router.post(
    "/api/saes/{sae_id:path}/steer",
    response_model=SteerResult,
    responses=error_responses(400, 404, 409, 413, 422),
)
async def steer(request: Request, sae_id: str, body: SteerRequest) -> Response:
    """Greedy continuations of the prompt with the feature clamped or scaled, and without."""
    check_feature(request, sae_id, body.feature)
    command = Steer(sae_id, body.prompt, body.feature, body.mode, body.value, body.max_new_tokens)
    return json_bytes(await run_live(request, command))
