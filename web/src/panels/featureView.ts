// A feature's panels: what it means (its explanation) first, then the panels in the order and
// selection the layout names.

import { h } from "../lib/dom";
import type { PanelContext } from "./context";
import { quantileGroupsPanel, topContextsPanel } from "./contexts";
import { explanationPanel } from "./explanation";
import { featureTablePanel } from "./featureTable";
import { actHistPanel, logitHistPanel } from "./histograms";
import { logitTablesPanel } from "./logitTables";
import type { FeatureData, PanelName } from "./types";

const PANELS: Record<PanelName, (ctx: PanelContext, feature: FeatureData) => HTMLElement> = {
  table: featureTablePanel,
  act_hist: (_ctx, feature) => actHistPanel(feature),
  logit_hist: (_ctx, feature) => logitHistPanel(feature),
  logits: logitTablesPanel,
  top: topContextsPanel,
  quantiles: quantileGroupsPanel,
};

export function featureView(ctx: PanelContext, feature: FeatureData): HTMLElement {
  return h(
    "article",
    { class: "sc-feature", "data-feature": feature.id },
    h(
      "h2",
      {},
      `Feature #${feature.id}`,
      h("span", { class: "sc-sub" }, ` · ${ctx.sae.sae_id}`),
      neuronpediaLink(ctx.sae.neuronpedia_id, feature.id),
    ),
    h(
      "div",
      { class: "sc-panels" },
      explanationPanel(feature),
      ctx.layout.panels.map((name) => PANELS[name](ctx, feature)),
    ),
  );
}

function neuronpediaLink(id: string | null | undefined, feature: number): HTMLElement | null {
  if (!id) return null;
  const href = `https://www.neuronpedia.org/${id}/${feature}`;
  return h(
    "a",
    { class: "sc-sub sc-neuronpedia", href, target: "_blank", rel: "noopener" },
    " · Neuronpedia ↗",
  );
}
