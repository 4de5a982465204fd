// What a click on a grid tile means, in one place for the library, search and cluster-member grids: with
// shift, ctrl/cmd, or while anything is selected, it selects (shift extends the range from the last click);
// otherwise it opens the viewer. The tile's checkbox always selects. Kept together so the three grids cannot
// drift apart in how selection feels.
import { Selection } from "./selection";

/** The tile button's click handler: select (modifier held or a selection under way) or open. */
export function tileClick(selection: Selection, index: number, open: () => void): (e: Event) => void {
  return (e: Event) => {
    const m = e as MouseEvent;
    if (m.shiftKey || m.ctrlKey || m.metaKey || selection.size) selection.click(index, m.shiftKey);
    else open();
  };
}

/** The tile checkbox's click handler: always selects (the page paints the box, so the default is prevented). */
export function pickClick(selection: Selection, index: number): (e: Event) => void {
  return (e: Event) => (e.preventDefault(), selection.click(index, (e as MouseEvent).shiftKey));
}

/** Marks the tiles under `container` (`li[data-asset-id]`) selected or not, checkbox included. */
export function paintSelection(container: HTMLElement, selection: Selection): void {
  for (const li of container.querySelectorAll<HTMLElement>("li[data-asset-id]")) {
    const on = selection.ids.has(li.dataset.assetId!);
    li.classList.toggle("selected", on);
    const box = li.querySelector<HTMLInputElement>("input.pick");
    if (box) box.checked = on;
  }
}
