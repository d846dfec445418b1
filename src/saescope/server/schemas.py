"""The JSON the viewer's API answers, as pydantic models: they make the OpenAPI schema
(/openapi.json) describe every response, and web/src/api/schema.d.ts is generated from that
schema (`npm run api-types` in web/), so the web code reads typed responses.

Most routes answer pre-encoded bytes from the page cache; their model documents the shape
without re-validating it. `DashboardData` and its parts are the dashboards' compact encoding
(saescope.dashboards.data, which tabulates the one-letter keys).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A response shape with exactly these keys (the dashboard encoding is checked against it)."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A response shape with at least these keys (stored records may carry more)."""

    model_config = ConfigDict(extra="allow")


# --- errors -------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """Every error answer: what was wrong, naming the field, the value and what is accepted."""

    detail: str


class Problem(BaseModel):
    type: str
    loc: list[str | int] = Field(description="where: body / query / path, then the field")
    msg: str


class InvalidRequest(ErrorDetail):
    """422: the request did not validate; `detail` has one readable line per problem."""

    errors: list[Problem] = Field(default_factory=list)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a router's routes."""
    meaning = {
        400: "the request cannot be answered",
        404: "no such SAE or feature",
        409: "live inference is off for this SAE, or the worker is gone",
        413: "the text is over the limits (/api/limits)",
        422: "a parameter or the body did not validate",
    }
    return {
        code: {
            "model": InvalidRequest if code == 422 else ErrorDetail,
            "description": meaning[code],
        }
        for code in statuses
    }


# --- health and limits --------------------------------------------------------------------


class Warming(BaseModel):
    done: int = Field(description="feature pages warmed so far")
    total: int = Field(description="feature pages the warm-up means to fill")
    finished: bool


class LiveHealth(BaseModel):
    state: Literal["ok", "restarting", "down"] = Field(
        description="ok; restarting (the worker died and is started again); down (given up)"
    )
    restarts: int = Field(description="times the worker was restarted after it died")
    last_exit: int | None = Field(description="exit code of the last worker that died")
    waiting: int = Field(description="live requests queued or running")
    detail: str | None = Field(description="why it is not ok")


class Health(BaseModel):
    ok: bool
    live: LiveHealth | None = Field(None, description="the inference worker; null: no live")
    saes: int = Field(description="SAEs in the store")
    cached: int = Field(description="responses held in the page cache")
    cached_mb: float
    warming: Warming


class Limits(BaseModel):
    max_text_chars: int
    max_text_tokens: int = Field(description="tokens of a live text, its BOS included")
    max_new_tokens: int = Field(description="the most tokens a steered continuation generates")
    steer_modes: list[str]


# --- SAEs -----------------------------------------------------------------------------------


class SaeBrief(Open):
    sae_id: str
    d_sae: int
    d_in: int
    n_tokens: int = Field(description="tokens the analysis read")
    model: str | None
    hook_point: str | None
    architecture: str | None
    written_at: str = Field(description="when the store last wrote this SAE (ISO 8601)")
    evals: dict[str, float | None] = Field(
        description="eval name -> value (L0, FVU, CE loss recovered…)"
    )
    live: bool = Field(description="live inference is on for this SAE")
    interp_means: dict[str, float | None] = Field(
        default_factory=dict,
        description="interp scorer -> its mean over the current explanations (the SAE list)",
    )
    n_explained: int = Field(0, description="features with an explanation")


class DensityHistogram(BaseModel):
    log10_edges: list[float]
    counts: list[int]
    n_dead: int
    n_features: int


class ScoreHistogram(BaseModel):
    edges: list[float] = Field(description="bin edges (one more than counts)")
    counts: list[int]


class InterpScoreSummary(BaseModel):
    """One interp scorer over an SAE's current explanations."""

    n: int = Field(description="current explanations with a value of this score")
    mean: float | None
    histogram: ScoreHistogram


class SaeSummary(SaeBrief):
    info: dict[str, Any] = Field(description="the SAE's record: config, analysis settings")
    corpus: dict[str, Any] = Field(description="the corpus the analysis read")
    quantile_levels: list[float]
    score_names: list[str] = Field(description="stored per-feature scores (sortable)")
    interp_scores: dict[str, InterpScoreSummary] = Field(
        default_factory=dict,
        description="scorer (detection, fuzzing, simulation…) -> its distribution over the "
        "current explanations",
    )
    density_histogram: DensityHistogram
    live_unavailable: str | None = Field(description="why live inference is off, when it is")
    has_training_curves: bool


# --- features -------------------------------------------------------------------------------


