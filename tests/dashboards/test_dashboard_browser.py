"""The written dashboards in real headless Chromium: every panel there with the stored
numbers, hover cards by mouse and keyboard, switching features, the prompt view's rankings,
no console errors, no network requests. Screenshots go to build/screenshots/."""

from __future__ import annotations

import re

from saescope.dashboards import Dashboard, feature_dashboard
from saescope.dashboards.data import number
from saescope.inference import QuantileTable, run_prompt
from saescope.sae import load_sae
from saescope.store import open_store
from tests.dashboards.real_run import PROMPT

PANEL_NAMES = ["table", "act_hist", "logit_hist", "logits", "top", "quantiles"]


def shown(x: float) -> str:
    """How the page's fmt() writes a number (3 significant digits)."""
    return "0" if x == 0 else f"{float(f'{x:.3g}'):g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def stored_pages(real_run):
    run_dir, sae_id = real_run
    with open_store(run_dir / "features.db") as store:
        return {p["feature"]: p for p in store.iter_features(sae_id)}


def densest(pages: dict) -> int:
    return max(pages, key=lambda f: pages[f]["density"])


def test_feature_dashboard_shows_every_panel_with_the_stored_numbers(watch, feature_html, real_run):
    pages = stored_pages(real_run)
    watch.open(feature_html)
    page = watch.page
    f = int(page.locator("#sc-select").input_value())
    assert f == min(pages)
    stored = pages[f]
    for name in PANEL_NAMES:
        assert page.locator(f'[data-panel="{name}"]').count() == 1, name
    assert page.locator('[data-stat="max activation"] td').inner_text() == shown(stored["max_act"])
    # histograms: one bar per stored bin, with the stored counts
    for panel, counts in (
        ("act_hist", stored["act_hist"]["counts"]),
        ("logit_hist", stored["logits"]["hist"]["counts"]),
    ):
        bars = page.locator(f'[data-panel="{panel}"] rect')
        assert [int(c) for c in bars.evaluate_all("els => els.map(e => e.dataset.count)")] == counts
    # logit tables: the stored tokens in order
    positive = page.locator('[data-table="Positive logits"] code').all_inner_texts()
    assert positive == [r["token"].replace("\n", "↵") for r in stored["logits"]["top"][:10]]
    # nearest features in the stored order
    nearest = page.locator('[data-table="Nearest features"] .sc-fid').all_inner_texts()
    assert nearest == [f"#{n['feature']}" for n in stored["neighbours"][:5]]
    # top contexts: the stored top examples, best first, activations as stored
    contexts = page.locator('[data-panel="top"] .sc-context')
    assert contexts.count() == min(10, len(stored["examples"]["top"]))
    acts = page.locator('[data-panel="top"] .sc-context-act').all_inner_texts()
    assert acts == [shown(number(ex["max_act"])) for ex in stored["examples"]["top"][:10]]
    groups = page.locator('[data-panel="quantiles"] .sc-group')
    assert groups.count() == len({ex["interval"] for ex in stored["examples"]["quantile"]})
    assert re.fullmatch(r"Interval \d+: .* of activations", groups.first.locator("h4").inner_text())
    watch.screenshot("feature_first")
    watch.check_clean()


def test_hover_card_shows_the_tokens_activation_effect_and_logits(watch, feature_html, real_run):
    pages = stored_pages(real_run)
    f = densest(pages)
    watch.open(feature_html)
    page = watch.page
    page.select_option("#sc-select", str(f))
    example = pages[f]["examples"]["top"][0]
    token = (
        page.locator('[data-panel="top"] .sc-context').first.locator(".sc-t").nth(example["center"])
    )
    token.hover()
    card = page.locator("#sc-card")
    assert card.is_visible()
    assert card.locator(".sc-card-token").inner_text() == example["tokens"][
        example["center"]
    ].replace("\n", "↵")
    assert card.locator('[data-card="act"] td').inner_text() == shown(
        number(example["acts"][example["center"]])
    )
    assert card.locator('[data-card="loss"] td').inner_text().lstrip("+") == shown(
        float(f"{example['loss_effects'][example['center']]:.3g}")
    ).lstrip("+")
    boosted = card.locator('[data-card="boosted"] code').all_inner_texts()
    assert boosted == [
        t.replace("\n", "↵") for t in example["top_boosted_tokens"][example["center"]]
    ]
    watch.screenshot("feature_hover", full_page=False)
    page.mouse.move(0, 0)
    assert not card.is_visible()
    watch.check_clean()


def test_hover_card_is_reachable_from_the_keyboard(watch, feature_html, real_run):
    pages = stored_pages(real_run)
    f = densest(pages)
    watch.open(feature_html)
    page = watch.page
    page.select_option("#sc-select", str(f))
    example = pages[f]["examples"]["top"][0]
    center = page.locator('[data-panel="top"] .sc-context').first.locator(".sc-center")
    # tab from the last link before the contexts until the first context's token has focus
    for _ in range(100):
        page.keyboard.press("Tab")
        if center.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the first context")
    card = page.locator("#sc-card")
    assert card.is_visible()
    assert card.locator('[data-card="act"] td').inner_text() == shown(
        number(example["acts"][example["center"]])
    )
    page.keyboard.press("ArrowLeft" if example["center"] > 0 else "ArrowRight")
    moved = example["center"] - 1 if example["center"] > 0 else 1
    assert card.locator(".sc-card-token").inner_text() == example["tokens"][moved].replace(
        "\n", "↵"
    )
    page.keyboard.press("Escape")
    assert not card.is_visible()
    watch.check_clean()


