// The library's order and grouping: which ListAssets order_by a URL asks for, the day/month group an image falls
// in, and the rows of the virtualised grid (group headers between runs of tile rows). Kept apart from the grid so
// the layout arithmetic can be read (and reasoned about) on its own.
import { Asset } from "../api";

export interface OrderChoice {
  value: string; // the URL's `order`, also ListAssets' order_by ("" = id order)
  label: string;
  field: "ingest_time" | "capture_time" | "";
}

export const ORDERS: OrderChoice[] = [
  { value: "ingest_time desc", label: "Newest added", field: "ingest_time" },
  { value: "ingest_time asc", label: "Oldest added", field: "ingest_time" },
  { value: "capture_time desc", label: "Newest taken", field: "capture_time" },
  { value: "capture_time asc", label: "Oldest taken", field: "capture_time" },
  { value: "", label: "By id", field: "" },
];
export const GROUPINGS = [
  { value: "day", label: "By day" },
  { value: "month", label: "By month" },
  { value: "none", label: "No groups" },
];
export const DEFAULT_ORDER = "ingest_time desc";
export const DEFAULT_GROUP = "day";
export const UNDATED = "Undated (no capture date) — after the dated images";

export function orderOf(params: URLSearchParams): OrderChoice {
  const asked = params.get("order") ?? DEFAULT_ORDER;
  return ORDERS.find((o) => o.value === asked) ?? ORDERS[0];
}

export function groupingOf(params: URLSearchParams, order: OrderChoice): string {
  const asked = params.get("group") ?? DEFAULT_GROUP;
  return order.field && GROUPINGS.some((g) => g.value === asked) ? asked : "none";
}

/** A function naming the group of an asset (capture dates are camera wall-clock times, so they are read as UTC);
 * the formatter is made once, since 100k labels are computed as pages arrive. */
export function grouper(field: OrderChoice["field"], grouping: string): (a: Asset) => string {
  const timeZone = field === "capture_time" ? "UTC" : undefined;
  const format = new Intl.DateTimeFormat(
    undefined,
    grouping === "month"
      ? { month: "long", year: "numeric", timeZone }
      : { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone },
  );
  return (a) => {
    const when = field === "capture_time" ? a.capture_time : a.ingest_time;
    const date = when ? new Date(when) : null;
    if (!date || Number.isNaN(date.getTime())) return field === "capture_time" ? UNDATED : "Undated";
    return format.format(date);
  };
}

/** A row of the grid: a group header (start === end), or the tiles assets[start..end). */
export interface Row {
  top: number;
  height: number;
  start: number;
  end: number;
  header?: { label: string; count: number; open: boolean };
}

export interface RowLayout {
  rows: Row[];
  height: number;
}

/** Rows for `assets`: a header where the group changes, then rows of `columns` tiles. The last group is `open`
 * (its count may still grow) while more pages may follow; `pending` more assets are estimated as tile rows. */
export function layoutRows(
  assets: Asset[],
  columns: number,
  cell: number,
  headerHeight: number,
  labels: string[] | null,
  complete: boolean,
  pending: number,
): RowLayout {
  const rows: Row[] = [];
  let top = 0;
  let i = 0;
  while (i < assets.length) {
    let end = assets.length;
    if (labels) {
      const name = labels[i];
      end = i + 1;
      while (end < assets.length && labels[end] === name) end++;
      const open = end === assets.length && !complete;
      rows.push({ top, height: headerHeight, start: i, end: i, header: { label: name, count: end - i, open } });
      top += headerHeight;
    }
    for (let s = i; s < end; s += columns) {
      rows.push({ top, height: cell, start: s, end: Math.min(end, s + columns) });
      top += cell;
    }
    i = end;
  }
  return { rows, height: top + Math.ceil(Math.max(0, pending) / columns) * cell };
}

/** The index of the first row that ends below `y` (rows are sorted by top). */
export function rowAt(rows: Row[], y: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].top + rows[mid].height <= y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
