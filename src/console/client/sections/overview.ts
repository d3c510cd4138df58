import { $, clear, el, svg, table, when } from "../dom";
import { byVolume, type Counts, type HourRow, hourSlots, OUTCOMES, type Outcome, stackedBars } from "../pure";
import type { Section } from "../section";
import { api } from "../session";

interface Overview {
  from: string;
  to: string;
  hours: HourRow[];
  totals: (Counts & { source: string; event: string; lastSeen: string | null })[];
  backlog: { messages: number; bytes?: number; oldestAt?: string } | null;
  backlogNote?: string;
}

const OUTCOME_LABEL: Record<Outcome, string> = {
  delivered: "delivered",
  deadLettered: "dead-lettered",
  dropped: "dropped",
  refused: "refused",
};

const hourLabel = (ms: number) => `${new Date(ms).toISOString().slice(5, 13).replace("T", " ")}:00`;

function chart(title: string, overview: Partial<Overview>) {
  // A wide box: on a desktop the chart stays low, on a phone it shrinks as a whole.
  const [width, height, left, top, bottom] = [1000, 150, 44, 8, 22];
  const slots = hourSlots(overview.hours, overview.from ?? "", overview.to ?? "");
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

export const overview: Section = {
  async load() {
    const [day, week] = await Promise.all([
      api<Overview>("/admin/overview?hours=24"),
      api<Overview>("/admin/overview?hours=168"),
    ]);
    if (day.status !== 200 || week.status !== 200) {
      clear(
        $("#overview-body"),
        el("p", { class: "bad" }, `The overview is not available (the relay answered ${day.status}).`),
      );
      return;
    }
    const rows = byVolume(week.body.totals).map((t) =>
      el(
        "tr",
        {},
        el("td", {}, t.source),
        el("th", { scope: "row" }, t.event),
        ...OUTCOMES.map((o) => el("td", { class: "number" }, String(t[o]))),
        el("td", {}, t.lastSeen ? when(Date.parse(t.lastSeen)) : "never"),
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
      chart("Last 24 hours", day.body),
      chart("Last 7 days", week.body),
      table("By event name, last 7 days (times in UTC)", HEADINGS, rows),
      ...(rows.length ? [] : [el("p", {}, "No events in the last 7 days.")]),
    );
  },
};
