// Colour groups and the legend: which colour each point gets (by cluster, kind or date), the "Colour by" select
// (fetching the run's map attributes the first time kind or date is asked for), and the legend entries that show,
// hide or highlight a group. Split out of map.ts because it is the map's only model of *what* the points are;
// drawing, hit-testing and selection just read `groups`, `groupOf` and `highlighted`.
import { api, describeError, Projection } from "../api";
import { h } from "../dom";
import { Analysis, clusterName } from "../state";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const DATE_RAMP = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"];
const NOISE = "#c8c8c8";
const UNKNOWN = "#9a9a9a";

export type ColourBy = "cluster" | "kind" | "date";

export interface Group {
  key: string;
  label: string;
  colour: string;
  idx: Int32Array;
  hidden: boolean;
}

interface Attributes {
  kinds: string[];
  captured: (number | null)[];
  ingested: (number | null)[];
}

interface LegendHooks {
  /** What is drawn changed (a group shown, hidden or highlighted, or new colours). */
  redraw: () => void;
  /** The groups were rebuilt for `by`. */
  coloured: (by: ColourBy) => void;
  /** Kind or date colours could not be loaded; the select is back on cluster. */
  failed: (message: string) => void;
}

export class Legend {
  /** One entry per group, with its point indexes. */
  groups: Group[] = [];
  /** Point → its group's index in `groups`. */
  readonly groupOf: Int32Array;
  /** A group index drawn in full while the rest is faint, or null. */
  highlighted: number | null = null;
  readonly list = h("ul", { class: "legend", "aria-label": "Legend: show, hide or highlight a group" });
  readonly select = h(
    "select",
    { id: "map-colour", "aria-label": "Colour by" },
    h("option", { value: "cluster" }, "Colour by cluster"),
    h("option", { value: "kind" }, "Colour by kind"),
    h("option", { value: "date" }, "Colour by date"),
  );
  private attributes: Attributes | null = null;

  /** ``state``: the latest analysis (cluster order and names), read at each rebuild since a move refreshes it;
   * ``pts.cluster_ids`` is read at each rebuild too, for the same reason. */
  constructor(private readonly pts: Projection, private readonly state: () => Analysis, private readonly hooks: LegendHooks) {
    this.groupOf = new Int32Array(pts.count);
    this.select.addEventListener("change", () => void this.choose());
  }

  /** The select changed: load the attributes kind and date need (once), then rebuild. */
  private async choose(): Promise<void> {
    const by = this.select.value as ColourBy;
    if (by !== "cluster" && !this.attributes) {
      try {
        this.attributes = await api<Attributes>(`/api/runs/${encodeURIComponent(this.pts.run_id)}/map-attributes`);
      } catch (err) {
        this.hooks.failed(`Cannot colour by ${by}: ${describeError(err)}`);
        this.select.value = "cluster";
        return;
      }
    }
    this.build(by);
    this.hooks.redraw();
  }

