// Map: the 2-D projection on a canvas (no DOM node per point), a map to work with rather than look at.
// Drag pans (or draws a box / lasso in those modes), wheel/pinch/keys zoom, hover shows the thumbnail, click
// opens the image. The legend shows/hides or highlights a group, a search highlights its hits, Fit/Reset
// frame the points, colours follow cluster, kind or date. Zoomed in, thumbnails are drawn on the canvas
// from one texture atlas (a 2048² canvas of 64 px cells, least recently used evicted), so memory stays
// bounded however far one wanders. Points are binned into a grid once (hover lookups O(1)-ish at 100k);
// drawing batches one path per colour, and draws at most once per animation frame.
//
// This file assembles the view: its DOM (toolbar, canvas, legend, selection grid), the selection and search
// state drawn over the points, and what happens after a move. The parts live beside it: map_points.ts (the
// layout and hover grid), map_legend.ts (colour groups, legend, "Colour by"), map_transform.ts (pan, zoom,
// fit), map_render.ts (canvas drawing), map_input.ts (pointers, wheel, keys, box and lasso), map_atlas.ts
// (thumbnail atlas) and map_selection.ts (the grid of selected images).
import { describeError, searchText } from "../api";
import { h } from "../dom";
import { analysis } from "../state";
import { attachInput, Mode } from "./map_input";
import { Legend } from "./map_legend";
import { layoutPoints } from "./map_points";
import { MapRenderer } from "./map_render";
import { selectionGrid } from "./map_selection";
import { ViewTransform } from "./map_transform";
import { Moved, NOISE_ID } from "./move";
import { openViewer } from "./viewer";

function mapMessage(root: HTMLElement, ...children: (Node | string)[]): void {
  root.replaceChildren(h("h1", {}, "Map"), h("p", { class: "status" }, ...children));
}

