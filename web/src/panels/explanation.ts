// What a feature means, at the top of its page: the current short label and explanation with
// their interp scores (the explainer in small print and a tooltip), and the feature's other
// explanations in a collapsible list. A feature with none says so quietly.

import { h } from "../lib/dom";
import { fmt } from "../lib/format";
import type { ExplanationData, FeatureData } from "./types";

// What each scorer's headline value is, for the tooltip.
const SCORE_MEANING: Record<string, string> = {
  detection: "detection: balanced accuracy of telling activating examples from others",
  fuzzing: "fuzzing: balanced accuracy of telling correctly marked tokens from random marks",
  simulation: "simulation: Pearson r of simulated and true activations",
};
const SCORE_ORDER = ["detection", "fuzzing", "simulation"];

function explainerText(e: ExplanationData): string {
  if (e.backend === "manual")
    return `set by hand${e.created_at ? `, ${e.created_at.slice(0, 10)}` : ""}`;
  const parts = [e.model || e.backend, e.backend, e.prompt_format && `${e.prompt_format} prompt`];
  if (e.created_at) parts.push(e.created_at.slice(0, 10));
  return parts.filter((p) => p).join(" · ");
}

function scoreNames(e: ExplanationData): string[] {
  const names = Object.keys(e.scores);
  const rank = (n: string): number => (SCORE_ORDER.includes(n) ? SCORE_ORDER.indexOf(n) : 99);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function scoreChips(e: ExplanationData): HTMLElement | null {
  const names = scoreNames(e);
  if (!names.length) return null;
  return h(
    "span",
    { class: "sc-scores" },
    names.map((name) =>
      h(
        "span",
        {
          class: "sc-score",
          "data-scorer": name,
          title: `${SCORE_MEANING[name] ?? name} · scored with ${explainerText(e)}`,
        },
        name === "simulation" ? "simulation r " : `${name} `,
        h("b", {}, fmt(e.scores[name])),
      ),
    ),
  );
}

function otherExplanation(e: ExplanationData): HTMLElement {
  return h(
    "li",
    { "data-kind": e.kind },
    e.kind === "label" ? h("span", { class: "sc-label" }, e.text) : e.text,
    " ",
    scoreChips(e),
    h("span", { class: "sc-sub sc-explainer" }, ` — ${explainerText(e)}`),
  );
}

export function explanationPanel(feature: FeatureData): HTMLElement {
  const all = feature.explanations;
  const current = all.find((e) => e.current && e.kind === "explanation");
  const label = all.find((e) => e.current && e.kind === "label");
  const others = all.filter((e) => e !== current && e !== label);
  const text = current?.text ?? feature.explanation;
  const labelText = label?.text ?? feature.label;
  const body =
    text || labelText
      ? [
          labelText
            ? h(
                "p",
                { class: "sc-label", title: label ? `label by ${explainerText(label)}` : null },
                labelText,
              )
            : null,
          text
            ? h(
                "p",
                {
                  class: "sc-explanation",
                  title: current ? `explained by ${explainerText(current)}` : null,
                },
                text,
              )
            : null,
          current ? scoreChips(current) : null,
          current
            ? h("p", { class: "sc-sub sc-explainer" }, `explained by ${explainerText(current)}`)
            : null,
        ]
      : h("p", { class: "sc-muted sc-unexplained" }, "No explanation yet.");
  return h(
    "section",
    { class: "sc-panel sc-panel-wide sc-panel-explanation", "data-panel": "explanation" },
    body,
    others.length
      ? h(
          "details",
          { class: "sc-other-explanations" },
          h("summary", {}, `${others.length} other explanation${others.length === 1 ? "" : "s"}`),
          h("ul", {}, others.map(otherExplanation)),
        )
      : null,
  );
}
