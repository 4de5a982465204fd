// The top level of a two-level clustering: group chips above the cluster cards, and a group's page with its
// sub-clusters and its members in pages (ListClusterMembers, AIP-158 page tokens).
import { api, Cluster, n, thumbUrl } from "../api";
import { h } from "../dom";
import { membersGrid } from "./members";

export async function loadGroups(runId: string): Promise<Cluster[]> {
  try {
    return (await api<{ clusters: Cluster[] }>(`/api/runs/${runId}/clusters?level=group&page_size=1000`)).clusters;
  } catch {
    return [];
  }
}

export function groupStrip(groups: Cluster[]): HTMLElement | null {
  if (!groups.length) return null;
  return h(
    "ul",
    { class: "groups", "aria-label": "Groups", "data-count": groups.length },
    ...groups.map((g) =>
      h(
        "li",
        { class: "group-chip", "data-group-id": g.cluster_id },
        h(
          "a",
          { href: `#/clusters/${encodeURIComponent(g.cluster_id)}` },
          h("img", { src: thumbUrl(g.representative_asset_ids[0] ?? ""), alt: "", loading: "lazy" }),
          h("strong", {}, g.name || g.cluster_id),
          h("span", {}, `${n(g.size)} images · ${g.child_count ?? 0} clusters`),
        ),
      ),
    ),
  );
}

export async function groupDetail(root: HTMLElement, runId: string, group: Cluster, leaves: Cluster[], pageSize?: number): Promise<void> {
  const members = membersGrid(runId, group.cluster_id, `Members of ${group.name || group.cluster_id}`, pageSize);
  const children = h(
    "ul",
    { class: "cards", "aria-label": "Clusters in this group", "data-count": leaves.length },
    ...leaves.map((c) =>
      h(
        "li",
        { class: "card", "data-cluster-id": c.cluster_id },
        h(
          "a",
          { href: `#/clusters/${encodeURIComponent(c.cluster_id)}` },
          h("div", { class: "thumbs" }, ...c.representative_asset_ids.slice(0, 4).map((id) => h("img", { src: thumbUrl(id), alt: "", loading: "lazy" }))),
          h("strong", {}, c.name || c.cluster_id),
          h("span", { class: "size" }, `${c.size} images`),
        ),
      ),
    ),
  );
  root.replaceChildren(
    h("p", {}, h("a", { href: "#/clusters" }, "← All clusters")),
    h("h1", {}, group.name || group.cluster_id),
    h("p", {}, `${n(group.size)} images in ${leaves.length} clusters${group.top_terms.length ? ` · ${group.top_terms.slice(0, 4).join(", ")}` : ""}`),
    children,
    h("h2", {}, "Members, most typical first"),
    members.element,
  );
  await members.start();
}
