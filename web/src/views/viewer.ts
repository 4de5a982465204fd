// The viewer: one image over the current list. ←/→ move through the list (loading its next page when needed),
// each image has its own URL (#/asset/ID) and browser Back closes the viewer without touching the page below.
// Download, delete (admin), zoom to 1:1 for large images, and object boxes / OCR lines drawn over the image.
import { Asset, n, originalUrl } from "../api";
import { errorText, formatBytes, h, toast } from "../dom";
import { getAsset, SampleRegions } from "../library-api";
import { confirmAndDelete } from "./selection";

export interface ViewerList {
  ids: () => string[];
  /** Loads the list's next page; false when there is none. */
  more?: () => Promise<boolean>;
  onDeleted?: (assetId: string) => void;
}

let current: { dialog: HTMLDialogElement; list: ViewerList; index: number; pushed: boolean } | null = null;
const SVG = "http://www.w3.org/2000/svg";

export const viewerOpen = (): boolean => current !== null;

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Object boxes and text lines as an SVG over the image, in the image's own pixel coordinates. */
function regions(asset: Asset, samples: (SampleRegions & { kind: string; label: string; text: string })[]): SVGElement | null {
  const drawn = samples.filter((s) => (s.kind === "SAMPLE_KIND_OBJECT" && s.bbox) || (s.kind === "SAMPLE_KIND_TEXT" && s.polygon?.length));
  if (!drawn.length || !asset.width || !asset.height) return null;
  const layer = svg("svg", { class: "regions", viewBox: `0 0 ${asset.width} ${asset.height}`, preserveAspectRatio: "none" });
  for (const s of drawn) {
    if (s.kind === "SAMPLE_KIND_OBJECT" && s.bbox) {
      const b = s.bbox;
      const box = svg("rect", { class: "box", x: b.x ?? 0, y: b.y ?? 0, width: b.width ?? 0, height: b.height ?? 0 });
      const title = svg("title", {});
      title.textContent = `${s.label} ${(s.score ?? 0).toFixed(2)}`;
      box.append(title);
      layer.append(box);
    } else if (s.polygon) {
      const line = svg("polygon", { class: "ocr", points: s.polygon.map((p) => `${p.x ?? 0},${p.y ?? 0}`).join(" ") });
      const title = svg("title", {});
      title.textContent = s.text;
      line.append(title);
      layer.append(line);
    }
  }
  layer.dataset.count = String(drawn.length);
  return layer;
}

async function show(index: number): Promise<void> {
  if (!current) return;
  const { dialog, list } = current;
  let ids = list.ids();
  if (index >= ids.length && list.more && (await list.more())) ids = list.ids();
  if (index < 0 || index >= ids.length) return;
  current.index = index;
  const id = ids[index];
  if (location.hash !== `#/asset/${id}`) history.replaceState(null, "", `#/asset/${id}`);
  const stage = dialog.querySelector<HTMLElement>(".stage")!;
  const info = dialog.querySelector<HTMLElement>(".viewer-info")!;
  dialog.dataset.assetId = id;
  dialog.dataset.index = String(index);
  info.textContent = "Loading…";
  const img = h("img", { class: "full", src: originalUrl(id), alt: "" });
  const frame = h("div", { class: "frame" }, img);
  stage.classList.remove("zoomed");
  stage.replaceChildren(frame);
  img.addEventListener("click", () => stage.classList.toggle("zoomed"));
  try {
    const { asset, samples } = await getAsset(id);
    if (current?.dialog !== dialog || dialog.dataset.assetId !== id) return;
    img.alt = asset.file_name;
    const layer = regions(asset, samples as never);
    if (layer) frame.append(layer);
    const download = h("a", { href: originalUrl(id), download: asset.file_name, class: "button", id: "viewer-download" }, "Download");
    info.replaceChildren(
      h("strong", { class: "viewer-name" }, asset.file_name),
      h("span", {}, ` ${index + 1} / ${ids.length}${list.more ? "+" : ""} · ${asset.width}×${asset.height} · ${formatBytes(n(asset.size_bytes))}`),
      asset.capture_time ? h("span", {}, ` · captured ${asset.capture_time.slice(0, 10)}`) : h("span", {}, " · no capture date"),
      layer ? h("span", { class: "regions-count" }, ` · ${layer.dataset.count} regions`) : "",
      h("span", { class: "viewer-actions" }, download, h("button", { type: "button", id: "viewer-delete", class: "danger", "data-needs": "admin", onclick: () => remove(asset) }, "Delete")),
    );
  } catch (err) {
    info.replaceChildren(h("span", { class: "error" }, errorText(err)));
  }
}

async function remove(asset: Asset): Promise<void> {
  if (!current) return;
  const { list, index } = current;
  try {
    const deleted = await confirmAndDelete([asset]);
    if (!deleted.length || !current) return;
    list.onDeleted?.(asset.asset_id);
    if (list.ids().length === 0) closeViewer();
    else void show(Math.min(index, list.ids().length - 1));
  } catch (err) {
    toast(errorText(err), true);
  }
}

/** Opens the viewer at `index` of `list`; pushes #/asset/ID so that Back closes it. */
export function openViewer(list: ViewerList, index: number): void {
  const id = list.ids()[index];
  if (id === undefined) return;
  current?.dialog.remove();
  const opener = document.activeElement as HTMLElement | null;
  const dialog = h(
    "dialog",
    { class: "viewer", "aria-label": "Image viewer" },
    h(
      "div",
      { class: "viewer-bar" },
      h("button", { type: "button", class: "prev", "aria-label": "Previous image", onclick: () => current && void show(current.index - 1) }, "←"),
      h("button", { type: "button", class: "next", "aria-label": "Next image", onclick: () => current && void show(current.index + 1) }, "→"),
      h("div", { class: "viewer-info" }),
      h("button", { type: "button", class: "close", "aria-label": "Close", onclick: () => closeViewer() }, "×"),
    ),
    h("div", { class: "stage" }),
  );
  dialog.addEventListener("keydown", (e) => {
    if (!current) return;
    if (e.key === "ArrowRight") (e.preventDefault(), void show(current.index + 1));
    else if (e.key === "ArrowLeft") (e.preventDefault(), void show(current.index - 1));
  });
  dialog.addEventListener("cancel", (e) => (e.preventDefault(), closeViewer())); // Escape: as Back
  dialog.addEventListener("close", () => opener?.focus());
  document.body.append(dialog);
  dialog.showModal();
  const pushed = location.hash !== `#/asset/${id}`;
  if (pushed) history.pushState(null, "", `#/asset/${id}`);
  current = { dialog, list, index, pushed };
  void show(index);
}

/** Closes it through history when it pushed an entry (so Back and × agree), else directly. */
export function closeViewer(): void {
  if (!current) return;
  if (current.pushed) history.back();
  else {
    dismiss(); // opened by typing #/asset/ID over some page: go to the library, as a shared link does
    location.hash = "#/library";
  }
}

function dismiss(): void {
  const dialog = current?.dialog;
  current = null;
  dialog?.close();
  dialog?.remove();
}

/** For main.ts's hashchange: true when the viewer handled the change (the page below must not re-render). */
export function viewerHashChange(pathBelow: string): boolean {
  const hash = location.hash;
  if (hash.startsWith("#/asset/")) {
    const id = hash.slice("#/asset/".length);
    if (current) return true;
    openViewer({ ids: () => [id] }, 0);
    return true;
  }
  if (current) {
    dismiss();
    return hash.split("?")[0] === pathBelow;
  }
  return false;
}
