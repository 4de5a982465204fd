// Pieces several views use: the results grid (keyboard navigable), the image detail dialog, job progress.
import { Asset, FINAL_STATES, Hit, Job, n, originalUrl, searchLike, short, thumbUrl } from "../api";
import { errorText, formatBytes, formatEta, h, toast } from "../dom";
import { analysis, clusterName } from "../state";

export interface GridItem {
  asset: Asset;
  score?: number;
}

/** A grid of thumbnails. Arrow keys move between results, Enter or click opens the detail view. */
export function resultsGrid(items: GridItem[], label: string, onMoreLike?: (assetId: string) => void): HTMLElement {
  const grid = h("ul", { class: "grid", role: "list", "aria-label": label, "data-count": items.length });
  items.forEach((item, index) => {
    const a = item.asset;
    const button = h(
      "button",
      {
        class: "tile",
        type: "button",
        "data-asset-id": a.asset_id,
        "aria-label": `${a.file_name}${item.score !== undefined ? `, score ${item.score.toFixed(3)}` : ""}`,
        onclick: () => openDetail(a.asset_id, onMoreLike),
        onkeydown: (e: Event) => moveFocus(grid, index, e as KeyboardEvent),
      },
      h("img", { src: thumbUrl(a.asset_id), alt: "", loading: "lazy", width: 160, height: 160 }),
      h(
        "span",
        { class: "caption" },
        h("span", { class: "name" }, a.file_name),
        item.score !== undefined ? h("span", { class: "score" }, item.score.toFixed(3)) : null,
      ),
    );
    const like = onMoreLike
      ? h(
          "button",
          {
            class: "like",
            type: "button",
            title: "More like this",
            "aria-label": `More like ${a.file_name}`,
            tabindex: -1, // keyboard users reach it from the detail view; arrows move between results
            onclick: () => onMoreLike(a.asset_id),
          },
          "≈",
        )
      : null;
    grid.append(h("li", {}, button, like));
  });
  if (!items.length) grid.append(h("li", { class: "empty" }, "No images."));
  return grid;
}

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

export const hitsToItems = (hits: Hit[]): GridItem[] => hits.map((hit) => ({ asset: hit.asset, score: hit.score }));

/** The detail dialog: the image, its metadata, its cluster and its nearest neighbours. */
export async function openDetail(assetId: string, onMoreLike?: (assetId: string) => void): Promise<void> {
  document.querySelector("dialog.detail")?.remove();
  const opener = document.activeElement as HTMLElement | null;
  const body = h("div", { class: "detail-body" }, h("p", {}, "Loading…"));
  const dialog = h(
    "dialog",
    { class: "detail", "aria-label": "Image details" },
    h("button", { class: "close", type: "button", "aria-label": "Close", onclick: () => dialog.close() }, "×"),
    body,
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    opener?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  try {
    const [{ asset }, state] = await Promise.all([
      (await fetch(`/api/assets/${assetId}`)).json() as Promise<{ asset: Asset }>,
      analysis(),
    ]);
    const cluster = state.clusterOf.get(assetId);
    const rows: [string, string][] = [
      ["File", asset.file_name],
      ["Source", asset.source_uri],
      ["Type", asset.mime_type],
      ["Size", `${asset.width}×${asset.height}, ${formatBytes(n(asset.size_bytes))}`],
      ["Captured", asset.capture_time ?? "unknown"],
      ["Ingested", asset.ingest_time ?? ""],
      ["State", short(asset.state, "ASSET_STATE_")],
      ["Model", asset.model_id],
      [
        "Cluster",
        !state.clustering ? "no analysis yet" : state.mapped.has(assetId) ? clusterName(state, cluster) : "not in the latest analysis",
      ],
      ["Asset id", asset.asset_id],
    ];
    const neighbours = h("div", { class: "neighbours" }, h("p", {}, "Finding nearest neighbours…"));
    body.replaceChildren(
      h(
        "div",
        { class: "detail-grid" },
        h("img", { class: "original", src: originalUrl(assetId), alt: asset.file_name }),
        h(
          "div",
          {},
          h("h2", {}, asset.file_name),
          h("dl", { class: "meta" }, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
          onMoreLike
            ? h("button", { type: "button", onclick: () => (dialog.close(), onMoreLike(assetId)) }, "More like this")
            : null,
          cluster
            ? h("a", { href: `#/clusters/${encodeURIComponent(cluster)}`, onclick: () => dialog.close() }, "Open its cluster")
            : null,
        ),
      ),
      h("h3", {}, "Nearest neighbours"),
      neighbours,
    );
    const near = await searchLike(assetId, {}, 8);
    neighbours.replaceChildren(resultsGrid(hitsToItems(near.hits), "Nearest neighbours", onMoreLike));
  } catch (err) {
    body.replaceChildren(h("p", { class: "error" }, errorText(err)));
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
