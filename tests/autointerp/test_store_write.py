"""Writing auto-interp results into the store from Python: explain and score with the in-process
backend on the bundled SmolLM2, `write_results` to a store file, and read every number back."""

from __future__ import annotations

import pytest

from saescope.autointerp import AutoInterpConfig, TransformersBackend, explain_features, recompute
from saescope.autointerp.store_write import stored_score, write_results
from saescope.store import open_store

CONFIG = AutoInterpConfig(scorers=("detection",), n_explain=2, n_activating=2, n_inactive=2,
                          n_hard_negatives=0, batch_size=4, explain_max_tokens=30, n_retries=1)  # fmt: skip


@pytest.fixture(scope="module")
def backend(smollm2):
    import torch

    threads = torch.get_num_threads()
    yield TransformersBackend(batch_size=4, threads=1)  # one thread: fast on a busy machine
    torch.set_num_threads(threads)


def test_results_written_from_python_read_back_whole(backend, analysis, tmp_path) -> None:
    path = tmp_path / "features.db"
    with open_store(path) as store:
        store.write_analysis(analysis)
    results = explain_features(
        path, analysis.sae_id, [5, 1], backend, config=CONFIG, progress=False
    )
    made, dead = results
    assert dead.error and dead.explanation is None  # feature 1 is dead: nothing to write
    written = write_results(str(path), results)
    assert written == (made.explanation is not None) + len(made.scores)
    with open_store(path, create=False) as store:
        [stored] = store.explanations(analysis.sae_id, 5)
        assert stored["text"] == made.explanation.text
        assert made.explanation.text and stored["current"]
        assert stored["explainer"]["backend"] == "transformers"
        assert stored["prompt_tokens"] == made.explanation.prompt_tokens > 0
        [score] = stored["scores"]
        record = store.explanation_score(score["id"])
        back = stored_score(record)
        assert back.predictions == made.scores[0].predictions
        assert recompute(back) == made.scores[0].metrics == record["metrics"]
        assert store.explanations(analysis.sae_id, 1) == []

    # scoring a hand-written explanation: the scores attach to it
    with open_store(path, create=False) as store:
        store.set_explanation(analysis.sae_id, 5, 'the word " London"')
    (scored,) = explain_features(
        path, analysis.sae_id, [5], backend, config=CONFIG, progress=False,
        explain=False, explanations={5: 'the word " London"'},
    )  # fmt: skip
    with open_store(path, create=False) as store:
        assert write_results(store, [scored]) == 1
        current = store.explanations(analysis.sae_id, 5)[0]
        assert (current["text"], current["explainer"]["backend"]) == (
            'the word " London"',
            "manual",
        )
        assert [s["scorer"] for s in current["scores"]] == ["detection"]
        # the browser lists it by its detection score (none: the metric was undefined)
        page = store.features(analysis.sae_id, sort_by="detection")
        assert [i["feature"] for i in page["items"]] == (
            [] if scored.scores[0].value is None else [5]
        )
