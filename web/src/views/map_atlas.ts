// The map's thumbnail atlas: thumbnails packed into one 2048² canvas of 64 px cells, a slot per asset, the least
// recently drawn one reused when full, at most 8 requests in flight; so memory stays bounded however far one
// wanders on a zoomed-in map (split out of map.ts, which draws from it).
import { thumbUrl } from "../api";

export const ATLAS = 2048;
export const CELL = 64;
const SLOTS = (ATLAS / CELL) ** 2;
const LOADS = 8; // thumbnail requests in flight

/** Thumbnails packed into one canvas; a slot per asset, the least recently drawn one reused when full. */
export class Atlas {
  readonly canvas = document.createElement("canvas");
  private readonly ctx: CanvasRenderingContext2D;
  private readonly slotOf = new Map<string, number>();
  private readonly owner: (string | null)[] = new Array(SLOTS).fill(null);
  private readonly used = new Float64Array(SLOTS);
  private readonly loading = new Set<string>();
  private readonly failed = new Set<string>();
  private queue: string[] = [];
  private frame = 0;
  loaded = 0;

  constructor(private readonly onLoad: () => void) {
    this.canvas.width = ATLAS;
    this.canvas.height = ATLAS;
    this.ctx = this.canvas.getContext("2d")!;
  }

  /** The slot holding `id`, or -1 (then it is queued for loading). */
  slot(id: string): number {
    const slot = this.slotOf.get(id);
    if (slot !== undefined) {
      this.used[slot] = this.frame;
      return slot;
    }
    if (!this.loading.has(id) && !this.failed.has(id)) this.queue.push(id);
    return -1;
  }

  /** Call once per drawn frame: starts loads for what the frame asked for, newest requests first. */
  endFrame(): void {
    this.frame++;
    const wanted = this.queue.reverse();
    this.queue = [];
    for (const id of wanted) {
      if (this.loading.size >= LOADS) break;
      if (this.loading.has(id) || this.slotOf.has(id)) continue;
      this.load(id);
    }
  }

  private load(id: string): void {
    this.loading.add(id);
    const img = new Image();
    img.decoding = "async";
    img.onload = () => {
      this.loading.delete(id);
      this.put(id, img);
      this.onLoad();
    };
    img.onerror = () => {
      this.loading.delete(id);
      this.failed.add(id);
    };
    img.src = thumbUrl(id);
  }

  private put(id: string, img: HTMLImageElement): void {
    let slot = this.owner.indexOf(null);
    if (slot < 0) {
      slot = 0; // the least recently drawn
      for (let s = 1; s < SLOTS; s++) if (this.used[s] < this.used[slot]) slot = s;
      this.slotOf.delete(this.owner[slot]!);
    }
    const side = Math.min(img.naturalWidth, img.naturalHeight) || 1; // a centred square, like the grid's tiles
    const x = (slot % (ATLAS / CELL)) * CELL, y = Math.floor(slot / (ATLAS / CELL)) * CELL;
    this.ctx.drawImage(img, (img.naturalWidth - side) / 2, (img.naturalHeight - side) / 2, side, side, x, y, CELL, CELL);
    this.owner[slot] = id;
    this.slotOf.set(id, slot);
    this.used[slot] = this.frame;
    this.loaded = this.slotOf.size;
  }
}
