import { $, clear, el, svg, table, when } from "../dom";
import {
  type BySource,
  byVolume,
  hourSlots,
  OUTCOMES,
  type Outcome,
  type PerHour,
  type Slot,
  stackedBars,
  totalsOf,
} from "../pure";
import type { Section } from "../section";
import { api } from "../session";

interface Parked {
  destination: string;
  host: string;
  sources: string[];
  state: string;
  outageSince: string | null;
  events: number;
  batches: number;
  oldest: string | null;
}

interface Overview {
  from: string;
  to: string;
  perHour: PerHour;
  bySource: BySource;
  backlog: { messages: number; bytes?: number; oldestAt?: string } | null;
  backlogNote?: string;
  parked: Parked[];
  records: { source: string; bytes: number; budget: number; rowsOnly: number }[];
}

const OUTCOME_LABEL: Record<Outcome, string> = {
  delivered: "delivered",
  deadLettered: "dead-lettered",
  dropped: "dropped",
  refused: "refused",
};

const hourLabel = (ms: number) => `${new Date(ms).toISOString().slice(5, 13).replace("T", " ")}:00`;

function chart(title: string, slots: Slot[]) {
  // A wide box: on a desktop the chart stays low, on a phone it shrinks as a whole.
  const [width, height, left, top, bottom] = [1000, 150, 44, 8, 22];
  const { top: max, bars } = stackedBars(slots, width - left, height);
  const sums = OUTCOMES.map((o) => `${OUTCOME_LABEL[o]} ${slots.reduce((sum, slot) => sum + slot[o], 0)}`);
  const first = slots[0]?.hour ?? 0;
  const last = slots.at(-1)?.hour ?? 0;
  const tick = (x: number, y: number, label: string, anchor?: string) =>
    svg("text", { x, y, "text-anchor": anchor, class: "tick" }, label);
  return el(
    "figure",
    {},
    el("figcaption", {}, `${title}: ${sums.join(", ")}`),
    svg(
      "svg",
      {
        viewBox: `0 0 ${width} ${height + top + bottom}`,
        class: "chart",
        role: "img",
        "aria-label": `Events per hour, ${title.toLowerCase()}: ${sums.join(", ")}`,
      },
      svg(
        "g",
        { transform: `translate(${left} ${top})` },
        svg("line", { x1: 0, y1: height, x2: width - left, y2: height, class: "axis" }),
        svg("line", { x1: 0, y1: 0, x2: width - left, y2: 0, class: "grid" }),
        tick(-6, 4, String(max), "end"),
        tick(-6, height, "0", "end"),
        tick(0, height + 16, hourLabel(first)),
        tick(width - left, height + 16, hourLabel(last), "end"),
        bars.map((bar) =>
          svg(
            "rect",
            { x: bar.x, y: bar.y, width: bar.width, height: bar.height, class: `bar ${bar.outcome}` },
            svg("title", {}, `${hourLabel(bar.hour)} UTC: ${bar.value} ${OUTCOME_LABEL[bar.outcome]}`),
          ),
        ),
      ),
    ),
  );
}

function backlogText({ backlog, backlogNote }: Partial<Overview>) {
  if (!backlog) {
    return `Queue backlog: not shown: this platform offers no queue metrics ${
      backlogNote ? `(the relay says: ${backlogNote}).` : "(the local simulator, for one)."
    }`;
  }
  return `Queue backlog: ${backlog.messages} message(s)${
    backlog.bytes !== undefined ? `, ${backlog.bytes} bytes` : ""
  }${backlog.oldestAt ? `, the oldest from ${when(Date.parse(backlog.oldestAt))}` : ""}.`;
}

const HEADINGS = ["Source", "Event", "Delivered", "Dead-lettered", "Dropped", "Refused", "Last seen"];
const PARKED_HEADINGS = ["Destination", "Host (sources)", "State", "Parked events", "Batches", "Oldest", ""];

/** Outage mode: what waits for each destination, and the operator's hold or resume. */
function parkedTable(parked: Parked[], reload: () => Promise<void>) {
  const act = (name: string, action: "hold" | "resume") =>
    el(
      "button",
      {
        type: "button",
        onclick: async () => {
          await api(`/admin/destinations/${encodeURIComponent(name)}/${action}`, { method: "POST" });
          await reload();
        },
      },
      action === "hold" ? "Hold" : "Resume",
    );
  const rows = parked.map((p) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, p.destination),
      el("td", {}, `${p.host} (${p.sources.join(", ") || "no source now"})`),
      el(
        "td",
        {},
        p.outageSince && p.state !== "held" ? `${p.state} since ${when(Date.parse(p.outageSince))}` : p.state,
      ),
      el("td", { class: "number" }, String(p.events)),
      el("td", { class: "number" }, String(p.batches)),
      el("td", {}, p.oldest ? when(Date.parse(p.oldest)) : "none"),
      el("td", {}, act(p.destination, p.state === "held" ? "resume" : "hold")),
    ),
  );
  return table("Parked batches per destination (outage mode; not dead letters)", PARKED_HEADINGS, rows);
}

function budgetText(records: Overview["records"]) {
  const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`;
  return records.map(
    (r) =>
      `${r.source}: ${mb(r.bytes)} of ${mb(r.budget)} kept for records${r.rowsOnly ? `, ${r.rowsOnly} kept as a row only (over budget)` : ""}.`,
  );
}

export const overview: Section = {
  async load() {
    // One question for both charts and the table: the last day is the last 24 of the week's hours.
    const week = await api<Overview>("/admin/overview?hours=168");
    const { perHour, bySource } = week.body;
    if (week.status !== 200 || !perHour || !bySource) {
      clear(
        $("#overview-body"),
        el("p", { class: "bad" }, `The overview is not available (the relay answered ${week.status}).`),
      );
      return;
    }
    const rows = byVolume(totalsOf(bySource)).map((t) =>
      el(
        "tr",
        {},
        el("td", {}, t.source),
        el("th", { scope: "row" }, t.event),
        ...OUTCOMES.map((o) => el("td", { class: "number" }, String(t[o]))),
        el("td", {}, when(t.lastSeen)),
      ),
    );
    clear(
      $("#overview-body"),
      el("p", {}, backlogText(week.body)),
      el(
        "ul",
        { class: "legend", "aria-label": "Outcomes" },
        OUTCOMES.map((o) => el("li", {}, el("span", { class: `swatch ${o}` }), OUTCOME_LABEL[o])),
      ),
      chart("Last 24 hours", hourSlots(perHour, 24)),
      chart("Last 7 days", hourSlots(perHour)),
      table("By event name, last 7 days (times in UTC)", HEADINGS, rows),
      ...(rows.length ? [] : [el("p", {}, "No events in the last 7 days.")]),
      parkedTable(week.body.parked ?? [], () => overview.load()),
      ...budgetText(week.body.records ?? []).map((line) => el("p", {}, line)),
    );
  },
};