  /** Regroups every point for `by`; all groups shown, none highlighted. */
  build(by: ColourBy): void {
    const count = this.pts.count;
    const attributes = this.attributes;
    const keyOf: string[] = new Array(count);
    const meta = new Map<string, { label: string; colour: string }>();
    if (by === "cluster") {
      // Colours follow the run's cluster order (not the order points appear in), so a cluster keeps its colour
      // when images move in or out of it; a cluster the page does not know yet comes after the known ones.
      const state = this.state();
      const order = new Map<string, number>(state.clusters.map((c, i) => [c.cluster_id, i]));
      for (let i = 0; i < count; i++) {
        const c = this.pts.cluster_ids[i] || "";
        keyOf[i] = c;
        if (!meta.has(c)) {
          if (c && !order.has(c)) order.set(c, order.size);
          meta.set(c, { label: clusterName(state, c || undefined), colour: c ? PALETTE[order.get(c)! % PALETTE.length] : NOISE });
        }
      }
    } else if (by === "kind") {
      const colours: Record<string, string> = { image: PALETTE[0], object: PALETTE[1], text: PALETTE[2], region: PALETTE[1] };
      for (let i = 0; i < count; i++) {
        const k = attributes?.kinds[i] || "unknown";
        keyOf[i] = k;
        if (!meta.has(k)) meta.set(k, { label: k === "region" ? "region (object or text)" : k, colour: colours[k] ?? UNKNOWN });
      }
    } else {
      // Capture date where known, else the ingest date; eight equal steps between the oldest and newest.
      const when = (i: number) => attributes?.captured[i] ?? attributes?.ingested[i] ?? null;
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < count; i++) {
        const t = when(i);
        if (t !== null) (lo = Math.min(lo, t)), (hi = Math.max(hi, t));
      }
      const steps = DATE_RAMP.length, width = (hi - lo) / steps || 1;
      const day = (t: number) => new Date(t).toISOString().slice(0, 10);
      for (let i = 0; i < count; i++) {
        const t = when(i);
        if (t === null) {
          keyOf[i] = "none";
          if (!meta.has("none")) meta.set("none", { label: "no date", colour: UNKNOWN });
          continue;
        }
        const b = Math.min(steps - 1, Math.floor((t - lo) / width));
        keyOf[i] = `d${b}`;
        if (!meta.has(keyOf[i])) meta.set(keyOf[i], { label: `${day(lo + b * width)} – ${day(lo + (b + 1) * width)}`, colour: DATE_RAMP[b] });
      }
    }
    const members = new Map<string, number[]>();
    for (let i = 0; i < count; i++) {
      if (!members.has(keyOf[i])) members.set(keyOf[i], []);
      members.get(keyOf[i])!.push(i);
    }
    const keys = by === "date" ? [...members.keys()].sort() : [...members.keys()];
    this.groups = keys.map((key) => ({ key, ...meta.get(key)!, idx: Int32Array.from(members.get(key)!), hidden: false }));
    this.groups.forEach((g, gi) => g.idx.forEach((i) => (this.groupOf[i] = gi)));
    this.highlighted = null;
    this.render();
    this.hooks.coloured(by);
  }

  render(): void {
    this.list.replaceChildren(
      ...this.groups.map((g, gi) =>
        h(
          "li",
          { "data-key": g.key, class: [g.hidden ? "hidden" : "", this.highlighted === gi ? "highlighted" : ""].join(" ").trim() },
          h(
            "button",
            { type: "button", class: "toggle", "aria-pressed": String(!g.hidden), title: "Show or hide", onclick: () => this.toggle(gi) },
            h("span", { class: "swatch", style: `background:${g.colour}` }),
            `${g.label} (${g.idx.length})`,
          ),
          h("button", { type: "button", class: "spot", "aria-pressed": String(this.highlighted === gi), "aria-label": `Highlight ${g.label}`, title: "Highlight", onclick: () => this.spotlight(gi) }, "◎"),
        ),
      ),
    );
  }

  /** The point indexes of the groups not hidden. */
  shown(): Int32Array[] {
    return this.groups.filter((g) => !g.hidden).map((g) => g.idx);
  }

  /** Every group shown, none highlighted (Reset); the caller re-renders. */
  showAll(): void {
    this.groups.forEach((g) => (g.hidden = false));
    this.highlighted = null;
  }

  /** Rebuilds the cluster colours after a move, keeping hidden what was hidden; nothing when not coloured by
   * cluster. */
  recolour(): void {
    if (this.select.value !== "cluster") return;
    const hidden = new Set(this.groups.filter((g) => g.hidden).map((g) => g.key));
    this.build("cluster");
    for (const g of this.groups) g.hidden = hidden.has(g.key);
    this.render();
    this.hooks.redraw();
  }

  private toggle(gi: number): void {
    this.groups[gi].hidden = !this.groups[gi].hidden;
    if (this.groups[gi].hidden && this.highlighted === gi) this.highlighted = null;
    this.render();
    this.hooks.redraw();
  }

  private spotlight(gi: number): void {
    this.highlighted = this.highlighted === gi ? null : gi;
    if (this.highlighted !== null) this.groups[gi].hidden = false;
    this.render();
    this.hooks.redraw();
  }
}
