"""The feature store: persist an SAE's analysis and answer the viewer's queries.

`open_store(path_or_url)` gives a `FeatureStore` on a SQLite file or a PostgreSQL database.
An SAE is written in one transaction: an interrupted write leaves the previous version of
that SAE (and everything else) as it was, readable by everyone meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
)
from sqlalchemy import text as text_clause
from sqlalchemy.exc import SQLAlchemyError

from saescope.analysis.results import SAEAnalysis
from saescope.errors import ConfigError, SaescopeError
from saescope.store import explanations as interp
from saescope.store import pages, rows, versions
from saescope.store.connect import connection_error, error_reason, make_engine, shown, store_url
from saescope.store.schema import (
    SCHEMA_VERSION,
    SEARCH_FIELDS,
    examples,
    feature_arrays,
    features,
    saes,
    scores,
    search_docs,
    vocabs,
)
from saescope.store.spool import ExampleSpool

if TYPE_CHECKING:  # the store is below autointerp: no import of it at run time
    from saescope.autointerp.results import Explainer, FeatureResult

INSERT_BATCH = 1000

# The feature page's statements, built once: constructing SQLAlchemy expressions costs
# more than running these indexed lookups.
_SAE_ROW = select(saes).where(saes.c.sae_id == bindparam("sae_id"))
# A feature's row with its arrays (row.data).
_WITH_ARRAYS = select(features, feature_arrays.c.data).join(
    feature_arrays,
    and_(
        feature_arrays.c.sae_id == features.c.sae_id, feature_arrays.c.feature == features.c.feature
    ),
)
_FEATURE_ROWS = _WITH_ARRAYS.where(
    features.c.sae_id == bindparam("sae_id"),
    features.c.feature.in_(bindparam("ids", expanding=True)),
)
_EXAMPLE_ROWS = select(examples).where(
    examples.c.sae_id == bindparam("sae_id"),
    examples.c.feature.in_(bindparam("ids", expanding=True)),
)
_SEARCH_DOC = select(search_docs.c.text).where(
    search_docs.c.sae_id == bindparam("sae_id"),
    search_docs.c.feature == bindparam("feature"),
    search_docs.c.field == bindparam("field"),
)
_FEATURE_BRIEF = select(
    features.c.density, features.c.max_act, features.c.explanation, features.c.label
).where(features.c.sae_id == bindparam("sae_id"), features.c.feature == bindparam("feature"))
_SCORE_ROWS = select(scores.c.feature, scores.c.name, scores.c.value).where(
    scores.c.sae_id == bindparam("sae_id"), scores.c.feature.in_(bindparam("ids", expanding=True))
)
ProgressFn = Callable[[int, int], None]


def open_store(path_or_url: str | Path, create: bool = True) -> FeatureStore:
    """Open (and with `create`, make) the store at a file path or a postgresql:// URL;
    an older schema is migrated, a newer one refused."""
    url = store_url(path_or_url)
    sqlite = url.get_backend_name() == "sqlite"
    database = url.database or ""  # a sqlite URL's file ("" for sqlite://, in memory)
    where = database if sqlite else shown(url)
    if sqlite and not Path(database).exists():
        if not create:
            raise SaescopeError(f"there is no feature store at {where}.")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        prepare_schema(engine, where, create)
    except versions.NotAStore as err:
        engine.dispose()
        raise SaescopeError(f"{where} is not a saescope feature store: it {err}.") from None
    except SQLAlchemyError as err:
        engine.dispose()
        raise connection_error(url, err) from None
    except BaseException:
        engine.dispose()
        raise
    return FeatureStore(engine, where)


def prepare_schema(engine: Engine, where: str, create: bool) -> None:
    """Check the store's schema, and create or migrate it if it needs that.

    The check is a plain read, so a database that is refused is left exactly as it was. Creating
    and migrating happen under a write lock that a second process waits for; it then finds the
    work done (the version is read again under the lock)."""
    with engine.connect() as conn:
        version = versions.stored_version(conn)
    if version is None and not create:
        raise versions.NotAStore("is empty (it holds no tables)")
    if version is not None:
        versions.check_upgradable(version, where)
    if version != SCHEMA_VERSION:
        with versions.schema_lock(engine) as conn:
            version = versions.stored_version(conn)
            if version is None:
                versions.create(conn)
            else:
                versions.upgrade(conn, version, where)
    if engine.dialect.name == "sqlite":
        use_wal(engine)


def use_wal(engine: Engine) -> None:
    """WAL lets readers (the viewer) read the last committed state while a write runs. The
    mode is kept in the file, so it is set here, once the file is known to be a store."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
    finally:
        raw.close()


