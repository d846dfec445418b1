// The feature browser: a sortable, filterable, paged table of an SAE's features (statistics,
// label, explanation and every stored score: analysis and interp scores alike) and a search
// box over their explanations, labels and top contexts. State lives in the URL, so a view can
// be shared.

import { h } from "../lib/dom";
import { fmt, percent } from "../lib/format";
import { api, type FeatureRow } from "./api";
import { errorText, message } from "./common";
import { go, href } from "./route";

const PAGE_SIZE = 50;
interface Column {
  key: string;
  title: string;
  show: (row: FeatureRow) => string;
}
const STAT_COLUMNS: Column[] = [
  { key: "feature", title: "feature", show: (r) => `#${r.feature}` },
  { key: "density", title: "density", show: (r) => percent(r.density) },
  { key: "max_act", title: "max act", show: (r) => fmt(r.max_act) },
  { key: "mean_act", title: "mean act", show: (r) => fmt(r.mean_act) },
];

// One column per stored score: the analysis's and the interp scorers' (detection, fuzzing,
// simulation), each sortable and filterable.
function scoreColumns(scoreNames: string[]): Column[] {
  return scoreNames.map((name) => ({
    key: name,
    title: name,
    show: (r) => fmt(r.scores?.[name] ?? (r[name as keyof FeatureRow] as number | undefined)),
  }));
}

export async function browserPage(sae: string, params: URLSearchParams): Promise<HTMLElement> {
  const sort = params.get("sort") ?? "density";
  const descending = params.get("desc") !== "0";
  const offset = Math.max(0, Number(params.get("offset") ?? 0) || 0);
  const query = params.get("q") ?? "";
  const range = params.get("range") ?? "";
  const state = {
    sort,
    desc: descending ? "1" : "0",
    offset: String(offset),
    q: query,
    range,
  };
  const at = (changes: Record<string, string>): string =>
    href(sae, "features", null, { ...state, ...changes });

  const search = h("input", {
    type: "search",
    id: "sv-search",
    value: query,
    placeholder: "search explanations, labels and top contexts  ( / )",
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
  if (query) {
    const found = await searchResults(sae, query);
    return h("section", { class: "sc-panel sc-panel-wide", "data-page": "features" }, form, found);
  }
  const { score_names } = await api.summary(sae);
  const columns = [...STAT_COLUMNS, ...scoreColumns(score_names)];
  return h(
    "section",
    { class: "sc-panel sc-panel-wide", "data-page": "features" },
    form,
    filterForm(columns, range, at),
    await table(sae, columns, { sort, descending, offset, range }, at),
  );
}

// One range filter, NAME:LOW:HIGH in the URL (the API's `range` parameter).
function filterForm(
  columns: Column[],
  range: string,
  at: (changes: Record<string, string>) => string,
): HTMLElement {
  const [name = "density", low = "", high = ""] = range ? range.split(":") : [];
  const choices = columns.filter((c) => c.key !== "feature");
  const select = h(
    "select",
    { id: "sv-filter-by", "aria-label": "filter by" },
    choices.map((c) => h("option", { value: c.key, selected: c.key === name }, c.title)),
  );
  const bound = (id: string, value: string, label: string): HTMLInputElement =>
    h("input", { type: "number", step: "any", id, value, placeholder: label, "aria-label": label });
  const lowInput = bound("sv-filter-low", low, "at least");
  const highInput = bound("sv-filter-high", high, "at most");
  return h(
    "form",
    {
      class: "sv-form-row",
      id: "sv-filter",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const lo = lowInput.value.trim();
        const hi = highInput.value.trim();
        go(at({ range: lo || hi ? `${select.value}:${lo}:${hi}` : "", offset: "0" }));
      },
    },
    h("label", { for: "sv-filter-by" }, "filter"),
    select,
    lowInput,
    "to",
    highInput,
    h("button", { type: "submit" }, "Filter"),
    range
      ? h("a", { href: at({ range: "", offset: "0" }), class: "sv-clear" }, "clear filter")
      : null,
  );
}

async function searchResults(sae: string, query: string): Promise<HTMLElement> {
  try {
    const { results } = await api.search(sae, query);
    if (!results.length)
      return message(`No feature's explanation, label or top contexts contain “${query}”.`);
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
          ["feature", "found in", "snippet", "label", "density", "max act"].map((c) =>
            h("th", {}, c),
          ),
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
            h("td", { class: "sv-label" }, r.label ?? ""),
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

interface View {
  sort: string;
  descending: boolean;
  offset: number;
  range: string;
}

async function table(
  sae: string,
  columns: Column[],
  view: View,
  at: (changes: Record<string, string>) => string,
): Promise<HTMLElement> {
  const { sort, descending, offset } = view;
  const query: Record<string, string> = {
    sort_by: sort,
    descending: String(descending),
    offset: String(offset),
    limit: String(PAGE_SIZE),
  };
  if (view.range) query.range = view.range;
  let page: Awaited<ReturnType<typeof api.features>>;
  try {
    page = await api.features(sae, query);
  } catch (err) {
    return message(errorText(err), "error");
  }
  const header = columns.map((c) => {
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
      columns.map((c) =>
        h(
          "td",
          { class: c.key === "feature" ? null : "sc-num", "data-column": c.key },
          c.key === "feature"
            ? h("a", { class: "sc-fid", href: href(sae, "feature", row.feature) }, c.show(row))
            : c.show(row),
        ),
      ),
      h("td", { class: "sv-label", "data-column": "label" }, row.label ?? ""),
      h("td", { class: "sv-explanation", "data-column": "explanation" }, row.explanation ?? ""),
    ),
  );
  const last = Math.min(page.total, offset + page.items.length);
  const stats = STAT_COLUMNS.map((c) => c.key);
  const scored = [
    ...new Set([sort, ...(view.range ? [view.range.split(":")[0] ?? ""] : [])]),
  ].filter((name) => name && !stats.includes(name));
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
    h(
      "span",
      { class: "sc-muted", id: "sv-count" },
      page.total
        ? `${offset + 1}–${last} of ${page.total.toLocaleString("en")}`
        : "no feature passes the filter",
      // a score sorts (and filters) the features that have a value for it
      scored.length ? ` (features with a ${scored.join(" and ")} value)` : "",
    ),
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
      h("thead", {}, h("tr", {}, header, h("th", {}, "label"), h("th", {}, "explanation"))),
      h("tbody", {}, rows),
    ),
    pager,
  );
}
