// Map: the 2-D projection on a canvas (no DOM node per point), a map to work with rather than look at.
// Drag pans (or draws a box / lasso in those modes), wheel/pinch/keys zoom, hover shows the thumbnail, click
// opens the image. The legend shows/hides or highlights a group, a search highlights its hits, Fit/Reset
// frame the points, colours follow cluster, kind or date. Zoomed in, thumbnails are drawn on the canvas
// from one texture atlas (a 2048² canvas of 64 px cells, least recently used evicted), so memory stays
// bounded however far one wanders. Points are binned into a grid once (hover lookups O(1)-ish at 100k);
// drawing batches one path per colour, and draws at most once per animation frame.
import { api, describeError, searchText, thumbUrl } from "../api";
import { h } from "../dom";
import { analysis, clusterName } from "../state";
import { selectionGrid } from "./map_selection";
import { Moved, NOISE_ID } from "./move";
import { openViewer } from "./viewer";
import { ATLAS, Atlas, CELL } from "./map_atlas";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const DATE_RAMP = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"];
const NOISE = "#c8c8c8";
const UNKNOWN = "#9a9a9a";
const CELLS = 128;
/** Thumbnails replace dots once this few points are in view (and the atlas holds them all). */
const THUMB_MAX = 600;

type ColourBy = "cluster" | "kind" | "date";
type Mode = "pan" | "box" | "lasso";

interface Group {
  key: string;
  label: string;
  colour: string;
  idx: Int32Array;
  hidden: boolean;
}

interface Attributes {
  kinds: string[];
  captured: (number | null)[];
  ingested: (number | null)[];
}


