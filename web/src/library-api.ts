// --- 16a --- REST calls of the library, selection, viewer and duplicates views (gateway/library_routes.py).
import { api, ApiError, Asset, csrfHeaders, Sample } from "./api";
import type { components } from "./api-types";

type Schemas = components["schemas"];
export type AssetPage = Schemas["AssetPage"];
export type Capabilities = Schemas["Capabilities"];
export type DuplicateGroupPlan = Schemas["DuplicateGroupPlan"];
export type DuplicatePlan = Schemas["DuplicatePlan"];
export type BatchDeleteResult = Schemas["BatchDeleteResult"];

export const listAssets = (pageSize: number, token: string, orderBy = ""): Promise<AssetPage> =>
  api(
    `/api/assets?page_size=${pageSize}&page_token=${encodeURIComponent(token)}&order_by=${encodeURIComponent(orderBy)}`,
  );

export const assetCount = async (): Promise<number | undefined> => {
  const status = await api<{ stats?: { asset_count?: string } }>("/api/status");
  return status.stats?.asset_count !== undefined ? Number(status.stats.asset_count) : undefined;
};

let caps: Promise<Capabilities> | undefined;
export const capabilities = (): Promise<Capabilities> => (caps ??= api<Capabilities>("/api/library/capabilities"));

export const getAsset = (assetId: string): Promise<{ asset: Asset; samples: (Sample & SampleRegions)[] }> =>
  api(`/api/assets/${assetId}`);

export interface SampleRegions {
  bbox?: { x?: number; y?: number; width?: number; height?: number };
  polygon?: { x?: number; y?: number }[];
  score?: number;
}

/** Deletes in calls of at most `max_batch_ids`; returns what was deleted and what was not, and why. */
export async function deleteAssets(ids: string[]): Promise<BatchDeleteResult> {
  const { max_batch_ids } = await capabilities();
  const result: BatchDeleteResult = { deleted: [], failed: [] };
  for (let i = 0; i < ids.length; i += max_batch_ids) {
    const part = await api<BatchDeleteResult>("/api/assets/batch-delete", {
      method: "POST",
      json: { asset_ids: ids.slice(i, i + max_batch_ids) },
    });
    result.deleted.push(...part.deleted);
    result.failed.push(...part.failed);
  }
  return result;
}

/** Fetches the zip (POST: the id list is long) and hands it to the browser as a download. */
export async function downloadZip(ids: string[]): Promise<number> {
  const response = await fetch("/api/assets/zip", {
    method: "POST",
    headers: { "content-type": "application/json", ...csrfHeaders() },
    body: JSON.stringify({ asset_ids: ids }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(body.detail ?? response.statusText, response.status, body.reason ?? "");
  }
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `ordo-${ids.length}-images.zip`;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return blob.size;
}

export const duplicatePlan = (rule: string, minSimilarity: number, token: string): Promise<DuplicatePlan> =>
  api(
    `/api/duplicate-groups?rule=${rule}&min_similarity=${minSimilarity}&page_size=20&page_token=${encodeURIComponent(token)}`,
  );

export const canDelete = (): boolean => ["admin", ""].includes(document.body.dataset.role ?? "");
