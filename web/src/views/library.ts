// The library: every image, in pages of ListAssets, in a virtualised grid (only the rows in view are in the DOM,
// so 100k images cost as much as one screen). Pages load as the scroll nears the end of what is loaded; the
// total comes from the service's counts. Click opens the viewer over the library; the check box, shift-click
// and "Select all" select, and the action bar acts on the selection.
import { Asset, thumbUrl } from "../api";
import { errorText, h } from "../dom";
import { assetCount, listAssets } from "../library-api";
import { actionBar, Selection } from "./selection";
import { openViewer } from "./viewer";

const GAP = 8;
const BUFFER_ROWS = 4;

export function libraryView(root: HTMLElement, params: URLSearchParams): void {
  const pageSize = Math.min(500, Math.max(1, Number(params.get("page_size")) || 200));
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
    for (let i = assets.length - 1; i >= 0; i--) if (gone.has(assets[i].asset_id)) assets.splice(i, 1);
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

  function loadPage(): Promise<boolean> {
    if (done) return Promise.resolve(false);
    loading ??= fetchPage().finally(() => {
      loading = null;
      layout(); // may ask for the next page, now that this one is in
    });
    return loading;
  }

  async function fetchPage(): Promise<boolean> {
    try {
      const page = await listAssets(pageSize, token);
      for (const a of page.assets) if (!byId.has(a.asset_id)) (assets.push(a), byId.set(a.asset_id, a));
      token = page.next_page_token;
      done = !token;
      root.dataset.loaded = String(assets.length);
      return page.assets.length > 0;
    } catch (err) {
      failure = errorText(err);
      done = true;
      return false;
    }
  }

  let columns = 1;
  let cell = 168;
  function layout(): void {
    const width = scroller.clientWidth || root.clientWidth || 1000;
    const min = width < 600 ? 110 : 160;
    columns = Math.max(1, Math.floor((width + GAP) / (min + GAP)));
    cell = Math.floor((width - GAP * (columns - 1)) / columns) + GAP;
    const count = Math.max(assets.length, done ? assets.length : total ?? assets.length);
    spacer.style.height = `${Math.ceil(count / columns) * cell}px`;
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
  function render(force = false): void {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 800;
    const firstRow = Math.max(0, Math.floor(top / cell) - BUFFER_ROWS);
    const lastRow = Math.ceil((top + height) / cell) + BUFFER_ROWS;
    const first = firstRow * columns;
    const last = Math.min(assets.length, lastRow * columns);
    if (!done && last >= assets.length - columns * BUFFER_ROWS) void loadPage();
    if (!force && first === lastFirst && last === lastLast) return;
    lastFirst = first;
    lastLast = last;
    grid.style.transform = `translateY(${firstRow * cell}px)`;
    // Tiles still in view are kept (their images stay decoded); only the rows scrolled in are built.
    const tiles: HTMLElement[] = [];
    const kept = new Map<string, HTMLElement>();
    for (let i = first; i < last; i++) {
      const id = assets[i].asset_id;
      const old = pool.get(id);
      const fresh = old && old.dataset.index === String(i) && old.classList.contains("selected") === selection.ids.has(id);
      const el = fresh ? old : tile(assets[i], i);
      kept.set(id, el);
      tiles.push(el);
    }
    pool = kept;
    grid.replaceChildren(...tiles);
    grid.dataset.first = String(first);
    grid.dataset.count = String(tiles.length);
  }

  function tile(a: Asset, index: number): HTMLElement {
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
          onclick: (e: Event) => {
            const m = e as MouseEvent;
            if (m.shiftKey || m.ctrlKey || m.metaKey || selection.size) selection.click(index, m.shiftKey);
            else openViewer(viewerList, index);
          },
        },
        h("img", { src: thumbUrl(a.asset_id), alt: "", loading: "lazy", decoding: "async" }),
      ),
      h("input", {
        type: "checkbox",
        class: "pick",
        "aria-label": `Select ${a.file_name}`,
        checked: selected,
        onclick: (e: Event) => (e.preventDefault(), selection.click(index, (e as MouseEvent).shiftKey)),
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

  root.replaceChildren(h("h1", {}, "Library"), bar.element, status, empty, scroller);
  assetCount()
    .then((count) => ((total = count), layout()))
    .catch(() => undefined);
  void loadPage();
}
