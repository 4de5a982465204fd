// The map's canvas drawing: dots (round paths when few, a pixel buffer when many), thumbnails from the atlas
// when zoomed in, search hits and the selection ringed, the box or lasso being drawn, and the canvas's data-*
// counters the tests and bench read. At most one draw per animation frame. Split out of map.ts because it is the
// hot path (100k points at interactive frame rates, bench/map_bench.py): it reads the layout, the legend and
// the view transform and changes none of them.
import { ATLAS, Atlas, CELL } from "./map_atlas";
import { Legend } from "./map_legend";
import { PointLayout } from "./map_points";
import { ViewTransform } from "./map_transform";

/** Thumbnails replace dots once this few points are in view (and the atlas holds them all). */
const THUMB_MAX = 600;

/** What is drawn over the points; written by the view (selection, search) and the pointer handlers (shape). */
export interface Overlay {
  selected: Uint8Array;
  selectedCount: number;
  hits: Uint8Array | null;
  hitCount: number;
  /** The box or lasso being drawn: a polygon in canvas pixels (box: its 4 corners). */
  shape: number[] | null;
}

export class MapRenderer {
  readonly overlay: Overlay;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly atlas = new Atlas(() => this.scheduleDraw());
  /** The points drawn in the last frame (what thumbnails and rings consider). */
  private readonly visible: Int32Array;
  private visibleCount = 0;
  private pixels: ImageData | null = null;
  private pending = false;
  /** Few points: round dots sized to be seen and hovered. Many: small squares (rect is far cheaper than arc). */
  private readonly base: number;
  private readonly round: boolean;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly layout: PointLayout,
    private readonly assetIds: string[],
    private readonly transform: ViewTransform,
    private readonly legend: Legend,
    private readonly thumbsBox: HTMLInputElement,
  ) {
    const count = layout.count;
    this.ctx = canvas.getContext("2d")!;
    this.visible = new Int32Array(count);
    this.overlay = { selected: new Uint8Array(count), selectedCount: 0, hits: null, hitCount: 0, shape: null };
    this.base = count < 1000 ? 6 : count < 20000 ? 3 : 1.5;
    this.round = count < 5000;
  }

  /** Sizes the canvas to `width` CSS pixels (and the device's pixel ratio), then draws at once. */
  resize(width: number): void {
    const { canvas, transform } = this;
    const { view } = transform;
    const dpr = window.devicePixelRatio || 1;
    transform.resize(width);
    canvas.width = view.w * dpr;
    canvas.height = view.h * dpr;
    canvas.style.width = `${view.w}px`;
    canvas.style.height = `${view.h}px`;
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.draw();
  }

  scheduleDraw(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  private dots(idx: Int32Array | number[], r: number, collect: boolean): number {
    const { ctx, transform: t, layout: { nx, ny } } = this;
    const { view } = t;
    let n = 0;
    ctx.beginPath();
    const bx = t.baseX(), by = t.baseY(), ox = t.offX, oy = t.offY, k = view.size * t.scale;
    for (const i of idx) {
      const x = bx + nx[i] * k + ox, y = by + ny[i] * k + oy;
      if (x < -r || y < -r || x > view.w + r || y > view.h + r) continue;
      if (this.round) {
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      } else ctx.rect(x - r, y - r, 2 * r, 2 * r);
      if (collect && this.visibleCount < this.layout.count) this.visible[this.visibleCount++] = i;
      n++;
    }
    ctx.fill();
    return n;
  }

  /** Many points: squares written straight into a pixel buffer, then one putImageData. Filling a path of
   * 100k rects costs the rasteriser far more than the loop (7 fps while panning, measured in
   * bench/map_bench.py, vs ~60 this way); faint colours are pre-blended over the white background. */
  private pixelDots(r: number, alphaOf: (gi: number) => number): number {
    const { canvas, transform: t, layout: { nx, ny, count } } = this;
    const W = canvas.width, H = canvas.height, dpr = W / (t.view.w || 1);
    if (!this.pixels || this.pixels.width !== W || this.pixels.height !== H) this.pixels = new ImageData(W, H);
    const pixels = this.pixels;
    const u32 = new Uint32Array(pixels.data.buffer);
    u32.fill(0);
    const rr = Math.max(1, Math.round(r * dpr));
    const bx = t.baseX(), by = t.baseY(), ox = t.offX, oy = t.offY, k = t.view.size * t.scale;
    let n = 0;
    this.legend.groups.forEach((g, gi) => {
      if (g.hidden) return;
      const a = alphaOf(gi);
      const c = parseInt(g.colour.slice(1), 16);
      const blend = (v: number) => Math.round(v * a + 255 * (1 - a));
      const rgba = (255 << 24) | (blend(c & 255) << 16) | (blend((c >> 8) & 255) << 8) | blend(c >> 16); // ABGR
      for (const i of g.idx) {
        const x = Math.round((bx + nx[i] * k + ox) * dpr), y = Math.round((by + ny[i] * k + oy) * dpr);
        if (x < -rr || y < -rr || x >= W + rr || y >= H + rr) continue;
        const x0 = Math.max(0, x - rr), x1 = Math.min(W, x + rr), y1 = Math.min(H, y + rr);
        for (let yy = Math.max(0, y - rr); yy < y1; yy++) {
          const row = yy * W;
          for (let xx = x0; xx < x1; xx++) u32[row + xx] = rgba;
        }
        if (this.visibleCount < count) this.visible[this.visibleCount++] = i;
        n++;
      }
    });
    this.ctx.putImageData(pixels, 0, 0);
    return n;
  }

  draw(): void {
    const { ctx, canvas, transform: t, legend, overlay, visible, atlas } = this;
    const { groups, groupOf, highlighted } = legend;
    const { hits, selected, shape } = overlay;
    const count = this.layout.count;
    const started = performance.now();
    ctx.clearRect(0, 0, t.view.w, t.view.h);
    const r = Math.max(1, Math.min(12, this.base * Math.sqrt(t.scale)));
    const focus = highlighted !== null || hits !== null; // the rest is drawn faint
    let drawn = 0;
    this.visibleCount = 0;
    const alphaOf = (gi: number) => (highlighted !== null ? (highlighted === gi ? 1 : 0.18) : hits !== null ? 0.18 : 1);
    if (this.round) {
      groups.forEach((g, gi) => {
        if (g.hidden) return;
        ctx.fillStyle = g.colour;
        ctx.globalAlpha = alphaOf(gi);
        drawn += this.dots(g.idx, r, true);
      });
      ctx.globalAlpha = 1;
    } else drawn = this.pixelDots(r, alphaOf);
    const visibleCount = this.visibleCount;
    // Thumbnails when few enough points are in view: from the atlas, a dot until a thumbnail has loaded.
    let thumbs = 0;
    if (this.thumbsBox.checked && visibleCount <= THUMB_MAX && visibleCount > 0) {
      const side = visibleCount <= 60 ? 64 : visibleCount <= 200 ? 44 : 30;
      for (let v = 0; v < visibleCount; v++) {
        const i = visible[v];
        const slot = atlas.slot(this.assetIds[i]);
        if (slot < 0) continue;
        const x = t.sx(i), y = t.sy(i);
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
        const x = t.sx(i), y = t.sy(i);
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
    if (overlay.selectedCount) ring(selected, "rgba(0, 0, 0, 0.6)", 1, false);
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
    canvas.dataset.scale = t.scale.toFixed(3);
    canvas.dataset.selectedCount = String(overlay.selectedCount);
    canvas.dataset.hitCount = String(overlay.hitCount);
  }
}
