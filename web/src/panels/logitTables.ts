// The top negative and top positive logit tables: the tokens the feature's decoder direction
// suppresses and boosts most, through the unembedding.

import { h } from "../lib/dom";
import { showToken, signed, signedColour } from "../lib/format";
import type { PanelContext } from "./context";
import { tokenText } from "./context";
import type { FeatureData, LogitTable } from "./types";

function logitTable(
  ctx: PanelContext,
  title: string,
  table: LogitTable,
  scale: number,
): HTMLElement {
  const n = Math.min(table.t.length, ctx.layout.n_logits);
  const rows = [];
  for (let i = 0; i < n; i++) {
    const value = table.v[i] as number;
    rows.push(
      h(
        "tr",
        {},
        h(
          "td",
          {},
          h(
            "code",
            { class: "sc-tok", style: `background:${signedColour(value, scale)}` },
            showToken(tokenText(ctx, table.t[i] as number)),
          ),
        ),
        h("td", { class: "sc-num" }, signed(value)),
      ),
    );
  }
  return h(
    "table",
    { class: "sc-table", "data-table": title },
    h("caption", {}, title),
    h("tbody", {}, rows),
  );
}

export function logitTablesPanel(ctx: PanelContext, feature: FeatureData): HTMLElement {
  const scale = Math.max(
    1e-9,
    ...feature.logits_top.v.map(Math.abs),
    ...feature.logits_bottom.v.map(Math.abs),
  );
  return h(
    "section",
    { class: "sc-panel", "data-panel": "logits" },
    h("h3", {}, "Logit tables"),
    h(
      "div",
      { class: "sc-row" },
      logitTable(ctx, "Negative logits", feature.logits_bottom, scale),
      logitTable(ctx, "Positive logits", feature.logits_top, scale),
    ),
  );
}
