// Typed calls to the gateway's REST API. Shapes follow the ordo.v1 protobuf JSON mapping (int64 → string).

import type { components } from "./api-types";

// Shapes of the gateway's answers and bodies, generated from its OpenAPI document (`make web` regenerates
// api-types.ts from openapi.json, which `python -m ordo.gateway.openapi_dump` writes; a test fails when stale).
type Schemas = components["schemas"];
export type Asset = Schemas["Asset"];
export type Sample = Schemas["Sample"];
export type Hit = Schemas["Hit"];
export type SearchResponse = Schemas["SearchResponse"];
export type FileFailure = Schemas["FileFailure"];
export type Job = Schemas["Job"];
export type FileResult = Schemas["FileResult"];
export type UploadResponse = Schemas["UploadResponse"];
export type Projection = Schemas["Projection"];
export type Filter = Partial<Schemas["FilterBody"]>;

export interface Run {
  run_id: string;
  kind: string;
  state: string;
  sample_count: string;
  cluster_count: number;
  noise_count: string;
  create_time?: string;
  seconds: number;
  job_id: string;
  error: string;
  clustering_run_id: string;
  clustering?: { algorithm: string };
  projection?: { method: string };
  /** Two-level (Leiden) runs: top-level groups and their seed stability (ARI between two seeds). */
  group_count?: number;
  group_stability?: number;
}

export interface Cluster {
  cluster_id: string;
  name: string;
  size: string;
  representative_asset_ids: string[];
  top_terms: string[];
  renamed: boolean;
  /** Leaves of a two-level run: their group; groups: how many leaves they hold. */
  parent_id?: string;
  level?: string;
  child_count?: number;
}

/** One member of a cluster or group (ListClusterMembers), most central first. */
export interface ClusterMember {
  sample_id: string;
  asset_id: string;
  similarity?: number;
  cluster_id: string;
}

/** Two clustering runs compared by membership (CompareRuns). Indexes point into clusters_a / clusters_b. */
export interface Comparison {
  common_samples?: string;
  ari?: number;
  nmi?: number;
  clusters_a: { cluster_id?: string; name?: string; size?: string }[];
  clusters_b: { cluster_id?: string; name?: string; size?: string }[];
  cells: { a_index?: number; b_index?: number; count?: string }[];
  cells_truncated?: boolean;
  moves: { a_index?: number; b_index?: number; count?: string; example_asset_ids: string[] }[];
  stayed?: string;
  moved?: string;
}

/** A failed call: the service's human message and machine-readable reason. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string,
  ) {
    super(message);
  }
}

async function fail(response: Response): Promise<never> {
  let detail = response.statusText;
  let reason = "";
  try {
    const body = await response.json();
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    reason = body.reason ?? "";
  } catch {
    /* not JSON */
  }
  if (DOWN_REASONS.has(reason) || response.status === 502 || response.status === 504) noteBackend(false, detail);
  throw new ApiError(detail, response.status, reason);
}

// --- the signed-in session (an HttpOnly cookie the page never sees; a CSRF token it sends on writes) ---
export type Role = "read" | "write" | "admin";
export interface Session {
  auth: "required" | "off";
  principal: { key_id: string; name: string; role: Role; libraries: Record<string, string> };
  csrf_token: string;
}
let session: Session | null = null;
export const currentSession = (): Session | null => session;

/** Who the browser is signed in as; null when signed out (auth on and no session). */
export async function loadSession(): Promise<Session | null> {
  const response = await fetch("/api/session");
  session = response.ok ? ((await response.json()) as Session) : null;
  return session;
}

export async function signIn(apiKey: string): Promise<Session> {
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: apiKey }),
  });
  if (!response.ok) return fail(response);
  session = (await response.json()) as Session;
  return session;
}

export async function signOut(): Promise<void> {
  await fetch("/api/session", { method: "DELETE" });
  session = null;
}

/** Headers every state-changing request carries (the server refuses cookie-authenticated writes without it). */
export function csrfHeaders(): Record<string, string> {
  return session?.csrf_token ? { "X-CSRF-Token": session.csrf_token } : {};
}

function signedOut(status: number): void {
  if (status === 401) window.dispatchEvent(new CustomEvent("ordo:signed-out"));
}

