"""End to end in real headless Chromium: the built viewer on a real uvicorn server, real run,
real SmolLM2. Screenshots go to build/screenshots/viewer-*.png (gitignored): look at them."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from saescope.server.app import default_web_dir
from tests.server.screens import shot, watched_page
from tests.server.viewer_run import D_SAE


@pytest.fixture
def page(browser, live_server):
    if default_web_dir() is None:
        pytest.fail(
            "the viewer is not built: cd web && npm ci && npm run build (scripts/setup.sh does it)",
            pytrace=False,
        )
    page = watched_page(browser)
    page.base = live_server
    yield page
    page.close()


def test_overview_browse_search_and_open_a_feature(page):
    page.goto(page.base + "/")
    page.wait_for_selector("[data-panel=density] svg")  # the single SAE opens directly
    assert "/overview" in unquote(page.url)
    assert page.locator("[data-panel=sae-info]").inner_text().count("blocks.6.hook_resid_post") >= 1
    shot(page, "overview")

    page.click("text=Features")
    page.wait_for_selector("#sv-features tbody tr")
    assert page.locator("#sv-features tbody tr").count() == min(50, D_SAE)
    page.click("[data-sort=max_act]")
    page.wait_for_selector("th[aria-sort=descending] [data-sort=max_act]")
    values = [
        float(t) for t in page.locator("#sv-features tbody tr td:nth-child(3)").all_inner_texts()
    ]
    assert values == sorted(values, reverse=True)
    shot(page, "features")

    # "/" focuses the search box; search for a word of a top context
    page.locator("body").press("/")
    assert page.evaluate("document.activeElement.id") == "sv-search"
    word = page.evaluate("""async () => {
        const r = await fetch('/api/saes/' + encodeURIComponent(document.querySelector('#sv-sae').value) + '/features/0');
        const page = await r.json();
        return page.examples.top[0].tokens.map(t => t.trim()).find(t => /^[A-Za-z]{4,}$/.test(t));
    }""")
    assert word, "feature 0 has no word of 4+ letters in its top context"
    page.keyboard.type(word)
    page.keyboard.press("Enter")
    page.wait_for_selector("#sv-search-results tbody tr")
    shot(page, "search")

    page.locator("#sv-search-results tbody tr a.sc-fid").first.click()
    page.wait_for_selector(".sc-feature [data-panel=top] .sc-context")
    assert page.locator("[data-panel=act_hist] svg rect").count() > 0
    assert page.locator("[data-panel=logits]").count() == 1
    shot(page, "feature")
    assert page.errors == []


def test_feature_page_deep_link_keyboard_and_own_text(page):
    saes = page.request.get(page.base + "/api/saes").json()
    sae_id = saes[0]["sae_id"]
    page.goto(f"{page.base}/#/sae/{sae_id.replace('/', '%2F')}/feature/5")
    page.wait_for_selector(".sc-feature[data-feature='5']")
    page.locator("body").press("]")
    page.wait_for_selector(".sc-feature[data-feature='6']")
    assert unquote(page.url).endswith("/feature/6")
    page.locator("body").press("[")
    page.wait_for_selector(".sc-feature[data-feature='5']")

    page.fill("#sv-feature-text", "def __init__(self):\n    return None")
    page.locator("#sv-feature-text").press("Enter")
    page.wait_for_selector(".sv-feature-text .sc-t")
    tokens = page.locator(".sv-feature-text .sc-t")
    assert tokens.count() >= 5
    acts = [float(a) for a in tokens.evaluate_all("els => els.map(e => e.dataset.act)")]
    live = page.request.post(
        f"{page.base}/api/saes/{sae_id}/features/5/activations",
        data={"text": "def __init__(self):\n    return None"},
    ).json()
    assert acts == pytest.approx(live["acts"], rel=1e-4, abs=1e-4)
    tokens.nth(1).focus()  # the hover card opens on keyboard focus too
    page.wait_for_selector("#sc-card:not([hidden])")
    shot(page, "feature-own-text")
    assert page.errors == []


def test_test_text_prompt_steer_and_map_pages(page):
    page.goto(page.base + "/")
    page.wait_for_selector("[data-panel=density]")

    page.click("text=Test your text")
    page.wait_for_selector("#sv-top-features tbody tr")
    assert page.locator("#sv-top-features tbody tr").count() >= 8
    shot(page, "test-text")
    page.fill("#sv-test-feature", "5")
    page.locator("#sv-test-text").press("Enter")
    page.wait_for_selector(".sv-feature-text[data-feature='5'] .sc-t")
    shot(page, "test-text-feature")

    page.click("nav.sv-links >> text=Prompt")
    page.wait_for_selector(".sc-prompt .sc-prompt-token")
    page.locator(".sc-prompt-token").nth(3).click()
    page.wait_for_selector("[data-ranking=act] tbody tr[data-feature]")
    page.locator("[data-ranking=act] tbody tr[data-feature]").first.click()
    page.wait_for_selector(".sc-feature-slot .sc-feature")
    shot(page, "prompt")

    page.click("nav.sv-links >> text=Steer")
    page.fill("#sv-steer-feature", "5")
    page.fill("#sv-steer-value", "200")
    page.fill("#sv-steer-tokens", "8")
    page.locator("#sv-steer-text").press("Enter")
    page.wait_for_selector("#sv-steered .sv-generated", state="attached", timeout=120_000)
    steered = page.locator("#sv-steered .sv-generated").inner_text()
    unsteered = page.locator("#sv-unsteered .sv-generated").inner_text()
    assert steered and unsteered and steered != unsteered
    shot(page, "steer")

    page.click("nav.sv-links >> text=Map")
    page.wait_for_selector("svg.sv-map circle", timeout=60_000)
    assert page.locator("svg.sv-map circle").count() == D_SAE
    shot(page, "map")
    point = page.locator("svg.sv-map a").last  # drawn last, so no other point covers it
    feature = point.locator("circle").get_attribute("data-feature")
    point.click()
    page.wait_for_selector(f".sc-feature[data-feature='{feature}']")
    assert page.errors == []


def test_bad_links_show_the_servers_message(page):
    page.goto(page.base + "/#/sae/no-such-sae/feature/3")
    page.wait_for_selector("[role=alert]")
    assert "no-such-sae" in page.locator("[role=alert]").inner_text()
