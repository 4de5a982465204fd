// Search: instant text search, search by a dropped image or "more like this", filters, results grid.
import { Filter, SearchResponse, searchImage, searchLike, searchText } from "../api";
import { debounce, h } from "../dom";
import { analysis } from "../state";
import { hitsToItems, reportError, resultsGrid } from "./common";

export function searchView(root: HTMLElement, params: URLSearchParams): void {
  const input = h("input", {
    id: "search-text",
    type: "search",
    placeholder: "Describe what you are looking for…",
    "aria-label": "Search by text",
    autocomplete: "off",
  });
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
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const results = h("div", { class: "results" });
  const drop = h(
    "button",
    { type: "button", class: "image-drop", "aria-label": "Search by image: drop one here or press Enter to pick", onclick: () => imageInput.click() },
    "Search by image: drop one here or click",
  );

  analysis().then((state) => {
    for (const c of state.clusters) cluster.append(h("option", { value: c.cluster_id }, `${c.name || c.cluster_id} (${c.size})`));
    const wanted = params.get("cluster");
    if (wanted) cluster.value = wanted;
    const chosen = state.clusters.find((c) => c.cluster_id === wanted);
    if (chosen && !params.get("q") && !params.get("like") && chosen.representative_asset_ids.length) {
      // "Search inside" a cluster with no query yet: show the cluster, closest to its centre first.
      show(`images in ${chosen.name || chosen.cluster_id}`, () =>
        searchLike(chosen.representative_asset_ids[0], filter(), 40, false),
      );
    }
  });

  function filter(): Filter {
    const f: Filter = {};
    if (kind.value) f.kinds = [kind.value];
    if (after.value) f.captured_after = `${after.value}T00:00:00Z`;
    if (before.value) f.captured_before = `${before.value}T23:59:59Z`;
    if (cluster.value) f.cluster_ids = [cluster.value];
    return f;
  }

  let latest = 0;
  async function show(what: string, request: () => Promise<SearchResponse>): Promise<void> {
    const ticket = ++latest;
    status.textContent = `Searching ${what}…`;
    try {
      const response = await request();
      if (ticket !== latest) return; // a newer query already answered: never show stale results
      status.textContent = `${response.hits.length} results for ${what}`;
      results.replaceChildren(resultsGrid(hitsToItems(response.hits), `Results for ${what}`, moreLike));
    } catch (err) {
      if (ticket !== latest) return;
      status.textContent = "";
      reportError(err);
    }
  }

  function runText(): void {
    const query = input.value.trim();
    if (!query) return;
    history.replaceState(null, "", `#/search?q=${encodeURIComponent(query)}`);
    show(`“${query}”`, () => searchText(query, filter()));
  }
  function moreLike(assetId: string): void {
    input.value = "";
    show("images like this one", () => searchLike(assetId, filter()));
  }
  function byImage(file: File): void {
    input.value = "";
    show(`images like ${file.name}`, () => searchImage(file, filter()));
  }

  input.addEventListener("input", debounce(runText, 200));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") runText();
    if (e.key === "ArrowDown") (results.querySelector("button.tile") as HTMLElement | null)?.focus();
  });
  for (const control of [kind, after, before, cluster]) control.addEventListener("change", () => input.value.trim() && runText());
  imageInput.addEventListener("change", () => imageInput.files?.[0] && byImage(imageInput.files[0]));
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
      "fieldset",
      { class: "filters" },
      h("legend", { class: "visually-hidden" }, "Filters"),
      kind,
      h("label", {}, "after ", after),
      h("label", {}, "before ", before),
      cluster,
    ),
    status,
    results,
  );
  const q = params.get("q");
  const like = params.get("like");
  if (q) {
    input.value = q;
    runText();
  } else if (like) moreLike(like);
  input.focus();
}
