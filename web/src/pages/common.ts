// What every viewer page shares: the panel context for the viewer's router, messages, forms.

import type { DashboardData, PanelContext } from "../index";
import { h } from "../lib/dom";
import { go, href } from "./route";

export function panelContext(
  data: DashboardData,
  sae: string,
  open?: (f: number) => boolean,
): PanelContext {
  return {
    vocab: data.vocab,
    sae: data.sae,
    layout: data.layout,
    // Every feature of the SAE can be opened in the viewer: `open` may show it in place.
    featureLink: (f) => () => {
      if (!open?.(f)) go(href(sae, "feature", f));
    },
  };
}

export function message(text: string, kind: "info" | "error" = "info"): HTMLElement {
  return h(
    "p",
    {
      class: kind === "error" ? "sc-error" : "sc-muted",
      role: kind === "error" ? "alert" : "status",
    },
    text,
  );
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function textForm(opts: {
  id: string;
  label: string;
  value: string;
  button: string;
  extra?: HTMLElement[];
  onSubmit: (text: string) => void;
}): HTMLFormElement {
  const area = h("textarea", {
    id: opts.id,
    rows: 3,
    "aria-label": opts.label,
    placeholder: opts.label,
  });
  area.value = opts.value;
  // Enter runs it (Shift+Enter: a new line), so the page works from the keyboard alone.
  area.addEventListener("keydown", (e: KeyboardEvent) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  const form = h(
    "form",
    {
      class: "sv-form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        opts.onSubmit(area.value);
      },
    },
    h("label", { for: opts.id, class: "sv-label" }, opts.label),
    area,
    h(
      "div",
      { class: "sv-form-row" },
      opts.extra ?? [],
      h("button", { type: "submit" }, opts.button),
    ),
  );
  return form;
}
