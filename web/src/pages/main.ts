// The web viewer's entry: a shell (title, SAE picker, page links) and the page the URL's
// hash names. Keyboard: "/" focuses the search box, "[" and "]" step through features.

import "../panels/panels.css";
import "./viewer.css";
import { hideCard } from "../index";
import { h } from "../lib/dom";
import { api, type SaeBrief } from "./api";
import { browserPage } from "./browser";
import { errorText, message } from "./common";
import { featurePage } from "./feature";
import { promptPage, steerPage, testPage } from "./live";
import { mapPage } from "./map";
import { homePage, overviewPage } from "./overview";
import { go, href, type PageName, parseRoute, type Route } from "./route";

const LINKS: [PageName, string][] = [
  ["overview", "Overview"],
  ["features", "Features"],
  ["test", "Test your text"],
  ["prompt", "Prompt"],
  ["steer", "Steer"],
  ["map", "Map"],
];

let saes: SaeBrief[] = [];
let rendering = 0;

function shell(route: Route): HTMLElement {
  const picker = h(
    "select",
    {
      id: "sv-sae",
      "aria-label": "SAE",
      onchange: (e: Event) =>
        go(
          href(
            (e.target as HTMLSelectElement).value,
            route.page === "home" ? "overview" : route.page === "feature" ? "features" : route.page,
          ),
        ),
    },
    route.sae === null ? h("option", { value: "" }, "choose an SAE") : null,
    saes.map((s) => h("option", { value: s.sae_id, selected: s.sae_id === route.sae }, s.sae_id)),
  );
  const sae = route.sae;
  return h(
    "header",
    { class: "sv-header" },
    h("a", { href: "#/", class: "sv-title" }, "saescope"),
    picker,
    sae === null
      ? null
      : h(
          "nav",
          { class: "sv-links", "aria-label": "pages" },
          LINKS.map(([page, title]) =>
            h(
              "a",
              { href: href(sae, page), "aria-current": route.page === page ? "page" : null },
              title,
            ),
          ),
        ),
  );
}

async function page(route: Route): Promise<HTMLElement> {
  const sae = route.sae;
  if (sae === null) return homePage();
  switch (route.page) {
    case "features":
      return browserPage(sae, route.params);
    case "feature":
      return route.feature === null
        ? message("no feature id in the URL", "error")
        : featurePage(sae, route.feature, route.params);
    case "test":
      return testPage(sae, route.params);
    case "prompt":
      return promptPage(sae, route.params);
    case "steer":
      return steerPage(sae, route.params);
    case "map":
      return mapPage(sae);
    default:
      return overviewPage(sae);
  }
}

async function render(): Promise<void> {
  const ticket = ++rendering;
  const root = document.getElementById("saescope-root") ?? document.body;
  const route = parseRoute(window.location.hash);
  hideCard();
  const main = h("main", { id: "sv-main", "aria-busy": "true" }, message("loading…"));
  root.replaceChildren(shell(route), main);
  document.title = route.sae
    ? `${route.page === "feature" ? `#${route.feature} · ` : ""}${route.sae} · saescope`
    : "saescope viewer";
  let content: HTMLElement;
  try {
    content = await page(route);
  } catch (err) {
    content = message(errorText(err), "error");
  }
  if (ticket !== rendering) return; // the user moved on meanwhile
  main.replaceChildren(content);
  main.setAttribute("aria-busy", "false");
}

function onKey(event: KeyboardEvent): void {
  const target = event.target as HTMLElement;
  if (target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey)
    return;
  const route = parseRoute(window.location.hash);
  if (event.key === "/") {
    event.preventDefault();
    if (route.sae !== null && route.page !== "features") go(href(route.sae, "features"));
    else document.getElementById("sv-search")?.focus();
  } else if (
    (event.key === "[" || event.key === "]") &&
    route.page === "feature" &&
    route.sae !== null &&
    route.feature !== null
  ) {
    const next = route.feature + (event.key === "]" ? 1 : -1);
    if (next >= 0) go(href(route.sae, "feature", next));
  }
}

async function main(): Promise<void> {
  try {
    saes = await api.saes();
  } catch (err) {
    document.body.replaceChildren(
      message(`saescope: cannot reach the API (${errorText(err)})`, "error"),
    );
    return;
  }
  // One SAE: open it directly.
  if (parseRoute(window.location.hash).page === "home" && saes.length === 1 && saes[0]) {
    history.replaceState(null, "", href(saes[0].sae_id, "overview"));
  }
  window.addEventListener("hashchange", () => void render());
  document.addEventListener("keydown", onKey);
  await render();
}

void main();
