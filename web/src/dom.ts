// Tiny DOM helpers: enough structure without a framework.

type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(key.replace(/^on/, ""), value);
    else if (key === "class") el.className = String(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

export function toast(message: string, isError = false): void {
  const box = document.getElementById("toast")!;
  box.textContent = message;
  box.className = isError ? "show error" : "show";
  window.setTimeout(() => (box.className = ""), 5000);
}

export function errorText(err: unknown): string {
  // Ordo's errors carry a machine-readable reason: show it beside the message (ApiError, api.ts).
  const reason = (err as { reason?: unknown } | null)?.reason;
  if (err instanceof Error) return typeof reason === "string" && reason ? `${err.message} (${reason})` : err.message;
  return String(err);
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let timer: number | undefined;
  return (...args: A) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
}

export function formatEta(seconds: number): string {
  if (!(seconds >= 0)) return "ETA unknown";
  if (seconds < 60) return `ETA ${Math.ceil(seconds)} s`;
  return `ETA ${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
