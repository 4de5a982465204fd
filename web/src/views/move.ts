// "Move to cluster…": the selection goes into a cluster of the latest clustering run (pick a name, or type a new
// one to create it, or "No cluster (noise)"), through MoveToCluster (POST /api/runs/{run}/moves, at most 1000 ids a
// call). The answer names where each image was, so the "Undo" toast moves each one back to its own cluster.
import { api, Cluster } from "../api";
import { errorText, h, toast } from "../dom";
import { analysis } from "../state";

const MAX_IDS = 1000; // MoveToCluster's bound on asset_ids
export const NOISE_ID = "noise";
const NOISE_LABEL = "No cluster (noise)";

interface MoveAnswer {
  cluster?: Cluster;
  moves: { asset_id: string; previous_cluster_id: string }[];
  skipped_asset_ids: string[];
}

export interface Moved {
  /** The destination's id ("noise" for none) and its name as shown. */
  to: string;
  name: string;
  moves: { asset_id: string; previous_cluster_id: string }[];
  skipped: string[];
}

/** Posts in calls of at most 1000 ids; one target: an id (or "noise") or a new name (the first call creates it,
 * the rest go into the cluster it made). */
async function post(runId: string, ids: string[], target: { cluster_id?: string; new_cluster_name?: string }): Promise<Moved> {
  const out: Moved = { to: target.cluster_id ?? "", name: target.new_cluster_name ?? "", moves: [], skipped: [] };
  let body: Record<string, string> = { ...target };
  for (let i = 0; i < ids.length; i += MAX_IDS) {
    const answer = await api<MoveAnswer>(`/api/runs/${encodeURIComponent(runId)}/moves`, {
      method: "POST",
      json: { asset_ids: ids.slice(i, i + MAX_IDS), ...body },
    });
    out.moves.push(...answer.moves);
    out.skipped.push(...answer.skipped_asset_ids);
    if (answer.cluster) {
      out.to = answer.cluster.cluster_id;
      out.name = answer.cluster.name || answer.cluster.cluster_id;
      body = { cluster_id: answer.cluster.cluster_id };
    } else out.name = NOISE_LABEL;
  }
  return out;
}

/** Moves each image back where the answer said it was (one call per previous cluster). */
async function undo(runId: string, moved: Moved): Promise<void> {
  const byCluster = new Map<string, string[]>();
  for (const m of moved.moves) byCluster.set(m.previous_cluster_id, [...(byCluster.get(m.previous_cluster_id) ?? []), m.asset_id]);
  for (const [clusterId, ids] of byCluster) await post(runId, ids, { cluster_id: clusterId });
}

/** Asks where to: a text box with the run's cluster names offered (type a new name to create one). */
function askTarget(clusters: Cluster[], count: number): Promise<{ cluster_id?: string; new_cluster_name?: string } | null> {
  return new Promise((resolve) => {
    const names = h("datalist", { id: "move-names" }, h("option", { value: NOISE_LABEL }), ...clusters.map((c) => h("option", { value: c.name || c.cluster_id })));
    const input = h("input", { id: "move-target", list: "move-names", required: true, autocomplete: "off", "aria-label": "Cluster name", placeholder: "A cluster's name, or a new name" });
    const note = h("p", { class: "move-note muted", "aria-live": "polite" });
    const dialog = h(
      "dialog",
      { class: "confirm move-dialog", "aria-label": "Move to cluster" },
      h("h2", {}, `Move ${count} image${count === 1 ? "" : "s"} to a cluster`),
      h(
        "form",
        { method: "dialog" },
        h("label", {}, "Cluster ", input),
        names,
        note,
        h("div", { class: "confirm-actions" }, h("button", { value: "cancel", type: "submit", formnovalidate: true }, "Cancel"), h("button", { value: "ok", type: "submit", id: "move-confirm" }, "Move")),
      ),
    );
    const find = (): Cluster | undefined => {
      const typed = input.value.trim().toLowerCase();
      return clusters.find((c) => (c.name || c.cluster_id).trim().toLowerCase() === typed);
    };
    input.addEventListener("input", () => {
      const typed = input.value.trim();
      note.textContent = !typed || typed === NOISE_LABEL ? "" : find() ? "An existing cluster." : `A new cluster named “${typed}” will be made.`;
    });
    dialog.addEventListener("close", () => {
      const typed = input.value.trim();
      dialog.remove();
      if (dialog.returnValue !== "ok" || !typed) return resolve(null);
      if (typed === NOISE_LABEL) return resolve({ cluster_id: NOISE_ID });
      const existing = find();
      resolve(existing ? { cluster_id: existing.cluster_id } : { new_cluster_name: typed });
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

/** A toast that stays while it offers Undo (10 s); Undo moves everything back and says so. */
function undoToast(message: string, onUndo: () => Promise<void>): void {
  document.querySelector(".undo-toast")?.remove();
  const button = h("button", { type: "button", id: "move-undo" }, "Undo");
  const box = h("div", { class: "undo-toast", role: "status" }, h("span", {}, message), button);
  const timer = window.setTimeout(() => box.remove(), 10_000);
  button.addEventListener("click", async () => {
    window.clearTimeout(timer);
    button.disabled = true;
    try {
      await onUndo();
      box.remove();
    } catch (err) {
      box.remove();
      toast(`Undo failed: ${errorText(err)}`, true);
    }
  });
  document.body.append(box);
}

export interface MoveOptions {
  ids: () => string[];
  /** After a move (and after its undo, with `undone` true): views drop or re-add what left or came back. */
  onMoved?: (moved: Moved, undone: boolean) => void;
}

/** The action bar's "Move to cluster…" button (write keys only). */
export function moveButton(o: MoveOptions): HTMLButtonElement {
  const button = h("button", { type: "button", id: "sel-move", "data-needs": "write" }, "Move to cluster…");
  button.addEventListener("click", async () => {
    const ids = o.ids();
    if (!ids.length) return;
    try {
      const state = await analysis();
      if (!state.clustering) throw new Error("No clustering yet: run an analysis first, then move images between its clusters.");
      const runId = state.clustering.run_id;
      const target = await askTarget(state.clusters, ids.length);
      if (!target) return;
      button.disabled = true;
      const moved = await post(runId, ids, target);
      await analysis(true); // names, sizes and the new cluster for every view
      o.onMoved?.(moved, false);
      const count = moved.moves.length;
      const skipped = moved.skipped.length ? ` (${moved.skipped.length} not in the latest run, left as they were)` : "";
      undoToast(`Moved ${count} image${count === 1 ? "" : "s"} to ${moved.name}${skipped}.`, async () => {
        await undo(runId, moved);
        await analysis(true);
        o.onMoved?.(moved, true);
        toast(`Moved ${count} image${count === 1 ? "" : "s"} back.`);
      });
    } catch (err) {
      toast(errorText(err), true);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
