// Input on the map canvas: one pointer drags (pans, or draws a box / lasso in those modes), two pinch-zoom
// around their midpoint, the wheel and +/− zoom, arrows pan, Escape clears the selection, hover shows the
// thumbnail tip, a click (no drag) opens the point under it. Split out of map.ts because this is the event
// state machine (pointers down, moved, pinch distance, the shape being drawn) and the hit-testing it needs,
// which the rest of the view does not care about: it only hears "these points were selected" and "open this one".
import { thumbUrl } from "../api";
import { h } from "../dom";
import { Legend } from "./map_legend";
import { CELLS, PointLayout } from "./map_points";
import { MapRenderer } from "./map_render";
import { ViewTransform } from "./map_transform";

export type Mode = "pan" | "box" | "lasso";

export interface InputDeps {
  layout: PointLayout;
  assetIds: string[];
  transform: ViewTransform;
  legend: Legend;
  renderer: MapRenderer;
  mode: () => Mode;
  /** A box or lasso closed around these points (possibly none). */
  select: (indexes: number[]) => void;
  /** A click on point i. */
  open: (i: number) => void;
}

function pointInPolygon(x: number, y: number, poly: number[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 2; i < poly.length; j = i, i += 2) {
    const xi = poly[i], yi = poly[i + 1], xj = poly[j], yj = poly[j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** The shown point nearest the canvas point (px, py) within 10 px, or -1. */
function nearest({ layout, transform: t, legend }: InputDeps, px: number, py: number): number {
  // Back to normalised space, then look in the bins around it.
  const gx = (px - t.baseX() - t.offX) / (t.view.size * t.scale);
  const gy = (py - t.baseY() - t.offY) / (t.view.size * t.scale);
  const cx = Math.floor(gx * CELLS), cy = Math.floor(gy * CELLS);
  let best = -1, bestD = 100; // pixels², so only close points count
  const reach = Math.max(1, Math.ceil((10 / (t.view.size * t.scale)) * CELLS));
  for (let dx = -reach; dx <= reach; dx++)
    for (let dy = -reach; dy <= reach; dy++) {
      for (const i of layout.bins.get((cx + dx) * CELLS + (cy + dy)) ?? []) {
        if (legend.groups[legend.groupOf[i]].hidden) continue;
        const d = (t.sx(i) - px) ** 2 + (t.sy(i) - py) ** 2;
        if (d < bestD) (bestD = d), (best = i);
      }
    }
  return best;
}

/** The shown points inside `poly` (canvas pixels); a box needs only its bounding-rectangle test. */
function pointsInside({ transform: t, legend }: InputDeps, poly: number[], box: boolean): number[] {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let p = 0; p < poly.length; p += 2) (x0 = Math.min(x0, poly[p])), (x1 = Math.max(x1, poly[p])), (y0 = Math.min(y0, poly[p + 1])), (y1 = Math.max(y1, poly[p + 1]));
  const inside: number[] = [];
  for (const g of legend.groups) {
    if (g.hidden) continue;
    for (const i of g.idx) {
      const x = t.sx(i), y = t.sy(i);
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      if (box || pointInPolygon(x, y, poly)) inside.push(i);
    }
  }
  return inside;
}

/** Wires the canvas's pointer, wheel and key events; `tip` is the hover thumbnail. */
export function attachInput(canvas: HTMLCanvasElement, tip: HTMLElement, deps: InputDeps): void {
  const { transform: t, renderer, legend, assetIds } = deps;
  const overlay = renderer.overlay;
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
      if (deps.mode() !== "pan") overlay.shape = [start.x, start.y];
    } else overlay.shape = null;
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
        if (pinch) t.zoomAt((a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top, (t.scale * distance) / pinch);
        pinch = distance;
      } else if (overlay.shape) {
        const x = e.clientX - rect.left, y = e.clientY - rect.top;
        overlay.shape = deps.mode() === "box" ? [start.x, start.y, x, start.y, x, y, start.x, y] : [...overlay.shape, x, y];
        renderer.scheduleDraw();
      } else {
        t.pan(dx, dy);
        renderer.scheduleDraw();
      }
      return;
    }
    const i = nearest(deps, e.clientX - rect.left, e.clientY - rect.top);
    if (i < 0) return void (tip.hidden = true);
    tip.hidden = false;
    tip.style.left = `${Math.min(t.view.w - 140, t.sx(i) + 10)}px`;
    tip.style.top = `${Math.max(0, t.sy(i) - 140)}px`;
    tip.replaceChildren(h("img", { src: thumbUrl(assetIds[i]), alt: "" }), h("span", {}, legend.groups[legend.groupOf[i]].label));
  });
  const release = (e: PointerEvent) => {
    const wasLast = pointers.delete(e.pointerId) && pointers.size === 0;
    pinch = 0;
    return wasLast;
  };
  canvas.addEventListener("pointerup", (e) => {
    if (!release(e)) return;
    if (overlay.shape) {
      const poly = overlay.shape;
      overlay.shape = null;
      if (moved && poly.length >= 6) return deps.select(pointsInside(deps, poly, deps.mode() === "box"));
      renderer.scheduleDraw();
    }
    if (moved) return;
    const rect = canvas.getBoundingClientRect();
    const i = nearest(deps, e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) deps.open(i);
  });
  canvas.addEventListener("pointercancel", (e) => {
    release(e);
    overlay.shape = null;
  });
  canvas.addEventListener("pointerleave", () => (tip.hidden = true));
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    t.zoomAt(e.clientX - rect.left, e.clientY - rect.top, t.scale * Math.exp(-e.deltaY * 0.0015));
  }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    const step: Record<string, [number, number]> = { ArrowLeft: [40, 0], ArrowRight: [-40, 0], ArrowUp: [0, 40], ArrowDown: [0, -40] };
    if (e.key in step) t.pan(step[e.key][0], step[e.key][1]);
    else if (e.key === "+" || e.key === "=") t.zoomAt(t.view.w / 2, t.view.h / 2, t.scale * 1.25);
    else if (e.key === "-") t.zoomAt(t.view.w / 2, t.view.h / 2, t.scale / 1.25);
    else if (e.key === "Escape") deps.select([]);
    else return;
    e.preventDefault();
    renderer.scheduleDraw();
  });
}
