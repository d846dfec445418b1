"""Dashboards as objects: build one from the store (feature-centric or prompt-centric), write it
as a self-contained HTML file, or display it inline in Jupyter."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from saescope.dashboards.data import VocabTable, dashboard_data, prompt_row, ranked_values
from saescope.dashboards.html import render_html
from saescope.dashboards.layout import Layout
from saescope.dashboards.sources import (
    StoreLike,
    check_feature_ids,
    opened_store,
    resolve_sae_id,
    run_dir_of,
)
from saescope.errors import ConfigError, SaescopeError
from saescope.fileio import atomic_write
from saescope.inference import PromptRow, PromptRun, QuantileTable, run_prompt
from saescope.runs.layout import sae_dir


class Dashboard:
    """A rendered dashboard: `.html` (the whole page), `.data` (what the panels receive),
    `.save(path)`; `compress`: gzip the embedded data (default: when it is over 1 MB); Jupyter shows it inline (in an iframe, so its script and styles stay apart
    from the notebook's)."""

    def __init__(self, data: dict[str, Any], compress: bool | None = None) -> None:
        self.data = data
        self.html = render_html(data, compress)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write(path, lambda tmp: tmp.write_text(self.html, encoding="utf-8"))
        return path

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" style="width:100%;height:820px;'
            'border:1px solid #ddd" sandbox="allow-scripts"></iframe>'
        )

    def __repr__(self) -> str:
        return f"Dashboard({self.data['title']!r}, {len(self.data['features'])} features)"


def feature_dashboard(
    store_or_run: StoreLike,
    sae_id: str | None,
    feature_ids: list[int],
    layout: Layout | None = None,
    title: str | None = None,
    compress: bool | None = None,
) -> Dashboard:
    """The feature-centric dashboard of some features of one SAE (a selector moves between them)."""
    layout = (layout or Layout()).validate()
    with opened_store(store_or_run) as store:
        sae_id = resolve_sae_id(store, sae_id)
        ids = check_feature_ids(store, sae_id, list(feature_ids))
        summary = store.sae_summary(sae_id)
        pages = list(store.iter_features(sae_id, ids))
    return Dashboard(
        dashboard_data(title or f"{sae_id}: {len(pages)} features", summary, pages, layout),
        compress,
    )


def write_dashboard(
    store_or_run: StoreLike,
    sae_id: str | None,
    feature_ids: list[int],
    out_path: str | Path,
    layout: Layout | None = None,
    title: str | None = None,
    compress: bool | None = None,
) -> Path:
    """Write the feature-centric dashboard of `feature_ids` to `out_path`; returns the path."""
    return feature_dashboard(store_or_run, sae_id, feature_ids, layout, title, compress).save(
        out_path
    )


def prompt_dashboard(
    store_or_run: StoreLike,
    sae_id: str | None,
    prompt: str,
    model: Any = None,
    sae: Any = None,
    position: int | None = None,
    n_rows: int = 10,
    layout: Layout | None = None,
    compress: bool | None = None,
) -> Dashboard:
    """The prompt-centric dashboard: the prompt's tokens and, at each token, the features ranked
    by activation, activation quantile and effect on the next token; the panels of every
    ranked feature come along.

    model: a HookedModel or a load_model spec (default: the model the store names); sae: an
    SAE or a path (default: the SAE's recorded source, or the run directory's sae/)."""
    return Dashboard(
        prompt_dashboard_data(store_or_run, sae_id, prompt, model, sae, position, n_rows, layout)
    )


