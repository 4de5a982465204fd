// Search: text search as you type, search by a dropped image or "more like this/these", filters kept in the URL,
// results in pages (Load more), weak matches flagged, selection and actions, and the viewer over the results.
import { api, ApiError, Asset, Filter, Hit, SearchResponse, searchImage, thumbUrl } from "../api";
import { debounce, errorText, h } from "../dom";
import { capabilities } from "../library-api";
import { analysis } from "../state";
import { moveFocus } from "./common";
import { actionBar, Selection } from "./selection";
import { paintSelection, pickClick, tileClick } from "./tiles";
import { openViewer } from "./viewer";

let PAGE = 40; // results per page; `k` in the URL changes it (1–200)
/** A hit is weak when it scores below this fraction of the way from the best score down to the page's median… */
const WEAK_FRACTION = 0.5;
/** …and the whole answer is "no good match" when the best stands out from the median by less than this. */
const FLAT_SPREAD = 0.02;

/** Hits flagged weak, and whether the page has any clear match: a relative cut, since raw cosine scores differ by
 * model (CLIP text→image scores cluster around 0.2–0.3 whatever the query). */
export function weakness(hits: Hit[]): { weak: Set<number>; flat: boolean } {
  const scores = hits.map((x) => x.score).sort((a, b) => b - a);
  if (scores.length < 3) return { weak: new Set(), flat: false };
  const best = scores[0];
  const median = scores[Math.floor(scores.length / 2)];
  const cut = best - (best - median) * WEAK_FRACTION;
  const weak = new Set<number>();
  hits.forEach((x, i) => x.score < cut && weak.add(i));
  return { weak, flat: best - median < FLAT_SPREAD };
}

function errorMessage(err: unknown): string {
  return err instanceof ApiError && err.reason ? `${err.message} (${err.reason})` : errorText(err);
}

