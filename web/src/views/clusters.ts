// Clusters: the latest run's clusters as cards, a cluster's members, rename, new runs, compare runs.
import { api, Cluster, describeError, Job, n, Run, short, thumbUrl, watchJob } from "../api";
import { h, toast } from "../dom";
import { analysis } from "../state";
import { jobCard, reportError, updateJobCard } from "./common";
import { compareRuns } from "./compare";
import { groupDetail, groupStrip, loadGroups } from "./groups";
import { membersGrid } from "./members";

/** `#/clusters/noise`: the run's images in no cluster (ListClusterMembers' reserved id). */
const NOISE_ID = "noise";

function runLabel(run: Run): string {
  const when = run.create_time ? new Date(run.create_time).toLocaleString() : "";
  const algo = short(run.clustering?.algorithm ?? "", "CLUSTERING_ALGORITHM_") || "auto";
  const groups = run.group_count ? ` in ${run.group_count} groups` : "";
  return `${when} · ${algo} · ${run.cluster_count} clusters${groups} · ${n(run.sample_count)} samples`;
}

async function waitJob(job: Job, area: HTMLElement): Promise<Job> {
  const card = jobCard(job);
  area.prepend(card);
  const final = await watchJob(job.job_id, (j) => updateJobCard(card, j));
  updateJobCard(card, final);
  return final;
}

/** A clustering run and then a map coloured by it (the Map view reads the latest projection). */
async function runAnalysis(form: HTMLFormElement, area: HTMLElement): Promise<void> {
  const data = new FormData(form);
  const algorithm = String(data.get("algorithm") ?? "");
  const body = {
    algorithm,
    n_clusters: Number(data.get("n_clusters") || 0),
    min_cluster_size: Number(data.get("min_cluster_size") || 0),
  };
  const method = String(data.get("method") ?? "");
  const created = await api<{ run: Run; job: Job }>("/api/runs/clustering", { method: "POST", json: body });
  const done = await waitJob(created.job, area);
  if (done.state === "JOB_STATE_FAILED") throw new Error(done.error || "the clustering run failed");
  const projection = await api<{ run: Run; job: Job }>("/api/runs/projection", {
    method: "POST",
    json: { clustering_run_id: created.run.run_id, method },
  });
  await waitJob(projection.job, area);
}

export async function clustersView(root: HTMLElement, clusterId?: string, params = new URLSearchParams()): Promise<void> {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" }, "Loading clusters…");
  const area = h("div", { class: "jobs" });
  root.replaceChildren(h("h1", {}, clusterId ? "Cluster" : "Clusters"), status, area);
  const state = await analysis();
  if (state.error) {
    // The services did not answer: we do not know whether there is a clustering, so do not say there is none.
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = `Clusters cannot be loaded: ${describeError(state.error)}`;
    return;
  }
  if (clusterId) return clusterDetail(root, status, clusterId, pageSizeOf(params));

  const form = h(
    "form",
    { class: "run-form", "aria-label": "Run a new analysis", "data-needs": "write" },
    h(
      "label",
      {},
      "Algorithm ",
      h(
        "select",
        { name: "algorithm" },
        h("option", { value: "" }, "Automatic (Leiden: groups and clusters)"),
        h("option", { value: "dbscan" }, "DBSCAN (auto eps)"),
        h("option", { value: "hdbscan" }, "HDBSCAN"),
        h("option", { value: "kmeans" }, "k-means"),
      ),
    ),
    h("label", {}, "Clusters (k-means) ", h("input", { name: "n_clusters", type: "number", min: 0, value: 0 })),
    h("label", {}, "Min cluster size ", h("input", { name: "min_cluster_size", type: "number", min: 0, value: 0 })),
    h(
      "label",
      {},
      "Map ",
      h("select", { name: "method" }, h("option", { value: "" }, "t-SNE"), h("option", { value: "umap" }, "UMAP"), h("option", { value: "pca" }, "PCA")),
    ),
    h("button", { type: "submit", id: "run-analysis" }, "Run new analysis"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button")!;
    button.disabled = true;
    try {
      await runAnalysis(form, area);
      await analysis(true);
      toast("Analysis finished");
      clustersView(root);
    } catch (err) {
      reportError(err);
    } finally {
      button.disabled = false;
    }
  });

  const groups = state.clustering ? await loadGroups(state.clustering.run_id) : [];
  const groupName = new Map(groups.map((g) => [g.cluster_id, g.name || g.cluster_id]));
  const cards = h("ul", { class: "cards", "aria-label": "Clusters", "data-count": state.clusters.length });
  // leaves ordered by group (groups are largest first), so a group's clusters sit together
  const order = new Map(groups.map((g, i) => [g.cluster_id, i]));
  const leaves = [...state.clusters].sort((x, y) => (order.get(x.parent_id ?? "") ?? 0) - (order.get(y.parent_id ?? "") ?? 0));
  for (const c of leaves) cards.append(clusterCard(c, groupName.get(c.parent_id ?? "")));
  const noise = n(state.clustering?.noise_count);
  status.replaceChildren(
    state.clustering ? `Latest run: ${runLabel(state.clustering)}` : "No clustering yet: run an analysis.",
    noise ? " · " : "",
    noise ? h("a", { href: `#/clusters/${NOISE_ID}`, id: "noise-link" }, `${noise.toLocaleString("en-US")} in no cluster (noise)`) : "",
  );
  root.replaceChildren(h("h1", {}, "Clusters"), status, form, area, groupStrip(groups) ?? "", cards, await compareRuns());
}

