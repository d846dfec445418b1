// The panels' data: the dashboards' compact encoding, the one place the web code reads it from.
// The Python side writes it (saescope.dashboards.data) into every static dashboard, and the
// viewer's API answers it (/panels, /prompt). The shapes are generated from the API's schema
// (saescope.server.schemas -> web/openapi.json -> src/api/schema.d.ts), never written twice.
//
// Token ids here index `DashboardData.vocab` (the strings of the tokens used), not the model's.
// The one-letter keys (kept short: they are most of a dashboard file's bytes):
//
//   Context      t   tokens (vocab indices), one per position
//                a   the feature's activation per position
//                c   the position the context was chosen for
//                l   effect on the next token's log-prob per position (direct path), optional
//                b   top boosted next tokens per position (vocab indices), optional
//                bv  their logit effects
//                s   top suppressed next tokens per position (vocab indices), optional
//                sv  their logit effects
//   Ranked       f   feature (or neuron) ids, best first
//                v   their values (cosine, correlation, weight, activation)
//   LogitTable   t   tokens (vocab indices)
//                v   their logit effects
//   PromptRow    f   the feature id (with act, quantile, loss spelled out)

import type { components } from "../api/schema";

type Schemas = components["schemas"];

export type DashboardData = Schemas["DashboardData"];
export type Layout = Schemas["Layout"];
export type PanelName = Layout["panels"][number];
export type SaeInfo = Schemas["SaeInfo"];
export type Context = Schemas["Context"];
export type QuantileGroup = Schemas["QuantileGroup"];
export type Ranked = Schemas["Ranked"];
export type LogitTable = Schemas["LogitTable"];
export type FeatureData = Schemas["FeatureData"];
export type ExplanationData = Schemas["ExplanationData"];
export type PromptRow = Schemas["PromptRow"];
export type PromptRankings = Schemas["PromptRankings"];
export type PromptData = Schemas["PromptData"];
