import { $, clear, el, table, when } from "../dom";
import type { Section } from "../section";
import { api } from "../session";
import { showSources } from "./playground";

interface Health {
  status: string;
  version: string;
  environment: string;
  bindings: Record<string, boolean>;
  secrets: Record<string, boolean>;
  problems: string[];
  sources: {
    name: string;
    destination?: string;
    endpoint?: string;
    eventNames?: string;
    trackEvents?: string;
    tokens: number;
    writeKey: boolean;
    delivery: {
      lastSuccessAt: number | null;
      lastFailureAt: number | null;
      lastStatus: number | null;
    } | null;
  }[];
}

interface Alerts {
  entries: { sentAt: number; kind: string; source: string; count: number }[];
}

function region(endpoint: string | undefined) {
  if (!endpoint) return "unknown";
  if (endpoint.includes("eu1") || endpoint.includes("-eu.")) return "EU";
  if (endpoint.includes("api.segment.io") || endpoint.includes("cdp.customer.io")) return "US";
  return new URL(endpoint).host;
}

const HEADINGS = [
  "Source",
  "Destination, region",
  "Names (events / track)",
  "Tokens",
  "Write key",
  "Last delivery",
  "Last failure (status)",
];

export const status: Section = {
  async load() {
    const [{ body: health }, { body: alerts }] = await Promise.all([
      api<Health>("/health"),
      api<Alerts>("/admin/alerts"),
    ]);
    const sources = health.sources ?? [];
    showSources(sources.map((s) => s.name));
    const named = (values: Record<string, boolean> | undefined, yes: string, no: string) =>
      Object.entries(values ?? {})
        .map(([name, set]) => `${name} ${set ? yes : no}`)
        .join(", ");
    const rows = sources.map((s) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, s.name),
        el("td", {}, `${s.destination || "segment"}, ${region(s.endpoint)}`),
        el("td", {}, `${s.eventNames} / ${s.trackEvents}`),
        el("td", {}, String(s.tokens)),
        el("td", {}, s.writeKey ? "set" : "missing"),
        el("td", {}, when(s.delivery?.lastSuccessAt)),
        el(
          "td",
          {},
          s.delivery?.lastFailureAt
            ? `${when(s.delivery.lastFailureAt)} (${s.delivery.lastStatus ?? "no answer"})`
            : "none",
        ),
      ),
    );
    const sent = alerts.entries ?? [];
    clear(
      $("#status-body"),
      el(
        "p",
        { class: health.status === "ok" ? "ok" : "bad" },
        `Relay ${health.status} (version ${health.version}, environment ${health.environment})`,
      ),
      el(
        "p",
        {},
        `Bindings: ${named(health.bindings, "bound", "missing")}. Secrets: ${named(health.secrets, "set", "not set")}.`,
      ),
      health.problems?.length
        ? el(
            "ul",
            { class: "bad", "aria-label": "Problems" },
            health.problems.map((p) => el("li", {}, p)),
          )
        : el("p", {}, "No configuration problems."),
      table("Sources", HEADINGS, rows),
      el("h3", {}, "Recent alerts"),
      sent.length
        ? el(
            "ul",
            {},
            sent.map((a) =>
              el("li", {}, `${when(a.sentAt)} ${a.kind} (${a.source}): ${a.count} occurrence(s)`),
            ),
          )
        : el("p", {}, "No alert within its interval."),
    );
  },
};
