// Number and token formatting, and the activation colour scale, shared by every panel.

export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (x === 0) return "0";
  const abs = Math.abs(x);
  if (abs >= 1e4 || abs < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}

export function signed(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return (x > 0 ? "+" : "") + fmt(x, digits);
}

export function percent(x: number): string {
  if (x === 0) return "0%";
  const p = x * 100;
  if (p < 0.001) return `${p.toExponential(1)}%`;
  return `${Number(p.toPrecision(3))}%`;
}

// Whitespace made visible, so a context of spaces and newlines still shows its tokens.
export function showToken(text: string): string {
  return text.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/\r/g, "");
}

// Activation -> background colour: white at 0, saturated orange at the feature's max.
export function actColour(act: number, max: number): string {
  if (!(act > 0) || !(max > 0)) return "transparent";
  const t = Math.min(1, act / max);
  return `rgba(255, 120, 0, ${(0.12 + 0.78 * t).toFixed(3)})`;
}

// Signed value -> blue (positive) or red (negative) tint, scaled by `scale`.
export function signedColour(value: number, scale: number): string {
  if (!value || !(scale > 0)) return "transparent";
  const t = Math.min(1, Math.abs(value) / scale);
  const rgb = value > 0 ? "40, 110, 230" : "220, 50, 50";
  return `rgba(${rgb}, ${(0.1 + 0.6 * t).toFixed(3)})`;
}
