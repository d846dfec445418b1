// The live pages: "test your own text" (tokens coloured by a chosen feature, or each token's
// top features), the prompt-centric page (the panels' prompt view) and steering.

import { featureView, promptView } from "../index";
import type { PanelContext } from "../index";
import { h } from "../lib/dom";
import { actColour, fmt, showToken } from "../lib/format";
import { api, type SteerRequest, type TokenActs } from "./api";
import { errorText, message, panelContext, textForm } from "./common";
import { featureOnText } from "./feature";
import { go, href } from "./route";

const DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog.";

// Runs `work` into `out`, with a status line meanwhile and the server's message on failure.
async function into(out: HTMLElement, work: () => Promise<Node>): Promise<void> {
  out.replaceChildren(message("running…"));
  try {
    out.replaceChildren(await work());
  } catch (err) {
    out.replaceChildren(message(errorText(err), "error"));
  }
}

export async function testPage(sae: string, params: URLSearchParams): Promise<HTMLElement> {
  const text = params.get("text") ?? DEFAULT_TEXT;
  const feature = params.get("f") ?? "";
  const featureInput = h("input", {
    type: "number",
    min: 0,
    id: "sv-test-feature",
    value: feature,
    placeholder: "all",
    "aria-label": "feature to colour by (empty: top features per token)",
  });
  const out = h("div", { class: "sv-result", "aria-live": "polite" });
  const form = textForm({
    id: "sv-test-text",
    label: "Test your own text",
    value: text,
    button: "Run",
    extra: [h("label", { for: "sv-test-feature" }, "colour by feature "), featureInput],
    onSubmit: (t) =>
      go(
        href(sae, "test", null, {
          text: t,
          ...(featureInput.value ? { f: featureInput.value } : {}),
        }),
      ),
  });
  const summary = await api.summary(sae);
  if (!summary.live)
    return message(
      `Live inference is off for this SAE: ${summary.live_unavailable ?? "the server runs without the model"}.`,
      "error",
    );
  if (text.trim()) {
    if (feature) {
      const ctx: PanelContext = {
        vocab: [],
        sae: { ...summary, quantile_levels: [] },
        layout: { panels: [], n_top: 0, n_per_group: 0, n_logits: 0, n_table: 0 },
        featureLink: (f) => () => go(href(sae, "feature", f)),
      };
      await into(out, () => featureOnText(sae, Number(feature), ctx, text));
    } else {
      await into(out, async () => topFeaturesTable(sae, await api.topFeatures(sae, text, 5)));
    }
  }
  return h("section", { class: "sc-panel sc-panel-wide", "data-page": "test" }, form, out);
}

// Each token with its most active features (links), tinted by its strongest activation.
function topFeaturesTable(sae: string, acts: TokenActs): HTMLElement {
  const peak = Math.max(1e-9, ...acts.top_features.map((row) => row[0]?.act ?? 0));
  return h(
    "table",
    { class: "sc-table sv-token-table", id: "sv-top-features" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, "token"), h("th", {}, "most active features (activation)")),
    ),
    h(
      "tbody",
      {},
      acts.tokens.map((token, i) => {
        const row = acts.top_features[i] ?? [];
        return h(
          "tr",
          {},
          h(
            "td",
            {},
            h(
              "code",
              { class: "sc-t", style: `background:${actColour(row[0]?.act ?? 0, peak)}` },
              showToken(token),
            ),
          ),
          h(
            "td",
            {},
            row.length
              ? row.map((r) =>
                  h(
                    "a",
                    { class: "sc-fid sv-chip", href: href(sae, "feature", r.feature) },
                    `#${r.feature} `,
                    h("span", { class: "sc-muted" }, fmt(r.act)),
                  ),
                )
              : h("span", { class: "sc-muted" }, "none"),
          ),
        );
      }),
    ),
  );
}