class FeatureStore:
    def __init__(self, engine: Engine, where: str) -> None:
        self.engine = engine
        self.where = where  # the file or the URL without password, for messages
        self._vocabs: dict[str | None, rows.TokenTexts] = {None: rows.TokenTexts(None)}

    @property
    def backend(self) -> str:
        return self.engine.dialect.name  # "sqlite" or "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def write_analysis(self, analysis: SAEAnalysis, on_progress: ProgressFn | None = None) -> None:
        """Store (or replace) one SAE's analysis in a single transaction. Explanations and
        labels already stored for its features are kept, with their scores and mirrors.

        The examples are read once, before the transaction, into a temporary file (spool.py):
        a streamed analysis runs its example pass as they are read, and neither holds them all
        in memory nor the store's write lock meanwhile."""
        rows.check_analysis(analysis)
        sae_id, d_sae = analysis.sae_id, len(analysis.features.density)
        beside = Path(self.engine.url.database or "").parent if self.backend == "sqlite" else None
        with ExampleSpool(sae_id, d_sae, beside) as spooled:
            spooled.write(analysis.examples)  # the example pass of a streamed analysis runs here
            with self._write(f"writing SAE {sae_id!r}", sae_id) as conn:
                interp.delete_explanations(conn, sae_id, from_feature=d_sae)
                explanations = interp.current_texts(conn, sae_id, "explanation")
                labels = interp.current_texts(conn, sae_id, "label")
                mirrored = {
                    key: value
                    for key, value in interp.mirrored_scores(conn, sae_id).items()
                    if value is not None
                }
                self._delete_rows(conn, sae_id)
                if analysis.vocab is not None:
                    self._insert_vocab(conn, analysis.vocab)
                conn.execute(
                    saes.insert(), [rows.sae_row(analysis)]
                )  # after the examples: it holds their timing
                # a scorer's mirror shadows an analysis score of the same name
                score_rows = [
                    row
                    for row in rows.score_rows(analysis)
                    if (row["feature"], row["name"]) not in mirrored
                ] + [
                    {"sae_id": sae_id, "feature": f, "name": name, "value": value}
                    for (f, name), value in mirrored.items()
                ]
                interp.add_score_names(conn, sae_id, {name for _, name in mirrored})
                n_docs = spooled.top.n_docs(explanations) + len(labels)
                progress = _Progress(
                    2 * d_sae + spooled.count + len(score_rows) + n_docs, on_progress
                )
                _insert_batches(
                    conn, features, rows.feature_rows(analysis, explanations, labels), progress
                )
                _insert_batches(conn, feature_arrays, rows.feature_array_rows(analysis), progress)
                _insert_batches(conn, scores, score_rows, progress)
                _insert_batches(conn, examples, spooled.rows(), progress)
                # made from the spooled windows: reading the stored examples back took as long again
                docs = spooled.top.doc_rows(sae_id, explanations, analysis.vocab)
                _insert_batches(conn, search_docs, docs, progress)
                label_docs = [
                    {"sae_id": sae_id, "feature": f, "field": "label", "text": text}
                    for f, text in sorted(labels.items())
                ]
                _insert_batches(conn, search_docs, label_docs, progress)
        self._refresh_statistics()

    def _refresh_statistics(self) -> None:
        """Let the query planner see the new rows: with stale statistics PostgreSQL picks
        the sae_id index over the trigram index and search gets 10x slower, and SQLite
        counts score-sorted pages by scanning features."""
        with self._write("refreshing planner statistics") as conn:
            if self.backend == "postgresql":
                conn.exec_driver_sql("ANALYZE features, scores, examples, search_docs")
            else:  # sampled statistics: seconds even on a 1 GB store
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("ANALYZE")

    def delete_sae(self, sae_id: str) -> None:
        with self._write(f"deleting SAE {sae_id!r}", sae_id) as conn:
            self._sae(conn, sae_id)
            interp.delete_explanations(conn, sae_id)
            self._delete_rows(conn, sae_id)

    def set_explanation(self, sae_id: str, feature: int, text: str | None) -> None:
        """Set a feature's explanation by hand (a new "manual" explanation, made current), or
        with None / "" clear it (no current explanation afterwards; the stored ones are kept).
        Search, the feature list and the viewer see it at once."""
        text = text.strip() if text else None
        with self._write(
            f"setting the explanation of feature {feature} of {sae_id!r}", sae_id
        ) as conn:
            self._sae(conn, sae_id)
            interp.check_feature(conn, sae_id, feature)
            if text:
                self._insert_explanation(conn, sae_id, feature, text)
            else:
                interp.clear_current(conn, sae_id, feature, "explanation")
            interp.sync_features(conn, sae_id, [feature])

    def add_explanation(
        self,
        sae_id: str,
        feature: int,
        text: str | None,
        *,
        kind: str = "explanation",
        explainer: Explainer | None = None,
        status: str = "ok",
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        data: dict[str, Any] | None = None,
        current: bool = True,
        created_at: float | str | None = None,
    ) -> int:
        """Store an explanation (kind "explanation") or short label (kind "label") of a
        feature; returns its id. Without `explainer` it is a hand-written one (backend
        "manual"). With `current` (and text) it becomes the feature's current one of its kind."""
        if text is not None and not isinstance(text, str):
            raise ConfigError("text", text, "a string, or None for an explainer that gave none")
        text = text.strip() or None if text else None
        if text is None and explainer is None:
            raise ConfigError("text", text, "a non-empty explanation for one set by hand")
        with self._write(
            f"adding an explanation of feature {feature} of {sae_id!r}", sae_id
        ) as conn:
            self._sae(conn, sae_id)
            interp.check_feature(conn, sae_id, feature)
            explanation_id = self._insert_explanation(
                conn,
                sae_id,
                feature,
                text,
                kind=kind,
                explainer=explainer,
                status=status,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                data=data,
                current=current,
                created_at=created_at,
            )
            interp.sync_features(conn, sae_id, [feature])
        return explanation_id

    def add_explanation_score(
        self,
        explanation_id: int,
        scorer: str,
        value: float | None,
        *,
        metrics: dict[str, Any],
        predictions: list[Any],
        prompt_version: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Store a score of an explanation, with every per-example prediction (Prediction
        dataclasses or their dicts) it was computed from; returns its id. A score of a current
        explanation shows at once in the feature list (sorted and filtered by `scorer`)."""
        with self._read() as conn:  # the SAE whose writers this one queues behind
            sae_id = interp.explanation_row(conn, explanation_id).sae_id
        with self._write(
            f"adding a {scorer} score of explanation {explanation_id}", sae_id
        ) as conn:
            row = interp.explanation_row(conn, explanation_id)
            score_id = interp.insert_score(
                conn,
                explanation_id,
                scorer,
                value,
                metrics=metrics,
                predictions=predictions,
                prompt_version=prompt_version,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                data=data,
            )
            interp.sync_features(conn, row.sae_id, [row.feature])
        return score_id

    def set_current_explanation(self, sae_id: str, feature: int, explanation_id: int) -> None:
        """Make a stored explanation (or label) of this feature its current one of its kind."""
        with self._write(
            f"making explanation {explanation_id} current for feature {feature} of {sae_id!r}",
            sae_id,
        ) as conn:
            self._sae(conn, sae_id)
            interp.check_feature(conn, sae_id, feature)
            row = interp.explanation_row(conn, explanation_id)
            if (row.sae_id, row.feature) != (sae_id, feature):
                raise SaescopeError(
                    f"explanation_id: {explanation_id} is an explanation of feature {row.feature} "
                    f"of {row.sae_id!r}, not of feature {feature} of {sae_id!r}."
                )
            interp.make_current(conn, row)
            interp.sync_features(conn, sae_id, [feature])

    def write_autointerp_results(self, results: list[FeatureResult], current: bool = True) -> int:
        """Store auto-interp results (saescope.autointerp.FeatureResult): each explanation with
        its scores, made current when `current` and it has text; a scoring-only result (no
        explanation) attaches its scores to the feature's current explanation. One transaction
        per SAE. Returns the number of rows written (explanations and scores)."""
        by_sae: dict[str, list[FeatureResult]] = {}
        for result in results:
            by_sae.setdefault(result.sae_id, []).append(result)
        written = 0
        for sae_id, sae_results in by_sae.items():
            with self._write(f"writing auto-interp results of {sae_id!r}", sae_id) as conn:
                self._sae(conn, sae_id)
                for result in sae_results:
                    interp.check_feature(conn, sae_id, result.feature)
                for result in sae_results:
                    written += self._insert_result(conn, result, current)
                interp.sync_features(conn, sae_id, [r.feature for r in sae_results])
        return written

    def _insert_result(self, conn: Connection, result: FeatureResult, current: bool) -> int:
        explanation = result.explanation
        if explanation is not None:
            explanation_id = self._insert_explanation(
                conn,
                result.sae_id,
                result.feature,
                explanation.text,
                kind="label" if explanation.explainer.prompt_format == "label" else "explanation",
                explainer=explanation.explainer,
                status=explanation.status,
                prompt_tokens=explanation.prompt_tokens,
                completion_tokens=explanation.completion_tokens,
                data={"attempts": explanation.attempts, "examples": explanation.examples},
                current=current,
                created_at=explanation.created_at,
            )
        elif result.scores:
            found = interp.current_explanation_id(
                conn, result.sae_id, result.feature, "explanation"
            )
            if found is None:
                raise SaescopeError(
                    f"results: feature {result.feature} of {result.sae_id!r} has scores but no "
                    "explanation, and the store holds no current explanation to attach them to; "
                    "store the explanation first (set_explanation or add_explanation)."
                )
            explanation_id = found
        else:
            return 0  # nothing was made (the run stopped before this feature)
        for score in result.scores:
            interp.insert_score(
                conn,
                explanation_id,
                score.scorer,
                score.value,
                metrics=score.metrics,
                predictions=score.predictions,
                prompt_version=score.prompt_version,
                prompt_tokens=score.prompt_tokens,
                completion_tokens=score.completion_tokens,
                data={
                    "n_requests": score.n_requests,
                    "n_failed": score.n_failed,
                    "attempts": score.attempts,
                },
            )
        return (explanation is not None) + len(result.scores)

    def _insert_explanation(
        self,
        conn: Connection,
        sae_id: str,
        feature: int,
        text: str | None,
        *,
        kind: str = "explanation",
        explainer: Explainer | None = None,
        status: str = "ok",
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        data: dict[str, Any] | None = None,
        current: bool = True,
        created_at: float | str | None = None,
    ) -> int:
        return interp.insert_explanation(
            conn,
            sae_id,
            feature,
            text,
            kind=kind,
            status=status,
            backend=explainer.backend if explainer else interp.MANUAL_BACKEND,
            model=explainer.model if explainer else "",
            prompt_format=explainer.prompt_format if explainer else "",
            prompt_version=explainer.prompt_version if explainer else 0,
            created_at=interp.iso_from_timestamp(created_at),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            data=data,
            current=current,
        )

    # --- reading -------------------------------------------------------------------------

    def list_saes(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            result = conn.execute(select(saes).order_by(saes.c.sae_id)).all()
        return [_sae_brief(row) for row in result]

    def sae_summary(self, sae_id: str) -> dict[str, Any]:
        """Everything an SAE's overview shows: info, corpus, evals and the density histogram."""
        with self._read() as conn:
            sae = self._sae(conn, sae_id)
            densities = self._densities(conn, sae)
            n_explained = conn.execute(
                select(func.count()).where(
                    features.c.sae_id == sae_id, features.c.explanation.is_not(None)
                )
            ).scalar_one()
            n_labelled = interp.n_with_current(conn, sae_id, "label")
            interp_scores = interp.score_summary(conn, sae_id)
        return {
            **_sae_brief(sae),
            "info": json.loads(sae.info),
            "corpus": json.loads(sae.corpus),
            "evals": json.loads(sae.evals),
            "quantile_levels": json.loads(sae.quantile_levels),
            "score_names": json.loads(sae.score_names),
            "n_explained": n_explained,
            "n_labelled": n_labelled,
            "interp_scores": interp_scores,
            "density_histogram": pages.density_histogram(densities),
        }

    def feature(self, sae_id: str, feature: int) -> dict[str, Any]:
        """One feature page: statistics, tables, histograms and every example, tokens as text."""
        with self._read() as conn:
            sae = self._sae(conn, sae_id)
            found = self._pages(conn, sae, [feature])
            if not found:
                raise self._no_feature(conn, sae_id, feature)
        return found[0]

    def iter_features(
        self, sae_id: str, feature_ids: list[int] | None = None, chunk: int = 256
    ) -> Iterator[dict[str, Any]]:
        """Feature pages of many features (default: all, in id order), read `chunk` at a time."""
        if feature_ids is None:
            feature_ids = self.feature_ids(sae_id)
        for start in range(0, len(feature_ids), chunk):
            with self._read() as conn:
                sae = self._sae(conn, sae_id)
                yield from self._pages(conn, sae, feature_ids[start : start + chunk])

    def features(
        self,
        sae_id: str,
        sort_by: str = "density",
        descending: bool = True,
        min_density: float | None = None,
        max_density: float | None = None,
        ranges: dict[str, tuple[float | None, float | None]] | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """A page of an SAE's features sorted by density, max_act, mean_act, feature or any
        stored score, filtered by value ranges (inclusive) of any of those. Ties go by feature
        id in the same direction. Sorting or filtering by a score lists only the features
        that have a value for it."""
        ranges = dict(ranges or {})
        if min_density is not None or max_density is not None:
            ranges["density"] = (min_density, max_density)
        if offset < 0 or not 0 < limit <= 10_000:
            raise ConfigError("offset/limit", (offset, limit), "offset >= 0 and 0 < limit <= 10000")
        with self._read() as conn:
            sae = self._sae(conn, sae_id)
            score_names = json.loads(sae.score_names)
            accepted = ["feature", *rows.SORT_COLUMNS, *score_names]
            for name in [sort_by, *ranges]:
                if name not in accepted:
                    raise ConfigError(
                        "sort_by" if name == sort_by else "ranges",
                        name,
                        f"one of {', '.join(accepted)}",
                    )
            query, sort_column, tie_column = _feature_query(sae_id, sort_by, ranges)
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            order = (
                [sort_column.desc(), tie_column.desc()]
                if descending
                else [sort_column.asc(), tie_column.asc()]
            )
            page = conn.execute(query.order_by(*order).offset(offset).limit(limit)).all()
        items = [
            {
                "feature": r.feature,
                "density": r.density,
                "max_act": r.max_act,
                "mean_act": r.mean_act,
                "explanation": r.explanation,
                "label": r.label,
                **({sort_by: r.sort_value} if sort_by in score_names else {}),
            }
            for r in page
        ]
        return {
            "sae_id": sae_id,
            "sort_by": sort_by,
            "descending": descending,
            "total": total,
            "offset": offset,
            "limit": limit,
            "items": items,
        }

    def search(self, text: str, sae_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Features whose explanation, label, top tokens or top contexts contain `text` (case-
        insensitive substring), best field first (explanation, label, top tokens, contexts),
        then by max activation."""
        text = text.strip()
        if not text:
            raise ConfigError("search text", text, "a non-empty string")
        with self._read() as conn:
            if sae_id is not None:
                self._sae(conn, sae_id)
            hits = self._matching_docs(text, sae_id).subquery()
            best = func.min(
                case({name: i for i, name in enumerate(SEARCH_FIELDS)}, value=hits.c.field)
            )
            ranked = conn.execute(
                select(hits.c.sae_id, hits.c.feature, best.label("best"))
                .join(
                    features,
                    and_(features.c.sae_id == hits.c.sae_id, features.c.feature == hits.c.feature),
                )
                .group_by(hits.c.sae_id, hits.c.feature, features.c.max_act)
                .order_by("best", features.c.max_act.desc(), hits.c.sae_id, hits.c.feature)
                .limit(limit)
            ).all()
            keys = [(r.sae_id, r.feature, SEARCH_FIELDS[r.best]) for r in ranked]
            return self._search_results(conn, keys, text)

    def explanations(self, sae_id: str, feature: int) -> list[dict[str, Any]]:
        """A feature's stored explanations and labels, current first, then newest first, each
        with its explainer, cost and scores (without the predictions: explanation_score)."""
        with self._read() as conn:
            self._sae(conn, sae_id)
            interp.check_feature(conn, sae_id, feature)
            return interp.explanation_lists(conn, sae_id, [feature]).get(feature, [])

    def explanation_score(self, score_id: int) -> dict[str, Any]:
        """One stored score with every per-example prediction, so it can be recomputed."""
        with self._read() as conn:
            return interp.score_record(conn, score_id)

    def interp_score_summary(self, sae_id: str) -> dict[str, dict[str, Any]]:
        """scorer -> {"n", "mean", "histogram": {"edges", "counts"}} over the current
        explanations (their newest score of each scorer)."""
        with self._read() as conn:
            self._sae(conn, sae_id)
            return interp.score_summary(conn, sae_id)

    def load_analysis(self, sae_id: str) -> SAEAnalysis:
        """The stored analysis of an SAE, as the analysis pass handed it over."""
        with self._read() as conn:
            sae = self._sae(conn, sae_id)
            feature_rows = conn.execute(
                _WITH_ARRAYS.where(features.c.sae_id == sae_id).order_by(features.c.feature)
            ).all()
            stored_scores: dict[str, np.ndarray] = {}
            # the analysis's own scores, not the mirrors of auto-interp's
            interp_names = interp.scorer_names(conn, sae_id)
            for name in json.loads(sae.score_names):
                if name in interp_names:
                    continue
                values = np.full(sae.d_sae, np.nan)
                for f, value in conn.execute(
                    select(scores.c.feature, scores.c.value).where(
                        scores.c.sae_id == sae_id, scores.c.name == name
                    )
                ):
                    values[f] = value
                stored_scores[name] = values
            example_rows = conn.execute(
                select(examples)
                .where(examples.c.sae_id == sae_id)
                .order_by(examples.c.feature, examples.c.kind, examples.c.interval, examples.c.rank)
            ).all()
            vocab = self._vocab(conn, sae.vocab_hash)
        return SAEAnalysis(
            sae_id=sae_id,
            sae_info=json.loads(sae.info),
            n_tokens=sae.n_tokens,
            corpus=json.loads(sae.corpus),
            features=rows.tables_from_rows(
                feature_rows, json.loads(sae.quantile_levels), stored_scores
            ),
            examples=[rows.example_from_row(r) for r in example_rows],
            evals=json.loads(sae.evals),
            vocab=None if vocab.vocab is None else list(vocab.vocab),
        )

    def densities(self, sae_id: str) -> np.ndarray:
        """[d_sae] every feature's density, indexed by feature id."""
        with self._read() as conn:
            return self._densities(conn, self._sae(conn, sae_id))

    def feature_ids(self, sae_id: str) -> list[int]:
        with self._read() as conn:
            self._sae(conn, sae_id)
            return list(
                conn.execute(
                    select(features.c.feature)
                    .where(features.c.sae_id == sae_id)
                    .order_by(features.c.feature)
                ).scalars()
            )

    # --- helpers -------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise SaescopeError(
                f"reading the feature store {self.where} failed: {error_reason(err)}"
            ) from None

    @contextmanager
    def _write(self, what: str, sae_id: str | None = None) -> Iterator[Connection]:
        """One write transaction; writers of the same SAE queue up behind each other
        (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(sqlite_immediate=True)
                with conn.begin():
                    if sae_id is not None and self.backend == "postgresql":
                        conn.execute(
                            text_clause("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                            {"key": sae_id},
                        )
                    yield conn
        except SQLAlchemyError as err:
            raise SaescopeError(
                f"{what} in the feature store {self.where} failed, and none of it was "
                f"kept: {error_reason(err)}"
            ) from None

    def _sae(self, conn: Connection, sae_id: str) -> Any:
        row = conn.execute(_SAE_ROW, {"sae_id": sae_id}).first()
        if row is None:
            held = (
                conn.execute(select(saes.c.sae_id).order_by(saes.c.sae_id).limit(20))
                .scalars()
                .all()
            )
            raise SaescopeError(
                f"the feature store {self.where} has no SAE {sae_id!r}; it holds: "
                f"{', '.join(held) if held else 'none yet'}."
            )
        return row

    def _densities(self, conn: Connection, sae: Any) -> np.ndarray:
        density = np.zeros(sae.d_sae)
        for f, value in conn.execute(
            select(features.c.feature, features.c.density).where(features.c.sae_id == sae.sae_id)
        ):
            density[f] = value
        return density

    def _no_feature(self, conn: Connection, sae_id: str, feature: int) -> SaescopeError:
        d_sae = conn.execute(select(saes.c.d_sae).where(saes.c.sae_id == sae_id)).scalar_one()
        return SaescopeError(
            f"feature: got {feature!r}; SAE {sae_id!r} has features 0..{d_sae - 1}."
        )

    def _pages(self, conn: Connection, sae: Any, feature_ids: list[int]) -> list[dict[str, Any]]:
        """Feature pages of some features of one SAE: three indexed queries in all."""
        params = {"sae_id": sae.sae_id, "ids": feature_ids}
        feature_rows = conn.execute(_FEATURE_ROWS, params).all()
        example_rows: dict[int, list[Any]] = {}
        for row in conn.execute(_EXAMPLE_ROWS, params):
            example_rows.setdefault(row.feature, []).append(row)
        feature_scores: dict[int, dict[str, float]] = {}
        for row in conn.execute(_SCORE_ROWS, params):
            feature_scores.setdefault(row.feature, {})[row.name] = row.value
        vocab = self._vocab(conn, sae.vocab_hash)
        by_id = {row.feature: row for row in feature_rows}
        explained = interp.explanation_lists(conn, sae.sae_id, feature_ids)
        return [
            pages.feature_page(
                sae,
                by_id[f],
                example_rows.get(f, []),
                feature_scores.get(f, {}),
                vocab,
                explained.get(f, []),
            )
            for f in feature_ids
            if f in by_id
        ]

    def _vocab(self, conn: Connection, vocab_hash: str | None) -> rows.TokenTexts:
        """The SAE's vocabulary, read once per store object (a viewer keeps its store open)."""
        if vocab_hash not in self._vocabs:
            tokens = conn.execute(
                select(vocabs.c.tokens).where(vocabs.c.vocab_hash == vocab_hash)
            ).scalar_one()
            self._vocabs[vocab_hash] = rows.TokenTexts(json.loads(tokens))
        return self._vocabs[vocab_hash]

    def _insert_vocab(self, conn: Connection, vocab: list[str]) -> None:
        key = rows.vocab_hash(vocab)
        if (
            conn.execute(select(vocabs.c.vocab_hash).where(vocabs.c.vocab_hash == key)).first()
            is None
        ):
            conn.execute(vocabs.insert(), [{"vocab_hash": key, "tokens": json.dumps(vocab)}])

    def _delete_rows(self, conn: Connection, sae_id: str) -> None:
        for table in (search_docs, examples, scores, feature_arrays, features, saes):
            conn.execute(table.delete().where(table.c.sae_id == sae_id))
        # A vocabulary no SAE uses any more goes too.
        conn.execute(
            vocabs.delete().where(
                vocabs.c.vocab_hash.not_in(
                    select(saes.c.vocab_hash).where(saes.c.vocab_hash.is_not(None))
                )
            )
        )

    def _matching_docs(self, text: str, sae_id: str | None) -> Any:
        """search_docs rows containing `text`: through the trigram index of each backend."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = select(search_docs.c.sae_id, search_docs.c.feature, search_docs.c.field)
        if self.backend == "postgresql":
            query = query.where(
                literal_column("search_docs.folded").like(func.lower(pattern), escape="\\")
            )
        elif len(text) >= 3:  # FTS5's trigram index needs three characters
            phrase = '"' + text.replace('"', '""') + '"'
            query = query.where(
                search_docs.c.id.in_(
                    select(literal_column("rowid"))
                    .select_from(text_clause("search_fts"))
                    .where(
                        text_clause("search_fts MATCH :phrase").bindparams(
                            bindparam("phrase", phrase)
                        )
                    )
                )
            )
        else:
            query = query.where(search_docs.c.text.ilike(pattern, escape="\\"))
        if sae_id is not None:
            query = query.where(search_docs.c.sae_id == sae_id)
        return query

    def _search_results(
        self, conn: Connection, keys: list[tuple[str, int, str]], text: str
    ) -> list[dict[str, Any]]:
        # One indexed lookup per result: SQLite scans the table for a row-value IN list.
        results = []
        for sae_id, feature, field in keys:
            doc = conn.execute(
                _SEARCH_DOC, {"sae_id": sae_id, "feature": feature, "field": field}
            ).scalar_one()
            row = conn.execute(_FEATURE_BRIEF, {"sae_id": sae_id, "feature": feature}).one()
            results.append(
                {
                    "sae_id": sae_id,
                    "feature": feature,
                    "field": field,
                    "snippet": _snippet(doc, text),
                    "density": row.density,
                    "max_act": row.max_act,
                    "explanation": row.explanation,
                    "label": row.label,
                }
            )
        return results


def _feature_query(
    sae_id: str, sort_by: str, ranges: dict[str, tuple[float | None, float | None]]
) -> tuple[Any, Any, Any]:
    """The filtered feature list, the column it sorts by (a score joins its rows in) and
    the feature id column that breaks ties, from the same table so one index serves both."""
    columns = [
        features.c.feature,
        features.c.density,
        features.c.max_act,
        features.c.mean_act,
        features.c.explanation,
        features.c.label,
    ]
    query = select(*columns).where(features.c.sae_id == sae_id)
    score_columns: dict[str, Any] = {}
    for name in dict.fromkeys([sort_by, *ranges]):
        if name in ("feature", *rows.SORT_COLUMNS):
            continue
        alias = scores.alias(f"score_{len(score_columns)}")
        query = query.join(
            alias,
            and_(
                alias.c.sae_id == sae_id,
                alias.c.name == name,
                alias.c.feature == features.c.feature,
            ),
        )
        score_columns[name] = alias.c.value
    for name, (low, high) in ranges.items():
        column = score_columns[name] if name in score_columns else features.c[name]
        if low is not None:
            query = query.where(column >= low)
        if high is not None:
            query = query.where(column <= high)
    if sort_by not in score_columns:
        return query, features.c[sort_by], features.c.feature
    sort_column = score_columns[sort_by]
    return (
        query.add_columns(sort_column.label("sort_value")),
        sort_column,
        sort_column.table.c.feature,
    )


def _snippet(text: str, query: str, width: int = 60) -> str:
    """The line of `text` where `query` first occurs, cut to about `width` characters around it."""
    at = text.lower().find(query.lower())
    if at < 0:
        return text[:width]
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    left = max(start, at - width // 2)
    right = min(end, at + len(query) + width // 2)
    return ("…" if left > start else "") + text[left:right] + ("…" if right < end else "")


def _sae_brief(row: Any) -> dict[str, Any]:
    info = json.loads(row.info)
    return {
        "sae_id": row.sae_id,
        "d_sae": row.d_sae,
        "d_in": row.d_in,
        "n_tokens": row.n_tokens,
        "model": info.get("model"),
        "hook_point": info.get("hook_point"),
        "architecture": info.get("architecture"),
        "written_at": row.written_at,
    }


class _Progress:
    def __init__(self, total: int, on_progress: ProgressFn | None) -> None:
        self.done, self.total, self.on_progress = 0, total, on_progress

    def advance(self, n: int) -> None:
        self.done += n
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)


def _insert_batches(
    conn: Connection, table: Any, row_iter: Iterable[dict[str, Any]], progress: _Progress
) -> None:
    """Insert rows (dicts with the same columns) INSERT_BATCH at a time, as plain tuples through the
    driver's executemany: SQLAlchemy's per-row parameter building took a quarter of the write. The
    values need no conversion on either driver (ints, floats, str, bytes, None)."""
    rows_left = iter(row_iter)
    first = next(rows_left, None)
    if first is None:
        return
    columns = list(first)  # at least two: itemgetter then gives tuples
    statement = _insert_statement(conn, table, columns)
    values = itemgetter(*columns)
    batch = [values(first)]
    for row in rows_left:
        batch.append(values(row))
        if len(batch) == INSERT_BATCH:
            conn.exec_driver_sql(statement, batch)
            progress.advance(len(batch))
            batch = []
    if batch:
        conn.exec_driver_sql(statement, batch)
        progress.advance(len(batch))


def _insert_statement(conn: Connection, table: Any, columns: list[str]) -> str:
    """INSERT INTO table (columns) VALUES (...) in the driver's own placeholders (? or %s)."""
    quote = conn.dialect.identifier_preparer.quote_identifier
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
