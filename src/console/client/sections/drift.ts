import { $, clear, el, when } from "../dom";
import type { Section } from "../section";
import { api } from "../session";

interface DriftEntry {
  source: string;
  kind: "event" | "property";
  event: string;
  key: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
}

export const drift: Section = {
  async load() {
    const { body } = await api<{ entries: DriftEntry[] }>("/admin/drift");
    const entries = (body.entries ?? []).sort((a, b) => b.lastSeen - a.lastSeen);
    clear(
      $("#drift-rows"),
      ...entries.map((d) =>
        el(
          "tr",
          {},
          el("td", {}, d.source),
          el("td", {}, d.kind === "event" ? "unknown event" : "new property"),
          el("td", {}, d.event),
          el("td", {}, d.key || ""),
          el("td", {}, when(d.firstSeen)),
          el("td", {}, when(d.lastSeen)),
          el("td", {}, String(d.count)),
        ),
      ),
    );
    $("#drift-empty").hidden = entries.length > 0;
  },
};
