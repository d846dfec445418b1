// The viewer's JSON API (saescope.server), typed. Errors carry the server's message.

import type { DashboardData } from "../index";

export interface SaeBrief {
  sae_id: string;
  d_sae: number;
  d_in: number;
  n_tokens: number;
  model: string | null;
  hook_point: string | null;
  architecture: string | null;
  evals: Record<string, number>;
  live: boolean;
}

export interface SaeSummary extends SaeBrief {
  density_histogram: { log10_edges: number[]; counts: number[]; n_dead: number; n_features: number };
  score_names: string[];
  live_unavailable: string | null;
  has_training_curves: boolean;
}

export interface FeatureRow {
  feature: number;
  density: number;
  max_act: number;
  mean_act: number;
  explanation: string | null;
  [score: string]: number | string | null;
}

export interface FeaturePage {
  total: number;
  offset: number;
  limit: number;
  items: FeatureRow[];
}

export interface SearchResult {
  sae_id: string;
  feature: number;
  field: string;
  snippet: string;
  density: number;
  max_act: number;
}

export interface TokenActs {
  tokens: string[];
  top_features: { feature: number; act: number }[][];
  features_by_max_act: { feature: number; max_act: number }[];
}

export interface FeatureActs {
  feature: number;
  tokens: string[];
  acts: number[];
  max_act: number;
}

export interface Continuation {
  text: string;
  tokens: string[];
}

export interface SteerResult {
  feature: number;
  mode: string;
  value: number;
  steered: Continuation;
  unsteered: Continuation;
}

export interface FeatureMap {
  method: string;
  x: number[];
  y: number[];
  density: number[];
}

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, init);
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (body as { detail?: string } | null)?.detail ?? response.statusText;
    throw new ApiError(response.status, `${response.status}: ${detail}`);
  }
  return body as T;
}

function post<T>(path: string, body: unknown): Promise<T> {
  return request<T>(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

const sae = (id: string): string => `/api/saes/${encodeURIComponent(id)}`;

export const api = {
  saes: () => request<SaeBrief[]>("/api/saes"),
  summary: (id: string) => request<SaeSummary>(`${sae(id)}/summary`),
  features: (id: string, params: Record<string, string>) =>
    request<FeaturePage>(`${sae(id)}/features?${new URLSearchParams(params).toString()}`),
  panels: (id: string, f: number) => request<DashboardData>(`${sae(id)}/features/${f}/panels`),
  search: (id: string, q: string) =>
    request<{ results: SearchResult[] }>(`/api/search?${new URLSearchParams({ q, sae_id: id, limit: "50" }).toString()}`),
  topFeatures: (id: string, text: string, k = 5) => post<TokenActs>(`${sae(id)}/activations`, { text, k }),
  featureActs: (id: string, f: number, text: string) => post<FeatureActs>(`${sae(id)}/features/${f}/activations`, { text }),
  prompt: (id: string, text: string) => post<DashboardData>(`${sae(id)}/prompt`, { text }),
  steer: (id: string, body: { prompt: string; feature: number; mode: string; value: number; max_new_tokens: number }) =>
    post<SteerResult>(`${sae(id)}/steer`, body),
  map: (id: string) => fetch(`${sae(id)}/map`),
};
