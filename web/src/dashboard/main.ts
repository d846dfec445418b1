// The static dashboard's entry: reads the data embedded in the page (<script
// id="saescope-data" type="application/json">) and renders the prompt view (if any), a
// feature selector and the chosen feature's panels. No network requests.

import { featureView, promptView } from "../index";
import type { DashboardData, FeatureData, PanelContext } from "../index";
import { append, h } from "../lib/dom";
import { percent } from "../lib/format";
import { hideCard } from "../panels/tokenCard";

// The data is JSON, or for big files gzipped JSON in base64, unpacked by the browser itself.
async function readData(): Promise<DashboardData> {
  const el = document.getElementById("saescope-data");
  if (el === null || !el.textContent) throw new Error("this page holds no dashboard data");
  if (el.dataset.encoding !== "gzip+base64") return JSON.parse(el.textContent) as DashboardData;
  const bytes = Uint8Array.from(atob(el.textContent.trim()), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text()) as DashboardData;
}

function saeLine(data: DashboardData): string {
  const { sae } = data;
  const parts = [
    sae.model,
    sae.hook_point,
    sae.architecture,
    `d_sae ${sae.d_sae.toLocaleString("en")}`,
    `${sae.n_tokens.toLocaleString("en")} tokens analysed`,
  ];
  return parts.filter((p) => p).join(" · ");
}

// The URL's hash names the feature shown, so a link or a reload opens it again. A page in a
// srcdoc iframe (Jupyter) has no URL of its own to change: it just does without.
function rememberInUrl(f: number): void {
  if (window.location.hash === `#feature=${f}`) return;
  try {
    history.replaceState(null, "", `#feature=${f}`);
  } catch {
    // about:srcdoc
  }
}

function render(root: HTMLElement, data: DashboardData): void {
  const byId = new Map<number, FeatureData>(data.features.map((f) => [f.id, f]));
  const view = h("div", { class: "sc-feature-slot" });
  const select = h(
    "select",
    { id: "sc-select", "aria-label": "feature" },
    data.features.map((f) =>
      h(
        "option",
        { value: f.id },
        [`#${f.id}`, f.label, `density ${percent(f.density)}`].filter((p) => p).join(" · "),
      ),
    ),
  );
  const ctx: PanelContext = {
    vocab: data.vocab,
    sae: data.sae,
    layout: data.layout,
    featureLink: (f) => (byId.has(f) ? () => show(f, true) : null),
  };

  function show(f: number, scroll: boolean): void {
    const feature = byId.get(f);
    if (feature === undefined) return;
    hideCard();
    select.value = String(f);
    view.replaceChildren(featureView(ctx, feature));
    rememberInUrl(f);
    if (scroll) nav.scrollIntoView({ block: "start" });
  }

  function step(delta: number): void {
    const i = Math.min(data.features.length - 1, Math.max(0, select.selectedIndex + delta));
    const next = data.features[i];
    if (next) show(next.id, false);
  }

  select.addEventListener("change", () => show(Number(select.value), false));
  const nav = h(
    "nav",
    { class: "sc-nav" },
    h(
      "button",
      { type: "button", id: "sc-prev", onclick: () => step(-1), "aria-label": "previous feature" },
      "◀",
    ),
    select,
    h(
      "button",
      { type: "button", id: "sc-next", onclick: () => step(1), "aria-label": "next feature" },
      "▶",
    ),
    h(
      "span",
      { class: "sc-sub" },
      `${data.features.length.toLocaleString("en")} features in this file`,
    ),
  );
  root.replaceChildren();
  append(root, [
    h(
      "header",
      { class: "sc-header" },
      h("h1", {}, data.title),
      h("p", { class: "sc-sub" }, saeLine(data)),
    ),
    data.prompt ? promptView(ctx, data.prompt) : null,
    data.features.length ? nav : null,
    view,
  ]);
  const fromHash = /^#feature=(\d+)$/.exec(window.location.hash);
  // A prompt dashboard opens at the most active feature of the token it shows first.
  const promptTop = data.prompt?.rankings[data.prompt.position]?.act[0]?.f;
  const opening = promptTop !== undefined && byId.has(promptTop) ? promptTop : data.features[0]?.id;
  const first = fromHash && byId.has(Number(fromHash[1])) ? Number(fromHash[1]) : opening;
  if (first !== undefined) show(first, false);
}

async function main(): Promise<void> {
  const root = document.getElementById("saescope-root") ?? document.body;
  try {
    render(root, await readData());
  } catch (err) {
    root.replaceChildren(h("p", { class: "sc-error" }, `saescope: ${String(err)}`));
    throw err;
  }
}

void main();