export async function api<T>(path: string, init?: RequestInit & { json?: unknown }): Promise<T> {
  const options: RequestInit = { ...init };
  const method = (init?.method ?? "GET").toUpperCase();
  const headers: Record<string, string> = { ...((init?.headers as Record<string, string>) ?? {}) };
  if (method !== "GET" && method !== "HEAD") Object.assign(headers, csrfHeaders());
  if (init?.json !== undefined) {
    options.body = JSON.stringify(init.json);
    headers["content-type"] = "application/json";
  }
  options.headers = headers;
  const response = await reach(path, options);
  signedOut(response.status);
  if (!response.ok) return fail(response);
  noteBackend(true);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const thumbUrl = (assetId: string) => `/api/assets/${assetId}/thumbnail`;
export const originalUrl = (assetId: string) => `/api/assets/${assetId}/original`;

export function searchText(query: string, filter: Filter, topK = 40): Promise<SearchResponse> {
  return api("/api/search", { method: "POST", json: { query, filter, page_size: topK } });
}

export function searchLike(assetId: string, filter: Filter, topK = 40, excludeSelf = true): Promise<SearchResponse> {
  return api("/api/search", {
    method: "POST",
    json: { asset_id: assetId, filter, page_size: topK, exclude_self: excludeSelf },
  });
}

/** Search by an image file; later pages send the same file again with the previous page's token. */
export function searchImage(file: File, filter: Filter, topK = 40, pageToken = "", includeTotal = false): Promise<SearchResponse> {
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("page_size", String(topK));
  form.append("filter", JSON.stringify(filter));
  if (pageToken) form.append("page_token", pageToken);
  if (includeTotal) form.append("include_total_size", "true");
  return api("/api/search/image", { method: "POST", body: form });
}

export interface UploadItem {
  file: File;
  path: string;
}

/** One multipart request (the gateway streams it into one UploadImages call, so one job); XHR because
 * fetch cannot report upload progress. */
export function uploadFiles(items: UploadItem[], onProgress: (loaded: number, total: number) => void): Promise<UploadResponse> {
  const form = new FormData();
  for (const item of items) form.append("files", item.file, item.path);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/uploads?request_id=${crypto.randomUUID().replaceAll("-", "")}`);
    xhr.responseType = "json";
    for (const [name, value] of Object.entries(csrfHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => {
      signedOut(xhr.status);
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response as UploadResponse);
      else reject(new ApiError(xhr.response?.detail ?? xhr.statusText, xhr.status, xhr.response?.reason ?? ""));
    };
    xhr.onerror = () => reject(new ApiError("the upload was interrupted (network error)", 0, "NETWORK"));
    xhr.send(form);
  });
}

export const FINAL_STATES = new Set([
  "JOB_STATE_SUCCEEDED",
  "JOB_STATE_PARTIALLY_SUCCEEDED",
  "JOB_STATE_FAILED",
  "JOB_STATE_CANCELLED",
]);

/** Follows a job over server-sent events until it ends; resolves with the final job. */
export function watchJob(jobId: string, onUpdate: (job: Job) => void): Promise<Job> {
  return new Promise((resolve, reject) => {
    const source = new EventSource(`/api/jobs/${jobId}/events`);
    let last: Job | undefined;
    source.addEventListener("job", (e) => {
      last = JSON.parse((e as MessageEvent).data) as Job;
      onUpdate(last);
    });
    source.addEventListener("end", () => {
      source.close();
      if (last) resolve(last);
      else reject(new ApiError("the job stream ended without news", 0, "NO_JOB"));
    });
    source.addEventListener("error", (e) => {
      const data = (e as MessageEvent).data;
      if (data) {
        source.close();
        const body = JSON.parse(data);
        reject(new ApiError(body.detail, 0, body.reason));
      } else if (last && FINAL_STATES.has(last.state)) {
        source.close();
        resolve(last);
      } else if (source.readyState === EventSource.CLOSED) {
        reject(new ApiError(`lost the progress stream of job ${jobId}`, 0, "STREAM_LOST"));
      } // otherwise EventSource reconnects by itself
    });
  });
}

export const n = (value: string | number | undefined) => Number(value ?? 0);
export const short = (state: string, prefix: string) => state.replace(prefix, "").toLowerCase().replaceAll("_", " ");

// --- 16b ---
// Whether the gateway and the services behind it answer. Every call reports here; main.ts shows one banner
// on every page while they do not, instead of each view guessing (and saying "no map yet").
const DOWN_REASONS = new Set(["SERVICE_UNAVAILABLE", "SERVICE_TIMEOUT", "GATEWAY_UNREACHABLE"]);
export const GATEWAY_UNREACHABLE = "the Ordo gateway cannot be reached (is `ordo up` running?)";
let backendUp = true;

export function noteBackend(up: boolean, message = ""): void {
  if (up === backendUp && up) return;
  backendUp = up;
  window.dispatchEvent(new CustomEvent("ordo:backend", { detail: { up, message } }));
}

/** fetch, with a network failure (the gateway gone) turned into Ordo's error instead of "Failed to fetch". */
export async function reach(path: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(path, init);
  } catch (err) {
    if ((err as Error)?.name === "AbortError") throw err;
    noteBackend(false, GATEWAY_UNREACHABLE);
    throw new ApiError(GATEWAY_UNREACHABLE, 0, "GATEWAY_UNREACHABLE");
  }
}

/** Which services answer: null when all do, else a sentence naming the ones that do not. */
export async function probeBackend(): Promise<string | null> {
  try {
    const response = await reach("/api/status");
    if (response.status === 401 || response.status === 403) return null; // signed out: not an outage
    if (!response.ok) return (await response.json().catch(() => ({})))?.detail ?? `the gateway answered ${response.status}`;
    const body = (await response.json()) as { services: Record<string, string> };
    const down = Object.entries(body.services).filter(([, state]) => state !== "SERVING");
    return down.length ? `Ordo services not answering: ${down.map(([name, state]) => `${name} (${state.toLowerCase()})`).join(", ")}` : null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** A failure as a person should read it: Ordo's message and its reason, never a bare transport error. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.reason ? `${err.message} (${err.reason})` : err.message;
  if (err instanceof TypeError) return GATEWAY_UNREACHABLE;
  return err instanceof Error ? err.message : String(err);
}
