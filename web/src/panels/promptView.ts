// The prompt-centric view: the prompt's tokens (each with a card of its most active
// features), and at the chosen token the features ranked by activation, by activation
// quantile (relative to the stored analysis) and by effect on the next token's log-prob.
// A row opens that feature's panels.

import { h } from "../lib/dom";
import { fmt, showToken, signed, signedColour } from "../lib/format";
import type { PanelContext } from "./context";
import { tokenText } from "./context";
import { featureLinkEl } from "./featureTable";
import { withCard } from "./tokenCard";
import type { PromptData, PromptRow } from "./types";

const RANKINGS: { key: "act" | "quantile" | "loss"; title: string }[] = [
  { key: "act", title: "By activation" },
  { key: "quantile", title: "By activation quantile" },
  { key: "loss", title: "By effect on the next token" },
];

function topFeaturesCard(ctx: PanelContext, prompt: PromptData, i: number): Node {
  const top = prompt.top[i] ?? { f: [], v: [] };
  return h(
    "div",
    { class: "sc-card-body" },
    h(
      "div",
      { class: "sc-card-token" },
      h("code", {}, showToken(tokenText(ctx, prompt.tokens[i] as number))),
    ),
    h(
      "div",
      { class: "sc-card-head" },
      top.f.length ? "most active features" : "no active features",
    ),
    h(
      "table",
      { class: "sc-card-list" },
      h(
        "tbody",
        {},
        top.f.map((f, k) =>
          h("tr", {}, h("td", {}, `#${f}`), h("td", { class: "sc-num" }, fmt(top.v[k]))),
        ),
      ),
    ),
  );
}

function rankingTable(
  ctx: PanelContext,
  title: string,
  key: string,
  rows: PromptRow[],
  lossScale: number,
): HTMLElement {
  const body = rows.map((row) => {
    const open = ctx.featureLink(row.f);
    return h(
      "tr",
      {
        class: open ? "sc-clickable" : null,
        "data-feature": row.f,
        onclick: open ? () => open() : null,
      },
      h("td", {}, featureLinkEl(ctx, row.f)),
      h("td", { class: "sc-num" }, fmt(row.act)),
      h("td", { class: "sc-num" }, row.quantile === null ? "–" : `${fmt(row.quantile * 100, 4)}%`),
      h(
        "td",
        {
          class: "sc-num",
          style: row.loss === null ? null : `background:${signedColour(row.loss, lossScale)}`,
        },
        signed(row.loss),
      ),
    );
  });
  return h(
    "table",
    { class: "sc-table sc-ranking", "data-ranking": key },
    h("caption", {}, title),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "feature"),
        h("th", { class: "sc-num" }, "act"),
        h("th", { class: "sc-num" }, "quantile"),
        h("th", { class: "sc-num", title: "effect on the next token's log-prob" }, "Δ log p"),
      ),
    ),
    h(
      "tbody",
      {},
      body.length
        ? body
        : h(
            "tr",
            {},
            h(
              "td",
              { colspan: 4, class: "sc-muted" },
              key === "loss" ? "no next token" : "no active features",
            ),
          ),
    ),
  );
}

export function promptView(ctx: PanelContext, prompt: PromptData): HTMLElement {
  const rankings = h("div", { class: "sc-row sc-rankings" });
  const heading = h("h3", {});
  const tokenEls: HTMLElement[] = [];
  // The BOS token's activations are off the SAE's training distribution: left out of the scale.
  const first = prompt.bos ? 1 : 0;
  const peak = Math.max(1e-9, ...prompt.top.slice(first).map((t) => t.v[0] ?? 0));

  function select(position: number): void {
    tokenEls.forEach((el, i) => {
      el.classList.toggle("sc-selected", i === position);
      el.setAttribute("aria-pressed", String(i === position));
    });
    const next =
      position + 1 < prompt.tokens.length
        ? showToken(tokenText(ctx, prompt.tokens[position + 1] as number))
        : null;
    heading.textContent = `Features at token ${position} “${showToken(tokenText(ctx, prompt.tokens[position] as number))}”${next === null ? "" : ` (next: “${next}”)`}`;
    const ranking = prompt.rankings[position] ?? { act: [], quantile: [], loss: [] };
    const lossScale = Math.max(1e-9, ...ranking.loss.map((r) => Math.abs(r.loss ?? 0)));
    rankings.replaceChildren(
      ...RANKINGS.map(({ key, title }) => rankingTable(ctx, title, key, ranking[key], lossScale)),
    );
  }

  prompt.tokens.forEach((t, i) => {
    const act = i < first ? 0 : (prompt.top[i]?.v[0] ?? 0);
    const el = h(
      "button",
      {
        type: "button",
        class: "sc-t sc-prompt-token",
        "data-position": i,
        style: `background:rgba(255, 120, 0, ${act > 0 ? (0.1 + (0.6 * act) / peak).toFixed(3) : 0})`,
        onclick: () => select(i),
      },
      showToken(tokenText(ctx, t)),
    );
    tokenEls.push(withCard(el, () => topFeaturesCard(ctx, prompt, i)));
  });
  select(prompt.position);
  return h(
    "section",
    { class: "sc-panel sc-panel-wide sc-prompt", "data-panel": "prompt" },
    h("h3", {}, "Prompt"),
    h("p", { class: "sc-sub" }, "Choose a token; hover or focus it for its most active features."),
    h("div", { class: "sc-tokens sc-prompt-tokens" }, tokenEls),
    heading,
    rankings,
  );
}
