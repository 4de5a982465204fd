// Pieces several views use: keyboard moves across a grid of tiles, job progress, error toasts. Images open in
// the shared viewer (viewer.ts) from every grid and the map; the old detail dialog is gone.
import { FINAL_STATES, Job, n, short } from "../api";
import { errorText, formatEta, h, toast } from "../dom";

/** Arrow keys, Home and End move focus across a grid of tiles (a roving focus shared by every result grid). */
export function moveFocus(grid: HTMLElement, index: number, e: KeyboardEvent): void {
  const tiles = Array.from(grid.querySelectorAll<HTMLButtonElement>("button.tile"));
  const columns = Math.max(1, Math.round(grid.clientWidth / (tiles[0]?.offsetWidth || 1)));
  const step: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
  if (e.key in step) {
    e.preventDefault();
    tiles[Math.min(tiles.length - 1, Math.max(0, index + step[e.key]))]?.focus();
  } else if (e.key === "Home") {
    e.preventDefault();
    tiles[0]?.focus();
  } else if (e.key === "End") {
    e.preventDefault();
    tiles[tiles.length - 1]?.focus();
  }
}

/** A live job card: progress bar, counts, rate, ETA and failures with reasons. */
export function jobCard(job: Job): HTMLElement {
  const card = h("section", { class: "job", "aria-label": `Job ${job.job_id}` });
  updateJobCard(card, job);
  return card;
}

export function updateJobCard(card: HTMLElement, job: Job): void {
  const done = n(job.succeeded) + n(job.duplicates) + n(job.failed);
  const total = n(job.total);
  const final = FINAL_STATES.has(job.state);
  card.dataset.state = job.state;
  card.replaceChildren(
    h(
      "header",
      {},
      h("strong", {}, `${job.kind} job`),
      h("code", {}, job.job_id.slice(0, 12)),
      h("span", { class: `state ${job.state.toLowerCase()}` }, short(job.state, "JOB_STATE_")),
    ),
    h("progress", { max: total || 1, value: done, "aria-label": "Job progress" }),
    h(
      "p",
      { class: "counts" },
      `${done} / ${total}${job.enumeration_done ? "" : "+"} done · ` +
        (job.kind === "ingest"
          ? `${n(job.succeeded)} new · ${n(job.duplicates)} duplicate · ${n(job.failed)} failed · ${n(job.pending)} pending · `
          : `${n(job.failed)} failed · `) +
        `${job.rate_per_second.toFixed(1)}/s` +
        (final ? "" : ` · ${formatEta(job.eta_seconds)}`),
    ),
    job.error ? h("p", { class: "error" }, job.error) : "",
    job.failures.length
      ? h(
          "ul",
          { class: "failures" },
          ...job.failures.map((f) => h("li", {}, h("code", {}, f.reason), ` ${f.source_uri}: ${f.message}`)),
        )
      : "",
  );
}

export function reportError(err: unknown): void {
  toast(errorText(err), true);
}
