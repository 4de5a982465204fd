// The map's points laid out once: coordinates normalised to [0, 1] (aspect kept, centred), binned into a
// 128² grid for hover lookups, and each asset's points (an asset may have several samples). Split out of map.ts
// because it is plain data with no DOM or drawing: the renderer, the view transform, the input handlers and the
// search/selection code all read it, none of them owns it.

/** Grid cells per side: hover lookups scan a few cells, not every point (O(1)-ish at 100k). */
export const CELLS = 128;

export interface PointLayout {
  count: number;
  nx: Float32Array;
  ny: Float32Array;
  /** Grid cell (cx * CELLS + cy) → the points in it. */
  bins: Map<number, number[]>;
  /** Asset id → its points. */
  indexOf: Map<string, number[]>;
}

export function layoutPoints(x: ArrayLike<number>, y: ArrayLike<number>, assetIds: string[], count: number): PointLayout {
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < count; i++) {
    minX = Math.min(minX, x[i]); maxX = Math.max(maxX, x[i]);
    minY = Math.min(minY, y[i]); maxY = Math.max(maxY, y[i]);
  }
  const span = Math.max(maxX - minX, maxY - minY) || 1;
  const nx = new Float32Array(count), ny = new Float32Array(count);
  const bins = new Map<number, number[]>();
  const indexOf = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    nx[i] = (x[i] - minX) / span + (1 - (maxX - minX) / span) / 2;
    ny[i] = (y[i] - minY) / span + (1 - (maxY - minY) / span) / 2;
    const key = Math.min(CELLS - 1, Math.floor(nx[i] * CELLS)) * CELLS + Math.min(CELLS - 1, Math.floor(ny[i] * CELLS));
    if (!bins.has(key)) bins.set(key, []);
    bins.get(key)!.push(i);
    const id = assetIds[i];
    if (!indexOf.has(id)) indexOf.set(id, []);
    indexOf.get(id)!.push(i);
  }
  return { count, nx, ny, bins, indexOf };
}