def test_switching_features(watch, feature_html, real_run):
    pages = stored_pages(real_run)
    ids = sorted(pages)
    watch.open(feature_html)
    page = watch.page
    assert page.locator("#sc-select option").count() == len(ids)
    page.click("#sc-next")
    assert page.locator("article.sc-feature").get_attribute("data-feature") == str(ids[1])
    page.click("#sc-prev")
    assert page.locator("article.sc-feature").get_attribute("data-feature") == str(ids[0])
    page.select_option("#sc-select", str(ids[-1]))
    assert page.locator("h2").first.inner_text().startswith(f"Feature #{ids[-1]}")
    assert page.locator('[data-stat="max activation"] td').inner_text() == shown(
        pages[ids[-1]]["max_act"]
    )
    # a nearest-feature link opens that feature
    target = page.locator('[data-table="Nearest features"] a.sc-fid').first
    linked = target.get_attribute("data-feature")
    target.click()
    assert page.locator("article.sc-feature").get_attribute("data-feature") == linked
    assert page.evaluate("location.hash") == f"#feature={linked}"
    # a link with the hash opens at that feature
    page.goto(f"{watch.url}#feature={ids[2]}")
    page.reload()
    assert page.locator("article.sc-feature").get_attribute("data-feature") == str(ids[2])
    watch.check_clean()


def test_compressed_data_renders_the_same(watch, real_run, tmp_path):
    run_dir, sae_id = real_run
    plain = feature_dashboard(run_dir, sae_id, [0, 1, 2], compress=False).save(
        tmp_path / "plain.html"
    )
    packed = feature_dashboard(run_dir, sae_id, [0, 1, 2], compress=True).save(
        tmp_path / "packed.html"
    )
    assert 'data-encoding="gzip+base64"' in packed.read_text()
    texts = []
    for path in (plain, packed):
        watch.requests.clear()
        watch.open(path)
        watch.page.wait_for_selector("article.sc-feature")
        texts.append(watch.page.locator("#saescope-root").inner_text())
        watch.check_clean()
    assert texts[0] == texts[1]


def test_prompt_dashboard_ranks_features_at_the_chosen_token(watch, prompt_html, real_run, smollm2):
    run_dir, sae_id = real_run
    sae = load_sae(str(run_dir / "sae"))
    run = run_prompt(smollm2, sae, PROMPT)
    with open_store(run_dir / "features.db") as store:
        quantiles = QuantileTable.from_store(store, sae_id)
        default = len(run) - 2
        expected = run.rank_at(default, quantiles, 10)
        other = run.rank_at(3, quantiles, 10)
    watch.open(prompt_html)
    page = watch.page
    tokens = page.locator(".sc-prompt-token")
    assert tokens.all_inner_texts() == [t.replace("\n", "↵") for t in run.tokens]
    assert tokens.nth(default).get_attribute("aria-pressed") == "true"

    def ranked(key: str) -> list[str]:
        return page.locator(f'[data-ranking="{key}"] tbody tr').evaluate_all(
            "rs => rs.map(r => r.dataset.feature)"
        )

    assert ranked("act") == [str(r.feature) for r in expected.by_act]
    assert ranked("quantile") == [str(r.feature) for r in expected.by_quantile]
    assert ranked("loss") == [str(r.feature) for r in expected.by_effect]
    first = expected.by_effect[0]
    cells = page.locator('[data-ranking="loss"] tbody tr').first.locator("td").all_inner_texts()
    assert cells[1] == shown(number(first.act))
    assert float(cells[3]) == float(f"{first.logprob_effect:.3g}")
    watch.screenshot("prompt")
    # another token
    tokens.nth(3).click()
    assert ranked("act") == [str(r.feature) for r in other.by_act]
    # hover card of a token: its most active features
    tokens.nth(3).hover()
    card_rows = page.locator("#sc-card tr").all_inner_texts()
    top_ids, _ = run.top_features(5)
    assert [row.split()[0] for row in card_rows] == [f"#{f}" for f in top_ids[3] if f >= 0]
    watch.screenshot("prompt_hover", full_page=False)
    # a row opens the feature's panels
    row = page.locator('[data-ranking="act"] tbody tr').first
    row.click()
    assert page.locator("article.sc-feature").get_attribute("data-feature") == row.get_attribute(
        "data-feature"
    )
    assert page.locator('[data-panel="top"]').count() == 1
    watch.screenshot("prompt_feature")
    watch.check_clean()


def test_jupyter_display_renders_inline(watch, real_run, tmp_path):
    run_dir, sae_id = real_run
    dashboard = feature_dashboard(run_dir, sae_id, [0, 1])
    assert isinstance(dashboard, Dashboard)
    notebook_cell = tmp_path / "cell.html"
    notebook_cell.write_text(f"<!doctype html><html><body>{dashboard._repr_html_()}</body></html>")
    watch.url = notebook_cell.resolve().as_uri()
    watch.page.goto(watch.url)
    frame = watch.page.frame_locator("iframe")
    frame.locator("article.sc-feature").wait_for()
    assert frame.locator('[data-panel="act_hist"]').count() == 1
    assert watch.errors == []
    # the iframe's srcdoc is its own document: still no request but the cell itself
    assert {u for u in watch.requests if not u.startswith("about:")} == {watch.url}