def prompt_dashboard_data(
    store_or_run: StoreLike,
    sae_id: str | None,
    prompt: str,
    model: Any = None,
    sae: Any = None,
    position: int | None = None,
    n_rows: int = 10,
    layout: Layout | None = None,
) -> dict[str, Any]:
    """What the prompt-centric dashboard's panels receive (DashboardData), without the HTML:
    the web viewer's prompt page renders it."""
    from saescope.sae.with_model import load_sae_with_model

    layout = (layout or Layout()).validate()
    with opened_store(store_or_run) as store:
        sae_id = resolve_sae_id(store, sae_id)
        summary = store.sae_summary(sae_id)
        on = load_sae_with_model(
            _sae(sae, summary, store_or_run), _model(model, summary), summary.get("hook_point")
        )
        run = run_prompt(on.model, on.sae, prompt, hook_point=on.hook)
        position = _position(position, len(run))
        quantiles = QuantileTable.from_store(store, sae_id)
        rankings = [run.rank_at(i, quantiles, n_rows) for i in range(len(run))]
        shown = sorted(
            {
                row.feature
                for r in rankings
                for rows in (r.by_act, r.by_quantile, r.by_effect)
                for row in rows
            }
        )
        pages = list(store.iter_features(sae_id, shown))
    vocab = VocabTable()
    prompt_data = _prompt_data(run, rankings, position, vocab)
    short = prompt if len(prompt) <= 60 else prompt[:57] + "…"
    return dashboard_data(f"Prompt: {short}", summary, pages, layout, vocab, prompt_data)


def write_prompt_dashboard(
    store_or_run: StoreLike,
    sae_id: str | None,
    prompt: str,
    out_path: str | Path,
    model: Any = None,
    sae: Any = None,
    position: int | None = None,
    n_rows: int = 10,
    layout: Layout | None = None,
    compress: bool | None = None,
) -> Path:
    """Write the prompt-centric dashboard to `out_path`; returns the path."""
    return prompt_dashboard(
        store_or_run, sae_id, prompt, model, sae, position, n_rows, layout, compress
    ).save(out_path)


def _prompt_data(
    run: PromptRun, rankings: list, position: int, vocab: VocabTable
) -> dict[str, Any]:
    top_ids, top_acts = run.top_features(5)

    def rows(items: list[PromptRow]) -> list[dict[str, Any]]:
        return [prompt_row(r.feature, r.act, r.quantile, r.logprob_effect) for r in items]

    top = []
    for ids, acts in zip(top_ids.tolist(), top_acts.tolist(), strict=True):
        keep = [i for i, f in enumerate(ids) if f >= 0]
        top.append(ranked_values([ids[i] for i in keep], [acts[i] for i in keep]))
    return {
        "text": run.text or "",
        "tokens": vocab.ids(run.tokens),
        "top": top,
        "rankings": [
            {"act": rows(r.by_act), "quantile": rows(r.by_quantile), "loss": rows(r.by_effect)}
            for r in rankings
        ],
        "position": position,
        "bos": run.text is not None
        and run.token_ids[0] == getattr(run.model.tokenizer, "bos_token_id", None),
    }


def _position(position: int | None, n: int) -> int:
    """Default: the last token that has a next token (so its effects are defined)."""
    if position is None:
        return max(0, n - 2)
    at = position + n if position < 0 else position
    if not 0 <= at < n:
        raise ConfigError(
            "token", position, f"a token position in 0..{n - 1} (or -{n}..-1 from the end)"
        )
    return at


def _model(model: Any, summary: dict[str, Any]) -> Any:
    from saescope.models import HookedModel, load_model

    if isinstance(model, HookedModel):
        return model
    spec = model or summary.get("model")
    if not spec:
        raise SaescopeError(
            f"model: the store does not say which model SAE {summary['sae_id']!r} reads; pass one."
        )
    return load_model(spec)


def _sae(sae: Any, summary: dict[str, Any], store_or_run: StoreLike) -> Any:
    """The SAE given, or where it lies (load_sae_with_model loads it)."""
    from saescope.sae import SAE

    if isinstance(sae, SAE):
        return sae
    candidates = [sae] if sae else []
    if not sae:
        source = summary.get("info", {}).get("source")
        run_dir = run_dir_of(store_or_run)
        candidates = [c for c in (source, sae_dir(run_dir) if run_dir else None) if c]
        candidates = [c for c in candidates if Path(c).exists()] or candidates
    if not candidates:
        raise SaescopeError(
            f"sae: the store does not say where SAE {summary['sae_id']!r} lies; pass its path."
        )
    # the recorded source may be the run directory `saescope analyze RUN` was given (the
    # loader finds its sae/)
    return str(candidates[0])
