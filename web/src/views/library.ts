// The library: every image, in pages of ListAssets, in a virtualised grid (only the rows in view are in the DOM,
// so 100k images cost as much as one screen). Pages load as the scroll nears the end of what is loaded; the
// total comes from the service's counts. Click opens the viewer over the library; the check box, shift-click
// and "Select all" select, and the action bar acts on the selection. The order (newest/oldest added or taken, or
// id order) and the grouping (day, month, none) are in the URL; groups get a header with their count.
import { ApiError, Asset, thumbUrl } from "../api";
import { errorText, h } from "../dom";
import { assetCount, listAssets } from "../library-api";
import { GROUPINGS, grouper, groupingOf, layoutRows, orderOf, ORDERS, Row, rowAt } from "./library_groups";
import { actionBar, Selection } from "./selection";
import { pickClick, tileClick } from "./tiles";
import { openViewer } from "./viewer";

const GAP = 8;
const BUFFER_ROWS = 4;
const HEADER = 36;
// Faster than this (px per ms, about a screen every 300 ms) the grid is being flung: tiles are built without
// their thumbnails, which load once the scroll slows or stops. A thumbnail for a tile on screen for a frame is
// wasted work for the browser (fetch, decode, paint) and for the server, and it is what made frames slow.
const FLING_PX_PER_MS = 3;
const SETTLE_MS = 120;
const INDEX_RETRY_MS = 3000;

