// The console's pure parts: no DOM, no clock, no I/O (test-node/console-pure.test.ts runs them).
const consolePure = (() => {
  const HOUR = 3_600_000;
  const OUTCOMES = ["delivered", "deadLettered", "dropped", "refused"];

  // C0 and C1 controls (but tab and newline, which <pre> shows as they are), DEL, the characters
  // that reorder text (LRM/RLM, the Arabic letter mark, U+202A-U+202E, U+2066-U+2069) and lone
  // surrogates: written out as \u202E, so a sender's name cannot reorder what the operator reads.
  const UNSAFE = [
    [0x00, 0x08],
    [0x0b, 0x1f],
    [0x7f, 0x9f],
    [0x61c, 0x61c],
    [0x200e, 0x200f],
    [0x202a, 0x202e],
    [0x2066, 0x2069],
    [0xd800, 0xdfff],
  ];
  function visible(value) {
    const text = String(value);
    if (/^[\t\n\x20-\x7e]*$/.test(text)) return text; // plain ASCII, the usual case
    let out = "";
    for (const char of text) {
      const code = char.codePointAt(0);
      const unsafe = UNSAFE.some(([low, high]) => code >= low && code <= high);
      out += unsafe ? `\\u${code.toString(16).toUpperCase().padStart(4, "0")}` : char;
    }
    return out;
  }

  // `#token=…` as `npm start` prints it: the token, an error when it cannot be decoded, or null.
  function fragmentToken(hash) {
    const match = /(?:^#|&)token=([^&]*)/.exec(hash);
    if (!match) return null;
    try {
      const token = decodeURIComponent(match[1]).trim();
      return token ? { token } : { error: "That link's token could not be read." };
    } catch {
      return { error: "That link's token could not be read." };
    }
  }

  // The overview's hourly rows summed over sources and events into one slot per hour, the last
  // slot the hour `to` falls in; hours without a row are zero (the endpoint sends none for them).
  function hourSlots(rows, from, to) {
    const end = Date.parse(to);
    const count = Math.max(1, Math.round((end - Date.parse(from)) / HOUR));
    const last = Math.floor(end / HOUR) * HOUR;
    const slots = Array.from({ length: count }, (_, i) => ({
      hour: last - (count - 1 - i) * HOUR,
      delivered: 0,
      deadLettered: 0,
      dropped: 0,
      refused: 0,
    }));
    const first = slots[0].hour;
    for (const row of rows || []) {
      const slot = slots[(Date.parse(row.hour) - first) / HOUR];
      if (!slot) continue;
      for (const outcome of OUTCOMES) slot[outcome] += Number(row[outcome]) || 0;
    }
    return slots;
  }

  // The smallest of 1, 2, 5 × 10^n at or above `n`: a scale with a round top.
  function roundUp(n) {
    if (n <= 1) return 1;
    const power = 10 ** Math.floor(Math.log10(n));
    return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= n);
  }

  // Stacked bars, one per slot, in a width × height box (y grows downwards, as in SVG).
  function stackedBars(slots, width, height) {
    const top = roundUp(Math.max(0, ...slots.map((s) => OUTCOMES.reduce((sum, o) => sum + s[o], 0))));
    const step = width / slots.length;
    const barWidth = Math.max(1, step * 0.8);
    const round = (n) => Math.round(n * 100) / 100;
    const bars = [];
    slots.forEach((slot, i) => {
      let y = height;
      for (const outcome of OUTCOMES) {
        if (!slot[outcome]) continue;
        const h = (slot[outcome] / top) * height;
        y -= h;
        const x = round(i * step + (step - barWidth) / 2);
        bars.push({
          outcome,
          hour: slot.hour,
          value: slot[outcome],
          x,
          y: round(y),
          width: round(barWidth),
          height: round(h),
        });
      }
    });
    return { top, bars };
  }

  // Per source and event, the busiest first.
  const byVolume = (totals) =>
    [...(totals || [])].sort(
      (a, b) =>
        OUTCOMES.reduce((sum, o) => sum + b[o], 0) - OUTCOMES.reduce((sum, o) => sum + a[o], 0) ||
        String(a.event).localeCompare(String(b.event)),
    );

  return { HOUR, OUTCOMES, visible, fragmentToken, hourSlots, roundUp, stackedBars, byVolume };
})();

