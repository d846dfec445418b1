// Token contexts coloured by the feature's activation: the top-activating contexts and the
// quantile groups. Each token has a hover card (activation, effect on the next token's
// log-prob, top boosted / suppressed tokens). One tab stop per context; the arrow keys move
// between its tokens, so every card is reachable from the keyboard.

import { h } from "../lib/dom";
import { actColour, fmt, percent, showToken, signed } from "../lib/format";
import type { PanelContext } from "./context";
import { tokenText } from "./context";
import { withCard } from "./tokenCard";
import type { Context, FeatureData, QuantileGroup } from "./types";

function tokenList(
  ctx: PanelContext,
  ids: number[] | undefined,
  values: number[] | undefined,
  cls: string,
): HTMLElement | null {
  if (!ids || !values || ids.length === 0) return null;
  return h(
    "table",
    { class: `sc-card-list ${cls}` },
    h(
      "tbody",
      {},
      ids.map((t, i) =>
        h(
          "tr",
          {},
          h("td", {}, h("code", {}, showToken(tokenText(ctx, t)))),
          h("td", { class: "sc-num" }, signed(values[i])),
        ),
      ),
    ),
  );
}

export function tokenCardContent(ctx: PanelContext, context: Context, i: number): Node {
  const next =
    i + 1 < context.t.length ? showToken(tokenText(ctx, context.t[i + 1] as number)) : null;
  const loss = context.l?.[i];
  return h(
    "div",
    { class: "sc-card-body" },
    h(
      "div",
      { class: "sc-card-token" },
      h("code", {}, showToken(tokenText(ctx, context.t[i] as number))),
    ),
    h(
      "table",
      { class: "sc-card-stats" },
      h(
        "tbody",
        {},
        h(
          "tr",
          { "data-card": "act" },
          h("th", {}, "activation"),
          h("td", { class: "sc-num" }, fmt(context.a[i])),
        ),
        loss !== undefined && loss !== null
          ? h(
              "tr",
              { "data-card": "loss" },
              h("th", {}, next === null ? "Δ log p(next)" : `Δ log p(“${next}”)`),
              h("td", { class: "sc-num" }, signed(loss)),
            )
          : null,
      ),
    ),
    context.b?.[i]
      ? h(
          "div",
          { class: "sc-card-lists" },
          h(
            "div",
            { "data-card": "boosted" },
            h("div", { class: "sc-card-head" }, "boosted"),
            tokenList(ctx, context.b?.[i], context.bv?.[i], "sc-pos"),
          ),
          h(
            "div",
            { "data-card": "suppressed" },
            h("div", { class: "sc-card-head" }, "suppressed"),
            tokenList(ctx, context.s?.[i], context.sv?.[i], "sc-neg"),
          ),
        )
      : null,
  );
}

function moveFocus(event: KeyboardEvent): void {
  const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
  if (step === 0) return;
  const current = event.target as HTMLElement;
  const sibling = (
    step > 0 ? current.nextElementSibling : current.previousElementSibling
  ) as HTMLElement | null;
  if (sibling?.classList.contains("sc-t")) {
    event.preventDefault();
    current.tabIndex = -1;
    sibling.tabIndex = 0;
    sibling.focus();
  }
}

export function contextRow(ctx: PanelContext, context: Context, maxAct: number): HTMLElement {
  const tokens = context.t.map((t, i) => {
    const act = context.a[i] as number;
    const span = h(
      "span",
      {
        class: i === context.c ? "sc-t sc-center" : "sc-t",
        tabindex: i === context.c ? 0 : -1,
        "data-act": act,
        style: `background:${actColour(act, maxAct)}`,
        onkeydown: moveFocus as EventListener,
      },
      showToken(tokenText(ctx, t)),
    );
    return withCard(span, () => tokenCardContent(ctx, context, i));
  });
  return h(
    "div",
    { class: "sc-context" },
    h(
      "span",
      { class: "sc-context-act", title: "activation at the chosen token" },
      fmt(context.a[context.c]),
    ),
    h("div", { class: "sc-tokens" }, tokens),
  );
}

export function topContextsPanel(ctx: PanelContext, feature: FeatureData): HTMLElement {
  const shown = feature.top.slice(0, ctx.layout.n_top);
  return h(
    "section",
    { class: "sc-panel sc-panel-wide", "data-panel": "top" },
    h("h3", {}, `Top activations (${shown.length})`),
    shown.length
      ? shown.map((c) => contextRow(ctx, c, feature.max_act))
      : h("p", { class: "sc-muted" }, "no activating contexts"),
  );
}

function groupHeader(group: QuantileGroup): string {
  const share = group.share === null ? "" : ` · ${percent(group.share)} of activations`;
  return `Interval ${group.interval}: ${fmt(group.lo)} – ${fmt(group.hi)}${share}`;
}

export function quantileGroupsPanel(ctx: PanelContext, feature: FeatureData): HTMLElement {
  const groups = [...feature.groups].sort((a, b) => b.interval - a.interval);
  return h(
    "section",
    { class: "sc-panel sc-panel-wide", "data-panel": "quantiles" },
    h("h3", {}, "Quantile groups"),
    groups.length
      ? groups.map((group) =>
          h(
            "div",
            { class: "sc-group", "data-interval": group.interval },
            h("h4", {}, groupHeader(group)),
            group.contexts
              .slice(0, ctx.layout.n_per_group)
              .map((c) => contextRow(ctx, c, feature.max_act)),
          ),
        )
      : h("p", { class: "sc-muted" }, "no quantile samples"),
  );
}
