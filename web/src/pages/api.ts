// The viewer's JSON API (saescope.server), typed. Errors carry the server's message.

import type { components } from "../api/schema";
import type { DashboardData } from "../index";

// The response shapes, generated from the server's OpenAPI schema (src/api/schema.d.ts).
type Schemas = components["schemas"];
export type SaeBrief = Schemas["SaeBrief"];
export type SaeSummary = Schemas["SaeSummary"];
export type FeatureRow = Schemas["FeatureRow"];
export type FeatureList = Schemas["FeatureList"];
export type SearchResults = Schemas["SearchResults"];
export type SearchResult = Schemas["SearchResult"];
export type TokenActs = Schemas["TokenActs"];
export type FeatureActs = Schemas["FeatureActs"];
export type SteerRequest = Schemas["SteerRequest"];
export type SteerResult = Schemas["SteerResult"];
export type FeatureMap = Schemas["FeatureMap"];

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, init);
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (body as Schemas["ErrorDetail"] | null)?.detail ?? response.statusText;
    throw new ApiError(response.status, `${response.status}: ${detail}`);
  }
  return body as T;
}

function post<T>(path: string, body: unknown): Promise<T> {
  return request<T>(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const sae = (id: string): string => `/api/saes/${encodeURIComponent(id)}`;

export const api = {
  saes: () => request<SaeBrief[]>("/api/saes"),
  summary: (id: string) => request<SaeSummary>(`${sae(id)}/summary`),
  features: (id: string, params: Record<string, string>) =>
    request<FeatureList>(`${sae(id)}/features?${new URLSearchParams(params).toString()}`),
  panels: (id: string, f: number) => request<DashboardData>(`${sae(id)}/features/${f}/panels`),
  search: (id: string, q: string) =>
    request<SearchResults>(
      `/api/search?${new URLSearchParams({ q, sae_id: id, limit: "50" }).toString()}`,
    ),
  topFeatures: (id: string, text: string, k = 5) =>
    post<TokenActs>(`${sae(id)}/activations`, { text, k }),
  featureActs: (id: string, f: number, text: string) =>
    post<FeatureActs>(`${sae(id)}/features/${f}/activations`, { text }),
  prompt: (id: string, text: string) => post<DashboardData>(`${sae(id)}/prompt`, { text }),
  steer: (id: string, body: SteerRequest) => post<SteerResult>(`${sae(id)}/steer`, body),
  map: (id: string) => fetch(`${sae(id)}/map`),
};
