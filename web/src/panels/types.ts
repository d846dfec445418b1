// The data the panels render: the shape the Python side writes (saescope.dashboards.data)
// for the static dashboards, and the viewer's API returns for its pages.
// Token ids here index `DashboardData.vocab` (the strings of the tokens used), not the model's.

export type PanelName =
  | "table"
  | "act_hist"
  | "logit_hist"
  | "logits"
  | "top"
  | "quantiles";

export interface Layout {
  panels: PanelName[];
  n_top: number; // top-activating contexts shown
  n_per_group: number; // contexts shown per quantile group
  n_logits: number; // rows of each logit table
  n_table: number; // rows of the neighbour / co-firing / neuron tables
}

export interface SaeInfo {
  sae_id: string;
  model: string | null;
  hook_point: string | null;
  architecture: string | null;
  d_sae: number;
  d_in: number;
  n_tokens: number;
  quantile_levels: number[];
  neuronpedia_id?: string | null; // published SAEs: the feature's page is neuronpedia.org/<id>/<feature>
}

// One context window; arrays are per position.
export interface Context {
  t: number[]; // tokens (vocab indices)
  a: number[]; // the feature's activation
  c: number; // position the context was chosen for
  l?: number[] | null; // effect on the next token's log-prob (direct path)
  b?: number[][] | null; // top boosted tokens
  bv?: number[][] | null;
  s?: number[][] | null; // top suppressed tokens
  sv?: number[][] | null;
}

export interface QuantileGroup {
  interval: number;
  lo: number; // activation range of the interval
  hi: number;
  share: number | null; // fraction of the non-zero activations in the range (from the histogram)
  contexts: Context[];
}

export interface Ranked {
  f: number[]; // feature ids
  v: number[]; // their values
}

export interface LogitTable {
  t: number[]; // tokens
  v: number[]; // logit effects
}

export interface FeatureData {
  id: number;
  density: number;
  max_act: number;
  mean_act: number;
  explanation: string | null;
  scores: Record<string, number>;
  act_hist: { counts: number[]; max: number };
  logit_hist: { counts: number[]; lo: number; hi: number };
  logits_top: LogitTable;
  logits_bottom: LogitTable;
  quantiles: number[]; // activation at SaeInfo.quantile_levels
  neighbours: Ranked;
  cofiring: Ranked;
  neurons: Ranked | null;
  top: Context[];
  groups: QuantileGroup[];
}

// One ranked feature at a prompt position.
export interface PromptRow {
  f: number;
  act: number;
  quantile: number | null; // quantile of `act` among the feature's stored non-zero activations
  loss: number | null; // effect on the next token's log-prob (positive: the feature helps)
}

export interface PromptRankings {
  act: PromptRow[];
  quantile: PromptRow[];
  loss: PromptRow[];
}

export interface PromptData {
  text: string;
  tokens: number[]; // vocab indices
  top: Ranked[]; // per position: the most active features
  rankings: PromptRankings[]; // per position
  position: number; // the position shown first
  bos: boolean; // the first token is the BOS the model's tokenizer put there
}

export interface DashboardData {
  version: 1;
  title: string;
  sae: SaeInfo;
  layout: Layout;
  vocab: string[];
  features: FeatureData[];
  prompt: PromptData | null;
}
