// Jobs / ops: services' health and counts, recent jobs with live progress and ETA, the queue dashboard.
import { api, FINAL_STATES, Job, n, watchJob } from "../api";
import { h } from "../dom";
import { jobCard, reportError, updateJobCard } from "./common";

interface Status {
  services: Record<string, string>;
  stats: Record<string, string | number> | null;
  queue_dashboard_url: string;
}

export async function jobsView(root: HTMLElement): Promise<void> {
  root.replaceChildren(h("h1", {}, "Jobs"), h("p", { class: "status" }, "Loading…"));
  try {
    const [status, { jobs }] = await Promise.all([api<Status>("/api/status"), api<{ jobs: Job[] }>("/api/jobs?page_size=20")]);
    const health = h(
      "ul",
      { class: "health", "aria-label": "Services" },
      ...Object.entries(status.services).map(([name, state]) => h("li", { class: state === "SERVING" ? "ok" : "bad" }, `${name}: ${state.toLowerCase()}`)),
    );
    const stats = status.stats
      ? h("p", {}, `${n(status.stats.asset_count)} assets · ${n(status.stats.vector_count)} vectors · model ${status.stats.model_id} (${status.stats.device || "?"}) · ${status.stats.mode}`)
      : null;
    const dashboard = status.queue_dashboard_url
      ? h("a", { href: status.queue_dashboard_url, target: "_blank", rel: "noopener" }, "Queue dashboard")
      : h("span", { class: "muted" }, "Queue dashboard: set ORDO_QUEUE_DASHBOARD_URL (e.g. Flower) to link it here.");
    const list = h("div", { class: "jobs", "aria-label": "Recent jobs" });
    for (const job of jobs) {
      const card = jobCard(job);
      list.append(card);
      if (!FINAL_STATES.has(job.state)) watchJob(job.job_id, (j) => updateJobCard(card, j)).catch(reportError);
    }
    if (!jobs.length) list.append(h("p", {}, "No jobs yet."));
    root.replaceChildren(h("h1", {}, "Jobs"), health, stats ?? "", h("p", {}, dashboard), list);
  } catch (err) {
    reportError(err);
  }
}