export function libraryView(root: HTMLElement, params: URLSearchParams): void {
  const pageSize = Math.min(500, Math.max(1, Number(params.get("page_size")) || 200));
  const order = orderOf(params);
  const grouping = groupingOf(params, order);
  const labelOf = grouping === "none" ? null : grouper(order.field, grouping);
  const labels: string[] = [];
  const assets: Asset[] = [];
  const byId = new Map<string, Asset>();
  let token = "";
  let done = false;
  let loading: Promise<boolean> | null = null;
  let total: number | undefined;
  let failure = "";

  const status = h("p", { class: "status", role: "status", "aria-live": "polite" }, "Loading…");
  const spacer = h("div", { class: "lib-spacer" });
  const grid = h("ul", { class: "lib-grid", role: "list", "aria-label": "Library" });
  const scroller = h("div", { class: "lib-scroll", tabindex: -1 }, spacer, grid);
  const selection = new Selection(
    () => assets.map((a) => a.asset_id),
    () => (bar.update(), render(true)),
  );
  const bar = actionBar({
    selection,
    assetsOf: (ids) => ids.map((id) => byId.get(id)!).filter(Boolean),
    total: () => countText(),
    onDeleted: (ids) => removeIds(ids),
  });

  function countText(): string {
    const shown = assets.length;
    return total !== undefined ? `${total} images (${shown} loaded)` : `${shown}${done ? "" : "+"} images`;
  }

  function removeIds(ids: string[]): void {
    const gone = new Set(ids);
    for (let i = assets.length - 1; i >= 0; i--) if (gone.has(assets[i].asset_id)) (assets.splice(i, 1), labels.splice(i, 1));
    for (const id of ids) byId.delete(id);
    if (total !== undefined) total = Math.max(assets.length, total - ids.length);
    bar.update();
    layout();
  }

  const viewerList = {
    ids: () => assets.map((a) => a.asset_id),
    more: () => loadPage(),
    onDeleted: (id: string) => removeIds([id]),
  };

  let waitUntil = 0; // no page is asked for before then (the service asked to wait)
  function loadPage(): Promise<boolean> {
    if (done || performance.now() < waitUntil) return Promise.resolve(false);
    loading ??= fetchPage().finally(() => {
      loading = null;
      layout(); // may ask for the next page, now that this one is in
    });
    return loading;
  }

  async function fetchPage(): Promise<boolean> {
    try {
      const page = await listAssets(pageSize, token, order.value);
      for (const a of page.assets) {
        if (byId.has(a.asset_id)) continue;
        assets.push(a);
        byId.set(a.asset_id, a);
        if (labelOf) labels.push(labelOf(a));
      }
      token = page.next_page_token;
      done = !token;
      root.dataset.loaded = String(assets.length);
      return page.assets.length > 0;
    } catch (err) {
      failure = errorText(err);
      if (err instanceof ApiError && err.reason === "ORDER_INDEX_BUILDING") {
        // An upgraded library's date order is being built in the background: show the progress, ask again.
        waitUntil = performance.now() + INDEX_RETRY_MS - 50;
        window.setTimeout(() => root.isConnected && ((failure = ""), void loadPage()), INDEX_RETRY_MS);
        return false;
      }
      done = true;
      return false;
    }
  }

  let columns = 1;
  let cell = 168;
  let rows: Row[] = [];
  function layout(): void {
    const width = scroller.clientWidth || root.clientWidth || 1000;
    const min = width < 600 ? 110 : 160;
    columns = Math.max(1, Math.floor((width + GAP) / (min + GAP)));
    cell = Math.floor((width - GAP * (columns - 1)) / columns) + GAP;
    const pending = done || total === undefined ? 0 : total - assets.length; // not loaded yet: estimated rows
    const laid = layoutRows(assets, columns, cell, HEADER + GAP, labelOf ? labels : null, done, pending);
    rows = laid.rows;
    spacer.style.height = `${laid.height}px`;
    grid.style.gridTemplateColumns = `repeat(${columns}, ${cell - GAP}px)`;
    status.textContent = failure || (assets.length || !done ? countText() : "");
    status.classList.toggle("error", !!failure);
    empty.hidden = !(done && assets.length === 0 && !failure);
    bar.update();
    render(true);
  }

  let pool = new Map<string, HTMLElement>();
  let lastFirst = -1;
  let lastLast = -1;
  let lastTop = 0;
  let lastAt = 0;
  let settle = 0;
  let flung = false;
  /** Whether the grid is being flung (a fast scroll since the last render, until it settles for SETTLE_MS);
   * while it is, thumbnails wait. */
  function flinging(top: number): boolean {
    const now = performance.now();
    const fast = lastAt > 0 && Math.abs(top - lastTop) > FLING_PX_PER_MS * Math.max(1, now - lastAt);
    lastTop = top;
    lastAt = now;
    if (fast) {
      flung = true;
      clearTimeout(settle);
      settle = window.setTimeout(() => ((flung = false), showThumbnails()), SETTLE_MS);
    }
    return flung;
  }
  function showThumbnails(): void {
    for (const img of grid.querySelectorAll<HTMLImageElement>("img[data-src]")) {
      img.src = img.dataset.src!;
      delete img.dataset.src;
    }
  }
  function render(force = false): void {
    const top = scroller.scrollTop;
    const deferred = flinging(top);
    if (!deferred) showThumbnails();
    const height = scroller.clientHeight || 800;
    const firstRow = Math.max(0, rowAt(rows, top) - BUFFER_ROWS);
    const lastRow = Math.min(rows.length, rowAt(rows, top + height) + BUFFER_ROWS + 1);
    const first = rows[firstRow]?.start ?? 0;
    const last = rows[lastRow - 1]?.end ?? 0;
    if (!done && (lastRow >= rows.length - BUFFER_ROWS || last >= assets.length - columns * BUFFER_ROWS)) void loadPage();
    if (!force && first === lastFirst && last === lastLast) return;
    lastFirst = first;
    lastLast = last;
    grid.style.transform = `translateY(${rows[firstRow]?.top ?? 0}px)`;
    // Tiles still in view are kept (their images stay decoded); only the rows scrolled in are built.
    const items: HTMLElement[] = [];
    const kept = new Map<string, HTMLElement>();
    let tiles = 0;
    for (let r = firstRow; r < lastRow; r++) {
      const row = rows[r];
      if (row.header) {
        items.push(groupHeader(row.header));
        continue;
      }
      for (let i = row.start; i < row.end; i++) {
        const id = assets[i].asset_id;
        const old = pool.get(id);
        const fresh = old && old.dataset.index === String(i) && old.classList.contains("selected") === selection.ids.has(id);
        const el = fresh ? old : tile(assets[i], i, deferred);
        kept.set(id, el);
        items.push(el);
        tiles++;
      }
    }
    pool = kept;
    grid.replaceChildren(...items);
    grid.dataset.first = String(first);
    grid.dataset.count = String(tiles);
  }

  function groupHeader(header: NonNullable<Row["header"]>): HTMLElement {
    const count = `${header.count}${header.open ? "+" : ""} ${header.count === 1 && !header.open ? "image" : "images"}`;
    return h(
      "li",
      { class: "lib-group", role: "heading", "aria-level": 2, style: `height: ${HEADER}px` },
      h("span", { class: "lib-group-name" }, header.label),
      " ",
      h("span", { class: "lib-group-count", title: header.open ? "more may follow in the pages still to load" : "" }, count),
    );
  }

  function tile(a: Asset, index: number, deferred: boolean): HTMLElement {
    const selected = selection.ids.has(a.asset_id);
    return h(
      "li",
      { class: selected ? "lib-tile selected" : "lib-tile", "data-asset-id": a.asset_id, "data-index": index },
      h(
        "button",
        {
          type: "button",
          class: "open",
          "aria-label": a.file_name,
          onclick: tileClick(selection, index, () => openViewer(viewerList, index)),
        },
        h("img", { [deferred ? "data-src" : "src"]: thumbUrl(a.asset_id), alt: "", loading: "lazy", decoding: "async" }),
      ),
      h("input", {
        type: "checkbox",
        class: "pick",
        "aria-label": `Select ${a.file_name}`,
        checked: selected,
        onclick: pickClick(selection, index),
      }),
    );
  }

  const empty = h(
    "div",
    { class: "lib-empty", hidden: true },
    h("p", {}, "Your library is empty."),
    h("a", { href: "#/upload", class: "button", "data-needs": "write" }, "Upload images"),
  );

  let frame = 0;
  scroller.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => ((frame = 0), render()));
  });
  const resize = new ResizeObserver(() => layout());
  resize.observe(scroller);

  root.replaceChildren(h("h1", {}, "Library"), controls(params, order.value, grouping), bar.element, status, empty, scroller);
  assetCount()
    .then((count) => ((total = count), layout()))
    .catch(() => undefined);
  void loadPage();
}

/** The order and grouping pickers; a change navigates (both live in the URL, so a reload or a link keeps them). */
function controls(params: URLSearchParams, order: string, grouping: string): HTMLElement {
  const go = (key: string, value: string): void => {
    const next = new URLSearchParams(params);
    next.set(key, value);
    location.hash = `#/library?${next}`; // a new hash: the view is built again in the new order
  };
  const orderSelect = h(
    "select",
    { id: "lib-order", "aria-label": "Order", onchange: (e: Event) => go("order", (e.target as HTMLSelectElement).value) },
    ...ORDERS.map((o) => h("option", { value: o.value, selected: o.value === order }, o.label)),
  );
  const groupSelect = h(
    "select",
    {
      id: "lib-group",
      "aria-label": "Group",
      disabled: !order,
      title: order ? "" : "groups need a date order",
      onchange: (e: Event) => go("group", (e.target as HTMLSelectElement).value),
    },
    ...GROUPINGS.map((g) => h("option", { value: g.value, selected: g.value === grouping }, g.label)),
  );
  const note = order.startsWith("capture_time")
    ? h("span", { class: "hint" }, "Images without a capture date come after the dated ones.")
    : "";
  return h("div", { class: "lib-controls" }, orderSelect, groupSelect, note);
}
