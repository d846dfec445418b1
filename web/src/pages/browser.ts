// The feature browser: a sortable, paged table of an SAE's features and a search box over
// their top contexts and explanations. State lives in the URL, so a view can be shared.

import { h } from "../lib/dom";
import { fmt, percent } from "../lib/format";
import { api, type FeatureRow } from "./api";
import { errorText, message } from "./common";
import { go, href } from "./route";

const PAGE_SIZE = 50;
const COLUMNS: { key: string; title: string; show: (row: FeatureRow) => string }[] = [
  { key: "feature", title: "feature", show: (r) => `#${r.feature}` },
  { key: "density", title: "density", show: (r) => percent(r.density) },
  { key: "max_act", title: "max act", show: (r) => fmt(r.max_act) },
  { key: "mean_act", title: "mean act", show: (r) => fmt(r.mean_act) },
];

export async function browserPage(sae: string, params: URLSearchParams): Promise<HTMLElement> {
  const sort = params.get("sort") ?? "density";
  const descending = params.get("desc") !== "0";
  const offset = Math.max(0, Number(params.get("offset") ?? 0) || 0);
  const query = params.get("q") ?? "";
  const state = { sort, desc: descending ? "1" : "0", offset: String(offset), q: query };
  const at = (changes: Record<string, string>): string =>
    href(sae, "features", null, { ...state, ...changes });

  const search = h("input", {
    type: "search",
    id: "sv-search",
    value: query,
    placeholder: "search top contexts and explanations  ( / )",
    "aria-label": "search features",
  });
  const form = h(
    "form",
    {
      class: "sv-form-row",
      role: "search",
      onsubmit: (e: Event) => {
        e.preventDefault();
        go(at({ q: search.value.trim(), offset: "0" }));
      },
    },
    search,
    h("button", { type: "submit" }, "Search"),
    query ? h("a", { href: at({ q: "" }), class: "sv-clear" }, "clear") : null,
  );
  const body = query
    ? await searchResults(sae, query)
    : await table(sae, sort, descending, offset, at);
  return h("section", { class: "sc-panel sc-panel-wide", "data-page": "features" }, form, body);
}

async function searchResults(sae: string, query: string): Promise<HTMLElement> {
  try {
    const { results } = await api.search(sae, query);
    if (!results.length)
      return message(`No feature's top contexts or explanation contain “${query}”.`);
    return h(
      "table",
      { class: "sc-table", id: "sv-search-results" },
      h("caption", {}, `${results.length} features matching “${query}”`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["feature", "found in", "snippet", "density", "max act"].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        results.map((r) =>
          h(
            "tr",
            {},
            h(
              "td",
              {},
              h("a", { class: "sc-fid", href: href(sae, "feature", r.feature) }, `#${r.feature}`),
            ),
            h("td", {}, r.field),
            h("td", {}, h("code", { class: "sv-snippet" }, r.snippet)),
            h("td", { class: "sc-num" }, percent(r.density)),
            h("td", { class: "sc-num" }, fmt(r.max_act)),
          ),
        ),
      ),
    );
  } catch (err) {
    return message(errorText(err), "error");
  }
}

async function table(
  sae: string,
  sort: string,
  descending: boolean,
  offset: number,
  at: (changes: Record<string, string>) => string,
): Promise<HTMLElement> {
  const page = await api.features(sae, {
    sort_by: sort,
    descending: String(descending),
    offset: String(offset),
    limit: String(PAGE_SIZE),
  });
  const header = COLUMNS.map((c) => {
    const active = c.key === sort;
    const next = active && descending ? "0" : "1";
    const arrow = active ? (descending ? " ▼" : " ▲") : "";
    return h(
      "th",
      {
        class: c.key === "feature" ? null : "sc-num",
        "aria-sort": active ? (descending ? "descending" : "ascending") : null,
      },
      h(
        "a",
        {
          href: at({ sort: c.key, desc: next, offset: "0" }),
          class: "sv-sort",
          "data-sort": c.key,
        },
        c.title + arrow,
      ),
    );
  });
  const rows = page.items.map((row) =>
    h(
      "tr",
      { "data-feature": row.feature },
      COLUMNS.map((c) =>
        h(
          "td",
          { class: c.key === "feature" ? null : "sc-num" },
          c.key === "feature"
            ? h("a", { class: "sc-fid", href: href(sae, "feature", row.feature) }, c.show(row))
            : c.show(row),
        ),
      ),
      h("td", { class: "sv-explanation" }, row.explanation ?? ""),
    ),
  );
  const last = Math.min(page.total, offset + page.items.length);
  const pager = h(
    "nav",
    { class: "sv-pager", "aria-label": "pages" },
    offset > 0
      ? h(
          "a",
          { href: at({ offset: String(Math.max(0, offset - PAGE_SIZE)) }), id: "sv-prev-page" },
          "◀ previous",
        )
      : null,
    h("span", { class: "sc-muted" }, `${offset + 1}–${last} of ${page.total.toLocaleString("en")}`),
    last < page.total
      ? h("a", { href: at({ offset: String(offset + PAGE_SIZE) }), id: "sv-next-page" }, "next ▶")
      : null,
  );
  return h(
    "div",
    {},
    h(
      "table",
      { class: "sc-table sv-features", id: "sv-features" },
      h("thead", {}, h("tr", {}, header, h("th", {}, "explanation"))),
      h("tbody", {}, rows),
    ),
    pager,
  );
}
