// A histogram drawn as inline SVG: bars over linear bins from lo to hi, with an x axis.

import { s } from "../lib/dom";
import { fmt } from "../lib/format";

export interface HistogramSpec {
  counts: number[];
  lo: number;
  hi: number;
  colour: (binCentre: number) => string;
  label: string; // for screen readers and the test
  width?: number;
  height?: number;
}

export function histogram(spec: HistogramSpec): SVGElement {
  const width = spec.width ?? 360;
  const height = spec.height ?? 140;
  const pad = { left: 36, right: 8, top: 6, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const n = spec.counts.length;
  const peak = Math.max(1, ...spec.counts);
  const binW = (spec.hi - spec.lo) / Math.max(1, n);
  const bars = spec.counts.map((count, i) => {
    const barH = (count / peak) * plotH;
    const from = spec.lo + i * binW;
    return s(
      "rect",
      {
        x: (pad.left + (i * plotW) / n).toFixed(1),
        y: (pad.top + plotH - barH).toFixed(1),
        width: Math.max(0.5, plotW / n - 1).toFixed(1),
        height: barH.toFixed(1),
        fill: spec.colour(from + binW / 2),
        "data-count": count,
      },
      s("title", {}, `${fmt(from)} – ${fmt(from + binW)}: ${count.toLocaleString("en")}`),
    );
  });
  const axisY = pad.top + plotH;
  const ticks = [spec.lo, (spec.lo + spec.hi) / 2, spec.hi].map((value, i) =>
    s(
      "text",
      {
        x: pad.left + (i * plotW) / 2,
        y: axisY + 15,
        "text-anchor": ["start", "middle", "end"][i] ?? "middle",
        class: "sc-axis",
      },
      fmt(value),
    ),
  );
  return s(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": spec.label,
      class: "sc-hist",
    },
    s("line", { x1: pad.left, x2: width - pad.right, y1: axisY, y2: axisY, class: "sc-axis-line" }),
    s(
      "text",
      { x: pad.left - 4, y: pad.top + 8, "text-anchor": "end", class: "sc-axis" },
      peak.toLocaleString("en"),
    ),
    s("text", { x: pad.left - 4, y: axisY, "text-anchor": "end", class: "sc-axis" }, "0"),
    bars,
    ticks,
  );
}
