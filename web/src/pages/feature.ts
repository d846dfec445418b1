// A feature's page: the same panels as the static dashboard, and the feature's activations
// on a text the user types (the context panel's rendering, with the typed tokens).

import { contextRow, featureView } from "../index";
import type { Context, PanelContext } from "../index";
import { h } from "../lib/dom";
import { api } from "./api";
import { errorText, message, panelContext, textForm } from "./common";
import { href } from "./route";

export async function featurePage(
  sae: string,
  feature: number,
  params: URLSearchParams,
): Promise<HTMLElement> {
  const data = await api.panels(sae, feature);
  const panel = data.features[0];
  if (!panel) return message(`feature ${feature}: no data`, "error");
  const ctx = panelContext(data, sae);
  const nav = h(
    "nav",
    { class: "sc-nav", "aria-label": "features" },
    feature > 0
      ? h(
          "a",
          {
            href: href(sae, "feature", feature - 1),
            id: "sv-prev",
            title: "previous feature ( [ )",
          },
          "◀",
        )
      : null,
    h("span", {}, `#${feature} of ${data.sae.d_sae.toLocaleString("en")}`),
    feature + 1 < data.sae.d_sae
      ? h(
          "a",
          { href: href(sae, "feature", feature + 1), id: "sv-next", title: "next feature ( ] )" },
          "▶",
        )
      : null,
    h("a", { href: href(sae, "steer", null, { f: String(feature) }) }, "steer with it"),
  );
  return h(
    "div",
    {},
    nav,
    featureView(ctx, panel),
    await tryText(sae, feature, ctx, params.get("text") ?? ""),
  );
}

async function tryText(
  sae: string,
  feature: number,
  ctx: PanelContext,
  initial: string,
): Promise<HTMLElement> {
  const out = h("div", { class: "sv-result", "aria-live": "polite" });
  async function run(text: string): Promise<void> {
    if (!text.trim()) return;
    out.replaceChildren(message("running…"));
    try {
      out.replaceChildren(await featureOnText(sae, feature, ctx, text));
    } catch (err) {
      out.replaceChildren(message(errorText(err), "error"));
    }
  }
  const form = textForm({
    id: "sv-feature-text",
    label: "Try this feature on your own text",
    value: initial,
    button: "Run",
    onSubmit: (t) => void run(t),
  });
  if (initial) await run(initial);
  return h("section", { class: "sc-panel sc-panel-wide", "data-panel": "try" }, form, out);
}

// Tokens coloured by one feature, drawn by the panels' context row (token cards included).
export async function featureOnText(
  sae: string,
  feature: number,
  ctx: PanelContext,
  text: string,
): Promise<HTMLElement> {
  const acts = await api.featureActs(sae, feature, text);
  const peak = acts.acts.reduce((best, a, i) => (a > (acts.acts[best] ?? 0) ? i : best), 0);
  const context: Context = { t: acts.tokens.map((_, i) => i), a: acts.acts, c: peak };
  const local: PanelContext = { ...ctx, vocab: acts.tokens };
  return h(
    "div",
    { class: "sv-feature-text", "data-feature": feature },
    h(
      "p",
      { class: "sc-sub" },
      acts.max_act > 0
        ? `feature #${feature} peaks at ${acts.max_act.toPrecision(3)} on “${acts.tokens[peak] ?? ""}”`
        : `feature #${feature} does not fire on this text`,
    ),
    contextRow(local, context, Math.max(acts.max_act, 1e-9)),
  );
}