(() => {
  const KEY = "pendo-relay-admin-token";
  const $ = (selector) => document.querySelector(selector);
  // Every value from the relay is untrusted (webhook bodies are the sender's): text only, never HTML.
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(typeof child === "string" ? consolePure.visible(child) : child);
    }
    return node;
  };
  const pretty = (value) => JSON.stringify(value, null, 2);
  const when = (ms) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "never");
  const query = (values) =>
    new URLSearchParams(Object.entries(values).filter(([, v]) => v !== "" && v !== undefined));
  const clear = (node, ...children) => node.replaceChildren(...children);

  let token = sessionStorage.getItem(KEY);
  // `npm start` prints the console's URL with the token in the fragment, which never reaches a
  // server or its logs: read it, keep it for this tab only, and take it out of the address bar,
  // whether it could be read or not. Read on load and on every later change of the fragment.
  function takeFragmentToken() {
    const found = consolePure.fragmentToken(location.hash);
    if (!found) return null;
    history.replaceState(null, "", location.pathname + location.search);
    if (found.token) {
      token = found.token;
      sessionStorage.setItem(KEY, token);
    }
    return found;
  }
  const atLoad = takeFragmentToken();

  async function api(path, init = {}) {
    const response = await fetch(path, {
      ...init,
      headers: { ...init.headers, authorization: `Bearer ${token}` },
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) signOut("The admin token was refused.");
    return { status: response.status, body };
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    token = null;
    $("#app").hidden = true;
    $("#signout").hidden = true;
    $("#signin").hidden = false;
    for (const body of document.querySelectorAll("[data-clear]")) body.replaceChildren();
    $("#signin-error").textContent = message || "";
  }

  async function signIn() {
    const check = await fetch("/admin/alerts", { headers: { authorization: `Bearer ${token}` } });
    if (!check.ok)
      return signOut(
        check.status === 401 ? "That admin token is not valid." : `The relay answered ${check.status}.`,
      );
    $("#signin").hidden = true;
    $("#app").hidden = false;
    $("#signout").hidden = false;
    await Promise.all([loadOverview(), loadStatus(), loadDead(true), loadQuarantine(), loadDrift()]);
  }

  // A dialog: a heading, content, and optionally a confirming button that runs `onConfirm`.
  function openDialog(title, content, confirmLabel, onConfirm) {
    const dialog = $("#dialog");
    $("#dialog-title").textContent = title;
    clear($("#dialog-body"), ...content);
    const confirm = $("#dialog-confirm");
    confirm.hidden = !confirmLabel;
    confirm.textContent = confirmLabel || "";
    confirm.onclick = async () => {
      confirm.disabled = true;
      try {
        await onConfirm();
      } finally {
        confirm.disabled = false;
        dialog.close();
      }
    };
    dialog.showModal();
  }

  const block = (label, value) => [
    el("h3", {}, label),
    el("pre", {}, typeof value === "string" ? value : pretty(value)),
  ];

  // Overview
  const OUTCOME_LABEL = {
    delivered: "delivered",
    deadLettered: "dead-lettered",
    dropped: "dropped",
    refused: "refused",
  };
  const SVG = "http://www.w3.org/2000/svg";
  // SVG built as nodes with attributes: the CSP allows no inline style, and needs none.
  const svg = (tag, attrs, ...children) => {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children.flat()) if (child !== undefined) node.append(child);
    return node;
  };
  const hourLabel = (ms) => `${new Date(ms).toISOString().slice(5, 13).replace("T", " ")}:00`;

  function chart(title, overview) {
    // A wide box: on a desktop the chart stays low, on a phone it shrinks as a whole.
    const [width, height, left, top, bottom] = [1000, 150, 44, 8, 22];
    const slots = consolePure.hourSlots(overview.hours, overview.from, overview.to);
    const { top: max, bars } = consolePure.stackedBars(slots, width - left, height);
    const sums = consolePure.OUTCOMES.map(
      (o) => `${OUTCOME_LABEL[o]} ${slots.reduce((sum, slot) => sum + slot[o], 0)}`,
    );
    const first = slots[0].hour;
    const last = slots[slots.length - 1].hour;
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
          svg("text", { x: -6, y: 4, "text-anchor": "end", class: "tick" }, String(max)),
          svg("text", { x: -6, y: height, "text-anchor": "end", class: "tick" }, "0"),
          svg("text", { x: 0, y: height + 16, class: "tick" }, hourLabel(first)),
          svg(
            "text",
            { x: width - left, y: height + 16, "text-anchor": "end", class: "tick" },
            hourLabel(last),
          ),
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

  function backlogText(overview) {
    const backlog = overview.backlog;
    if (!backlog) {
      return (
        "Queue backlog: not shown: this platform offers no queue metrics " +
        (overview.backlogNote
          ? `(the relay says: ${overview.backlogNote}).`
          : "(the local simulator, for one).")
      );
    }
    return (
      `Queue backlog: ${backlog.messages} message(s)` +
      (backlog.bytes !== undefined ? `, ${backlog.bytes} bytes` : "") +
      (backlog.oldestAt ? `, the oldest from ${when(Date.parse(backlog.oldestAt))}` : "") +
      "."
    );
  }

  async function loadOverview() {
    const [day, week] = await Promise.all([
      api("/admin/overview?hours=24"),
      api("/admin/overview?hours=168"),
    ]);
    if (day.status !== 200 || week.status !== 200) {
      return clear(
        $("#overview-body"),
        el("p", { class: "bad" }, `The overview is not available (the relay answered ${day.status}).`),
      );
    }
    const rows = consolePure
      .byVolume(week.body.totals)
      .map((t) =>
        el(
          "tr",
          {},
          el("td", {}, t.source),
          el("th", { scope: "row" }, t.event),
          ...consolePure.OUTCOMES.map((o) => el("td", { class: "number" }, String(t[o]))),
          el("td", {}, t.lastSeen ? when(Date.parse(t.lastSeen)) : "never"),
        ),
      );
    clear(
      $("#overview-body"),
      el("p", {}, backlogText(week.body)),
      el(
        "ul",
        { class: "legend", "aria-label": "Outcomes" },
        consolePure.OUTCOMES.map((o) => el("li", {}, el("span", { class: `swatch ${o}` }), OUTCOME_LABEL[o])),
      ),
      chart("Last 24 hours", day.body),
      chart("Last 7 days", week.body),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          {},
          el("caption", {}, "By event name, last 7 days (times in UTC)"),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ["Source", "Event", "Delivered", "Dead-lettered", "Dropped", "Refused", "Last seen"].map((h) =>
                el("th", { scope: "col" }, h),
              ),
            ),
          ),
          el("tbody", {}, rows),
        ),
      ),
      ...(rows.length ? [] : [el("p", {}, "No events in the last 7 days.")]),
    );
  }

  // Status
  function region(endpoint) {
    if (!endpoint) return "unknown";
    if (endpoint.includes("eu1") || endpoint.includes("-eu.")) return "EU";
    if (endpoint.includes("api.segment.io") || endpoint.includes("cdp.customer.io")) return "US";
    return new URL(endpoint).host;
  }

  async function loadStatus() {
    const [{ body: health }, { body: alerts }] = await Promise.all([api("/health"), api("/admin/alerts")]);
    const secrets = Object.entries(health.secrets || {}).map(
      ([name, set]) => name + (set ? " set" : " not set"),
    );
    const sources = (health.sources || []).map((s) =>
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
    const select = $("#pg-source");
    clear(select, ...(health.sources || []).map((s) => el("option", { value: s.name }, s.name)));
    clear(
      $("#status-body"),
      el(
        "p",
        { class: health.status === "ok" ? "ok" : "bad" },
        "Relay " +
          health.status +
          " (version " +
          health.version +
          ", environment " +
          health.environment +
          ")",
      ),
      el(
        "p",
        {},
        "Bindings: " +
          Object.entries(health.bindings || {})
            .map(([n, ok]) => n + (ok ? " bound" : " missing"))
            .join(", ") +
          ". Secrets: " +
          secrets.join(", ") +
          ".",
      ),
      health.problems?.length
        ? el(
            "ul",
            { class: "bad", "aria-label": "Problems" },
            health.problems.map((p) => el("li", {}, p)),
          )
        : el("p", {}, "No configuration problems."),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          {},
          el("caption", {}, "Sources"),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              [
                "Source",
                "Destination, region",
                "Names (events / track)",
                "Tokens",
                "Write key",
                "Last delivery",
                "Last failure (status)",
              ].map((h) => el("th", { scope: "col" }, h)),
            ),
          ),
          el("tbody", {}, sources),
        ),
      ),
      el("h3", {}, "Recent alerts"),
      (alerts.entries || []).length
        ? el(
            "ul",
            {},
            alerts.entries.map((a) =>
              el("li", {}, `${when(a.sentAt)} ${a.kind} (${a.source}): ${a.count} occurrence(s)`),
            ),
          )
        : el("p", {}, "No alert within its interval."),
    );
  }

  // Dead letters
  const dead = { cursor: null, filter: {} };

  function readFilter() {
    const form = new FormData($("#dead-filter"));
    const filter = {};
    for (const name of ["source", "reason", "event"]) filter[name] = String(form.get(name) || "").trim();
    for (const name of ["from", "to"]) {
      const value = String(form.get(name) || "");
      filter[name] = value ? String(Date.parse(`${value}Z`)) : "";
    }
    return filter;
  }

  async function loadDead(reset) {
    if (reset) {
      dead.cursor = null;
      dead.filter = readFilter();
      clear($("#dead-rows"));
      const { body } = await api(`/admin/dead-letters/summary?${query(dead.filter)}`);
      const parts = Object.entries(body.byReason || {}).map(([reason, n]) => `${reason}: ${n}`);
      $("#dead-counts").textContent =
        (body.total || 0) +
        " dead letter(s)" +
        (parts.length ? ` (${parts.join(", ")})` : "") +
        (body.complete === false ? ", and more" : "");
    }
    const { body } = await api(
      `/admin/dead-letters?${query({ ...dead.filter, limit: "50", cursor: dead.cursor || "" })}`,
    );
    for (const entry of body.entries || []) $("#dead-rows").append(deadRow(entry));
    dead.cursor = body.cursor;
    $("#dead-more").hidden = !dead.cursor;
  }

  function deadRow(entry) {
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
        el("button", { type: "button", onclick: () => showDead(entry.id) }, "Details"),
        el("button", { type: "button", onclick: () => previewReplay(entry.id) }, "Replay"),
      ),
    );
  }

  async function showDead(id) {
    const { body } = await api(`/admin/dead-letters/${encodeURIComponent(id)}`);
    const calls = body.message ? body.message.calls.map((call) => JSON.parse(call)) : null;
    openDialog(`Dead letter ${body.event || id}`, [
      el(
        "dl",
        {},
        [
          ["Reason", body.reason],
          ["Pendo uniqueId", body.eventId],
          ["Source", body.source],
          ["Received", when(body.receivedAt)],
          ["Last failure", when(body.lastFailureAt)],
          ["Attempts", String(body.attempts)],
          ["Last Segment status", body.lastStatus === null ? "none" : String(body.lastStatus)],
          ["State", body.state === "replaying" ? "claimed by a replay" : "stored"],
          ["messageIds", (body.messageIds || []).join(" ") || "(none)"],
        ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
      ),
      ...block("Segment's answer", body.detail || "(none)"),
      ...(body.rawBody !== undefined ? block("Raw webhook", body.rawBody) : []),
      ...(body.rawBody === undefined && body.rawBodyBase64 !== undefined
        ? block("Bytes as received (not UTF-8; base64)", body.rawBodyBase64)
        : []),
      ...(calls ? block("Stored Segment calls", calls) : []),
    ]);
  }

  async function previewReplay(id) {
    const { body } = await api(`/admin/dead-letters/${encodeURIComponent(id)}/preview`);
    if (!body.ok)
      return openDialog("Cannot replay", [el("p", { role: "alert" }, `${body.reason}: ${body.detail}`)]);
    const content = [];
    if (body.outsideDedupWindow) {
      content.push(
        el(
          "p",
          { class: "bad", role: "alert" },
          "This event is " +
            body.ageHours +
            " hours old, beyond Segment's ~24 h messageId dedup: if Segment already has it, it will be stored again.",
        ),
      );
    }
    if (!body.replayable)
      content.push(el("p", { class: "bad" }, "An earlier replay already claimed this record."));
    const from =
      body.from === "stored"
        ? "the calls it was accepted with"
        : "mapped afresh from the raw webhook by today's code";
    content.push(
      el("p", {}, `The replay sends what is below: ${from}.`),
      ...block("Will send", body.willSend),
    );
    openDialog("Replay preview", content, body.replayable ? "Replay" : "", async () => {
      const result = await api(`/admin/dead-letters/${encodeURIComponent(id)}/replay`, {
        method: "POST",
      });
      showResults([result.body]);
      await loadDead(true);
    });
  }

  function showResults(results) {
    clear(
      $("#replay-results"),
      el("h3", {}, "Replay results"),
      el(
        "ul",
        {},
        results.map((r) =>
          el(
            "li",
            { class: r.ok ? "ok" : "bad" },
            r.id +
              ": " +
              (r.ok
                ? r.status + (r.removed === false ? " (record kept: delete it)" : "")
                : r.reason + (r.detail ? ` (${r.detail})` : r.issues ? ` ${pretty(r.issues)}` : "")),
          ),
        ),
      ),
    );
  }

  function replaySelected() {
    const ids = [...document.querySelectorAll(".pick:checked")].map((box) => box.value);
    if (ids.length === 0) return openDialog("Replay selected", [el("p", {}, "Select dead letters first.")]);
    openDialog(
      `Replay ${ids.length} dead letter(s)?`,
      [el("p", {}, "Each is sent with the calls it was stored with; the results are listed per record.")],
      "Confirm",
      async () => {
        const results = [];
        for (const id of ids)
          results.push(
            (await api(`/admin/dead-letters/${encodeURIComponent(id)}/replay`, { method: "POST" })).body,
          );
        showResults(results);
        await loadDead(true);
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
        const results = [];
        let cursor = "";
        do {
          const { body } = await api(
            `/admin/dead-letters/replay?${query({ ...filter, all: any ? "" : "true", cursor })}`,
            { method: "POST" },
          );
          results.push(...(body.results || []));
          cursor = body.cursor || "";
        } while (cursor);
        showResults(results);
        await loadDead(true);
      },
    );
  }

  // Quarantine
  async function loadQuarantine() {
    const { body } = await api("/admin/quarantine?limit=50");
    const entries = body.entries || [];
    // The issues live in each record, not in the listing: read the first ones to show them inline.
    const records = await Promise.all(
      entries
        .slice(0, 20)
        .map((e) => api(`/admin/quarantine/${encodeURIComponent(e.id)}`).then((r) => r.body)),
    );
    clear(
      $("#quarantine-rows"),
      ...entries.map((entry, i) => {
        const issues = records[i]?.issues
          ? records[i].issues.map((issue) => `${issue.path || "(body)"}: ${issue.message}`).join("; ")
          : "";
        return el(
          "tr",
          {},
          el("td", {}, when(entry.at)),
          el("td", {}, entry.source),
          el("td", {}, entry.event || "(unknown)"),
          el("td", {}, issues),
          el(
            "td",
            { class: "actions" },
            el("button", { type: "button", onclick: () => showQuarantined(entry.id) }, "Details"),
            el("button", { type: "button", onclick: () => replayQuarantined(entry.id) }, "Replay"),
            el("button", { type: "button", onclick: () => deleteQuarantined(entry.id) }, "Delete"),
          ),
        );
      }),
    );
    $("#quarantine-empty").hidden = entries.length > 0;
  }

  async function showQuarantined(id) {
    const { body } = await api(`/admin/quarantine/${encodeURIComponent(id)}`);
    openDialog("Quarantined webhook", [
      el(
        "table",
        {},
        el("caption", {}, "Issues"),
        el(
          "tbody",
          {},
          (body.issues || []).map((issue) =>
            el("tr", {}, el("th", { scope: "row" }, issue.path || "(body)"), el("td", {}, issue.message)),
          ),
        ),
      ),
      ...block("Raw body", body.rawBody || "(empty)"),
    ]);
  }

  async function replayQuarantined(id) {
    const { body } = await api(`/admin/quarantine/${encodeURIComponent(id)}/replay`, { method: "POST" });
    showResults([body.error ? { ...body, ok: false } : body]);
    await loadQuarantine();
  }

  function deleteQuarantined(id) {
    openDialog(
      "Delete this quarantined webhook?",
      [el("p", {}, "It is gone for good.")],
      "Confirm",
      async () => {
        await api(`/admin/quarantine/${encodeURIComponent(id)}`, { method: "DELETE" });
        await loadQuarantine();
      },
    );
  }

  // Drift
  async function loadDrift() {
    const { body } = await api("/admin/drift");
    const entries = (body.entries || []).sort((a, b) => b.lastSeen - a.lastSeen);
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
  }

  // Playground
  async function preview(event) {
    event.preventDefault();
    const source = $("#pg-source").value || "default";
    const { status, body } = await api(`/debug/transform?${query({ source })}`, {
      method: "POST",
      body: $("#pg-payload").value,
    });
    const out = $("#pg-out");
    out.textContent = consolePure.visible(
      status === 200 ? pretty({ calls: body.calls, warnings: body.warnings }) : pretty({ status, ...body }),
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    const examples = JSON.parse($("#examples").textContent);
    clear(
      $("#pg-examples"),
      ...Object.keys(examples).map((name) =>
        el(
          "button",
          { type: "button", onclick: () => ($("#pg-payload").value = pretty(examples[name])) },
          `${name} example`,
        ),
      ),
    );
    $("#signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      token = $("#token").value.trim();
      sessionStorage.setItem(KEY, token);
      $("#token").value = "";
      signIn();
    });
    $("#signout").addEventListener("click", () => signOut(""));
    $("#dead-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadDead(true);
    });
    $("#dead-more").addEventListener("click", () => loadDead(false));
    $("#replay-selected").addEventListener("click", replaySelected);
    $("#replay-matching").addEventListener("click", replayMatching);
    $("#pg-form").addEventListener("submit", preview);
    $("#dialog-close").addEventListener("click", () => $("#dialog").close());
    // A link pasted into a tab already open changes only the fragment: no load, so listen.
    window.addEventListener("hashchange", () => {
      const found = takeFragmentToken();
      if (found?.error) signOut(found.error);
      else if (found) signIn();
    });
    if (atLoad?.error) signOut(atLoad.error);
    else if (token) signIn();
  });
})();
