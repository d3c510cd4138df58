import { openDialog, type ReplayResult, showResults } from "../dialog";
import { $, block, clear, el, query, setText, when } from "../dom";
import type { Section } from "../section";
import { api } from "../session";

interface Entry {
  id: string;
  event: string;
  eventId: string;
  reason: string;
  status: number | null;
  attempts: number;
  at: number;
}

interface Letter {
  id: string;
  event: string;
  eventId: string;
  reason: string;
  source: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  receivedAt: number;
  lastFailureAt: number;
  detail: string;
  messageIds: string[];
  message: { calls: string[] };
  rawBody: string;
  rawBodyBase64: string;
}

interface Preview {
  ok: boolean;
  reason: string;
  detail: string;
  outsideDedupWindow: boolean;
  ageHours: number;
  replayable: boolean;
  from: "stored" | "mapped";
  willSend: unknown[];
}

type Filter = { [name: string]: string };

const state: { cursor: string | null; filter: Filter } = { cursor: null, filter: {} };
const path = (id: string, action = "") => `/admin/dead-letters/${encodeURIComponent(id)}${action}`;

/** The filter form as the admin API reads it: names as typed, times (UTC) as milliseconds. */
function readFilter(): Filter {
  const form = new FormData($<HTMLFormElement>("#dead-filter"));
  const filter: Filter = {};
  for (const name of ["source", "reason", "event"]) filter[name] = String(form.get(name) ?? "").trim();
  for (const name of ["from", "to"]) {
    const value = String(form.get(name) ?? "");
    filter[name] = value ? String(Date.parse(`${value}Z`)) : "";
  }
  return filter;
}

async function load(reset: boolean) {
  if (reset) {
    state.cursor = null;
    state.filter = readFilter();
    clear($("#dead-rows"));
    const { body } = await api<{ total: number; byReason: { [reason: string]: number } }>(
      `/admin/dead-letters/summary?${query(state.filter)}`,
    );
    const parts = Object.entries(body.byReason ?? {}).map(([reason, n]) => `${reason}: ${n}`);
    setText(
      $("#dead-counts"),
      `${body.total ?? 0} dead letter(s)${parts.length ? ` (${parts.join(", ")})` : ""}`,
    );
  }
  const { body } = await api<{ entries: Entry[]; cursor: string | null }>(
    `/admin/dead-letters?${query({ ...state.filter, limit: "50", cursor: state.cursor ?? "" })}`,
  );
  for (const entry of body.entries ?? []) $("#dead-rows").append(row(entry));
  state.cursor = body.cursor ?? null;
  $("#dead-more").hidden = !state.cursor;
}

function row(entry: Entry) {
  return el(
    "tr",
    { "data-id": entry.id },
    el(
      "td",
      {},
      el("input", {
        type: "checkbox",
        class: "pick",
        value: entry.id,
        "aria-label": `Select ${entry.eventId || entry.id}`,
      }),
    ),
    el("td", {}, entry.event || "(none)"),
    el("td", {}, el("code", {}, entry.eventId || "")),
    el("td", {}, entry.reason),
    el("td", {}, entry.status === null || entry.status === undefined ? "none" : String(entry.status)),
    el("td", {}, String(entry.attempts ?? "")),
    el("td", {}, when(entry.at)),
    el(
      "td",
      { class: "actions" },
      el("button", { type: "button", onclick: () => details(entry.id) }, "Details"),
      el("button", { type: "button", onclick: () => preview(entry.id) }, "Replay"),
    ),
  );
}

