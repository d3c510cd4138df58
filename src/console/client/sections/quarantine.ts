import { openDialog, type ReplayResult, showResults } from "../dialog";
import { $, block, clear, el, when } from "../dom";
import type { Section } from "../section";
import { api } from "../session";

interface Issue {
  path: string;
  message: string;
}

/** A list entry: no body; its first issues and how many it has. */
interface Entry {
  id: string;
  at: number;
  source: string;
  event: string;
  issues?: Issue[];
  issueCount?: number;
}

const path = (id: string, action = "") => `/admin/quarantine/${encodeURIComponent(id)}${action}`;
const issueText = (issue: Issue) => `${issue.path || "(body)"}: ${issue.message}`;

async function load() {
  const { body } = await api<{ entries: Entry[] }>("/admin/quarantine?limit=50");
  const entries = body.entries ?? [];
  // The list carries each entry's first issues; a record (and its body) is read on Details only.
  const issues = ({ issues = [], issueCount = 0 }: Entry) =>
    issues.map(issueText).join("; ") +
    (issueCount > issues.length ? ` (and ${issueCount - issues.length} more)` : "");
  clear(
    $("#quarantine-rows"),
    ...entries.map((entry) =>
      el(
        "tr",
        {},
        el("td", {}, when(entry.at)),
        el("td", {}, entry.source),
        el("td", {}, entry.event || "(unknown)"),
        el("td", {}, issues(entry)),
        el(
          "td",
          { class: "actions" },
          el("button", { type: "button", onclick: () => details(entry.id) }, "Details"),
          el("button", { type: "button", onclick: () => replay(entry.id) }, "Replay"),
          el("button", { type: "button", onclick: () => remove(entry.id) }, "Delete"),
        ),
      ),
    ),
  );
  $("#quarantine-empty").hidden = entries.length > 0;
}

async function details(id: string) {
  const { body } = await api<{ issues: Issue[]; rawBody: string }>(path(id));
  openDialog("Quarantined webhook", [
    el(
      "table",
      {},
      el("caption", {}, "Issues"),
      el(
        "tbody",
        {},
        (body.issues ?? []).map((issue) =>
          el("tr", {}, el("th", { scope: "row" }, issue.path || "(body)"), el("td", {}, issue.message)),
        ),
      ),
    ),
    ...block("Raw body", body.rawBody || "(empty)"),
  ]);
}

async function replay(id: string) {
  const { body } = await api<ReplayResult>(path(id, "/replay"), { method: "POST" });
  showResults([body.error ? { ...body, ok: false } : body]);
  await load();
}

function remove(id: string) {
  openDialog(
    "Delete this quarantined webhook?",
    [el("p", {}, "It is gone for good.")],
    "Confirm",
    async () => {
      await api(path(id), { method: "DELETE" });
      await load();
    },
  );
}

export const quarantine: Section = { load };
