// The images a box or lasso on the map selected, as a grid under the map: thumbnails in pages (a lasso
// around a whole cluster may hold thousands), each opening the detail view.
import { thumbUrl } from "../api";
import { h } from "../dom";
import { openDetail } from "./common";

const PAGE = 120;

export function selectionGrid(assetIds: string[], clear: () => void): HTMLElement {
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
            { class: "tile", type: "button", "data-asset-id": id, "aria-label": `Selected image ${id.slice(0, 12)}`, onclick: () => openDetail(id, (like) => (location.hash = `#/search?like=${like}`)) },
            h("img", { src: thumbUrl(id), alt: "", loading: "lazy", width: 160, height: 160 }),
          ),
        ),
      );
    }
    grid.dataset.count = String(grid.children.length);
    shown.textContent = grid.children.length < assetIds.length ? ` · showing ${grid.children.length}` : "";
    more.hidden = grid.children.length >= assetIds.length;
  }
  more.addEventListener("click", page);
  page();
  return h(
    "div",
    { class: "selection", "data-total": assetIds.length },
    h("h2", {}, `${assetIds.length} image${assetIds.length === 1 ? "" : "s"} selected`, shown, " ", h("button", { type: "button", class: "clear", onclick: clear }, "Clear selection")),
    grid,
    more,
  );
}
