// The activation density histogram and the logit-effect histogram.

import { h } from "../lib/dom";
import { fmt, percent } from "../lib/format";
import { histogram } from "./histogram";
import type { FeatureData } from "./types";

export function actHistPanel(feature: FeatureData): HTMLElement {
  const { counts, max } = feature.act_hist;
  return h(
    "section",
    { class: "sc-panel", "data-panel": "act_hist" },
    h("h3", {}, "Activation density"),
    h(
      "p",
      { class: "sc-sub" },
      `density ${percent(feature.density)} · non-zero activations from 0 to ${fmt(max)}`,
    ),
    histogram({
      counts,
      lo: 0,
      hi: max,
      colour: (x) => `rgba(255, 120, 0, ${(0.35 + 0.6 * (max > 0 ? x / max : 0)).toFixed(2)})`,
      label: `activation histogram of feature ${feature.id}`,
    }),
  );
}

export function logitHistPanel(feature: FeatureData): HTMLElement {
  const { counts, lo, hi } = feature.logit_hist;
  return h(
    "section",
    { class: "sc-panel", "data-panel": "logit_hist" },
    h("h3", {}, "Logit effects"),
    h(
      "p",
      { class: "sc-sub" },
      `effect of the decoder direction on every token's logit, ${fmt(lo)} to ${fmt(hi)}`,
    ),
    histogram({
      counts,
      lo,
      hi,
      colour: (x) => (x >= 0 ? "rgb(70, 130, 230)" : "rgb(225, 80, 80)"),
      label: `logit-effect histogram of feature ${feature.id}`,
    }),
  );
}
