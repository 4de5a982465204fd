// Selection over a list of assets (click, shift-click for a range, select all) and the actions on it:
// download as zip, "more like these", move to a named cluster (with Undo), delete (with a confirmation that
// states the count). Shared by the library
// and search views; the delete button is marked data-needs="admin" so keys that cannot delete never see it.
import { n } from "../api";
import { errorText, formatBytes, h, toast } from "../dom";
import { deleteAssets, downloadZip } from "../library-api";
import { Moved, moveButton } from "./move";

export class Selection {
  readonly ids = new Set<string>();
  private anchor = -1;
  constructor(private readonly order: () => string[], private readonly changed: () => void) {}

  get size(): number {
    return this.ids.size;
  }

  /** A click on the tile at `index`: shift extends from the last click, otherwise toggles one. */
  click(index: number, shift: boolean): void {
    const order = this.order();
    const id = order[index];
    if (id === undefined) return;
    if (shift && this.anchor >= 0) {
      const [from, to] = [Math.min(this.anchor, index), Math.max(this.anchor, index)];
      for (let i = from; i <= to; i++) if (order[i] !== undefined) this.ids.add(order[i]);
    } else if (this.ids.has(id)) this.ids.delete(id);
    else this.ids.add(id);
    this.anchor = index;
    this.changed();
  }

  all(): void {
    for (const id of this.order()) this.ids.add(id);
    this.changed();
  }

  clear(): void {
    this.ids.clear();
    this.anchor = -1;
    this.changed();
  }

  remove(ids: Iterable<string>): void {
    for (const id of ids) this.ids.delete(id);
    this.changed();
  }
}

/** A modal question; resolves true on confirm. The message states what will happen, with counts. */
export function confirmDialog(title: string, message: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": title },
      h("h2", {}, title),
      h("p", { class: "confirm-message" }, message),
      h(
        "form",
        { method: "dialog", class: "confirm-actions" },
        h("button", { value: "cancel", type: "submit" }, "Cancel"),
        h("button", { value: "ok", type: "submit", class: "danger" }, confirmLabel),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    (dialog.querySelector("button[value=cancel]") as HTMLButtonElement).focus();
  });
}

/** Deletes after a confirmation stating the count and size; says what failed and why. */
export async function confirmAndDelete(assets: { asset_id: string; size_bytes?: string }[]): Promise<string[]> {
  const bytes = assets.reduce((sum, a) => sum + n(a.size_bytes), 0);
  const count = assets.length;
  const ok = await confirmDialog(
    `Delete ${count} image${count === 1 ? "" : "s"}?`,
    `${count} image${count === 1 ? "" : "s"}${bytes ? ` (${formatBytes(bytes)})` : ""} will be deleted with their ` +
      "thumbnails and search vectors. This cannot be undone.",
    `Delete ${count}`,
  );
  if (!ok) return [];
  const result = await deleteAssets(assets.map((a) => a.asset_id));
  if (result.failed.length) {
    const first = result.failed[0];
    toast(`Deleted ${result.deleted.length}; ${result.failed.length} not deleted: ${first.detail} (${first.reason})`, true);
  } else toast(`Deleted ${result.deleted.length} image${result.deleted.length === 1 ? "" : "s"}.`);
  return result.deleted;
}

export interface ActionBarOptions {
  selection: Selection;
  /** What the delete confirmation states (count and, where known, size). */
  assetsOf: (ids: string[]) => { asset_id: string; size_bytes?: string }[];
  total: () => string;
  onDeleted: (ids: string[]) => void;
  /** After "Move to cluster…" moved the selection (and again, `undone`, after its Undo). */
  onMoved?: (moved: Moved, undone: boolean) => void;
}

/** The bar above a grid: count, select all / clear, and the actions (shown once something is selected). */
export function actionBar(o: ActionBarOptions): { element: HTMLElement; update: () => void } {
  const count = h("span", { class: "sel-count", "aria-live": "polite" });
  const all = h("button", { type: "button", id: "select-all", onclick: () => o.selection.all() }, "Select all");
  const clear = h("button", { type: "button", id: "select-clear", onclick: () => o.selection.clear() }, "Clear");
  const zip = h("button", { type: "button", id: "sel-zip" }, "Download zip");
  const like = h("button", { type: "button", id: "sel-like" }, "More like these");
  const del = h("button", { type: "button", id: "sel-delete", class: "danger", "data-needs": "admin" }, "Delete");
  const ids = () => Array.from(o.selection.ids);
  const move = moveButton({ ids, onMoved: o.onMoved });
  const actions = h("span", { class: "sel-actions" }, clear, zip, like, move, del);
  zip.addEventListener("click", async () => {
    zip.disabled = true;
    try {
      const size = await downloadZip(ids());
      toast(`Downloaded ${o.selection.size} images (${formatBytes(size)}).`);
    } catch (err) {
      toast(errorText(err), true);
    } finally {
      zip.disabled = false;
    }
  });
  like.addEventListener("click", () => {
    location.hash = `#/search?like=${ids().slice(0, 5).join(",")}`;
  });
  del.addEventListener("click", async () => {
    try {
      const deleted = await confirmAndDelete(o.assetsOf(ids()));
      if (deleted.length) {
        o.selection.remove(deleted);
        o.onDeleted(deleted);
      }
    } catch (err) {
      toast(errorText(err), true);
    }
  });
  const element = h("div", { class: "action-bar", role: "toolbar", "aria-label": "Selection" }, count, all, actions);
  const update = () => {
    const size = o.selection.size;
    count.textContent = size ? `${size} selected` : o.total();
    actions.hidden = size === 0;
    element.classList.toggle("active", size > 0);
  };
  update();
  return { element, update };
}