class FeatureRow(Open):
    """One feature of a list; a score the list is sorted by is one more key, named after it."""

    feature: int
    density: float
    max_act: float
    mean_act: float
    explanation: str | None
    label: str | None = Field(None, description="the current short label (1-6 words)")
    scores: dict[str, float | None] = Field(
        default_factory=dict,
        description="every stored score of the feature (score_names: analysis and interp scores)",
    )


class FeatureList(BaseModel):
    sae_id: str
    sort_by: str
    descending: bool
    total: int = Field(description="features that pass the filters")
    offset: int
    limit: int
    items: list[FeatureRow]


class Explainer(BaseModel):
    backend: str = Field(description='"openai", "transformers", or "manual" (set by hand)')
    model: str
    prompt_format: str | None
    prompt_version: int | None


class InterpScore(Open):
    """One score of an explanation (its predictions: GET .../explanation-scores/{id})."""

    id: int
    scorer: str = Field(description="detection, fuzzing, simulation or another scorer")
    value: float | None = Field(
        description="the headline: balanced accuracy (detection, fuzzing) or Pearson r (simulation)"
    )
    metrics: dict[str, Any]
    n_predictions: int
    created_at: str


class ExplanationScore(Open):
    """One interp score with everything it was computed from, so it can be recomputed."""

    id: int
    explanation_id: int
    sae_id: str
    feature: int
    explanation: str | None = Field(description="the text the score is of")
    scorer: str
    value: float | None
    metrics: dict[str, Any] = Field(
        description="accuracy, precision, recall, f1, balanced_accuracy, auc, tp/fp/tn/fn; "
        "pearson (simulation)"
    )
    predictions: list[dict[str, Any]] = Field(
        description="per example shown: its reference, the truth, the answer (and the "
        "probability, or the simulated activations)"
    )
    prompt_version: int
    prompt_tokens: int
    completion_tokens: int
    created_at: str


class ExplanationRecord(Open):
    """One explanation (or short label) of a feature, with its explainer and scores."""

    id: int
    kind: str = Field(description='"explanation" or "label" (the 1-6 word short label)')
    text: str | None
    status: str
    current: bool
    explainer: Explainer
    created_at: str
    prompt_tokens: int
    completion_tokens: int
    scores: list[InterpScore]


class FeaturePage(Open):
    """One feature's full stored page: statistics, histograms, logit tables, tables of
    related features, and every example window (tokens as text)."""

    sae_id: str
    feature: int
    density: float
    max_act: float
    mean_act: float
    explanation: str | None
    label: str | None = Field(None, description="the current short label")
    explanations: list[ExplanationRecord] = Field(
        default_factory=list, description="every explanation and label: current first, then newest"
    )
    scores: dict[str, float | None]
    act_hist: dict[str, Any]
    quantiles: dict[str, Any]
    logits: dict[str, Any]
    neighbours: list[dict[str, Any]]
    cofiring: list[dict[str, Any]]
    neurons: list[dict[str, Any]] | None
    examples: dict[str, list[dict[str, Any]]] = Field(description="kind -> example windows")


class SearchResult(BaseModel):
    sae_id: str
    feature: int
    field: str = Field(
        description="where the text was found: explanation, label, top_tokens, context"
    )
    snippet: str
    density: float
    max_act: float
    explanation: str | None
    label: str | None = Field(None, description="the feature's current short label")


class SearchResults(BaseModel):
    q: str
    results: list[SearchResult]


# --- training and the map -----------------------------------------------------------------


class TrainingRecords(BaseModel):
    records: list[dict[str, Any]] = Field(
        description='metrics.jsonl records of kind "train" (tokens, loss, fvu, l0, …)'
    )


class FeatureMap(BaseModel):
    sae_id: str
    method: str = Field(description="the projection: umap, or pca for small SAEs")
    x: list[float] = Field(description="per feature, in [0, 1]")
    y: list[float]
    density: list[float]
    labels: list[str | None] = Field(
        default_factory=list,
        description="per feature: its short label, else the start of its explanation, else null",
    )


class MapComputing(BaseModel):
    sae_id: str
    status: Literal["computing"]


class MapFailed(BaseModel):
    sae_id: str
    error: str


# --- live inference -----------------------------------------------------------------------


class TokenFeature(BaseModel):
    feature: int
    act: float


class PeakFeature(BaseModel):
    feature: int
    max_act: float


class TokenActs(BaseModel):
    sae_id: str
    token_ids: list[int]
    tokens: list[str]
    top_features: list[list[TokenFeature]] = Field(description="per token, its top k features")
    features_by_max_act: list[PeakFeature]


class FeatureActs(BaseModel):
    sae_id: str
    feature: int
    token_ids: list[int]
    tokens: list[str]
    acts: list[float] = Field(description="the feature's activation per token")
    max_act: float


class Continuation(BaseModel):
    text: str = Field(description="the generated text alone (the prompt not included)")
    token_ids: list[int]
    tokens: list[str]


