"""`saescope dashboard`: feature selections, the prompt view, default paths and clear errors."""

from __future__ import annotations

import json
import re

import pytest

from saescope.cli import main
from saescope.dashboards import prompt_dashboard
from saescope.errors import ConfigError
from saescope.store import open_store


def embedded(path) -> dict:
    match = re.search(
        r'<script id="saescope-data" type="application/json">(.*?)</script>', path.read_text(), re.S
    )
    return json.loads(match.group(1))


def test_top_density_random_and_ranges(real_run, tmp_path, capsys):
    run_dir, sae_id = real_run
    with open_store(run_dir / "features.db") as store:
        densities = store.densities(sae_id)
    out = tmp_path / "dense.html"
    assert (
        main(
            ["dashboard", str(run_dir), "--top-density", "5", "--contexts", "2", "--out", str(out)]
        )
        == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    data = embedded(out)
    assert [f["id"] for f in data["features"]] == sorted(
        range(len(densities)), key=lambda f: -densities[f]
    )[:5]
    assert all(len(f["top"]) <= 2 for f in data["features"])
    assert (
        main(
            [
                "dashboard",
                str(run_dir / "features.db"),
                "--sae-id",
                sae_id,
                "--features",
                "3-5,9",
                "--panels",
                "table,top",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = embedded(out)
    assert [f["id"] for f in data["features"]] == [3, 4, 5, 9] and data["layout"]["panels"] == [
        "table",
        "top",
    ]
    assert main(["dashboard", str(run_dir), "--random", "4", "--seed", "3", "--out", str(out)]) == 0
    assert len(embedded(out)["features"]) == 4
    # default: the run's dashboards/ folder
    assert main(["dashboard", str(run_dir), "--top-density", "2"]) == 0
    assert (run_dir / "dashboards" / "features.html").is_file()


def test_prompt_dashboard_from_the_cli(real_run, tmp_path, capsys):
    run_dir, _ = real_run
    out = tmp_path / "prompt.html"
    assert (
        main(
            [
                "dashboard",
                str(run_dir),
                "--prompt",
                "import numpy as np",
                "--token",
                "-1",
                "--rows",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    prompt = embedded(out)["prompt"]
    assert prompt["text"] == "import numpy as np"
    assert prompt["position"] == len(prompt["tokens"]) - 1
    assert all(len(r["act"]) <= 3 for r in prompt["rankings"])
    assert prompt["rankings"][-1]["loss"] == []  # the last token has no next token


def test_errors_are_one_line_without_traceback(real_run, tmp_path, capsys):
    run_dir, _ = real_run
    cases = [
        (["--features", "40"], "features: got [40]; expected feature ids in 0..31"),
        (["--features", "x"], "features: got 'x'; expected feature ids and ranges"),
        (["--panels", "table,pie"], "panels: got 'table,pie'"),
        (["--sae-id", "nope"], "has no SAE 'nope'"),
    ]
    for extra, message in cases:
        assert main(["dashboard", str(run_dir), *extra, "--out", str(tmp_path / "x.html")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert main(["dashboard", str(tmp_path / "nothing")]) == 2
    assert "no feature store there" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_prompt_token_out_of_range(real_run, smollm2):
    run_dir, _ = real_run
    with pytest.raises(
        ConfigError,
        match=r"token: got 50; expected a token position in 0\.\.2 \(or -3\.\.-1 from the end\)",
    ):
        prompt_dashboard(run_dir, None, "hi there", model=smollm2, position=50)
