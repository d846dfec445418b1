// The feature map: the SAE's decoder directions laid out in 2-D (UMAP, or PCA for small SAEs),
// each point coloured by log density, named on hover by its short label (else the start of its
// explanation), and a link to its feature.

import { h, s } from "../lib/dom";
import { percent } from "../lib/format";
import type { FeatureMap } from "./api";
import { api } from "./api";
import { message } from "./common";
import { href } from "./route";

const SIZE = 640;

async function fetchMap(sae: string): Promise<FeatureMap> {
  // 202 while the server computes it (tens of seconds for a large SAE): poll.
  for (;;) {
    const response = await api.map(sae);
    const body = (await response.json()) as FeatureMap & { detail?: string; error?: string };
    if (response.status === 202) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    if (!response.ok)
      throw new Error(`${response.status}: ${body.detail ?? body.error ?? response.statusText}`);
    return body;
  }
}

function densityColour(density: number): string {
  if (!(density > 0)) return "#9aa3ad";
  const t = Math.min(1, Math.max(0, (Math.log10(density) + 6) / 6)); // 1e-6 .. 1
  return `hsl(${(240 - 240 * t).toFixed(0)}, 75%, 45%)`;
}

export async function mapPage(sae: string): Promise<HTMLElement> {
  const map = await fetchMap(sae);
  // the hovered (or focused) point's name, shown at once above the map
  const hovered = h("p", { id: "sv-map-hover", class: "sv-map-hover", "aria-live": "polite" }, "");
  const points = map.x.map((x, f) => {
    const density = map.density[f] ?? 0;
    const label = map.labels?.[f] ?? null;
    const named = `#${f}${label ? ` · ${label}` : ""} · density ${percent(density)}`;
    const show = (): void => {
      hovered.textContent = named;
    };
    return s(
      "a",
      {
        href: href(sae, "feature", f),
        "aria-label": `feature ${f}${label ? `, ${label}` : ""}, density ${percent(density)}`,
        class: "sv-point",
        onmouseenter: show,
        onfocus: show,
      },
      s(
        "circle",
        {
          cx: (8 + x * (SIZE - 16)).toFixed(1),
          cy: (8 + (1 - (map.y[f] ?? 0)) * (SIZE - 16)).toFixed(1),
          r: 4,
          fill: densityColour(density),
          class: label ? "sv-named" : null,
          "data-feature": f,
        },
        s("title", {}, named),
      ),
    );
  });
  return h(
    "section",
    { class: "sc-panel sc-panel-wide", "data-page": "map" },
    h("h3", {}, `Feature map (${map.method.toUpperCase()} of the decoder directions)`),
    h(
      "p",
      { class: "sc-sub" },
      "Colour: log10 density, from blue (rare) to red (dense); grey: dead. Ringed: explained or labelled; hover a point for its label. Each point opens its feature.",
    ),
    hovered,
    map.x.length
      ? s(
          "svg",
          {
            viewBox: `0 0 ${SIZE} ${SIZE}`,
            width: SIZE,
            height: SIZE,
            class: "sv-map",
            role: "group",
            "aria-label": "feature map",
          },
          points,
        )
      : message("no features"),
  );
}