class SteerResult(BaseModel):
    sae_id: str
    prompt: str
    prompt_tokens: list[str]
    hook_point: str
    feature: int
    mode: str
    value: float
    steered: Continuation
    unsteered: Continuation


# --- the dashboards' compact encoding (saescope.dashboards.data) --------------------------


PanelName = Literal["table", "act_hist", "logit_hist", "logits", "top", "quantiles"]


class Layout(Strict):
    panels: list[PanelName]
    n_top: int = Field(description="top-activating contexts shown")
    n_per_group: int = Field(description="contexts shown per quantile group")
    n_logits: int = Field(description="rows of each logit table")
    n_table: int = Field(description="rows of the neighbour / co-firing / neuron tables")


class SaeInfo(Strict):
    sae_id: str
    model: str | None
    hook_point: str | None
    architecture: str | None
    d_sae: int
    d_in: int
    n_tokens: int
    quantile_levels: list[float]
    neuronpedia_id: str | None = Field(
        default=None,
        description="published SAEs: a feature's page is neuronpedia.org/<id>/<feature>",
    )


class Context(Strict):
    """One context window; arrays are per position."""

    t: list[int] = Field(description="tokens (vocab indices)")
    a: list[float] = Field(description="the feature's activation")
    c: int = Field(description="position the context was chosen for")
    l: list[float] | None = Field(  # noqa: E741 (the encoding's key)
        None, description="effect on the next token's log-prob (direct path)"
    )
    b: list[list[int]] | None = Field(None, description="top boosted tokens (vocab indices)")
    bv: list[list[float]] | None = Field(None, description="their logit effects")
    s: list[list[int]] | None = Field(None, description="top suppressed tokens (vocab indices)")
    sv: list[list[float]] | None = Field(None, description="their logit effects")


class QuantileGroup(Strict):
    interval: int
    lo: float = Field(description="activation range of the interval")
    hi: float
    share: float | None = Field(
        description="fraction of the non-zero activations in the range (from the histogram)"
    )
    contexts: list[Context]


class Ranked(Strict):
    f: list[int] = Field(description="feature (or neuron) ids")
    v: list[float] = Field(description="their values")


class LogitTable(Strict):
    t: list[int] = Field(description="tokens (vocab indices)")
    v: list[float] = Field(description="logit effects")


class ActHist(Strict):
    counts: list[int]
    max: float = Field(description="the histogram spans 0..max")


class LogitHist(Strict):
    counts: list[int]
    lo: float
    hi: float


class ExplanationData(Strict):
    """One explanation or label of a feature as the panels show it."""

    kind: str = Field(description='"explanation" or "label"')
    text: str
    current: bool
    backend: str = Field(description='the explainer\'s backend ("manual": set by hand)')
    model: str
    prompt_format: str | None
    created_at: str
    scores: dict[str, float | None] = Field(
        description="scorer -> headline value: balanced accuracy (detection, fuzzing), "
        "Pearson r (simulation)"
    )


class FeatureData(Strict):
    id: int
    density: float
    max_act: float
    mean_act: float
    explanation: str | None
    label: str | None = Field(description="the current short label (1-6 words)")
    explanations: list[ExplanationData] = Field(
        description="the explanations and labels: current first, then newest"
    )
    scores: dict[str, float]
    act_hist: ActHist
    logit_hist: LogitHist
    logits_top: LogitTable
    logits_bottom: LogitTable
    quantiles: list[float] = Field(description="activation at SaeInfo.quantile_levels")
    neighbours: Ranked
    cofiring: Ranked
    neurons: Ranked | None
    top: list[Context]
    groups: list[QuantileGroup]


class PromptRow(Strict):
    """One ranked feature at a prompt position."""

    f: int = Field(description="feature id")
    act: float
    quantile: float | None = Field(
        description="quantile of `act` among the feature's stored non-zero activations"
    )
    loss: float | None = Field(
        description="effect on the next token's log-prob (positive: the feature helps)"
    )


class PromptRankings(Strict):
    act: list[PromptRow]
    quantile: list[PromptRow]
    loss: list[PromptRow]


class PromptData(Strict):
    text: str
    tokens: list[int] = Field(description="vocab indices")
    top: list[Ranked] = Field(description="per position: the most active features")
    rankings: list[PromptRankings] = Field(description="per position")
    position: int = Field(description="the position shown first")
    bos: bool = Field(description="the first token is the BOS the model's tokenizer put there")


class DashboardData(Strict):
    """What a dashboard embeds and the panels render (one feature, or a prompt's page)."""

    version: Literal[1]
    title: str
    sae: SaeInfo
    layout: Layout
    vocab: list[str] = Field(description="the strings of the tokens used; token ids index it")
    features: list[FeatureData]
    prompt: PromptData | None
