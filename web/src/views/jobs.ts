// Jobs / ops: services' health and counts, recent jobs with live progress and ETA, the queue dashboard.
import { api, describeError, FINAL_STATES, Job, n, watchJob } from "../api";
import { h } from "../dom";
import { jobCard, reportError, updateJobCard } from "./common";

interface Status {
  services: Record<string, string>;
  stats: Record<string, string | number> | null;
  queue_dashboard_url: string;
  ops_url: string;
}

// Ordo's ops view, read through the gateway (`/api/ops`, admin keys): the metrics port sends no CORS headers.
interface Ops {
  queue?: Record<string, number> & { error?: string };
  dead_letters?: { count?: number; recent?: { reason: string; source_uri: string; message: string }[]; error?: string };
  workers?: { name: string; images_per_busy_second?: number; images?: number }[] | { error: string };
}

async function opsSummary(url: string): Promise<HTMLElement> {
  const link = h("a", { href: url, target: "_blank", rel: "noopener" }, "Ops view");
  try {
    const ops = await api<Ops>("/api/ops");
    const queue = ops.queue && !ops.queue.error ? Object.entries(ops.queue).map(([q, depth]) => `${q}: ${depth}`).join(", ") : "?";
    const workers = Array.isArray(ops.workers)
      ? ops.workers.map((w) => `${w.name}${w.images_per_busy_second ? ` (${w.images_per_busy_second.toFixed(1)} img/s busy)` : ""}`).join(", ") || "none"
      : "?";
    const letters = ops.dead_letters?.recent ?? [];
    return h(
      "section",
      { class: "ops", "aria-label": "Queue and workers" },
      h("p", {}, link, ` · queue depth ${queue} · dead letters ${ops.dead_letters?.count ?? "?"} · workers ${workers}`),
      letters.length
        ? h("ul", { class: "failures" }, ...letters.slice(0, 5).map((d) => h("li", {}, h("code", {}, d.reason), ` ${d.source_uri}: ${d.message}`)))
        : "",
    );
  } catch {
    return h("p", {}, link, " (not reachable from this page)");
  }
}

// Jobs started elsewhere (the CLI, another tab) show up while the page is open.
const REFRESH_MS = 5000;
let refresh: number | undefined;

export async function jobsView(root: HTMLElement): Promise<void> {
  window.clearTimeout(refresh);
  root.replaceChildren(h("h1", {}, "Jobs"), h("p", { class: "status" }, "Loading…"));
  const health = h("ul", { class: "health", "aria-label": "Services" });
  const stats = h("p", {});
  const dashboard = h("p", {});
  const list = h("div", { class: "jobs", "aria-label": "Recent jobs" });
  const cards = new Map<string, HTMLElement>();

  async function update(): Promise<void> {
    const [status, { jobs }] = await Promise.all([api<Status>("/api/status"), api<{ jobs: Job[] }>("/api/jobs?page_size=20")]);
    health.replaceChildren(
      ...Object.entries(status.services).map(([name, state]) => h("li", { class: state === "SERVING" ? "ok" : "bad" }, `${name}: ${state.toLowerCase()}`)),
    );
    const s = status.stats;
    stats.textContent = s ? `${n(s.asset_count)} assets · ${n(s.vector_count)} vectors · model ${s.model_id} (${s.device || "?"}) · ${s.mode}` : "";
    dashboard.replaceChildren(
      status.queue_dashboard_url
        ? h("a", { href: status.queue_dashboard_url, target: "_blank", rel: "noopener" }, "Queue dashboard")
        : h("span", { class: "muted" }, "Queue dashboard: set ORDO_QUEUE_DASHBOARD_URL (e.g. Flower) to link it here."),
      status.ops_url ? await opsSummary(status.ops_url) : "",
    );
    // Newest first: new jobs go on top; known ones keep their card (and its live stream).
    for (const job of [...jobs].reverse()) {
      if (cards.has(job.job_id)) continue;
      const card = jobCard(job);
      cards.set(job.job_id, card);
      list.prepend(card);
      if (!FINAL_STATES.has(job.state)) watchJob(job.job_id, (j) => updateJobCard(card, j)).catch(reportError);
    }
    if (!cards.size) list.replaceChildren(h("p", {}, "No jobs yet."));
    else list.querySelector(":scope > p")?.remove();
  }

  function schedule(): void {
    refresh = window.setTimeout(() => {
      if (!location.hash.startsWith("#/jobs") || !root.contains(list)) return;
      update().catch(reportError).finally(schedule);
    }, REFRESH_MS);
  }

  // The page may have moved on while the first load was in flight: a late answer must not draw Jobs over the
  // view the user went to (it did, over the Library, under load).
  const current = () => location.hash.startsWith("#/jobs");
  try {
    await update();
    if (!current()) return;
    root.replaceChildren(h("h1", {}, "Jobs"), health, stats, dashboard, list);
    schedule();
  } catch (err) {
    if (!current()) return;
    // Not "Loading…" forever: say why there is nothing, and try again on the usual beat.
    root.replaceChildren(h("h1", {}, "Jobs"), h("p", { class: "error", role: "alert" }, `Jobs cannot be loaded: ${describeError(err)}`));
    refresh = window.setTimeout(() => {
      if (location.hash.startsWith("#/jobs") && root.querySelector("p.error")) void jobsView(root);
    }, REFRESH_MS);
  }
}