function pointInPolygon(x: number, y: number, poly: number[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const xi = poly[i], yi = poly[i + 1], xj = poly[j], yj = poly[j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

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
  const legend = h("ul", { class: "legend", "aria-label": "Legend: show, hide or highlight a group" });
  const selection = h("section", { class: "map-selection", "aria-label": "Selected images" });
  const status = h("p", { class: "status", role: "status" }, `${count} images · drag to pan, wheel or pinch to zoom (keys: arrows, + and −), click to open`);

  const modeButtons = (["pan", "box", "lasso"] as Mode[]).map((m) =>
    h("button", { type: "button", class: "mode", "data-mode": m, "aria-pressed": String(m === "pan"), onclick: () => setMode(m) }, m === "pan" ? "Pan" : m === "box" ? "Box select" : "Lasso select"),
  );
  const colourSelect = h(
    "select",
    { id: "map-colour", "aria-label": "Colour by" },
    h("option", { value: "cluster" }, "Colour by cluster"),
    h("option", { value: "kind" }, "Colour by kind"),
    h("option", { value: "date" }, "Colour by date"),
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
    colourSelect,
    h("label", { class: "check" }, thumbsBox, " Thumbnails"),
    searchForm,
  );
  root.replaceChildren(h("h1", {}, "Map"), status, toolbar, wrap, legend, selection);

  // Normalise to [0, 1] once.
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < count; i++) {
    minX = Math.min(minX, pts.x[i]); maxX = Math.max(maxX, pts.x[i]);
    minY = Math.min(minY, pts.y[i]); maxY = Math.max(maxY, pts.y[i]);
  }
  const span = Math.max(maxX - minX, maxY - minY) || 1;
  const nx = new Float32Array(count), ny = new Float32Array(count);
  const bins = new Map<number, number[]>();
  const indexOf = new Map<string, number[]>(); // asset → its points (an asset may have several samples)
  for (let i = 0; i < count; i++) {
    nx[i] = (pts.x[i] - minX) / span + (1 - (maxX - minX) / span) / 2;
    ny[i] = (pts.y[i] - minY) / span + (1 - (maxY - minY) / span) / 2;
    const key = Math.min(CELLS - 1, Math.floor(nx[i] * CELLS)) * CELLS + Math.min(CELLS - 1, Math.floor(ny[i] * CELLS));
    if (!bins.has(key)) bins.set(key, []);
    bins.get(key)!.push(i);
    const id = pts.asset_ids[i];
    if (!indexOf.has(id)) indexOf.set(id, []);
    indexOf.get(id)!.push(i);
  }

  // --- colour groups (legend entries): one Int32Array of point indexes per group -------------------------
  let groups: Group[] = [];
  const groupOf = new Int32Array(count);
  let highlighted: number | null = null; // a group index
  let attributes: Attributes | null = null;

  function buildGroups(by: ColourBy): void {
    const keyOf: string[] = new Array(count);
    const meta = new Map<string, { label: string; colour: string }>();
    if (by === "cluster") {
      // Colours follow the run's cluster order (not the order points appear in), so a cluster keeps its colour
      // when images move in or out of it; a cluster the page does not know yet comes after the known ones.
      const order = new Map<string, number>(state.clusters.map((c, i) => [c.cluster_id, i]));
      for (let i = 0; i < count; i++) {
        const c = pts!.cluster_ids[i] || "";
        keyOf[i] = c;
        if (!meta.has(c)) {
          if (c && !order.has(c)) order.set(c, order.size);
          meta.set(c, { label: clusterName(state, c || undefined), colour: c ? PALETTE[order.get(c)! % PALETTE.length] : NOISE });
        }
      }
    } else if (by === "kind") {
      const colours: Record<string, string> = { image: PALETTE[0], object: PALETTE[1], text: PALETTE[2], region: PALETTE[1] };
      for (let i = 0; i < count; i++) {
        const k = attributes?.kinds[i] || "unknown";
        keyOf[i] = k;
        if (!meta.has(k)) meta.set(k, { label: k === "region" ? "region (object or text)" : k, colour: colours[k] ?? UNKNOWN });
      }
    } else {
      // Capture date where known, else the ingest date; eight equal steps between the oldest and newest.
      const when = (i: number) => attributes?.captured[i] ?? attributes?.ingested[i] ?? null;
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < count; i++) {
        const t = when(i);
        if (t !== null) (lo = Math.min(lo, t)), (hi = Math.max(hi, t));
      }
      const steps = DATE_RAMP.length, width = (hi - lo) / steps || 1;
      const day = (t: number) => new Date(t).toISOString().slice(0, 10);
      for (let i = 0; i < count; i++) {
        const t = when(i);
        if (t === null) {
          keyOf[i] = "none";
          if (!meta.has("none")) meta.set("none", { label: "no date", colour: UNKNOWN });
          continue;
        }
        const b = Math.min(steps - 1, Math.floor((t - lo) / width));
        keyOf[i] = `d${b}`;
        if (!meta.has(keyOf[i])) meta.set(keyOf[i], { label: `${day(lo + b * width)} – ${day(lo + (b + 1) * width)}`, colour: DATE_RAMP[b] });
      }
    }
    const members = new Map<string, number[]>();
    for (let i = 0; i < count; i++) {
      if (!members.has(keyOf[i])) members.set(keyOf[i], []);
      members.get(keyOf[i])!.push(i);
    }
    const keys = by === "date" ? [...members.keys()].sort() : [...members.keys()];
    groups = keys.map((key) => ({ key, ...meta.get(key)!, idx: Int32Array.from(members.get(key)!), hidden: false }));
    groups.forEach((g, gi) => g.idx.forEach((i) => (groupOf[i] = gi)));
    highlighted = null;
    renderLegend();
    canvas.setAttribute("aria-label", `Map of ${count} images, coloured by ${by}`);
    canvas.dataset.colourBy = by;
  }

  function renderLegend(): void {
    legend.replaceChildren(
      ...groups.map((g, gi) =>
        h(
          "li",
          { "data-key": g.key, class: [g.hidden ? "hidden" : "", highlighted === gi ? "highlighted" : ""].join(" ").trim() },
          h(
            "button",
            { type: "button", class: "toggle", "aria-pressed": String(!g.hidden), title: "Show or hide", onclick: () => toggle(gi) },
            h("span", { class: "swatch", style: `background:${g.colour}` }),
            `${g.label} (${g.idx.length})`,
          ),
          h("button", { type: "button", class: "spot", "aria-pressed": String(highlighted === gi), "aria-label": `Highlight ${g.label}`, title: "Highlight", onclick: () => spotlight(gi) }, "◎"),
        ),
      ),
    );
  }

  function toggle(gi: number): void {
    groups[gi].hidden = !groups[gi].hidden;
    if (groups[gi].hidden && highlighted === gi) highlighted = null;
    renderLegend();
    scheduleDraw();
  }

  function spotlight(gi: number): void {
    highlighted = highlighted === gi ? null : gi;
    if (highlighted !== null) groups[gi].hidden = false;
    renderLegend();
    scheduleDraw();
  }

  // --- view transform: screen = base + n * size * scale + off ---------------------------------------------
  let scale = 1, offX = 0, offY = 0;
  const view = { w: 0, h: 0, size: 0, pad: 16 };
  const ctx = canvas.getContext("2d")!;
  const baseX = () => view.pad + (view.w - 2 * view.pad - view.size) / 2;
  const baseY = () => view.pad + (view.h - 2 * view.pad - view.size) / 2;
  const sx = (i: number) => baseX() + nx[i] * view.size * scale + offX;
  const sy = (i: number) => baseY() + ny[i] * view.size * scale + offY;

  function resize(): void {
    const rect = wrap.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    view.w = rect.width;
    view.h = Math.max(280, Math.min(window.innerHeight - 220, rect.width * 0.75));
    view.size = Math.min(view.w, view.h) - 2 * view.pad;
    canvas.width = view.w * dpr;
    canvas.height = view.h * dpr;
    canvas.style.width = `${view.w}px`;
    canvas.style.height = `${view.h}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }

  // --- state drawn over the points: selection, search hits, the box or lasso being drawn -------------------
  let selected = new Uint8Array(count);
  let selectedCount = 0;
  let hits: Uint8Array | null = null;
  let hitCount = 0;
  let shape: number[] | null = null; // polygon in canvas pixels (box: its 4 corners)
  const atlas = new Atlas(() => scheduleDraw());
  const visible = new Int32Array(count);

  // Few points: round dots sized to be seen and hovered. Many: small squares (rect is far cheaper than arc).
  const base = count < 1000 ? 6 : count < 20000 ? 3 : 1.5;
  const round = count < 5000;
  function dots(idx: Int32Array | number[], r: number, collect: boolean): number {
    let n = 0;
    ctx.beginPath();
    const bx = baseX(), by = baseY(), k = view.size * scale;
    for (const i of idx) {
      const x = bx + nx[i] * k + offX, y = by + ny[i] * k + offY;
      if (x < -r || y < -r || x > view.w + r || y > view.h + r) continue;
      if (round) {
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      } else ctx.rect(x - r, y - r, 2 * r, 2 * r);
      if (collect && visibleCount < count) visible[visibleCount++] = i;
      n++;
    }
    ctx.fill();
    return n;
  }

  /** Many points: squares written straight into a pixel buffer, then one putImageData. Filling a path of
   * 100k rects costs the rasteriser far more than the loop (7 fps while panning, measured in
   * bench/map_bench.py, vs ~60 this way); faint colours are pre-blended over the white background. */
  let pixels: ImageData | null = null;
  function pixelDots(r: number, alphaOf: (gi: number) => number): number {
    const W = canvas.width, H = canvas.height, dpr = W / (view.w || 1);
    if (!pixels || pixels.width !== W || pixels.height !== H) pixels = new ImageData(W, H);
    const u32 = new Uint32Array(pixels.data.buffer);
    u32.fill(0);
    const rr = Math.max(1, Math.round(r * dpr));
    const bx = baseX(), by = baseY(), k = view.size * scale;
    let n = 0;
    groups.forEach((g, gi) => {
      if (g.hidden) return;
      const a = alphaOf(gi);
      const c = parseInt(g.colour.slice(1), 16);
      const blend = (v: number) => Math.round(v * a + 255 * (1 - a));
      const rgba = (255 << 24) | (blend(c & 255) << 16) | (blend((c >> 8) & 255) << 8) | blend(c >> 16); // ABGR
      for (const i of g.idx) {
        const x = Math.round((bx + nx[i] * k + offX) * dpr), y = Math.round((by + ny[i] * k + offY) * dpr);
        if (x < -rr || y < -rr || x >= W + rr || y >= H + rr) continue;
        const x0 = Math.max(0, x - rr), x1 = Math.min(W, x + rr), y1 = Math.min(H, y + rr);
        for (let yy = Math.max(0, y - rr); yy < y1; yy++) {
          const row = yy * W;
          for (let xx = x0; xx < x1; xx++) u32[row + xx] = rgba;
        }
        if (visibleCount < count) visible[visibleCount++] = i;
        n++;
      }
    });
    ctx.putImageData(pixels, 0, 0);
    return n;
  }

  let visibleCount = 0;
  let pending = false;
  function scheduleDraw(): void {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  }

  function draw(): void {
    const started = performance.now();
    ctx.clearRect(0, 0, view.w, view.h);
    const r = Math.max(1, Math.min(12, base * Math.sqrt(scale)));
    const focus = highlighted !== null || hits !== null; // the rest is drawn faint
    let drawn = 0;
    visibleCount = 0;
    const alphaOf = (gi: number) => (highlighted !== null ? (highlighted === gi ? 1 : 0.18) : hits !== null ? 0.18 : 1);
    if (round) {
      groups.forEach((g, gi) => {
        if (g.hidden) return;
        ctx.fillStyle = g.colour;
        ctx.globalAlpha = alphaOf(gi);
        drawn += dots(g.idx, r, true);
      });
      ctx.globalAlpha = 1;
    } else drawn = pixelDots(r, alphaOf);
    // Thumbnails when few enough points are in view: from the atlas, a dot until a thumbnail has loaded.
    let thumbs = 0;
    if (thumbsBox.checked && visibleCount <= THUMB_MAX && visibleCount > 0) {
      const side = visibleCount <= 60 ? 64 : visibleCount <= 200 ? 44 : 30;
      for (let v = 0; v < visibleCount; v++) {
        const i = visible[v];
        const slot = atlas.slot(pts!.asset_ids[i]);
        if (slot < 0) continue;
        const x = sx(i), y = sy(i);
        ctx.globalAlpha = focus && !(hits?.[i] || groupOf[i] === highlighted) ? 0.25 : 1;
        ctx.drawImage(atlas.canvas, (slot % (ATLAS / CELL)) * CELL, Math.floor(slot / (ATLAS / CELL)) * CELL, CELL, CELL, x - side / 2, y - side / 2, side, side);
        ctx.strokeStyle = groups[groupOf[i]].colour;
        ctx.lineWidth = 2;
        ctx.strokeRect(x - side / 2, y - side / 2, side, side);
        thumbs++;
      }
      ctx.globalAlpha = 1;
      atlas.endFrame();
    }
    // Search hits on top, ringed; selected points ringed in black.
    const ring = (flags: Uint8Array, colour: string, width: number, fill: boolean) => {
      ctx.beginPath();
      const rr = r + 2;
      for (let v = 0; v < visibleCount; v++) {
        const i = visible[v];
        if (!flags[i]) continue;
        const x = sx(i), y = sy(i);
        ctx.moveTo(x + rr, y);
        ctx.arc(x, y, rr, 0, 2 * Math.PI);
      }
      if (fill) ctx.fill();
      ctx.strokeStyle = colour;
      ctx.lineWidth = width;
      ctx.stroke();
    };
    if (hits) {
      ctx.fillStyle = "#ffcc00";
      ring(hits, "#111", 1.5, true);
    }
    if (selectedCount) ring(selected, "rgba(0, 0, 0, 0.6)", 1, false);
    if (shape && shape.length >= 4) {
      ctx.beginPath();
      ctx.moveTo(shape[0], shape[1]);
      for (let p = 2; p < shape.length; p += 2) ctx.lineTo(shape[p], shape[p + 1]);
      ctx.closePath();
      ctx.fillStyle = "rgba(36, 88, 198, 0.12)";
      ctx.fill();
      ctx.setLineDash([5, 4]);
      ctx.strokeStyle = "#2458c6";
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.setLineDash([]);
    }
    canvas.dataset.pointCount = String(count);
    canvas.dataset.drawnCount = String(drawn);
    canvas.dataset.thumbsDrawn = String(thumbs);
    canvas.dataset.atlasLoaded = String(atlas.loaded);
    canvas.dataset.drawMs = (performance.now() - started).toFixed(1);
    canvas.dataset.scale = scale.toFixed(3);
    canvas.dataset.selectedCount = String(selectedCount);
    canvas.dataset.hitCount = String(hitCount);
  }

  function nearest(px: number, py: number): number {
    // Back to normalised space, then look in the bins around it.
    const gx = (px - baseX() - offX) / (view.size * scale);
    const gy = (py - baseY() - offY) / (view.size * scale);
    const cx = Math.floor(gx * CELLS), cy = Math.floor(gy * CELLS);
    let best = -1, bestD = 100; // pixels², so only close points count
    const reach = Math.max(1, Math.ceil((10 / (view.size * scale)) * CELLS));
    for (let dx = -reach; dx <= reach; dx++)
      for (let dy = -reach; dy <= reach; dy++) {
        for (const i of bins.get((cx + dx) * CELLS + (cy + dy)) ?? []) {
          if (groups[groupOf[i]].hidden) continue;
          const d = (sx(i) - px) ** 2 + (sy(i) - py) ** 2;
          if (d < bestD) (bestD = d), (best = i);
        }
      }
    return best;
  }

  /** Zoom to `next` keeping the canvas point (px, py) still. */
  function zoomAt(px: number, py: number, next: number): void {
    next = Math.min(400, Math.max(0.5, next));
    offX = px - baseX() - ((px - baseX() - offX) * next) / scale;
    offY = py - baseY() - ((py - baseY() - offY) * next) / scale;
    scale = next;
    scheduleDraw();
  }

  /** Frame the points that are shown (all groups not hidden). */
  function fit(): void {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const g of groups) {
      if (g.hidden) continue;
      for (const i of g.idx) (x0 = Math.min(x0, nx[i])), (x1 = Math.max(x1, nx[i])), (y0 = Math.min(y0, ny[i])), (y1 = Math.max(y1, ny[i]));
    }
    if (!(x1 >= x0)) return reset();
    scale = Math.min(400, Math.max(0.5, 1 / Math.max(x1 - x0, y1 - y0, 1e-6)));
    const k = view.size * scale;
    offX = view.w / 2 - baseX() - ((x0 + x1) / 2) * k;
    offY = view.h / 2 - baseY() - ((y0 + y1) / 2) * k;
    scheduleDraw();
  }

  function reset(): void {
    (scale = 1), (offX = 0), (offY = 0);
    groups.forEach((g) => (g.hidden = false));
    highlighted = null;
    setSelection([]);
    renderLegend();
    scheduleDraw();
  }

  // --- selection → the grid below the map -------------------------------------------------------------
  function setSelection(indexes: number[]): void {
    selected = new Uint8Array(count);
    const assets: string[] = [];
    const seen = new Set<string>();
    for (const i of indexes) {
      selected[i] = 1;
      const id = pts!.asset_ids[i];
      if (!seen.has(id)) seen.add(id), assets.push(id);
    }
    selectedCount = indexes.length;
    selection.replaceChildren(assets.length ? selectionGrid(assets, () => setSelection([]), recolour) : "");
    scheduleDraw();
  }

  function select(poly: number[]): void {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let p = 0; p < poly.length; p += 2) (x0 = Math.min(x0, poly[p])), (x1 = Math.max(x1, poly[p])), (y0 = Math.min(y0, poly[p + 1])), (y1 = Math.max(y1, poly[p + 1]));
    const inside: number[] = [];
    for (const g of groups) {
      if (g.hidden) continue;
      for (const i of g.idx) {
        const x = sx(i), y = sy(i);
        if (x < x0 || x > x1 || y < y0 || y > y1) continue;
        if (mode === "box" || pointInPolygon(x, y, poly)) inside.push(i);
      }
    }
    setSelection(inside);
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
      for (const i of indexOf.get(m.asset_id) ?? []) pts!.cluster_ids[i] = to === NOISE_ID ? "" : to;
    }
    const fresh = await analysis();
    if (!fresh.error) {
      state = fresh;
      if (fresh.points?.run_id === pts!.run_id && fresh.points.count === count) pts!.cluster_ids = fresh.points.cluster_ids;
    }
    if (colourSelect.value !== "cluster") return;
    const hidden = new Set(groups.filter((g) => g.hidden).map((g) => g.key));
    buildGroups("cluster");
    for (const g of groups) g.hidden = hidden.has(g.key);
    renderLegend();
    scheduleDraw();
  }

  // --- search hits ----------------------------------------------------------------------------------
  async function highlightSearch(query: string): Promise<void> {
    if (!query.trim()) {
      hits = null;
      hitCount = 0;
      status.textContent = `${count} images`;
      return scheduleDraw();
    }
    try {
      const response = await searchText(query, {}, 200);
      const flags = new Uint8Array(count);
      let n = 0;
      for (const hit of response.hits) for (const i of indexOf.get(hit.asset.asset_id) ?? []) (flags[i] = 1), n++;
      hits = flags;
      hitCount = n;
      status.textContent = `${response.hits.length} results for “${query}” · ${n} on the map`;
    } catch (err) {
      status.textContent = `Search failed: ${describeError(err)}`;
    }
    scheduleDraw();
  }
  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void highlightSearch(searchBox.value);
  });

  colourSelect.addEventListener("change", async () => {
    const by = colourSelect.value as ColourBy;
    if (by !== "cluster" && !attributes) {
      try {
        attributes = await api<Attributes>(`/api/runs/${encodeURIComponent(pts.run_id)}/map-attributes`);
      } catch (err) {
        status.textContent = `Cannot colour by ${by}: ${describeError(err)}`;
        colourSelect.value = "cluster";
        return;
      }
    }
    buildGroups(by);
    scheduleDraw();
  });
  thumbsBox.addEventListener("change", () => scheduleDraw());

  // --- pointers: one drags (pan, box or lasso), two pinch-zoom around their midpoint -----------------------
  const pointers = new Map<number, { x: number; y: number }>();
  let moved = false;
  let pinch = 0;
  let start = { x: 0, y: 0 };
  canvas.addEventListener("pointerdown", (e) => {
    const rect = canvas.getBoundingClientRect();
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 1) {
      moved = false;
      start = { x: e.clientX - rect.left, y: e.clientY - rect.top };
      if (mode !== "pan") shape = [start.x, start.y];
    } else shape = null;
    if (e.isTrusted) canvas.setPointerCapture(e.pointerId); // keep getting moves outside the canvas
  });
  canvas.addEventListener("pointermove", (e) => {
    const rect = canvas.getBoundingClientRect();
    const last = pointers.get(e.pointerId);
    if (last) {
      const dx = e.clientX - last.x, dy = e.clientY - last.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) moved = true;
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pointers.size === 2) {
        const [a, b] = Array.from(pointers.values());
        const distance = Math.hypot(a.x - b.x, a.y - b.y);
        if (pinch) zoomAt((a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top, (scale * distance) / pinch);
        pinch = distance;
      } else if (shape) {
        const x = e.clientX - rect.left, y = e.clientY - rect.top;
        shape = mode === "box" ? [start.x, start.y, x, start.y, x, y, start.x, y] : [...shape, x, y];
        scheduleDraw();
      } else {
        offX += dx;
        offY += dy;
        scheduleDraw();
      }
      return;
    }
    const i = nearest(e.clientX - rect.left, e.clientY - rect.top);
    if (i < 0) return void (tip.hidden = true);
    tip.hidden = false;
    tip.style.left = `${Math.min(view.w - 140, sx(i) + 10)}px`;
    tip.style.top = `${Math.max(0, sy(i) - 140)}px`;
    tip.replaceChildren(h("img", { src: thumbUrl(pts.asset_ids[i]), alt: "" }), h("span", {}, groups[groupOf[i]].label));
  });
  const release = (e: PointerEvent) => {
    const wasLast = pointers.delete(e.pointerId) && pointers.size === 0;
    pinch = 0;
    return wasLast;
  };
  canvas.addEventListener("pointerup", (e) => {
    if (!release(e)) return;
    if (shape) {
      const poly = shape;
      shape = null;
      if (moved && poly.length >= 6) return select(poly);
      scheduleDraw();
    }
    if (moved) return;
    const rect = canvas.getBoundingClientRect();
    const i = nearest(e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) openPoint(i);
  });
  /** A click on a point opens the shared viewer at its image; ←/→ go through the other images of its group
   * (cluster, kind or date step, as coloured), each once, in map order. */
  const openPoint = (i: number): void => {
    const ids: string[] = [];
    const seen = new Set<string>();
    for (const j of groups[groupOf[i]].idx) {
      const id = pts.asset_ids[j];
      if (!seen.has(id)) (seen.add(id), ids.push(id));
    }
    openViewer({ ids: () => ids }, ids.indexOf(pts.asset_ids[i]));
  };
  canvas.addEventListener("pointercancel", (e) => {
    release(e);
    shape = null;
  });
  canvas.addEventListener("pointerleave", () => (tip.hidden = true));
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    zoomAt(e.clientX - rect.left, e.clientY - rect.top, scale * Math.exp(-e.deltaY * 0.0015));
  }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    const step: Record<string, [number, number]> = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
    if (e.key in step) (offX += step[e.key][0]), (offY += step[e.key][1]);
    else if (e.key === "+" || e.key === "=") zoomAt(view.w / 2, view.h / 2, scale * 1.25);
    else if (e.key === "-") zoomAt(view.w / 2, view.h / 2, scale / 1.25);
    else if (e.key === "Escape") setSelection([]);
    else return;
    e.preventDefault();
    scheduleDraw();
  });

  buildGroups("cluster");
  setMode("pan");
  const onResize = () => (root.contains(canvas) ? resize() : window.removeEventListener("resize", onResize));
  window.addEventListener("resize", onResize);
  resize();
  if (searchBox.value) void highlightSearch(searchBox.value);
}