export function searchView(root: HTMLElement, params: URLSearchParams): void {
  const input = h("input", { id: "search-text", type: "search", placeholder: "Describe what you are looking for… (press / to focus)", "aria-label": "Search by text", autocomplete: "off" });
  const imageInput = h("input", { id: "search-image", type: "file", accept: "image/*", class: "visually-hidden", tabindex: -1, "aria-hidden": "true" });
  const kind = h(
    "select",
    { id: "filter-kind", "aria-label": "Filter by kind" },
    h("option", { value: "" }, "Any kind"),
    h("option", { value: "image" }, "Whole images"),
    h("option", { value: "object" }, "Objects"),
    h("option", { value: "text" }, "Text regions"),
  );
  const after = h("input", { id: "filter-after", type: "date", "aria-label": "Captured after" });
  const before = h("input", { id: "filter-before", type: "date", "aria-label": "Captured before" });
  const cluster = h("select", { id: "filter-cluster", "aria-label": "Filter by cluster" }, h("option", { value: "" }, "Any cluster"));
  const notes = h("p", { class: "filter-notes", "aria-live": "polite" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const queryImage = h("div", { class: "query-image" });
  const results = h("div", { class: "results" });
  const more = h("button", { type: "button", id: "search-more", hidden: true }, "Load more");
  const drop = h("button", { type: "button", class: "image-drop", "aria-label": "Search by image: drop one here or press Enter to pick", onclick: () => imageInput.click() }, "Search by image: drop one here or click");

  PAGE = Math.min(200, Math.max(1, Number(params.get("k")) || 40));
  kind.value = params.get("kind") ?? "";
  after.value = params.get("after") ?? "";
  before.value = params.get("before") ?? "";

  let hits: Hit[] = [];
  let nextPage: (() => Promise<SearchResponse>) | null = null;
  /** The server's count of the whole result list (first page), or null when it gave none ("more like these"). */
  let total: { size: number; capped: boolean } | null = null;
  let what = "";
  const selection = new Selection(
    () => hits.map((x) => x.asset.asset_id),
    () => (bar.update(), paint()),
  );
  const bar = actionBar({
    selection,
    assetsOf: (ids) => ids.map((id) => hits.find((x) => x.asset.asset_id === id)?.asset).filter((a): a is Asset => !!a),
    total: () => (hits.length ? `${hits.length} shown${total ? ` of ${totalText(total)}` : nextPage ? ", more available" : ""}` : ""),
    onDeleted: (ids) => {
      const gone = new Set(ids);
      forget(hits.filter((x) => gone.has(x.asset.asset_id)).length);
      hits = hits.filter((x) => !gone.has(x.asset.asset_id));
      draw();
    },
  });
  const viewerList = {
    ids: () => hits.map((x) => x.asset.asset_id),
    more: async () => (nextPage ? (await loadMore(), true) : false),
    onDeleted: (id: string) => (forget(1), (hits = hits.filter((x) => x.asset.asset_id !== id)), draw()),
  };
  /** Deleted results leave the counted total too (a capped total stays "10,000+"). */
  const forget = (count: number) => total && !total.capped && (total = { ...total, size: Math.max(0, total.size - count) });

  capabilities()
    .then((c) => {
      for (const [value, on, why] of [["object", c.detect_objects, "object detection"], ["text", c.read_text, "text reading (OCR)"]] as const) {
        const option = kind.querySelector<HTMLOptionElement>(`option[value=${value}]`)!;
        option.disabled = !on;
        if (!on) option.textContent += ` — off: ${why} is not enabled`;
        if (!on && kind.value === value) kind.value = "";
      }
    })
    .catch(() => undefined);

  analysis().then((state) => {
    for (const c of state.clusters) cluster.append(h("option", { value: c.cluster_id }, `${c.name || c.cluster_id} (${c.size})`));
    const wanted = params.get("cluster");
    if (wanted) cluster.value = wanted;
    const chosen = state.clusters.find((c) => c.cluster_id === wanted);
    if (chosen && !params.get("q") && !params.get("like") && chosen.representative_asset_ids.length) {
      // "Search inside" a cluster with no query yet: show the cluster, closest to its centre first.
      const rep = chosen.representative_asset_ids[0];
      show(`images in ${chosen.name || chosen.cluster_id}`, `cluster:${wanted}`, (token) => searchLikePage(rep, token, false));
    }
  });

  function filter(): Filter {
    const f: Filter = {};
    if (kind.value) f.kinds = [kind.value as NonNullable<Filter["kinds"]>[number]]; // the select offers only these
    if (after.value) f.captured_after = `${after.value}T00:00:00Z`;
    if (before.value) f.captured_before = `${before.value}T23:59:59Z`;
    if (cluster.value) f.cluster_ids = [cluster.value];
    return f;
  }

  function explainFilters(): void {
    const parts: string[] = [];
    if (after.value || before.value) parts.push("A date filter keeps only images with a capture date: undated images (no EXIF date) are excluded.");
    if (kind.value === "object" || kind.value === "text") parts.push(`Only ${kind.value === "object" ? "object crops" : "text regions"} are searched, not whole images.`);
    notes.textContent = parts.join(" ");
  }

  function writeUrl(extra: Record<string, string>): void {
    const p = new URLSearchParams(extra);
    if (PAGE !== 40) p.set("k", String(PAGE));
    if (kind.value) p.set("kind", kind.value);
    if (after.value) p.set("after", after.value);
    if (before.value) p.set("before", before.value);
    if (cluster.value) p.set("cluster", cluster.value);
    const query = p.toString();
    history.replaceState(null, "", `#/search${query ? `?${query}` : ""}`);
  }

  const searchLikePage = (assetId: string, token: string, excludeSelf = true) =>
    searchLikeToken(assetId, filter(), token, excludeSelf);

  let latest = 0;
  let shownKey = "";
  /** Runs a search unless the same one (same query and filters) is what is shown or on its way. */
  async function show(label: string, key: string, request: (token: string) => Promise<SearchResponse>, image?: File): Promise<void> {
    const fullKey = `${key}|${JSON.stringify(filter())}`;
    if (fullKey === shownKey) return;
    shownKey = fullKey;
    const ticket = ++latest;
    what = label;
    status.textContent = `Searching ${label}…`;
    status.classList.remove("error");
    queryImage.replaceChildren();
    if (image) {
      const url = URL.createObjectURL(image);
      queryImage.append(h("img", { src: url, alt: `Query image ${image.name}`, class: "query-thumb" }), h("span", {}, `Searching by ${image.name}`));
    }
    try {
      const response = await request("");
      if (ticket !== latest) return; // a newer query already answered: never show stale results
      hits = response.hits;
      total = totalOf(response);
      requestOf = request;
      nextPage = pageAfter(response.next_page_token);
      selection.clear();
      draw();
    } catch (err) {
      if (ticket !== latest) return;
      shownKey = "";
      hits = [];
      total = null;
      nextPage = null;
      draw();
      status.textContent = `Search failed: ${errorMessage(err)}`;
      status.classList.add("error");
    }
  }

  async function loadMore(): Promise<void> {
    if (!nextPage) return;
    const ticket = latest;
    more.disabled = true;
    try {
      const response = await nextPage();
      if (ticket !== latest) return;
      const seen = new Set(hits.map((x) => x.asset.asset_id));
      hits = hits.concat(response.hits.filter((x) => !seen.has(x.asset.asset_id)));
      total = totalOf(response) ?? total;
      nextPage = pageAfter(response.next_page_token);
      draw();
    } catch (err) {
      status.textContent = `Loading more failed: ${errorMessage(err)}`;
      status.classList.add("error");
    } finally {
      more.disabled = false;
    }
  }
  // The page after a given token re-issues the original request with that token.
  let requestOf: ((token: string) => Promise<SearchResponse>) | null = null;
  const pageAfter = (token: string) => (token && requestOf ? () => requestOf!(token) : null);

  function clearResults(): void {
    latest++;
    shownKey = "";
    hits = [];
    total = null;
    nextPage = null;
    queryImage.replaceChildren();
    results.replaceChildren();
    status.textContent = "";
    status.classList.remove("error");
    more.hidden = true;
    selection.clear();
  }

  function draw(): void {
    const keepFocus = results.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.assetId : undefined;
    const { weak, flat } = weakness(hits);
    const grid = h("ul", { class: "grid", role: "list", "aria-label": `Results for ${what}`, "data-count": hits.length });
    hits.forEach((hit, index) => {
      const a = hit.asset;
      const isWeak = weak.has(index);
      const button = h(
        "button",
        {
          class: isWeak ? "tile weak" : "tile",
          type: "button",
          "data-asset-id": a.asset_id,
          "aria-label": `${a.file_name}, score ${hit.score.toFixed(3)}${isWeak ? ", weak match" : ""}`,
          onclick: tileClick(selection, index, () => openViewer(viewerList, index)),
          onkeydown: (e: Event) => moveFocus(grid, index, e as KeyboardEvent),
        },
        h("img", { src: thumbUrl(a.asset_id), alt: "", loading: "lazy", width: 160, height: 160 }),
        h("span", { class: "caption" }, h("span", { class: "name" }, a.file_name), h("span", { class: "score" }, `${isWeak ? "weak " : ""}${hit.score.toFixed(3)}`)),
      );
      const like = h("button", { class: "like", type: "button", title: "More like this", "aria-label": `More like ${a.file_name}`, tabindex: -1, onclick: () => moreLike([a.asset_id]) }, "≈");
      const pick = h("input", { type: "checkbox", class: "pick", "aria-label": `Select ${a.file_name}`, tabindex: -1, onclick: pickClick(selection, index) });
      grid.append(h("li", { "data-asset-id": a.asset_id }, button, like, pick));
    });
    if (!hits.length) grid.append(h("li", { class: "empty" }, "No images."));
    results.replaceChildren(flat && hits.length ? h("p", { class: "no-good", role: "note" }, "No good matches: no result stands out from the rest, so these are probably unrelated.") : "", grid);
    results.classList.toggle("flat", flat);
    status.textContent = hits.length ? `${countText()} for ${what}${weak.size ? ` · ${weak.size} weak` : ""}` : `No results for ${what}`;
    status.classList.remove("error");
    more.hidden = !nextPage;
    paint();
    bar.update();
    if (keepFocus) results.querySelector<HTMLElement>(`button.tile[data-asset-id="${keepFocus}"]`)?.focus();
  }

  /** "1–40 of 312 results" when the server counted them, else "40 results (more available)". */
  function countText(): string {
    if (total) return `1–${hits.length} of ${totalText(total)} results`;
    return `${hits.length} results${nextPage ? " (more available)" : ""}`;
  }

  function paint(): void {
    paintSelection(results, selection);
  }

  function runText(): void {
    const query = input.value.trim();
    explainFilters();
    if (!query) {
      writeUrl({});
      clearResults();
      return;
    }
    writeUrl({ q: query });
    const request = (token: string) => post({ query, filter: filter(), page_size: PAGE, page_token: token, include_total_size: true });
    void show(`“${query}”`, `q:${query}`, request);
  }
  function moreLike(assetIds: string[]): void {
    input.value = "";
    writeUrl({ like: assetIds.join(",") });
    if (assetIds.length === 1) {
      const request = (token: string) => searchLikePage(assetIds[0], token);
      void show("images like this one", `like:${assetIds[0]}`, request);
    } else {
      void show(`images like these ${assetIds.length}`, `like:${assetIds.join(",")}`, () => likeThese(assetIds, filter()));
    }
  }
  function byImage(file: File): void {
    input.value = "";
    writeUrl({});
    const request = (token: string) => searchImage(file, filter(), PAGE, token, true);
    void show(`images like ${file.name}`, `image:${file.name}:${file.size}:${file.lastModified}`, request, file);
  }

  const debounced = debounce(runText, 200);
  input.addEventListener("input", () => (input.value.trim() ? debounced() : runText()));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") runText();
    if (e.key === "ArrowDown") (e.preventDefault(), (results.querySelector("button.tile") as HTMLElement | null)?.focus());
  });
  for (const control of [kind, after, before, cluster]) control.addEventListener("change", () => (explainFilters(), input.value.trim() ? runText() : writeUrl({})));
  imageInput.addEventListener("change", () => imageInput.files?.[0] && byImage(imageInput.files[0]));
  more.addEventListener("click", () => void loadMore());
  drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer?.files[0];
    if (file) byImage(file);
  });

  root.replaceChildren(
    h("h1", { class: "visually-hidden" }, "Search"),
    h("div", { class: "searchbar" }, input, drop, imageInput),
    h(
      "details",
      { class: "filters-box", open: window.innerWidth >= 700 },
      h("summary", {}, "Filters"),
      h("fieldset", { class: "filters" }, h("legend", { class: "visually-hidden" }, "Filters"), kind, h("label", {}, "after ", after), h("label", {}, "before ", before), cluster),
    ),
    notes,
    bar.element,
    queryImage,
    status,
    results,
    more,
  );
  explainFilters();
  const q = params.get("q");
  const like = params.get("like");
  if (q) {
    input.value = q;
    runText();
  } else if (like) moreLike(like.split(",").filter(Boolean).slice(0, 5));
  input.focus();
}

