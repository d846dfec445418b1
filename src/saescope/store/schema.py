"""The feature store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

One row per SAE, one per feature (sortable statistics as columns) with its arrays as one
binary blob in a table of their own (so that sorting, filtering and counting read small
rows), one per stored score value, one per example, and `search_docs`: the
text that search looks through (explanations, labels, the tokens features fire on most, and the
text of their top contexts), indexed by trigrams on both backends.

Auto-interp keeps every explanation (and short label) of a feature in `explanations`, each
with its explainer and cost, and any number of scores per explanation in `explanation_scores`
with the per-example predictions they were computed from. The current explanation's text, the
current label and the current explanation's score values are mirrored into `features` and
`scores` (store/explanations.py keeps them in step), so the feature list sorts and filters by
them like any other score.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

# v1: the first layout (no search_docs); v2: search_docs with its trigram index;
# v3: each feature's arrays moved out of `features` into `feature_arrays`; examples keyed
# by (kind, interval, rank); v4: explanations and their scores (auto-interp), features.label.
SCHEMA_VERSION = 4

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Token id -> text, stored once per distinct vocabulary and shared by the SAEs that use it.
vocabs = Table(
    "vocabs",
    metadata,
    Column("vocab_hash", String(64), primary_key=True),
    Column("tokens", Text, nullable=False),  # JSON list of strings
)

saes = Table(
    "saes",
    metadata,
    Column("sae_id", String(512), primary_key=True),
    Column("d_sae", Integer, nullable=False),
    Column("d_in", Integer),
    Column("n_tokens", BigInteger, nullable=False),
    Column("info", Text, nullable=False),  # JSON objects from here on
    Column("corpus", Text, nullable=False),
    Column("evals", Text, nullable=False),
    Column("quantile_levels", Text, nullable=False),
    Column("score_names", Text, nullable=False),
    Column("vocab_hash", String(64)),
    Column("written_at", String(32), nullable=False),
)

features = Table(
    "features",
    metadata,
    Column("sae_id", String(512), primary_key=True),
    Column("feature", Integer, primary_key=True),
    Column("density", Float(53), nullable=False),
    Column("max_act", Float(53), nullable=False),
    Column("mean_act", Float(53), nullable=False),
    Column("explanation", Text),  # mirror of the current "explanation"-kind row
    Column("label", Text),  # mirror of the current "label"-kind row
)
# One index per sort key of the feature list; `feature` last makes paging order total.
for _column in ("density", "max_act", "mean_act"):
    Index(f"features_by_{_column}", features.c.sae_id, features.c[_column], features.c.feature)

feature_arrays = Table(
    "feature_arrays",
    metadata,
    Column("sae_id", String(512), primary_key=True),
    Column("feature", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),  # arrays.pack_arrays of the FeatureTables row
)

scores = Table(
    "scores",
    metadata,
    Column("sae_id", String(512), primary_key=True),
    Column("feature", Integer, primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("value", Float(53), nullable=False),  # NaN scores are not stored
)
Index("scores_by_value", scores.c.sae_id, scores.c.name, scores.c.value, scores.c.feature)

examples = Table(
    "examples",
    metadata,
    Column("sae_id", String(512), primary_key=True),
    Column("feature", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    # rank counts within a kind, or (as the analysis pass does for quantile examples) within
    # an interval: the key holds both, so either numbering is stored as it comes
    Column("interval", Integer, primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("center", Integer, nullable=False),
    Column("max_act", Float(53), nullable=False),
    Column("context_index", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # token ids, acts and the optional arrays
)

explanations = Table(
    "explanations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sae_id", String(512), nullable=False),
    Column("feature", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # one of EXPLANATION_KINDS
    Column("text", Text),  # None: the explainer gave no usable answer (kept for its cost)
    Column("status", String(32), nullable=False),
    Column("backend", String(64), nullable=False),  # "manual" for one set by hand
    Column("model", String(512), nullable=False),
    Column("prompt_format", String(32), nullable=False),
    Column("prompt_version", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),  # ISO 8601, UTC
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("is_current", Boolean, nullable=False),
    Column("data", Text, nullable=False),  # JSON: the attempts, the examples it was made from
)
Index("explanations_by_feature", explanations.c.sae_id, explanations.c.feature, explanations.c.kind)
# At most one current explanation per feature and kind, on both backends (a partial index).
Index(
    "explanations_one_current",
    explanations.c.sae_id,
    explanations.c.feature,
    explanations.c.kind,
    unique=True,
    sqlite_where=explanations.c.is_current,
    postgresql_where=explanations.c.is_current,
)

explanation_scores = Table(
    "explanation_scores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # deleted with its explanation by the store's code (SQLite leaves foreign keys unchecked)
    Column("explanation_id", Integer, ForeignKey("explanations.id"), nullable=False),
    Column("scorer", String(64), nullable=False),
    Column("value", Float(53)),  # the headline value; None when undefined
    Column("metrics", Text, nullable=False),  # JSON object
    Column("predictions", LargeBinary, nullable=False),  # zlib-compressed JSON list
    Column("prompt_version", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("data", Text, nullable=False),  # JSON: requests, failed prompts, raw attempts
)
Index("explanation_scores_by_explanation", explanation_scores.c.explanation_id)

EXPLANATION_KINDS = ("explanation", "label")

search_docs = Table(
    "search_docs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sae_id", String(512), nullable=False),
    Column("feature", Integer, nullable=False),
    Column("field", String(16), nullable=False),  # one of SEARCH_FIELDS
    Column("text", Text, nullable=False),
)
Index("search_docs_by_feature", search_docs.c.sae_id, search_docs.c.feature, search_docs.c.field)

# Search ranks a feature by the best field it matched in, in this order.
SEARCH_FIELDS = ("explanation", "label", "top_tokens", "context")

# The trigram index over search_docs.text: FTS5 (trigram tokenizer) on SQLite, kept in
# step by triggers; pg_trgm's GIN index on PostgreSQL. Both answer case-insensitive
# substring queries, which is what token text needs (" http", "__init__", "]]"): a
# tsvector would split and stem words and miss pieces of tokens and code. On PostgreSQL the
# index is over a lower-cased copy (a generated column) matched with LIKE: rechecking
# candidates with ILIKE lower-cases every candidate text again, ~4x slower.
SQLITE_SEARCH_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5("
    "text, content='search_docs', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS search_docs_ai AFTER INSERT ON search_docs BEGIN "
    "INSERT INTO search_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS search_docs_ad AFTER DELETE ON search_docs BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS search_docs_au AFTER UPDATE ON search_docs BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO search_fts(rowid, text) VALUES (new.id, new.text); END",
]
POSTGRES_SEARCH_DDL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "ALTER TABLE search_docs ADD COLUMN IF NOT EXISTS folded text GENERATED ALWAYS AS (lower(text)) STORED",
    "CREATE INDEX IF NOT EXISTS search_docs_trgm ON search_docs USING gin (folded gin_trgm_ops)",
]
