// The members of a cluster, a group or the noise of a run, in pages of ListClusterMembers (AIP-158 tokens) with
// the run's total shown ("1,986 images · showing 200"): Load more goes on until the last page, so no member is
// out of reach (the old grid asked search for at most 1,000 and said nothing). Tiles open the shared viewer
// (←/→ through the members, loading the next page at the end); selection feeds the same action bar as the
// library, so members can be downloaded, deleted or moved to another cluster.
import { api, ClusterMember, n, thumbUrl } from "../api";
import { errorText, h } from "../dom";
import { moveFocus } from "./common";
import { actionBar, Selection } from "./selection";
import { paintSelection, pickClick, tileClick } from "./tiles";
import { openViewer } from "./viewer";

export const MEMBERS_PAGE = 200;

interface MembersPage {
  members: ClusterMember[];
  next_page_token: string;
  total_size: string | number;
}

export interface MembersGrid {
  element: HTMLElement;
  /** Loads the first page (call once the element is in the page). */
  start: () => Promise<void>;
}

/** `label` names the grid ("Members of beaches"); `pageSize` comes from the URL (`page_size`) in tests. */
export function membersGrid(runId: string, clusterId: string, label: string, pageSize = MEMBERS_PAGE): MembersGrid {
  let members: ClusterMember[] = [];
  let total = 0;
  let token = "";
  let started = false;
  const status = h("p", { class: "members-status", role: "status", "aria-live": "polite" }, "Loading members…");
  const grid = h("ul", { class: "grid members", role: "list", "aria-label": label, "data-count": 0 });
  const more = h("button", { type: "button", id: "more-members", hidden: true }, "Load more");
  const summary = () =>
    `${total.toLocaleString("en-US")} image${total === 1 ? "" : "s"}` +
    (members.length < total ? ` · showing ${members.length.toLocaleString("en-US")}` : "");
  const ids = () => members.map((m) => m.asset_id);
  const selection = new Selection(ids, () => (bar.update(), paint()));
  const bar = actionBar({
    selection,
    assetsOf: (picked) => picked.map((asset_id) => ({ asset_id })),
    total: () => summary(),
    onDeleted: (gone) => drop(gone),
    // Moved elsewhere: they leave this list; moved back by Undo: the list is read again from the first page.
    onMoved: (moved, undone) => (undone ? void restart() : moved.to !== clusterId && drop(moved.moves.map((m) => m.asset_id))),
  });

  async function page(): Promise<boolean> {
    if (started && !token) return false;
    started = true;
    more.disabled = true;
    try {
      const params = new URLSearchParams({ page_size: String(pageSize), page_token: token });
      const body = await api<MembersPage>(`/api/runs/${runId}/clusters/${encodeURIComponent(clusterId)}/members?${params}`);
      const from = members.length;
      members = members.concat(body.members);
      total = n(body.total_size);
      token = body.next_page_token;
      draw(from);
      return body.members.length > 0;
    } catch (err) {
      status.textContent = `Members cannot be loaded: ${errorText(err)}`;
      status.classList.add("error");
      return false;
    } finally {
      more.disabled = false;
    }
  }

  function tile(m: ClusterMember, index: number): HTMLElement {
    const button = h(
      "button",
      {
        class: "tile",
        type: "button",
        "data-asset-id": m.asset_id,
        "aria-label": `Member ${index + 1}, similarity ${(m.similarity ?? 0).toFixed(3)}`,
        onclick: tileClick(selection, index, () => openViewer(viewerList, index)),
        onkeydown: (e: Event) => moveFocus(grid, index, e as KeyboardEvent),
      },
      h("img", { src: thumbUrl(m.asset_id), alt: "", loading: "lazy", width: 160, height: 160 }),
    );
    const pick = h("input", { type: "checkbox", class: "pick", "aria-label": `Select member ${index + 1}`, tabindex: -1, onclick: pickClick(selection, index) });
    return h("li", { "data-asset-id": m.asset_id }, button, pick);
  }

  /** Appends members from `from` on (a page arrived) or redraws all (`from` 0 after a removal). */
  function draw(from: number): void {
    if (from === 0 || !grid.querySelector("li[data-asset-id]")) grid.replaceChildren();
    members.slice(from).forEach((m, i) => grid.append(tile(m, from + i)));
    if (!members.length) grid.append(h("li", { class: "empty" }, "No images."));
    grid.dataset.count = String(members.length);
    grid.dataset.total = String(total);
    status.textContent = summary();
    status.classList.remove("error");
    more.hidden = !token;
    more.textContent = token ? `Load more (${(total - members.length).toLocaleString("en-US")} left)` : "Load more";
    paint();
    bar.update();
  }

  function paint(): void {
    paintSelection(grid, selection);
  }

  /** Members deleted or moved elsewhere leave this grid; the total follows (deleted ones are gone for good). */
  function drop(gone: string[]): void {
    const out = new Set(gone);
    const before = members.length;
    members = members.filter((m) => !out.has(m.asset_id));
    total = Math.max(0, total - (before - members.length));
    selection.remove(gone);
    draw(0);
  }

  async function restart(): Promise<void> {
    members = [];
    token = "";
    started = false;
    selection.clear();
    await page();
  }

  const viewerList = {
    ids,
    more: async () => (token ? page() : false),
    onDeleted: (id: string) => drop([id]),
  };
  more.addEventListener("click", () => void page());
  return {
    element: h("div", { class: "results members-box" }, bar.element, status, grid, more),
    start: async () => void (await page()),
  };
}
