"""The v3 -> v4 migration from a real v3 store: one written by saescope's own code of the last v3
commit (taken from the repository's history with git archive and run in a subprocess), on
SQLite and PostgreSQL. Its explanations must come through as current hand-set ones, once each
even when several processes open the old store at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from saescope.store import open_store
from saescope.store.schema import SCHEMA_VERSION
from tests.paths import REPO
from tests.store.old_schemas import downgrade
from tests.store.store_data import assert_same_analysis, make_analysis

# The last commit whose store wrote schema v3 (before "store: schema v4").
V3_COMMIT = "bec450ff0b10a8fbec7a6d13a42e3ab9bfac059d"
SAE_IDS = ("sae-a", "sae-b")
EXPLAINED = {10: "Capital cities", 11: "Python keywords"}

# Run with the v3 source first on sys.path: writes two analysed SAEs with explanations.
V3_WRITER = """
import sys
sys.path.insert(1, {repo!r})
import saescope.store.schema as schema
assert schema.SCHEMA_VERSION == 3 and {src!r} in schema.__file__, schema.__file__
from saescope.store import open_store
from tests.store.store_data import make_analysis

with open_store(sys.argv[1]) as store:
    for seed, sae_id in enumerate({sae_ids!r}):
        store.write_analysis(make_analysis(sae_id=sae_id, seed=seed))
        for feature, text in {explained!r}.items():
            store.set_explanation(sae_id, feature, text)
"""


@pytest.fixture(scope="module")
def v3_source(tmp_path_factory) -> Path | None:
    """saescope's src/ as of the last v3 commit; None in a checkout without that history (a
    shallow clone), where the v3 store is made by taking today's store back to v3 instead."""
    out = tmp_path_factory.mktemp("saescope_v3")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", V3_COMMIT, "src/saescope"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "src"


def write_v3_store(v3_source: Path | None, store_url: str, cwd: Path) -> None:
    if v3_source is None:
        write_downgraded_v3_store(store_url)
        return
    script = V3_WRITER.format(
        repo=str(REPO), src=str(v3_source), sae_ids=SAE_IDS, explained=EXPLAINED
    )
    env = {**os.environ, "PYTHONPATH": str(v3_source)}
    done = subprocess.run(
        [sys.executable, "-c", script, store_url],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def write_downgraded_v3_store(store_url: str) -> None:
    with open_store(store_url) as store:
        for seed, sae_id in enumerate(SAE_IDS):
            store.write_analysis(make_analysis(sae_id=sae_id, seed=seed))
            for feature, text in EXPLAINED.items():
                store.set_explanation(sae_id, feature, text)
        with store.engine.begin() as conn:  # v3 kept no mirrored scores: none are written here
            conn.exec_driver_sql("DELETE FROM search_docs WHERE field = 'label'")
        downgrade(store, 3)


def stored_version(store) -> str:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar()


def test_a_v3_store_migrates_with_its_explanations_as_current_manual_ones(
    store_url, v3_source, tmp_path
):
    write_v3_store(v3_source, store_url, tmp_path)
    with open_store(store_url) as migrated:
        assert stored_version(migrated) == str(SCHEMA_VERSION) == "4"
        for seed, sae_id in enumerate(SAE_IDS):
            assert_same_analysis(migrated.load_analysis(sae_id), make_analysis(sae_id, seed=seed))
            for feature, text in EXPLAINED.items():
                [stored] = migrated.explanations(sae_id, feature)
                assert (stored["text"], stored["kind"], stored["current"]) == (
                    text,
                    "explanation",
                    True,
                )
                assert stored["explainer"]["backend"] == "manual" and stored["scores"] == []
                page = migrated.feature(sae_id, feature)
                assert (page["explanation"], page["label"]) == (text, None)
            assert migrated.explanations(sae_id, 12) == []
            assert migrated.sae_summary(sae_id)["n_explained"] == len(EXPLAINED)
        assert sorted((r["sae_id"], r["feature"]) for r in migrated.search("capital")) == [
            ("sae-a", 10),
            ("sae-b", 10),
        ]
        # and v4 writes work on it: a new explanation, a label, a score to sort by
        migrated.set_explanation("sae-a", 10, "European capitals")
        explanation_id = migrated.explanations("sae-a", 10)[0]["id"]
        migrated.add_explanation(
            "sae-a", 10, "capitals", kind="label", explainer=None, current=True
        )
        migrated.add_explanation_score(
            explanation_id, "detection", 0.75, metrics={"balanced_accuracy": 0.75}, predictions=[]
        )
        assert [
            (i["feature"], i["label"], i["detection"])
            for i in migrated.features("sae-a", sort_by="detection")["items"]
        ] == [(10, "capitals", 0.75)]
        assert [e["current"] for e in migrated.explanations("sae-a", 10)] == [True, True, False]


OPEN = "import sys; from saescope.store import open_store; open_store(sys.argv[1]).close()"


def test_processes_migrating_one_v3_store_at_once_migrate_it_once(store_url, v3_source, tmp_path):
    write_v3_store(v3_source, store_url, tmp_path)
    openers = [
        subprocess.Popen([sys.executable, "-c", OPEN, store_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for opener in openers:
        assert opener.wait(timeout=120) == 0, opener.stderr.read()
    with open_store(store_url) as migrated:
        assert stored_version(migrated) == str(SCHEMA_VERSION)
        for sae_id in SAE_IDS:
            for feature, text in EXPLAINED.items():
                # once each: a second migration would have copied them again
                assert [e["text"] for e in migrated.explanations(sae_id, feature)] == [text]
