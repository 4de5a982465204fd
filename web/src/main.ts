// Hash routes (#/search?q=…): the gateway serves one static page, so no server-side routing is needed.
import "./style.css";
import { currentSession, loadSession, probeBackend, signOut } from "./api";
import { h } from "./dom";
import { signInView } from "./views/signin";
import { clustersView } from "./views/clusters";
import { jobsView } from "./views/jobs";
import { mapView } from "./views/map";
import { searchView } from "./views/search";
import { uploadView } from "./views/upload";
// --- 16a ---
import { duplicatesView } from "./views/duplicates";
import { libraryView } from "./views/library";
import { openViewer, viewerHashChange } from "./views/viewer";

/** The account corner (who, sign out) and the role the page shows controls for: elements marked
 * `data-needs="write"` or `"admin"` are hidden (style.css) from keys that cannot use them. */
function showAccount(): void {
  const s = currentSession();
  document.body.dataset.role = s?.principal.role ?? "";
  const box = document.getElementById("account")!;
  if (!s || s.auth === "off") {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    h("span", { class: "who" }, `${s.principal.name} (${s.principal.role})`),
    h("button", { type: "button", onclick: async () => (await signOut(), start()) }, "Sign out"),
  );
}

async function start(): Promise<void> {
  const main = document.getElementById("main")!;
  void checkBackend();
  const s = await loadSession().catch(() => null);
  showAccount();
  if (!s) {
    document.body.dataset.signedOut = "true";
    signInView(main, () => void start());
    return;
  }
  delete document.body.dataset.signedOut;
  route();
}

window.addEventListener("ordo:signed-out", () => void start());

function route(): void {
  const main = document.getElementById("main")!;
  const [path, query = ""] = (location.hash.replace(/^#/, "") || "/search").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query);
  const view = parts[0] ?? "search";
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `Ordo · ${view}`;
  main.dataset.view = view;
  if (view === "upload") uploadView(main);
  else if (view === "clusters") clustersView(main, parts[1] ? decodeURIComponent(parts[1]) : undefined, params);
  else if (view === "map") mapView(main, params);
  else if (view === "jobs") jobsView(main);
  // --- 16a ---
  else if (view === "library") libraryView(main, params);
  else if (view === "duplicates") duplicatesView(main, params);
  else if (view === "asset" && parts[1]) openAssetLink(main, parts[1], params);
  else searchView(main, params);
}

let lastPath = "";
window.addEventListener("hashchange", () => {
  // Views rewrite their own query strings with history.replaceState, which fires no hashchange: any hashchange
  // is a navigation (a link to #/search?like=… from the search page must run that search). 16a: except the
  // viewer's own #/asset/ID, which opens over the page, and Back from it, which must not re-render the page.
  const path = location.hash.split("?")[0];
  if (viewerHashChange(lastPath)) return;
  lastPath = path;
  route();
  if (!banner().hidden) void checkBackend(); // each page says whether the services are back
});
lastPath = location.hash.split("?")[0];
void start();

// --- 16a ---
/** A shared #/asset/ID link: the library underneath, the viewer on top (Back or × leave to the library). */
function openAssetLink(main: HTMLElement, assetId: string, params: URLSearchParams): void {
  history.replaceState(null, "", "#/library");
  lastPath = "#/library";
  libraryView(main, params);
  openViewer({ ids: () => [assetId] }, 0); // pushes #/asset/ID again, so Back and × return to the library
}

/** "/" focuses the search box from anywhere (outside text fields), going to Search first if needed. */
document.addEventListener("keydown", (e) => {
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
  const target = e.target as HTMLElement;
  if (target.closest("input, textarea, select, [contenteditable=true]") || document.querySelector("dialog[open]")) return;
  e.preventDefault();
  const box = document.getElementById("search-text") as HTMLInputElement | null;
  if (box) box.focus();
  else location.hash = "#/search";
});

// --- 16b ---
// One banner, on every page, while the gateway or the services behind it do not answer (api.ts reports
// every failed and successful call). While it shows, the page checks every few seconds and, once the
// services answer again, hides it and redraws the view, so nobody has to reload.
const banner = () => document.getElementById("backend-banner")!;
let recheck: number | undefined;

function showBackend(up: boolean, message: string): void {
  const box = banner();
  const wasDown = !box.hidden;
  window.clearTimeout(recheck);
  if (up) {
    box.hidden = true;
    delete document.body.dataset.backendDown;
    if (wasDown && !document.body.dataset.signedOut) route();
    return;
  }
  box.replaceChildren(
    document.createTextNode(`Ordo is not reachable: ${message || "the services do not answer"}. `),
    Object.assign(document.createElement("button"), { type: "button", textContent: "Retry now", onclick: () => void checkBackend() }),
  );
  box.hidden = false;
  document.body.dataset.backendDown = "true";
  recheck = window.setTimeout(() => void checkBackend(), 5000);
}

async function checkBackend(): Promise<void> {
  const problem = await probeBackend();
  showBackend(problem === null, problem ?? "");
}

window.addEventListener("ordo:backend", (e) => {
  const { up, message } = (e as CustomEvent<{ up: boolean; message: string }>).detail;
  if (up) void checkBackend(); // one call answering is not all services answering: ask
  else showBackend(false, message);
});
