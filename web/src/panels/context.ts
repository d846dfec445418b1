// What every panel needs besides its own data: the token strings, the SAE, the layout, and
// how to open another feature (the dashboard's selector, or the viewer's router).

import type { Layout, SaeInfo } from "./types";

export interface PanelContext {
  vocab: string[];
  sae: SaeInfo;
  layout: Layout;
  // Opens feature f's panels; null when f is not available here (not in this file).
  featureLink: (f: number) => (() => void) | null;
}

export function tokenText(ctx: PanelContext, t: number): string {
  return ctx.vocab[t] ?? `<${t}>`;
}