async function details(id: string) {
  const { body } = await api<Letter>(path(id));
  const calls = body.message ? body.message.calls.map((call) => JSON.parse(call) as unknown) : null;
  const facts: [string, string][] = [
    ["Reason", body.reason ?? ""],
    ["Pendo uniqueId", body.eventId ?? ""],
    ["Source", body.source ?? ""],
    ["Received", when(body.receivedAt)],
    ["Last failure", when(body.lastFailureAt)],
    ["Attempts", String(body.attempts)],
    ["Last Segment status", body.lastStatus === null ? "none" : String(body.lastStatus)],
    ["State", body.state === "replaying" ? "claimed by a replay" : "stored"],
    ["messageIds", (body.messageIds ?? []).join(" ") || "(none)"],
  ];
  openDialog(`Dead letter ${body.event || id}`, [
    el(
      "dl",
      {},
      facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
    ),
    ...block("Segment's answer", body.detail || "(none)"),
    ...(body.rawBody !== undefined ? block("Raw webhook", body.rawBody) : []),
    ...(body.rawBody === undefined && body.rawBodyBase64 !== undefined
      ? block("Bytes as received (not UTF-8; base64)", body.rawBodyBase64)
      : []),
    ...(calls ? block("Stored Segment calls", calls) : []),
  ]);
}

async function preview(id: string) {
  const { body } = await api<Preview>(path(id, "/preview"));
  if (!body.ok) {
    openDialog("Cannot replay", [el("p", { role: "alert" }, `${body.reason}: ${body.detail}`)]);
    return;
  }
  const content: Node[] = [];
  if (body.outsideDedupWindow) {
    content.push(
      el(
        "p",
        { class: "bad", role: "alert" },
        `This event is ${body.ageHours} hours old, beyond Segment's ~24 h messageId dedup: if Segment already has it, it will be stored again.`,
      ),
    );
  }
  if (!body.replayable)
    content.push(el("p", { class: "bad" }, "An earlier replay already claimed this record."));
  const from =
    body.from === "stored"
      ? "the calls it was accepted with"
      : "mapped afresh from the raw webhook by today's code";
  content.push(el("p", {}, `The replay sends what is below: ${from}.`), ...block("Will send", body.willSend));
  openDialog("Replay preview", content, body.replayable ? "Replay" : "", async () => {
    const result = await api<ReplayResult>(path(id, "/replay"), { method: "POST" });
    showResults([result.body]);
    await load(true);
  });
}

function replaySelected() {
  const ids = [...document.querySelectorAll<HTMLInputElement>(".pick:checked")].map((box) => box.value);
  if (ids.length === 0) {
    openDialog("Replay selected", [el("p", {}, "Select dead letters first.")]);
    return;
  }
  openDialog(
    `Replay ${ids.length} dead letter(s)?`,
    [el("p", {}, "Each is sent with the calls it was stored with; the results are listed per record.")],
    "Confirm",
    async () => {
      const results: ReplayResult[] = [];
      for (const id of ids)
        results.push((await api<ReplayResult>(path(id, "/replay"), { method: "POST" })).body);
      showResults(results);
      await load(true);
    },
  );
}

function replayMatching() {
  const filter = readFilter();
  const any = Object.values(filter).some((v) => v !== "");
  openDialog(
    "Replay every dead letter matching the filter?",
    [el("p", {}, any ? `Filter: ${query(filter)}` : "No filter: every dead letter.")],
    "Confirm",
    async () => {
      const results: ReplayResult[] = [];
      let cursor = "";
      do {
        const { body } = await api<{ results: ReplayResult[]; cursor: string | null }>(
          `/admin/dead-letters/replay?${query({ ...filter, all: any ? "" : "true", cursor })}`,
          { method: "POST" },
        );
        results.push(...(body.results ?? []));
        cursor = body.cursor ?? "";
      } while (cursor);
      showResults(results);
      await load(true);
    },
  );
}

export const deadLetters: Section = {
  load: () => load(true),
  wire() {
    $("#dead-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      void load(true);
    });
    $("#dead-more").addEventListener("click", () => void load(false));
    $("#replay-selected").addEventListener("click", replaySelected);
    $("#replay-matching").addEventListener("click", replayMatching);
  },
};