export async function mapView(root: HTMLElement, params: URLSearchParams = new URLSearchParams()): Promise<void> {
  mapMessage(root, "Loading the map…");
  let state = await analysis(true);
  if (state.error) {
    // Not "no map yet": we do not know, because the services did not answer.
    root.replaceChildren(h("h1", {}, "Map"), h("p", { class: "error", role: "alert" }, `The map cannot be loaded: ${describeError(state.error)}`));
    return;
  }
  const pts = state.points;
  if (!pts || !pts.count) {
    mapMessage(root, "No map yet. ", h("a", { href: "#/clusters" }, "Run an analysis"), " to draw one.");
    return;
  }
  const count = pts.count;
  const canvas = h("canvas", { id: "map-canvas", role: "img", "aria-label": `Map of ${count} images`, tabindex: 0 });
  const tip = h("div", { class: "map-tip", hidden: true });
  const wrap = h("div", { class: "map-wrap" }, canvas, tip);
  const selection = h("section", { class: "map-selection", "aria-label": "Selected images" });
  const status = h("p", { class: "status", role: "status" }, `${count} images · drag to pan, wheel or pinch to zoom (keys: arrows, + and −), click to open`);
  const legend = new Legend(pts, () => state, {
    redraw: () => renderer.scheduleDraw(),
    coloured: (by) => {
      canvas.setAttribute("aria-label", `Map of ${count} images, coloured by ${by}`);
      canvas.dataset.colourBy = by;
    },
    failed: (message) => (status.textContent = message),
  });

  const modeButtons = (["pan", "box", "lasso"] as Mode[]).map((m) =>
    h("button", { type: "button", class: "mode", "data-mode": m, "aria-pressed": String(m === "pan"), onclick: () => setMode(m) }, m === "pan" ? "Pan" : m === "box" ? "Box select" : "Lasso select"),
  );
  const thumbsBox = h("input", { type: "checkbox", id: "map-thumbs", checked: params.get("thumbs") !== "0" });
  const searchBox = h("input", { id: "map-search", type: "search", placeholder: "Highlight a search…", "aria-label": "Highlight search results on the map", value: params.get("q") ?? "" });
  const searchForm = h("form", { class: "map-search", role: "search" }, searchBox, h("button", { type: "submit" }, "Highlight"));
  const toolbar = h(
    "div",
    { class: "map-toolbar", role: "toolbar", "aria-label": "Map tools" },
    ...modeButtons,
    h("button", { type: "button", id: "map-fit", onclick: () => fit() }, "Fit"),
    h("button", { type: "button", id: "map-reset", onclick: () => reset() }, "Reset"),
    legend.select,
    h("label", { class: "check" }, thumbsBox, " Thumbnails"),
    searchForm,
  );
  root.replaceChildren(h("h1", {}, "Map"), status, toolbar, wrap, legend.list, selection);

  const layout = layoutPoints(pts.x, pts.y, pts.asset_ids, count);
  const transform = new ViewTransform(layout, () => renderer.scheduleDraw());
  const renderer = new MapRenderer(canvas, layout, pts.asset_ids, transform, legend, thumbsBox);
  const overlay = renderer.overlay;

  /** Frame the points that are shown (all groups not hidden); none shown: Reset. */
  function fit(): void {
    if (!transform.fit(legend.shown())) reset();
  }

  function reset(): void {
    transform.reset();
    legend.showAll();
    setSelection([]);
    legend.render();
    renderer.scheduleDraw();
  }

  // --- selection → the grid below the map -------------------------------------------------------------
  function setSelection(indexes: number[]): void {
    overlay.selected = new Uint8Array(count);
    const assets: string[] = [];
    const seen = new Set<string>();
    for (const i of indexes) {
      overlay.selected[i] = 1;
      const id = pts!.asset_ids[i];
      if (!seen.has(id)) seen.add(id), assets.push(id);
    }
    overlay.selectedCount = indexes.length;
    selection.replaceChildren(assets.length ? selectionGrid(assets, () => setSelection([]), recolour) : "");
    renderer.scheduleDraw();
  }

  let mode: Mode = "pan";
  function setMode(m: Mode): void {
    mode = m;
    for (const b of modeButtons) b.setAttribute("aria-pressed", String(b.dataset.mode === m));
    canvas.dataset.mode = m;
  }

  /** After "Move to cluster…" (or its Undo): the moved images' points take their new cluster's colour at once,
   * then the refreshed analysis (which Move already reloaded) brings the new cluster's name and the server's
   * own colouring of the map, which follows moves. Hidden legend entries stay hidden. */
  async function recolour(moved: Moved, undone: boolean): Promise<void> {
    for (const m of moved.moves) {
      const to = undone ? m.previous_cluster_id : moved.to;
      for (const i of layout.indexOf.get(m.asset_id) ?? []) pts!.cluster_ids[i] = to === NOISE_ID ? "" : to;
    }
    const fresh = await analysis();
    if (!fresh.error) {
      state = fresh;
      if (fresh.points?.run_id === pts!.run_id && fresh.points.count === count) pts!.cluster_ids = fresh.points.cluster_ids;
    }
    legend.recolour();
  }

  // --- search hits ----------------------------------------------------------------------------------
  async function highlightSearch(query: string): Promise<void> {
    if (!query.trim()) {
      overlay.hits = null;
      overlay.hitCount = 0;
      status.textContent = `${count} images`;
      return renderer.scheduleDraw();
    }
    try {
      const response = await searchText(query, {}, 200);
      const flags = new Uint8Array(count);
      let n = 0;
      for (const hit of response.hits) for (const i of layout.indexOf.get(hit.asset.asset_id) ?? []) (flags[i] = 1), n++;
      overlay.hits = flags;
      overlay.hitCount = n;
      status.textContent = `${response.hits.length} results for “${query}” · ${n} on the map`;
    } catch (err) {
      status.textContent = `Search failed: ${describeError(err)}`;
    }
    renderer.scheduleDraw();
  }
  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void highlightSearch(searchBox.value);
  });
  thumbsBox.addEventListener("change", () => renderer.scheduleDraw());

  /** A click on a point opens the shared viewer at its image; ←/→ go through the other images of its group
   * (cluster, kind or date step, as coloured), each once, in map order. */
  const openPoint = (i: number): void => {
    const ids: string[] = [];
    const seen = new Set<string>();
    for (const j of legend.groups[legend.groupOf[i]].idx) {
      const id = pts.asset_ids[j];
      if (!seen.has(id)) (seen.add(id), ids.push(id));
    }
    openViewer({ ids: () => ids }, ids.indexOf(pts.asset_ids[i]));
  };
  attachInput(canvas, tip, { layout, assetIds: pts.asset_ids, transform, legend, renderer, mode: () => mode, select: setSelection, open: openPoint });

  legend.build("cluster");
  setMode("pan");
  const onResize = () => (root.contains(canvas) ? renderer.resize(wrap.getBoundingClientRect().width) : window.removeEventListener("resize", onResize));
  window.addEventListener("resize", onResize);
  renderer.resize(wrap.getBoundingClientRect().width);
  if (searchBox.value) void highlightSearch(searchBox.value);
}
