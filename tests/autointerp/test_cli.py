"""`saescope explain`, `score` and `explanation` end to end: a real analysed run (SmolLM2 +
a TopK SAE + the analysis pass, tests/dashboards/real_run.py), the in-process backend on the
bundled model, results read back from the feature store; and every bad input named in one line.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from saescope.autointerp import metrics, recompute
from saescope.autointerp.store_write import stored_score
from saescope.cli import main
from saescope.store import open_store
from tests.dashboards.real_run import make_run

# small example counts and short answers: a CPU-friendly run of the 135M model
SMALL = [
    "--threads", "1", "--n-explain", "3", "--n-activating", "2", "--n-inactive", "2",
    "--n-hard-negatives", "1", "--batch-size", "5", "--explain-max-tokens", "30",
    "--n-retries", "0", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _keep_torch_threads():
    """--threads 1 sets torch's threads for the whole process: put them back afterwards."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def analysed_run(smollm2, tmp_path_factory) -> tuple[Path, str]:
    return make_run(smollm2, tmp_path_factory.mktemp("cli") / "run")


@pytest.fixture
def run_copy(analysed_run, tmp_path) -> tuple[Path, str, list[int]]:
    """A copy of the analysed run this test may write to, its SAE id and its live features."""
    source, sae_id = analysed_run
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(source / "features.db", run_dir / "features.db")
    with open_store(run_dir / "features.db") as store:
        live = [f for f, d in enumerate(store.densities(sae_id)) if d > 0]
    return run_dir, sae_id, live


