// Compare runs by membership: ARI/NMI, how many images stayed or moved, the largest moves and the overlap matrix.
import { api, Comparison, n, Run, short, thumbUrl } from "../api";
import { h } from "../dom";
import { reportError } from "./common";

const MATRIX_CLUSTERS = 12; // rows/columns shown; the rest are summed into "other"

function runLabel(run: Run): string {
  const when = run.create_time ? new Date(run.create_time).toLocaleString() : "";
  const algo = short(run.clustering?.algorithm ?? "", "CLUSTERING_ALGORITHM_") || "auto";
  return `${when} · ${algo} · ${run.cluster_count} clusters${run.group_count ? ` in ${run.group_count} groups` : ""}`;
}

function label(c: { cluster_id?: string; name?: string } | undefined): string {
  if (!c || !c.cluster_id) return "noise";
  return c.name || c.cluster_id;
}

function matrix(result: Comparison): HTMLElement {
  const rows = result.clusters_a.map((_, i) => i).filter((i) => result.clusters_a[i].cluster_id).slice(0, MATRIX_CLUSTERS);
  const cols = result.clusters_b.map((_, i) => i).filter((i) => result.clusters_b[i].cluster_id).slice(0, MATRIX_CLUSTERS);
  const count = new Map<string, number>();
  for (const c of result.cells) count.set(`${c.a_index ?? 0}:${c.b_index ?? 0}`, n(c.count ?? "0"));
  const max = Math.max(1, ...count.values());
  return h(
    "table",
    { class: "contingency", "aria-label": "Overlap matrix: images shared by a cluster of each run" },
    h("thead", {}, h("tr", {}, h("th", {}, "first ↓ / second →"), ...cols.map((j) => h("th", { scope: "col" }, label(result.clusters_b[j]))))),
    h(
      "tbody",
      {},
      ...rows.map((i) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, label(result.clusters_a[i])),
          ...cols.map((j) => {
            const value = count.get(`${i}:${j}`) ?? 0;
            return h("td", { style: `background: rgba(37, 99, 235, ${(0.6 * value) / max})` }, value ? String(value) : "");
          }),
        ),
      ),
    ),
  );
}

function render(result: Comparison, into: HTMLElement): void {
  const moves = h(
    "table",
    { class: "moves", "aria-label": "Where images moved" },
    h("thead", {}, h("tr", {}, h("th", {}, "from (first run)"), h("th", {}, "to (second run)"), h("th", {}, "images"), h("th", {}, "examples"))),
    h(
      "tbody",
      {},
      ...result.moves.slice(0, 15).map((m) =>
        h(
          "tr",
          {},
          h("td", {}, label(result.clusters_a[m.a_index ?? 0])),
          h("td", {}, label(result.clusters_b[m.b_index ?? 0])),
          h("td", {}, m.count ?? "0"),
          h("td", {}, ...m.example_asset_ids.map((id) => h("img", { src: thumbUrl(id), alt: "", width: 40, height: 40, loading: "lazy" }))),
        ),
      ),
    ),
  );
  into.replaceChildren(
    h(
      "p",
      { class: "compare-summary" },
      `${n(result.common_samples ?? "0")} images in both runs · ARI ${(result.ari ?? 0).toFixed(3)} · NMI ${(result.nmi ?? 0).toFixed(3)} · ` +
        `${n(result.stayed ?? "0")} stayed with their cluster, ${n(result.moved ?? "0")} moved`,
    ),
    result.moves.length ? moves : h("p", {}, "No image changed cluster."),
    matrix(result),
  );
}

export async function compareRuns(): Promise<HTMLElement> {
  const section = h("section", { class: "compare", "aria-label": "Compare runs" }, h("h2", {}, "Compare runs"));
  let runs: Run[] = [];
  try {
    runs = (await api<{ runs: Run[] }>("/api/runs?kind=clustering&page_size=20")).runs.filter((r) => r.state === "RUN_STATE_SUCCEEDED");
  } catch {
    /* no analysis service */
  }
  if (runs.length < 2) {
    section.append(h("p", {}, "Two finished clustering runs are needed to compare."));
    return section;
  }
  const pick = (id: string, selected: number) =>
    h("select", { id, "aria-label": id === "run-a" ? "First run" : "Second run" }, ...runs.map((r, i) => h("option", { value: r.run_id, selected: i === selected }, runLabel(r))));
  const a = pick("run-a", 1);
  const b = pick("run-b", 0);
  const level = h(
    "select",
    { id: "compare-level", "aria-label": "Level" },
    h("option", { value: "leaf" }, "clusters"),
    h("option", { value: "group" }, "groups"),
  ) as HTMLSelectElement;
  const result = h("div", { class: "compare-table", role: "region", "aria-live": "polite" });
  async function update(): Promise<void> {
    const params = new URLSearchParams({ a: a.value, b: b.value, level: level.value });
    render(await api<Comparison>(`/api/compare-runs?${params}`), result);
  }
  for (const control of [a, b, level]) control.addEventListener("change", () => update().catch(reportError));
  section.append(h("div", { class: "row" }, a, b, level), result);
  update().catch(reportError);
  return section;
}
