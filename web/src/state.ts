// What several views share: the latest clustering run, its clusters, and which cluster each asset is in.
import { api, Cluster, Projection, Run } from "./api";

export interface Analysis {
  clustering?: Run;
  projection?: Run;
  clusters: Cluster[];
  clusterOf: Map<string, string>;
  /** Assets the latest map covers (an asset added since is in no run yet). */
  mapped: Set<string>;
  points?: Projection;
  /** Set when the services did not answer: views must then say so, not "no analysis yet". */
  error?: unknown;
}

let cached: Promise<Analysis> | undefined;

async function load(): Promise<Analysis> {
  const result: Analysis = { clusters: [], clusterOf: new Map(), mapped: new Set() };
  try {
    const runs = await api<{ runs: Run[] }>("/api/runs?kind=clustering&page_size=20");
    result.clustering = runs.runs.find((r) => r.state === "RUN_STATE_SUCCEEDED");
    if (result.clustering) {
      const body = await api<{ clusters: Cluster[] }>(`/api/runs/${result.clustering.run_id}/clusters?page_size=1000`);
      result.clusters = body.clusters;
    }
    const projections = await api<{ runs: Run[] }>("/api/runs?kind=projection&page_size=20");
    result.projection = projections.runs.find((r) => r.state === "RUN_STATE_SUCCEEDED");
    if (result.projection) {
      result.points = await api<Projection>(`/api/runs/${result.projection.run_id}/projection`);
      result.points.asset_ids.forEach((id, i) => {
        result.mapped.add(id);
        const cluster = result.points!.cluster_ids[i];
        if (cluster) result.clusterOf.set(id, cluster);
      });
    }
  } catch (err) {
    // The service is not there (or refused): views show what they can without it, and say why.
    result.error = err;
  }
  return result;
}

export function analysis(refresh = false): Promise<Analysis> {
  if (refresh || !cached) {
    const loading = load();
    cached = loading;
    // A failed load is not kept: the next view asks again (the services may be back).
    void loading.then((a) => {
      if (a.error && cached === loading) cached = undefined;
    });
  }
  return cached;
}

export function clusterName(a: Analysis, clusterId: string | undefined): string {
  if (!clusterId) return "none (noise)";
  return a.clusters.find((c) => c.cluster_id === clusterId)?.name || clusterId;
}
