// Pan, zoom and fit: the one mapping from normalised point space to canvas pixels, screen = base + n * size *
// scale + off. Split out of map.ts so the renderer, the pointer/keyboard handlers and the Fit/Reset buttons
// share one set of numbers and one clamp, instead of each doing its own arithmetic on loose variables.
import { PointLayout } from "./map_points";

const MIN_SCALE = 0.5;
const MAX_SCALE = 400;

export class ViewTransform {
  scale = 1;
  offX = 0;
  offY = 0;
  /** Canvas size in CSS pixels; `size` is the side of the square the whole map fits in at scale 1. */
  readonly view = { w: 0, h: 0, size: 0, pad: 16 };

  /** ``onChange``: the view moved, so the map must be redrawn. */
  constructor(private readonly layout: PointLayout, private readonly onChange: () => void) {}

  baseX(): number {
    return this.view.pad + (this.view.w - 2 * this.view.pad - this.view.size) / 2;
  }

  baseY(): number {
    return this.view.pad + (this.view.h - 2 * this.view.pad - this.view.size) / 2;
  }

  /** Point i's canvas x. */
  sx(i: number): number {
    return this.baseX() + this.layout.nx[i] * this.view.size * this.scale + this.offX;
  }

  /** Point i's canvas y. */
  sy(i: number): number {
    return this.baseY() + this.layout.ny[i] * this.view.size * this.scale + this.offY;
  }

  /** Sizes the view for a canvas `width` CSS pixels wide (its height follows the window). */
  resize(width: number): void {
    this.view.w = width;
    this.view.h = Math.max(280, Math.min(window.innerHeight - 220, width * 0.75));
    this.view.size = Math.min(this.view.w, this.view.h) - 2 * this.view.pad;
  }

  pan(dx: number, dy: number): void {
    this.offX += dx;
    this.offY += dy;
  }

  /** Zoom to `next` keeping the canvas point (px, py) still. */
  zoomAt(px: number, py: number, next: number): void {
    next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, next));
    this.offX = px - this.baseX() - ((px - this.baseX() - this.offX) * next) / this.scale;
    this.offY = py - this.baseY() - ((py - this.baseY() - this.offY) * next) / this.scale;
    this.scale = next;
    this.onChange();
  }

  /** Frames the given points; false (and nothing changed) when there are none. */
  fit(shown: Int32Array[]): boolean {
    const { nx, ny } = this.layout;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const idx of shown) {
      for (const i of idx) (x0 = Math.min(x0, nx[i])), (x1 = Math.max(x1, nx[i])), (y0 = Math.min(y0, ny[i])), (y1 = Math.max(y1, ny[i]));
    }
    if (!(x1 >= x0)) return false;
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, 1 / Math.max(x1 - x0, y1 - y0, 1e-6)));
    const k = this.view.size * this.scale;
    this.offX = this.view.w / 2 - this.baseX() - ((x0 + x1) / 2) * k;
    this.offY = this.view.h / 2 - this.baseY() - ((y0 + y1) / 2) * k;
    this.onChange();
    return true;
  }

  /** Back to the whole map, unzoomed. */
  reset(): void {
    (this.scale = 1), (this.offX = 0), (this.offY = 0);
  }
}