function clusterCard(c: Cluster, group?: string): HTMLElement {
  return h(
    "li",
    { class: "card", "data-cluster-id": c.cluster_id },
    h(
      "a",
      { href: `#/clusters/${encodeURIComponent(c.cluster_id)}`, "aria-label": `${c.name || c.cluster_id}, ${c.size} images` },
      h("div", { class: "thumbs" }, ...c.representative_asset_ids.slice(0, 4).map((id) => h("img", { src: thumbUrl(id), alt: "", loading: "lazy" }))),
      h("strong", {}, c.name || c.cluster_id),
      h("span", { class: "size" }, `${c.size} images`),
      c.top_terms.length ? h("span", { class: "terms" }, c.top_terms.slice(0, 4).join(", ")) : null,
      group ? h("span", { class: "group-tag" }, `in ${group}`) : null,
    ),
  );
}

/** Members per page: `page_size` in the URL (1–1000) changes it, as the library's does. */
const pageSizeOf = (params: URLSearchParams): number | undefined => {
  const size = Number(params.get("page_size"));
  return size >= 1 && size <= 1000 ? Math.floor(size) : undefined;
};

async function clusterDetail(root: HTMLElement, status: HTMLElement, clusterId: string, pageSize?: number): Promise<void> {
  const state = await analysis();
  if (clusterId === NOISE_ID && state.clustering) {
    const grid = membersGrid(state.clustering.run_id, NOISE_ID, "Images in no cluster", pageSize);
    root.replaceChildren(
      h("p", {}, h("a", { href: "#/clusters" }, "← All clusters")),
      h("h1", {}, "Noise: images in no cluster"),
      h("p", {}, "The latest run put these images in no cluster; open one, or select some and move them to a cluster."),
      grid.element,
    );
    return grid.start();
  }
  const cluster = state.clusters.find((c) => c.cluster_id === clusterId);
  if (!cluster && state.clustering) {
    const group = (await loadGroups(state.clustering.run_id)).find((g) => g.cluster_id === clusterId);
    if (group) return groupDetail(root, state.clustering.run_id, group, state.clusters.filter((c) => c.parent_id === clusterId), pageSize);
  }
  if (!cluster || !state.clustering) {
    status.textContent = `Cluster ${clusterId} is not in the latest run.`;
    return;
  }
  const runId = state.clustering.run_id;
  const name = h("input", { id: "cluster-name", value: cluster.name, "aria-label": "Cluster name", required: true });
  const rename = h("form", { class: "rename", "data-needs": "write" }, name, h("button", { type: "submit" }, "Rename"));
  const title = h("h1", {}, cluster.name || clusterId);
  rename.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const updated = await api<Cluster>(`/api/runs/${runId}/clusters/${encodeURIComponent(clusterId)}`, {
        method: "PATCH",
        json: { name: name.value },
      });
      cluster.name = updated.name;
      title.textContent = updated.name;
      toast(`Renamed to “${updated.name}”`);
    } catch (err) {
      reportError(err);
    }
  });
  // Every member, most central first, page after page (ListClusterMembers), with the total shown.
  const members = membersGrid(runId, clusterId, `Members of ${cluster.name || clusterId}`, pageSize);
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/clusters" }, "← All clusters")),
    title,
    h("p", {}, `${cluster.top_terms.length ? `${cluster.top_terms.join(", ")} · ` : ""}`, h("a", { href: `#/search?cluster=${encodeURIComponent(clusterId)}` }, "search inside")),
    rename,
    members.element,
  );
  await members.start();
}
