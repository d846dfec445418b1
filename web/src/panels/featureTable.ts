// The feature table: density, activation statistics, stored scores, and the nearest
// (decoder cosine), co-firing (correlation) features and aligned MLP neurons.

import { h } from "../lib/dom";
import { fmt, percent, signed } from "../lib/format";
import type { PanelContext } from "./context";
import type { FeatureData, Ranked } from "./types";

export function featureLinkEl(ctx: PanelContext, f: number): HTMLElement {
  const open = ctx.featureLink(f);
  if (open === null) return h("span", { class: "sc-fid", title: "not in this dashboard" }, `#${f}`);
  return h(
    "a",
    {
      class: "sc-fid",
      href: `#feature=${f}`,
      "data-feature": f,
      onclick: (e: Event) => {
        e.preventDefault();
        open();
      },
    },
    `#${f}`,
  );
}

function statsTable(feature: FeatureData): HTMLElement {
  const rows: [string, string][] = [
    ["density", percent(feature.density)],
    ["max activation", fmt(feature.max_act)],
    ["mean activation (active)", fmt(feature.mean_act)],
    ...Object.entries(feature.scores).map(([name, value]): [string, string] => [name, fmt(value)]),
  ];
  return h(
    "table",
    { class: "sc-table sc-stats" },
    h(
      "tbody",
      {},
      rows.map(([name, value]) =>
        h("tr", { "data-stat": name }, h("th", {}, name), h("td", {}, value)),
      ),
    ),
  );
}

function rankedTable(
  ctx: PanelContext,
  title: string,
  ranked: Ranked,
  idName: string,
  valueName: string,
  isNeuron = false,
): HTMLElement {
  const n = Math.min(ranked.f.length, ctx.layout.n_table);
  const rows = [];
  for (let i = 0; i < n; i++) {
    const id = ranked.f[i] as number;
    rows.push(
      h(
        "tr",
        {},
        h("td", {}, isNeuron ? `n${id}` : featureLinkEl(ctx, id)),
        h("td", { class: "sc-num" }, signed(ranked.v[i])),
      ),
    );
  }
  return h(
    "table",
    { class: "sc-table", "data-table": title },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", {}, idName), h("th", { class: "sc-num" }, valueName))),
    h(
      "tbody",
      {},
      rows.length ? rows : h("tr", {}, h("td", { colspan: 2, class: "sc-muted" }, "none")),
    ),
  );
}

export function featureTablePanel(ctx: PanelContext, feature: FeatureData): HTMLElement {
  return h(
    "section",
    { class: "sc-panel sc-panel-table", "data-panel": "table" },
    h("h3", {}, "Feature table"),
    h(
      "div",
      { class: "sc-row" },
      statsTable(feature),
      rankedTable(ctx, "Nearest features", feature.neighbours, "feature", "cos"),
      rankedTable(ctx, "Co-firing features", feature.cofiring, "feature", "corr"),
      feature.neurons
        ? rankedTable(ctx, "Aligned neurons", feature.neurons, "neuron", "weight", true)
        : null,
    ),
  );
}