export async function promptPage(sae: string, params: URLSearchParams): Promise<HTMLElement> {
  const text = params.get("text") ?? DEFAULT_TEXT;
  const out = h("div", { class: "sv-result", "aria-live": "polite" });
  const form = textForm({
    id: "sv-prompt-text",
    label: "Prompt",
    value: text,
    button: "Rank features",
    onSubmit: (t) => go(href(sae, "prompt", null, { text: t })),
  });
  if (text.trim()) {
    await into(out, async () => {
      const data = await api.prompt(sae, text);
      const slot = h("div", { class: "sc-feature-slot" });
      const byId = new Map(data.features.map((f) => [f.id, f]));
      // A ranked feature opens below the rankings (its data came with them).
      const ctx = panelContext(data, sae, (f) => {
        const feature = byId.get(f);
        if (feature === undefined) return false;
        slot.replaceChildren(featureView(ctx, feature));
        slot.scrollIntoView({ block: "start" });
        return true;
      });
      return h(
        "div",
        {},
        data.prompt ? promptView(ctx, data.prompt) : message("no prompt data", "error"),
        slot,
      );
    });
  }
  return h("section", { class: "sc-panel sc-panel-wide", "data-page": "prompt" }, form, out);
}

export async function steerPage(sae: string, params: URLSearchParams): Promise<HTMLElement> {
  const feature = h("input", {
    type: "number",
    min: 0,
    id: "sv-steer-feature",
    value: params.get("f") ?? "0",
    required: true,
    "aria-label": "feature",
  });
  const mode = h(
    "select",
    { id: "sv-steer-mode", "aria-label": "mode" },
    h("option", { value: "clamp" }, "clamp to"),
    h("option", { value: "scale" }, "scale by"),
  );
  mode.value = params.get("mode") ?? "clamp";
  const value = h("input", {
    type: "number",
    step: "any",
    id: "sv-steer-value",
    value: params.get("value") ?? "20",
    "aria-label": "value",
  });
  const tokens = h("input", {
    type: "number",
    min: 1,
    max: 64,
    id: "sv-steer-tokens",
    value: params.get("n") ?? "24",
    "aria-label": "new tokens",
  });
  const prompt = params.get("text") ?? "The weather today is";
  const out = h("div", { class: "sv-result", "aria-live": "polite" });
  const form = textForm({
    id: "sv-steer-text",
    label: "Prompt to continue",
    value: prompt,
    button: "Generate",
    extra: [
      h("label", {}, "feature ", feature),
      h("label", {}, " ", mode),
      h("label", {}, " ", value),
      h("label", {}, " tokens ", tokens),
    ],
    onSubmit: (t) =>
      go(
        href(sae, "steer", null, {
          text: t,
          f: feature.value,
          mode: mode.value,
          value: value.value,
          n: tokens.value,
        }),
      ),
  });
  if (params.has("text")) {
    await into(out, async () => {
      const result = await api.steer(sae, {
        prompt,
        feature: Number(feature.value),
        mode: mode.value as SteerRequest["mode"],
        value: Number(value.value),
        max_new_tokens: Number(tokens.value),
      });
      const column = (title: string, id: string, text: string): HTMLElement =>
        h(
          "div",
          { class: "sv-continuation", id },
          h("h3", {}, title), // Whitespace shown (↵), so a continuation of newlines is still seen.
          h(
            "p",
            {},
            h("span", { class: "sc-muted" }, prompt),
            h("span", { class: "sv-generated" }, showToken(text) || "(nothing)"),
          ),
        );
      return h(
        "div",
        { class: "sc-row" },
        column(
          `Steered: #${result.feature} ${result.mode === "clamp" ? "clamped to" : "scaled by"} ${fmt(result.value)}`,
          "sv-steered",
          result.steered.text,
        ),
        column("Unsteered", "sv-unsteered", result.unsteered.text),
      );
    });
  }
  return h("section", { class: "sc-panel sc-panel-wide", "data-page": "steer" }, form, out);
}