const post = (json: Record<string, unknown>): Promise<SearchResponse> => api<SearchResponse>("/api/search", { method: "POST", json });

function searchLikeToken(assetId: string, filter: Filter, token: string, excludeSelf: boolean, includeTotal = true): Promise<SearchResponse> {
  return post({ asset_id: assetId, filter, page_size: PAGE, exclude_self: excludeSelf, page_token: token, include_total_size: includeTotal });
}

/** The response's total, when it carries one (asked with include_total_size). */
function totalOf(response: SearchResponse): { size: number; capped: boolean } | null {
  return typeof response.total_size === "number" ? { size: response.total_size, capped: response.total_size_capped } : null;
}

/** "312", or "10,000+" when the server stopped counting at its paging depth. */
export function totalText(total: { size: number; capped: boolean }): string {
  return `${total.size.toLocaleString("en-US")}${total.capped ? "+" : ""}`;
}

/** "More like these": each asset's neighbours, merged by best score, without the assets asked about. */
async function likeThese(assetIds: string[], filter: Filter): Promise<SearchResponse> {
  const answers = await Promise.all(assetIds.map((id) => searchLikeToken(id, filter, "", true, false)));
  const best = new Map<string, Hit>();
  const asked = new Set(assetIds);
  for (const hit of answers.flatMap((a) => a.hits)) {
    if (asked.has(hit.asset.asset_id)) continue;
    const seen = best.get(hit.asset.asset_id);
    if (!seen || seen.score < hit.score) best.set(hit.asset.asset_id, hit);
  }
  const hits = [...best.values()].sort((a, b) => b.score - a.score).slice(0, PAGE);
  return { hits, next_page_token: "", model_id: answers[0]?.model_id ?? "", total_size_capped: false };
}
