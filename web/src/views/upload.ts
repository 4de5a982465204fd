// Upload: drag-and-drop files and folders (or pick them), per-file progress, then new / duplicate / failed.
import { currentSession, FileResult, Job, n, short, UploadItem, uploadFiles, watchJob } from "../api";
import { formatBytes, h } from "../dom";
import { analysis } from "../state";
import { jobCard, reportError, updateJobCard } from "./common";

/** Files of a dropped folder, recursively (the File System entries API; every browser has it). */
async function entryFiles(entry: FileSystemEntry, prefix = ""): Promise<UploadItem[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
    return [{ file, path: prefix + file.name }];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const items: UploadItem[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    for (const child of batch) items.push(...(await entryFiles(child, `${prefix}${entry.name}/`)));
  }
  return items;
}

export function uploadView(root: HTMLElement): void {
  const list = h("ol", { class: "files", "aria-label": "Files being uploaded" });
  const summary = h("p", { class: "summary", role: "status", "aria-live": "polite" });
  const jobs = h("div", { class: "jobs" });
  // The native inputs stay out of the tab order: the two buttons open them, and the zone takes drops.
  const fileInput = h("input", { id: "file-input", type: "file", multiple: true, accept: "image/*", class: "visually-hidden", tabindex: -1, "aria-hidden": "true" });
  const folderInput = h("input", { id: "folder-input", type: "file", webkitdirectory: true, class: "visually-hidden", tabindex: -1, "aria-hidden": "true" });
  const zone = h(
    "section",
    { class: "dropzone", "aria-label": "Drop images or folders here" },
    h("p", {}, h("strong", {}, "Drop images or folders here")),
    h(
      "p",
      {},
      h("button", { type: "button", id: "choose-files", onclick: () => fileInput.click() }, "Choose files"),
      " ",
      h("button", { type: "button", id: "choose-folder", onclick: () => folderInput.click() }, "Choose a folder"),
    ),
  );

  async function start(items: UploadItem[]): Promise<void> {
    // Everything goes to the server, which says why a file is not an image: the summary lists the reasons.
    const chosen = items;
    if (!chosen.length) return;
    const rows = chosen.map((item) => {
      const bar = h("progress", { max: item.file.size || 1, value: 0, "aria-label": `Upload progress of ${item.path}` });
      const outcome = h("span", { class: "outcome" }, "waiting");
      list.append(h("li", { "data-path": item.path }, h("span", { class: "name" }, item.path), h("span", { class: "size" }, formatBytes(item.file.size)), bar, outcome));
      return { item, bar, outcome };
    });
    summary.textContent = `Uploading ${chosen.length} file(s)…`;
    // One request carries every file in order, so the bytes sent so far say how far along each file is.
    const ends: number[] = [];
    chosen.reduce((sum, i) => (ends.push(sum + i.file.size), sum + i.file.size), 0);
    try {
      const response = await uploadFiles(chosen, (loaded, total) => {
        const scale = total / (ends[ends.length - 1] || 1); // multipart framing adds a little
        rows.forEach((row, i) => {
          const start = i ? ends[i - 1] : 0;
          row.bar.value = Math.max(0, Math.min(row.item.file.size, loaded / scale - start));
          if (row.outcome.textContent === "waiting" && loaded / scale > start) row.outcome.textContent = "sending";
        });
      });
      showResults(rows, response.results);
      const counts = { new: 0, duplicate: 0, failed: 0 };
      for (const r of response.results) counts[short(r.outcome, "FILE_OUTCOME_") as keyof typeof counts]++;
      summary.textContent = `${counts.new} new, ${counts.duplicate} duplicate, ${counts.failed} failed — embedding…`;
      summary.dataset.new = String(counts.new);
      summary.dataset.duplicate = String(counts.duplicate);
      summary.dataset.failed = String(counts.failed);
      const card = jobCard(response.job);
      jobs.prepend(card);
      const final = await watchJob(response.job.job_id, (job) => {
        updateJobCard(card, job);
        showWorkerFailures(rows, response.results, job);
      });
      updateJobCard(card, final);
      showWorkerFailures(rows, response.results, final);
      summary.textContent =
        `${n(final.succeeded)} new, ${n(final.duplicates)} duplicate, ${n(final.failed)} failed` +
        ` (${short(final.state, "JOB_STATE_")})`;
      summary.dataset.state = final.state;
      analysis(true);
    } catch (err) {
      summary.textContent = `Upload failed: ${err instanceof Error ? err.message : err}`;
      reportError(err);
    }
  }

  function showResults(rows: { item: UploadItem; bar: HTMLProgressElement; outcome: HTMLElement }[], results: FileResult[]): void {
    rows.forEach((row, i) => {
      const r = results[i];
      row.bar.value = row.item.file.size;
      if (!r) return;
      const kind = short(r.outcome, "FILE_OUTCOME_");
      row.outcome.className = `outcome ${kind}`;
      row.outcome.textContent = r.failure ? `failed: ${r.failure.reason} — ${r.failure.message}` : kind;
    });
  }

  if (currentSession()?.principal.role === "read") {
    // The nav hides Upload from a read key; a bookmark still lands here, so say why there is no drop zone.
    root.replaceChildren(h("h1", {}, "Upload"), h("p", { class: "error", role: "alert" }, "This key can search and browse but not upload (its role is read)."));
    return;
  }

  fileInput.addEventListener("change", () => {
    start(Array.from(fileInput.files ?? []).map((file) => ({ file, path: file.name })));
    fileInput.value = "";
  });
  folderInput.addEventListener("change", () => {
    start(Array.from(folderInput.files ?? []).map((file) => ({ file, path: file.webkitRelativePath || file.name })));
    folderInput.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const entries = Array.from(e.dataTransfer?.items ?? [])
      .map((item) => item.webkitGetAsEntry())
      .filter((x): x is FileSystemEntry => x !== null);
    const items = entries.length
      ? (await Promise.all(entries.map((entry) => entryFiles(entry)))).flat()
      : Array.from(e.dataTransfer?.files ?? []).map((file) => ({ file, path: file.name }));
    start(items);
  });

  root.replaceChildren(h("h1", {}, "Upload"), zone, fileInput, folderInput, summary, list, jobs);
}

// --- 16b ---
type Row = { item: UploadItem; bar: HTMLProgressElement; outcome: HTMLElement };

/** A file the server accepted ("new") can still fail in the worker (a truncated JPEG decodes only
 * partway): the job lists it among its failures, by source URI, and its row says so, with the reason. */
function showWorkerFailures(rows: Row[], results: FileResult[], job: Job): void {
  const failed = new Map(job.failures.map((f) => [f.source_uri, f]));
  rows.forEach((row, i) => {
    const f = results[i] && failed.get(results[i].source_uri);
    if (!f || row.outcome.classList.contains("failed")) return;
    row.outcome.className = "outcome failed";
    row.outcome.textContent = `failed: ${f.reason} — ${f.message}`;
  });
}
