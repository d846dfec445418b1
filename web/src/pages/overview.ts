// The SAE overview: what it is, its evals, the density histogram of all its features, the
// distribution and mean of each interp score over its explained features (so two SAEs can be
// compared on interpretability), and the run's training curves when it has them.

import { histogram } from "../index";
import { h } from "../lib/dom";
import { fmt } from "../lib/format";
import { api, type SaeBrief, type SaeSummary } from "./api";
import { href } from "./route";

export async function homePage(): Promise<HTMLElement> {
  const saes = await api.saes();
  return h(
    "section",
    { class: "sc-panel sc-panel-wide" },
    h("h2", {}, "SAEs in this store"),
    saes.length ? saeTable(saes) : h("p", { class: "sc-muted" }, "The store holds no SAE yet."),
  );
}

function saeTable(saes: SaeBrief[]): HTMLElement {
  const evalNames = [...new Set(saes.flatMap((s) => Object.keys(s.evals)))].sort();
  const interpNames = [...new Set(saes.flatMap((s) => Object.keys(s.interp_means ?? {})))].sort();
  return h(
    "table",
    { class: "sc-table", id: "sv-saes" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [
          "SAE",
          "model",
          "hook point",
          "d_sae",
          "live",
          ...evalNames,
          "explained",
          ...interpNames.map((n) => `mean ${n}`),
        ].map((c) => h("th", {}, c)),
      ),
    ),
    h(
      "tbody",
      {},
      saes.map((s) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: href(s.sae_id, "overview") }, s.sae_id)),
          h("td", {}, s.model ?? "–"),
          h("td", {}, s.hook_point ?? "–"),
          h("td", { class: "sc-num" }, s.d_sae.toLocaleString("en")),
          h("td", {}, s.live ? "yes" : "no"),
          evalNames.map((name) => h("td", { class: "sc-num" }, fmt(s.evals[name]))),
          h("td", { class: "sc-num" }, (s.n_explained ?? 0).toLocaleString("en")),
          interpNames.map((name) =>
            h("td", { class: "sc-num", "data-interp": name }, fmt(s.interp_means?.[name])),
          ),
        ),
      ),
    ),
  );
}

export async function overviewPage(sae: string): Promise<HTMLElement> {
  const summary = await api.summary(sae);
  const hist = summary.density_histogram;
  const info: [string, string][] = [
    ["model", summary.model ?? "–"],
    ["hook point", summary.hook_point ?? "–"],
    ["architecture", summary.architecture ?? "–"],
    ["d_in × d_sae", `${summary.d_in} × ${summary.d_sae.toLocaleString("en")}`],
    ["tokens analysed", summary.n_tokens.toLocaleString("en")],
    [
      "dead features",
      `${hist.n_dead.toLocaleString("en")} of ${hist.n_features.toLocaleString("en")}`,
    ],
    [
      "live inference",
      summary.live ? "on" : `off${summary.live_unavailable ? `: ${summary.live_unavailable}` : ""}`,
    ],
  ];
  const evals = Object.entries(summary.evals);
  const lo = hist.log10_edges[0] ?? -6;
  return h(
    "div",
    { class: "sc-panels" },
    h(
      "section",
      { class: "sc-panel", "data-panel": "sae-info" },
      h("h3", {}, "SAE"),
      kvTable(info),
      h("h3", {}, "Evals"),
      evals.length
        ? kvTable(evals.map(([k, v]) => [k, fmt(v, 4)]))
        : h("p", { class: "sc-muted" }, "none stored"),
    ),
    h(
      "section",
      { class: "sc-panel", "data-panel": "density" },
      h("h3", {}, "Feature density"),
      h(
        "p",
        { class: "sc-sub" },
        `log10 of the fraction of tokens each live feature fires on (${hist.n_dead} dead not shown)`,
      ),
      histogram({
        counts: hist.counts,
        lo,
        hi: 0,
        colour: () => "rgba(31, 111, 235, 0.7)",
        label: `density histogram of ${summary.sae_id}`,
        width: 480,
        height: 180,
      }),
    ),
    interpPanel(summary),
    summary.has_training_curves
      ? h(
          "section",
          { class: "sc-panel sc-panel-wide", "data-panel": "training" },
          h("h3", {}, "Training curves"),
          h("img", {
            src: "/api/training.png",
            alt: "training curves: loss, FVU, L0, dead fraction",
            class: "sv-curves",
          }),
        )
      : null,
  );
}

const SCORE_MEANING: Record<string, string> = {
  detection: "balanced accuracy",
  fuzzing: "balanced accuracy",
  simulation: "Pearson r",
};

// Each interp score's histogram over the current explanations, with its mean and count.
function interpPanel(summary: SaeSummary): HTMLElement {
  const scores = Object.entries(summary.interp_scores ?? {});
  const explained = `${summary.n_explained.toLocaleString("en")} of ${summary.d_sae.toLocaleString("en")} features explained`;
  return h(
    "section",
    { class: "sc-panel sc-panel-wide", "data-panel": "interp" },
    h("h3", {}, "Interpretability"),
    h("p", { class: "sc-sub", id: "sv-explained" }, explained),
    scores.length
      ? h(
          "div",
          { class: "sc-row" },
          scores.map(([name, held]) => {
            const edges = held.histogram.edges;
            return h(
              "div",
              { "data-interp": name },
              h("h4", {}, `${name} (${SCORE_MEANING[name] ?? "score"})`),
              h(
                "p",
                { class: "sc-sub" },
                `mean ${fmt(held.mean)} over ${held.n.toLocaleString("en")} explanations`,
              ),
              histogram({
                counts: held.histogram.counts,
                lo: edges[0] ?? 0,
                hi: edges[edges.length - 1] ?? 1,
                colour: () => "rgba(46, 160, 67, 0.75)",
                label: `${name} histogram of ${summary.sae_id}`,
                width: 300,
                height: 140,
              }),
            );
          }),
        )
      : h(
          "p",
          { class: "sc-muted" },
          "No explanation is scored yet (saescope explain … --score writes them).",
        ),
  );
}

function kvTable(rows: [string, string][]): HTMLElement {
  return h(
    "table",
    { class: "sc-table sc-stats" },
    h(
      "tbody",
      {},
      rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))),
    ),
  );
}
