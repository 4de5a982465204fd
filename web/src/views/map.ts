// Map: the 2-D projection on a canvas (no DOM node per point). Wheel zooms, drag pans, hover shows the
// thumbnail, click opens the image; colours follow clusters. Points are binned into a grid once, so
// hover lookups stay O(1)-ish at 100k points; drawing batches one path per colour.
import { thumbUrl } from "../api";
import { h } from "../dom";
import { analysis, clusterName } from "../state";
import { openDetail } from "./common";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const NOISE = "#c8c8c8";
const CELLS = 128;

function colourOf(clusterId: string, order: Map<string, number>): string {
  if (!clusterId) return NOISE;
  if (!order.has(clusterId)) order.set(clusterId, order.size);
  return PALETTE[order.get(clusterId)! % PALETTE.length];
}

export async function mapView(root: HTMLElement): Promise<void> {
  root.replaceChildren(h("h1", {}, "Map"), h("p", { class: "status" }, "Loading the map…"));
  const state = await analysis(true);
  const pts = state.points;
  if (!pts || !pts.count) {
    root.replaceChildren(h("h1", {}, "Map"), h("p", { class: "status" }, "No map yet. ", h("a", { href: "#/clusters" }, "Run an analysis"), " to draw one."));
    return;
  }
  const canvas = h("canvas", { id: "map-canvas", role: "img", "aria-label": `Map of ${pts.count} images, coloured by cluster`, tabindex: 0 });
  const tip = h("div", { class: "map-tip", hidden: true });
  const wrap = h("div", { class: "map-wrap" }, canvas, tip);
  const legend = h("ul", { class: "legend", "aria-label": "Cluster colours" });
  root.replaceChildren(h("h1", {}, "Map"), h("p", { class: "status" }, `${pts.count} images · drag to pan, wheel or pinch to zoom (keys: arrows, + and −), click to open`), wrap, legend);

  // Normalise to [0, 1] once.
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < pts.count; i++) {
    minX = Math.min(minX, pts.x[i]); maxX = Math.max(maxX, pts.x[i]);
    minY = Math.min(minY, pts.y[i]); maxY = Math.max(maxY, pts.y[i]);
  }
  const span = Math.max(maxX - minX, maxY - minY) || 1;
  const nx = new Float32Array(pts.count), ny = new Float32Array(pts.count);
  const order = new Map<string, number>();
  const colours: string[] = new Array(pts.count);
  const byColour = new Map<string, number[]>();
  const bins = new Map<number, number[]>();
  for (let i = 0; i < pts.count; i++) {
    nx[i] = (pts.x[i] - minX) / span + (1 - (maxX - minX) / span) / 2;
    ny[i] = (pts.y[i] - minY) / span + (1 - (maxY - minY) / span) / 2;
    colours[i] = colourOf(pts.cluster_ids[i], order);
    if (!byColour.has(colours[i])) byColour.set(colours[i], []);
    byColour.get(colours[i])!.push(i);
    const key = Math.min(CELLS - 1, Math.floor(nx[i] * CELLS)) * CELLS + Math.min(CELLS - 1, Math.floor(ny[i] * CELLS));
    if (!bins.has(key)) bins.set(key, []);
    bins.get(key)!.push(i);
  }
  for (const [id] of order) legend.append(h("li", {}, h("span", { class: "swatch", style: `background:${colourOf(id, order)}` }), clusterName(state, id)));

  let scale = 1, offX = 0, offY = 0; // screen = (n * size) * scale + off
  const view = { w: 0, h: 0, size: 0, pad: 16 };
  const ctx = canvas.getContext("2d")!;

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
  const sx = (i: number) => view.pad + (view.w - 2 * view.pad - view.size) / 2 + nx[i] * view.size * scale + offX;
  const sy = (i: number) => view.pad + (view.h - 2 * view.pad - view.size) / 2 + ny[i] * view.size * scale + offY;

  // Few points: round dots sized to be seen and hovered. Many: small squares (rect is far cheaper than arc).
  const base = pts.count < 1000 ? 6 : pts.count < 20000 ? 3 : 1.5;
  const round = pts.count < 5000;
  function draw(): void {
    const started = performance.now();
    ctx.clearRect(0, 0, view.w, view.h);
    const r = Math.max(1, Math.min(12, base * Math.sqrt(scale)));
    let drawn = 0;
    for (const [colour, idx] of byColour) {
      ctx.fillStyle = colour;
      ctx.beginPath();
      for (const i of idx) {
        const x = sx(i), y = sy(i);
        if (x < -r || y < -r || x > view.w + r || y > view.h + r) continue;
        if (round) {
          ctx.moveTo(x + r, y);
          ctx.arc(x, y, r, 0, 2 * Math.PI);
        } else ctx.rect(x - r, y - r, 2 * r, 2 * r);
        drawn++;
      }
      ctx.fill();
    }
    canvas.dataset.pointCount = String(pts!.count);
    canvas.dataset.drawnCount = String(drawn);
    canvas.dataset.drawMs = (performance.now() - started).toFixed(1);
    canvas.dataset.scale = scale.toFixed(3);
  }

  function nearest(px: number, py: number): number {
    // Back to normalised space, then look in the bins around it.
    const gx = (px - view.pad - (view.w - 2 * view.pad - view.size) / 2 - offX) / (view.size * scale);
    const gy = (py - view.pad - (view.h - 2 * view.pad - view.size) / 2 - offY) / (view.size * scale);
    const cx = Math.floor(gx * CELLS), cy = Math.floor(gy * CELLS);
    let best = -1, bestD = 100; // pixels², so only close points count
    const reach = Math.max(1, Math.ceil((10 / (view.size * scale)) * CELLS));
    for (let dx = -reach; dx <= reach; dx++)
      for (let dy = -reach; dy <= reach; dy++) {
        for (const i of bins.get((cx + dx) * CELLS + (cy + dy)) ?? []) {
          const d = (sx(i) - px) ** 2 + (sy(i) - py) ** 2;
          if (d < bestD) (bestD = d), (best = i);
        }
      }
    return best;
  }

  /** Zoom to `next` keeping the canvas point (px, py) still. */
  function zoomAt(px: number, py: number, next: number): void {
    next = Math.min(200, Math.max(0.5, next));
    const baseX = view.pad + (view.w - 2 * view.pad - view.size) / 2;
    const baseY = view.pad + (view.h - 2 * view.pad - view.size) / 2;
    offX = px - baseX - ((px - baseX - offX) * next) / scale;
    offY = py - baseY - ((py - baseY - offY) * next) / scale;
    scale = next;
    requestAnimationFrame(draw);
  }

  // One pointer drags (mouse or finger); two fingers pinch-zoom around their midpoint.
  const pointers = new Map<number, { x: number; y: number }>();
  let moved = false;
  let pinch = 0;
  canvas.addEventListener("pointerdown", (e) => {
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 1) moved = false;
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
      } else {
        offX += dx;
        offY += dy;
        requestAnimationFrame(draw);
      }
      return;
    }
    const i = nearest(e.clientX - rect.left, e.clientY - rect.top);
    if (i < 0) return void (tip.hidden = true);
    tip.hidden = false;
    tip.style.left = `${Math.min(view.w - 140, sx(i) + 10)}px`;
    tip.style.top = `${Math.max(0, sy(i) - 140)}px`;
    tip.replaceChildren(h("img", { src: thumbUrl(pts.asset_ids[i]), alt: "" }), h("span", {}, clusterName(state, pts.cluster_ids[i])));
  });
  const release = (e: PointerEvent) => {
    const wasLast = pointers.delete(e.pointerId) && pointers.size === 0;
    pinch = 0;
    return wasLast;
  };
  canvas.addEventListener("pointerup", (e) => {
    if (!release(e) || moved) return;
    const rect = canvas.getBoundingClientRect();
    const i = nearest(e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) openDetail(pts.asset_ids[i], (id) => (location.hash = `#/search?like=${id}`));
  });
  canvas.addEventListener("pointercancel", (e) => void release(e));
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
    else return;
    e.preventDefault();
    draw();
  });
  window.addEventListener("resize", resize);
  resize();
}
