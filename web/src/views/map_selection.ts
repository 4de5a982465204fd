// The images a box or lasso on the map selected, as a grid under the map: thumbnails in pages (a lasso
// around a whole cluster may hold thousands), each opening the shared viewer (←/→ through the selection), with
// the same action bar as the library and search (zip, "more like these", delete), everything selected at first.
import { thumbUrl } from "../api";
import { h } from "../dom";
import { Moved } from "./move";
import { actionBar, Selection } from "./selection";
import { openViewer } from "./viewer";

const PAGE = 120;

/** ``onMoved``: after "Move to cluster…" (and its Undo), so the map can recolour the moved points. */
export function selectionGrid(selected: string[], clear: () => void, onMoved?: (moved: Moved, undone: boolean) => void): HTMLElement {
  let assetIds = [...selected];
  const grid = h("ul", { class: "grid map-selected", "aria-label": "Images selected on the map", "data-count": 0 });
  const more = h("button", { type: "button", class: "more" }, "Show more");
  const shown = h("span", { class: "muted" });
  function page(): void {
    const from = grid.children.length;
    for (const id of assetIds.slice(from, from + PAGE)) {
      grid.append(
        h(
          "li",
          {},
          h(
            "button",
            { class: "tile", type: "button", "data-asset-id": id, "aria-label": `Selected image ${id.slice(0, 12)}`, onclick: () => openViewer(list, assetIds.indexOf(id)) },
            h("img", { src: thumbUrl(id), alt: "", loading: "lazy", width: 160, height: 160 }),
          ),
        ),
      );
    }
    grid.dataset.count = String(grid.children.length);
    shown.textContent = grid.children.length < assetIds.length ? ` · showing ${grid.children.length}` : "";
    more.hidden = grid.children.length >= assetIds.length;
  }
  function dropDeleted(gone: string[]): void {
    const drop = new Set(gone);
    assetIds = assetIds.filter((id) => !drop.has(id));
    for (const tile of Array.from(grid.querySelectorAll<HTMLElement>("[data-asset-id]"))) {
      if (drop.has(tile.dataset.assetId ?? "")) tile.closest("li")?.remove();
    }
    grid.dataset.count = String(grid.children.length);
    if (!assetIds.length) clear();
  }
  const list = { ids: () => assetIds, onDeleted: (id: string) => dropDeleted([id]) };
  const picked = new Selection(() => assetIds, () => bar.update());
  const bar = actionBar({
    selection: picked,
    assetsOf: (ids) => ids.map((asset_id) => ({ asset_id })),
    total: () => `${assetIds.length} on the map`,
    onDeleted: dropDeleted,
    onMoved: (moved, undone) => void onMoved?.(moved, undone),
  });
  picked.all();
  more.addEventListener("click", page);
  page();
  return h(
    "div",
    { class: "selection", "data-total": assetIds.length },
    h("h2", {}, `${assetIds.length} image${assetIds.length === 1 ? "" : "s"} selected`, shown, " ", h("button", { type: "button", class: "clear", onclick: clear }, "Clear selection")),
    bar.element,
    grid,
    more,
  );
}