def saescope(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_score_and_label_into_the_store_then_resume_from_it(run_copy, capsys) -> None:
    run_dir, sae_id, live = run_copy
    chosen = live[:2]
    features = ",".join(map(str, chosen))
    code, out, err = saescope(
        capsys, "explain", run_dir, "--features", features, "--score", "--labels", *SMALL
    )
    assert code == 0, err
    assert f"2 feature(s) of {sae_id}" in out and "mean scores:" in out
    assert "requests sent" in out and (run_dir / "autointerp_cache" / "requests.sqlite").is_file()
    detection = {}
    with open_store(run_dir / "features.db") as store:
        for f in chosen:
            rows = store.explanations(sae_id, f)
            explanation = next(r for r in rows if r["kind"] == "explanation")
            assert explanation["current"] and explanation["text"]
            assert explanation["explainer"] == {
                "backend": "transformers",
                "model": "smollm2",
                "prompt_format": "delphi",
                "prompt_version": 1,
            }
            assert explanation["prompt_tokens"] > 0
            assert sorted(s["scorer"] for s in explanation["scores"]) == ["detection", "fuzzing"]
            for s in explanation["scores"]:
                assert s["value"] is None or 0 <= s["value"] <= 1
                if s["scorer"] == "detection":
                    detection[f] = s["value"]
                # 2 activating + the 1 inactive context the run keeps per feature + 1 hard negative
                assert s["n_predictions"] == 2 + 1 + 1
                stored = store.explanation_score(s["id"])
                assert_balanced_accuracy(stored)
                assert recompute(stored_score(stored)) == stored["metrics"]
            label = next(r for r in rows if r["kind"] == "label")
            assert label["explainer"]["prompt_format"] == "label" and label["scores"] == []
            assert label["current"] == (
                label["text"] is not None
            )  # a failed one is kept, not shown
            page = store.feature(sae_id, f)
            assert page["explanation"] == explanation["text"] and page["label"] == label["text"]
        assert {"detection", "fuzzing"} <= set(store.sae_summary(sae_id)["score_names"])
        # the browser sorts by the mirrored scores with no new query code (the features whose
        # detection has a value: the 135M judge's answer may not have parsed)
        valued = sorted(f for f, v in detection.items() if v is not None)
        listed = store.features(sae_id, sort_by="detection", limit=10)["items"]
        assert sorted(item["feature"] for item in listed) == valued
        n_rows = sum(len(store.explanations(sae_id, f)) for f in chosen)

    # the same command again: everything is in the store, nothing is asked or written twice
    code, out, err = saescope(
        capsys, "explain", run_dir, "--features", features, "--score", "--labels", *SMALL
    )
    assert code == 0, err
    assert "2 already done" in out and "0 requests sent" in out
    with open_store(run_dir / "features.db") as store:
        assert sum(len(store.explanations(sae_id, f)) for f in chosen) == n_rows


def assert_balanced_accuracy(stored: dict) -> None:
    """The stored headline value, computed again by hand from the stored predictions."""
    preds = stored["predictions"]
    truth_key = "correctly_marked" if stored["scorer"] == "fuzzing" else "activating"
    pos = [p for p in preds if p[truth_key] and p["predicted"] is not None]
    neg = [p for p in preds if not p[truth_key] and p["predicted"] is not None]
    if not pos or not neg:
        return
    tpr = sum(p["predicted"] for p in pos) / len(pos)
    tnr = sum(not p["predicted"] for p in neg) / len(neg)
    assert stored["value"] == pytest.approx((tpr + tnr) / 2)
    assert stored["metrics"]["balanced_accuracy"] == pytest.approx(
        metrics.classification_metrics(
            [bool(p[truth_key]) for p in preds],
            [p["predicted"] for p in preds],
            [None] * len(preds),
        )["balanced_accuracy"]
    )


def test_by_hand_set_list_pick_clear_and_score_it(run_copy, capsys) -> None:
    run_dir, sae_id, live = run_copy
    f = live[0]
    assert saescope(capsys, "explanation", "set", run_dir, f, "the word the")[0] == 0
    assert saescope(capsys, "explanation", "set", run_dir, f, "articles")[0] == 0
    assert saescope(capsys, "explanation", "set", run_dir, f, "articles", "--label")[0] == 0
    with open_store(run_dir / "features.db") as store:
        rows = store.explanations(sae_id, f)
        assert store.feature(sae_id, f)["explanation"] == "articles"
        assert store.feature(sae_id, f)["label"] == "articles"
    first = next(r["id"] for r in rows if r["text"] == "the word the")
    assert all(r["explainer"]["backend"] == "manual" for r in rows)

    code, out, _ = saescope(capsys, "explanation", "list", run_dir, f)
    assert code == 0 and "'the word the'" in out and "by hand" in out
    assert out.splitlines()[0].startswith("* #")  # current first

    assert saescope(capsys, "explanation", "current", run_dir, f, first)[0] == 0
    with open_store(run_dir / "features.db") as store:
        assert store.feature(sae_id, f)["explanation"] == "the word the"

    # score the hand-written explanation (detection only: one prompt)
    code, out, err = saescope(
        capsys, "score", run_dir, "--features", f, "--scorers", "detection", *SMALL
    )
    assert code == 0, err
    assert "mean scores:" in out and "1 feature(s)" in out
    with open_store(run_dir / "features.db") as store:
        now = next(r for r in store.explanations(sae_id, f) if r["kind"] == "explanation")
        assert (
            now["current"]
            and now["id"] == first
            and [s["scorer"] for s in now["scores"]] == ["detection"]
        )

    assert saescope(capsys, "explanation", "clear", run_dir, f)[0] == 0
    with open_store(run_dir / "features.db") as store:
        assert store.feature(sae_id, f)["explanation"] is None
        rows_after = store.explanations(sae_id, f)
        assert len(rows_after) == len(rows)  # kept, none current
        assert not any(r["current"] for r in rows_after if r["kind"] == "explanation")
    code, out, _ = saescope(capsys, "score", run_dir, "--features", f, *SMALL)
    assert code == 0 and "no current explanation to score" in out

    code, _, err = saescope(capsys, "explanation", "current", run_dir, f, 99999)
    assert code == 2 and "ID: got 99999" in err


# ---- bad input ----------------------------------------------------------------------------------


def test_a_feature_id_out_of_range(run_copy, capsys) -> None:
    run_dir, sae_id, _ = run_copy
    code, _, err = saescope(capsys, "explain", run_dir, "--features", "3,999", *SMALL)
    assert code == 2
    assert f"--features: got 999; expected feature ids of SAE '{sae_id}': 0..31" in err
    code, _, err = saescope(capsys, "explanation", "set", run_dir, "-1", "x")
    assert code == 2 and "FEATURE: got -1" in err
    code, _, err = saescope(capsys, "explain", run_dir, *SMALL)
    assert code == 2 and "which features?" in err


def test_a_store_without_analysis(tmp_path, capsys) -> None:
    open_store(tmp_path / "empty.db").close()
    code, _, err = saescope(capsys, "explain", tmp_path / "empty.db", "--all")
    assert code == 2 and "holds no analysed SAE yet" in err and "saescope analyze" in err
    (tmp_path / "run").mkdir()
    code, _, err = saescope(capsys, "explain", tmp_path / "run", "--all")
    assert code == 2 and "has no features.db yet" in err


def test_sae_must_be_named_when_the_store_has_several(run_copy, capsys) -> None:
    run_dir, sae_id, _ = run_copy
    with open_store(run_dir / "features.db") as store:
        analysis = store.load_analysis(sae_id)
        analysis.sae_id = "second"
        store.write_analysis(analysis)
    code, _, err = saescope(capsys, "explain", run_dir, "--all")
    assert code == 2 and "--sae: got None; expected one of the SAEs in" in err
    assert sae_id in err and "second" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_fails_fast_naming_the_url_not_the_key(
    run_copy, capsys, monkeypatch
) -> None:
    run_dir, _, live = run_copy
    monkeypatch.setenv("SAESCOPE_TEST_KEY", "sk-secret-key-42")
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    code, _, err = saescope(
        capsys, "explain", run_dir, "--features", live[0], "--backend", "openai",
        "--base-url", url, "--model", "some-model", "--api-key-env", "SAESCOPE_TEST_KEY",
    )  # fmt: skip
    assert time.monotonic() - started < 15
    assert code == 2 and url in err and "cannot be reached" in err
    assert "sk-secret" not in err and len(err.strip().splitlines()) == 1


def test_missing_key_variable_and_missing_openai_settings(run_copy, capsys, monkeypatch) -> None:
    run_dir, _, live = run_copy
    monkeypatch.delenv("SAESCOPE_TEST_NO_KEY", raising=False)
    base = ["explain", run_dir, "--features", live[0], "--backend", "openai"]
    code, _, err = saescope(
        capsys, *base, "--base-url", "http://127.0.0.1:1/v1", "--model", "m",
        "--api-key-env", "SAESCOPE_TEST_NO_KEY",
    )  # fmt: skip
    assert code == 2 and "api_key_env: the environment variable 'SAESCOPE_TEST_NO_KEY'" in err
    code, _, err = saescope(capsys, *base, "--model", "m")
    assert code == 2 and "--base-url: got None" in err
    code, _, err = saescope(
        capsys, "explain", run_dir, "backend.base_url=http://127.0.0.1:1/v1", "backend.kind=openai",
        "--features", live[0],
    )  # fmt: skip
    assert code == 2 and "--model: got None" in err


def test_an_unknown_in_process_model(run_copy, capsys) -> None:
    run_dir, _, live = run_copy
    code, _, err = saescope(
        capsys, "explain", run_dir, "--features", live[0], "--model", "/nonexistent/chat-model"
    )
    assert code == 2 and "model: could not load '/nonexistent/chat-model'" in err


def test_config_file_flags_and_overrides_in_that_order(run_copy, tmp_path, capsys) -> None:
    run_dir, _, live = run_copy
    (tmp_path / "ai.yaml").write_text("n_explain: 0\nbackend:\n  kind: openai\n")
    code, _, err = saescope(
        capsys, "explain", run_dir, "--config", tmp_path / "ai.yaml", "--features", live[0]
    )
    assert code == 2 and "--n-explain: got 0; expected an integer >= 1" in err
    code, _, err = saescope(
        capsys, "explain", run_dir, "n_explain=4", "--config", tmp_path / "ai.yaml",
        "--features", live[0], "--scorers", "detection,simulaton",
    )  # fmt: skip
    assert code == 2 and "--scorers: got ('detection', 'simulaton')" in err
