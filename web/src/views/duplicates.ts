// Duplicates: near-duplicate groups from the analysis service, a keep-best rule chosen by the user (largest
// resolution, largest file, earliest capture), a dry-run summary of what applying would delete and free, then
// delete the rest per group or for every group shown. Nothing is deleted without a confirmation stating counts.
import { Asset, n, thumbUrl } from "../api";
import { errorText, formatBytes, h, toast } from "../dom";
import { DuplicateGroupPlan, duplicatePlan } from "../library-api";
import { confirmAndDelete } from "./selection";
import { openViewer } from "./viewer";

export function duplicatesView(root: HTMLElement, params: URLSearchParams): void {
  const rule = h(
    "select",
    { id: "keep-rule", "aria-label": "Keep rule" },
    h("option", { value: "resolution" }, "Keep the largest resolution"),
    h("option", { value: "size" }, "Keep the largest file"),
    h("option", { value: "earliest" }, "Keep the earliest capture"),
  );
  rule.value = params.get("rule") ?? "resolution";
  const similarity = h("input", { id: "dup-similarity", type: "number", min: "0.5", max: "1", step: "0.01", value: params.get("min") ?? "0.95", "aria-label": "Minimum similarity" });
  const summary = h("p", { class: "dup-summary", role: "status", "aria-live": "polite" }, "Finding near-duplicates…");
  const list = h("div", { class: "dup-groups" });
  const more = h("button", { type: "button", id: "dup-more", hidden: true }, "Load more groups");
  const applyAll = h("button", { type: "button", id: "dup-apply-all", class: "danger", "data-needs": "admin", hidden: true }, "Apply to all groups shown");
  let groups: DuplicateGroupPlan[] = [];
  let token = "";

  function keepOthers(g: DuplicateGroupPlan): Asset[] {
    return g.assets.filter((a) => a.asset_id !== g.keep);
  }

  function describe(): void {
    const doomed = groups.flatMap(keepOthers);
    const bytes = doomed.reduce((s, a) => s + n(a.size_bytes), 0);
    summary.textContent = groups.length
      ? `Dry run: ${groups.length} group${groups.length === 1 ? "" : "s"}${token ? " (more to load)" : ""}; keeping one each would delete ${doomed.length} image${doomed.length === 1 ? "" : "s"} and free ${formatBytes(bytes)}.`
      : "No near-duplicates found.";
    summary.dataset.groups = String(groups.length);
    summary.dataset.delete = String(doomed.length);
    applyAll.hidden = groups.length === 0;
    more.hidden = !token;
  }

  function groupCard(g: DuplicateGroupPlan): HTMLElement {
    const ids = () => g.assets.map((a) => a.asset_id);
    const card = h(
      "section",
      { class: "dup-group", "data-keep": g.keep, "aria-label": `Group of ${g.assets.length}` },
      h("header", {}, h("strong", {}, `${g.assets.length} images`), ` · similarity ≥ ${g.min_similarity.toFixed(3)}`),
      h(
        "ul",
        { class: "dup-members" },
        ...g.assets.map((a, i) =>
          h(
            "li",
            { class: a.asset_id === g.keep ? "keep" : "drop", "data-asset-id": a.asset_id },
            h("button", { type: "button", class: "open", "aria-label": `Open ${a.file_name}`, onclick: () => openViewer({ ids }, i) }, h("img", { src: thumbUrl(a.asset_id), alt: "", loading: "lazy" })),
            h("span", { class: "dup-label" }, a.asset_id === g.keep ? "keep" : "delete"),
            h("span", { class: "dup-meta" }, `${a.width}×${a.height} · ${formatBytes(n(a.size_bytes))} · ${a.capture_time?.slice(0, 10) ?? "undated"}`),
            h("button", { type: "button", class: "make-keep", onclick: () => ((g.keep = a.asset_id), redraw()) }, "Keep this"),
          ),
        ),
      ),
      h("div", { class: "dup-actions" },
        h("button", { type: "button", class: "apply danger", "data-needs": "admin", onclick: () => apply([g]) }, `Delete ${g.assets.length - 1}, keep 1`),
        h("button", { type: "button", class: "dismiss", onclick: () => ((groups = groups.filter((x) => x !== g)), redraw()) }, "Keep all"),
      ),
    );
    return card;
  }

  function redraw(): void {
    list.replaceChildren(...groups.map(groupCard));
    list.dataset.count = String(groups.length);
    describe();
  }

  async function apply(which: DuplicateGroupPlan[]): Promise<void> {
    try {
      const doomed = which.flatMap(keepOthers);
      const deleted = new Set(await confirmAndDelete(doomed));
      if (!deleted.size) return;
      groups = groups.filter((g) => !which.includes(g) || keepOthers(g).some((a) => !deleted.has(a.asset_id)));
      redraw();
    } catch (err) {
      toast(errorText(err), true);
    }
  }

  async function load(reset: boolean): Promise<void> {
    if (reset) {
      groups = [];
      token = "";
      summary.textContent = "Finding near-duplicates…";
      history.replaceState(null, "", `#/duplicates?rule=${rule.value}&min=${similarity.value}`);
    }
    try {
      const plan = await duplicatePlan(rule.value, Number(similarity.value) || 0.95, token);
      groups.push(...plan.groups);
      token = plan.next_page_token;
      redraw();
    } catch (err) {
      summary.textContent = errorText(err);
    }
  }

  rule.addEventListener("change", () => void load(true));
  similarity.addEventListener("change", () => void load(true));
  more.addEventListener("click", () => void load(false));
  applyAll.addEventListener("click", () => void apply([...groups]));

  root.replaceChildren(
    h("h1", {}, "Duplicates"),
    h("div", { class: "dup-controls" }, rule, h("label", {}, "similarity ≥ ", similarity), applyAll),
    summary,
    list,
    more,
  );
  void load(true);
}
