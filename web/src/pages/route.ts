// Hash routes, so every page has a URL that can be shared: #/sae/<id>/<page>[/<feature>]?<params>.

export type PageName =
  | "home"
  | "overview"
  | "features"
  | "feature"
  | "test"
  | "prompt"
  | "steer"
  | "map";

export interface Route {
  page: PageName;
  sae: string | null;
  feature: number | null;
  params: URLSearchParams;
}

const PAGES: PageName[] = ["overview", "features", "feature", "test", "prompt", "steer", "map"];

export function parseRoute(hash: string): Route {
  const [path = "", query = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const parts = path.split("/").filter((p) => p !== "");
  const params = new URLSearchParams(query);
  if (parts[0] !== "sae" || parts[1] === undefined)
    return { page: "home", sae: null, feature: null, params };
  const sae = decodeURIComponent(parts[1]);
  const page = PAGES.find((p) => p === parts[2]) ?? "overview";
  const feature =
    page === "feature" && parts[3] !== undefined && /^\d+$/.test(parts[3])
      ? Number(parts[3])
      : null;
  return { page, sae, feature, params };
}

export function href(
  sae: string,
  page: PageName,
  feature?: number | null,
  params?: Record<string, string>,
): string {
  const query =
    params && Object.keys(params).length ? `?${new URLSearchParams(params).toString()}` : "";
  const tail = page === "feature" && feature !== null && feature !== undefined ? `/${feature}` : "";
  return `#/sae/${encodeURIComponent(sae)}/${page}${tail}${query}`;
}

export function go(url: string): void {
  if (window.location.hash !== url) window.location.hash = url;
}
