import { describe, expect, it } from "vitest";
import { parseSettings } from "../src/config";
import { flagCutoff } from "../src/cron/scheduled";
import { refusedUnits } from "../src/delivery/partial";
import type { Env } from "../src/env";
import { boundedIssues, ISSUES_BYTES, quarantineOf } from "../src/ledger/records";
import { cutText, cutUtf8 } from "../src/ledger/text";
import { sendBatchGroups } from "../src/queue/batches";
import {
  bytesOfBody,
  decodeQueueBody,
  decodeRelayMessage,
  encodeControl,
  encodeRelayMessage,
  fitForQueue,
  MAX_QUEUE_MESSAGE_BYTES,
  queuedBytes,
  type RelayMessage,
} from "../src/queue/message";
import { decodeFrames, encodeFrames } from "../src/r2/frames";
import {
  archiveHourPrefix,
  archiveKey,
  dayOfRecordsPrefix,
  groupId,
  lifecycleRules,
  parkedKey,
  pendingKey,
  recordsDayPrefix,
  recordsKey,
} from "../src/r2/keys";
import { type BudgetCheck, nearBudget } from "../src/records/budget";

/**
 * The pure parts of bytes in R2 and outage mode, table-driven: the object format, the key layout,
 * byte-bounded cutting, the queue message with the webhook's bytes, sendBatch grouping, budget and
 * do-not-process horizons. They run in workerd with the rest, and in Node under `npm run mutate`
 * (stryker.config.json), where each surviving mutant is a test to write.
 */

const utf8 = new TextEncoder();
const text = new TextDecoder();
const bytes = (s: string) => utf8.encode(s);

describe("frames: the one R2 object format", () => {
  it("round-trips bytes of any kind, and says where each frame's bytes are", () => {
    const frames = [
      { meta: { id: "a" }, bytes: bytes("hello\nworld") },
      { meta: { id: "b", holds: "body" }, bytes: new Uint8Array([0, 255, 10, 13]) },
      { meta: {}, bytes: new Uint8Array() },
    ];
    const { data, slices } = encodeFrames(frames);
    const decoded = decodeFrames(data);
    expect(decoded.ok).toBe(true);
    expect(decoded.frames.map((f) => [...f.bytes])).toEqual(frames.map((f) => [...f.bytes]));
    expect(decoded.frames.map((f) => f.meta)).toEqual([
      { id: "a", n: 11 },
      { id: "b", holds: "body", n: 4 },
      { n: 0 },
    ]);
    for (const [i, slice] of slices.entries()) {
      expect([...data.subarray(slice.offset, slice.offset + slice.length)]).toEqual([
        ...(frames[i]?.bytes ?? []),
      ]);
    }
    // Exactly the frames: metadata line, bytes, newline; nothing before, between or after.
    expect(data.length).toBe(headLengths(frames) + frames.reduce((sum, f) => sum + f.bytes.length + 1, 0));
  });

  it.each([
    ["no metadata line", bytes('{"n":3}'), "no metadata line"],
    ["metadata that is not JSON", bytes("{n:3}\nabc\n"), "is not JSON"],
    ["a length that is not a whole number", bytes('{"n":1.5}\nabc\n'), "names no length"],
    ["a negative length", bytes('{"n":-1}\n\n'), "names no length"],
    ["no length at all", bytes('{"m":3}\nabc\n'), "names no length"],
    ["null metadata", bytes("null\nabc\n"), "names no length"],
    ["bytes cut short", bytes('{"n":5}\nabc\n'), "cut short"],
    ["no newline after the bytes", bytes('{"n":3}\nabcd'), "cut short"],
  ])("reports %s, keeping the frames before it", (_name, tail, detail) => {
    const whole = encodeFrames([{ meta: { id: "first" }, bytes: bytes("ok") }]).data;
    const data = new Uint8Array([...whole, ...tail]);
    const decoded = decodeFrames(data);
    expect(decoded.ok).toBe(false);
    expect(decoded.ok ? "" : decoded.detail).toContain(detail);
    expect(decoded.ok ? "" : decoded.detail).toContain(`at byte ${whole.length}`);
    expect(decoded.frames.map((f) => text.decode(f.bytes))).toEqual(["ok"]);
  });

  it("reads an empty object as no frames, and an empty metadata line as no JSON", () => {
    expect(decodeFrames(new Uint8Array())).toEqual({ ok: true, frames: [] });
    const empty = decodeFrames(bytes("\n"));
    expect(empty.ok ? "" : empty.detail).toBe("the metadata at byte 0 is not JSON");
  });
});

function headLengths(frames: { meta: object; bytes: Uint8Array }[]) {
  return frames.reduce(
    (sum, f) => sum + utf8.encode(`${JSON.stringify({ ...f.meta, n: f.bytes.length })}\n`).length,
    0,
  );
}

describe("the R2 key layout", () => {
  const at = Date.UTC(2026, 11, 2, 7, 5, 9, 123);
  it("files records by day and the archive by source, day and hour, keys time-ordered", () => {
    expect(groupId(at, "abc")).toBe("1796195109123-abc");
    expect(groupId(5, "x")).toBe("0000000000005-x");
    expect(recordsDayPrefix(at)).toBe("records/2026-12-02/");
    expect(archiveHourPrefix("prod", at)).toBe("archive/prod/2026-12-02/07/");
    expect(dayOfRecordsPrefix("records/2026-12-02/")).toBe(Date.UTC(2026, 11, 2));
    expect(recordsKey(at, "g")).toBe("records/2026-12-02/g");
    expect(pendingKey("g")).toBe("pending/g");
    expect(parkedKey("segment-0123456789ab", "s")).toBe("parked/segment-0123456789ab/s");
    expect(archiveKey("prod", at, "g")).toBe("archive/prod/2026-12-02/07/g");
    for (const other of [
      "records/2026-12-02",
      "records/x/",
      "archive/2026-12-02/",
      "records/2026-12-02/a/",
      "xrecords/2026-12-02/",
    ])
      expect(dayOfRecordsPrefix(other)).toBeUndefined();
  });

  it("expires the archive after ARCHIVE_DAYS and orphan records after 400 days, nothing else", () => {
    expect(lifecycleRules(9)).toEqual([
      { id: "archive-expiry", prefix: "archive/", expireDays: 9 },
      { id: "orphan-records", prefix: "records/", expireDays: 400 },
    ]);
  });
});

describe("cutUtf8: bounded in bytes, whole characters", () => {
  it.each([
    ["short ASCII, untouched", "abc", 10, "abc"],
    ["exactly at the bound", "abcde", 5, "abcde"],
    ["ASCII one over", "abcdef", 5, "ab…"],
    ["three-byte characters", "ééééé", 8, "éé…"],
    ["emoji are never split", "😀😀😀", 10, "😀…"],
    ["nothing fits but the ellipsis", "😀😀", 3, "…"],
  ])("%s", (_name, input, max, expected) => {
    const cut = cutUtf8(input, max);
    expect(cut).toBe(expected);
    expect(utf8.encode(cut).length).toBeLessThanOrEqual(max);
  });

  it("keeps as much as fits: one more character would not", () => {
    const input = "é".repeat(1_100); // 2,200 bytes
    const cut = cutUtf8(input, 2_048);
    expect(utf8.encode(cut).length).toBeLessThanOrEqual(2_048);
    expect(utf8.encode(`é${cut}`).length).toBeGreaterThan(2_048);
  });

  it("cutText never leaves half a surrogate pair, at either end of the high surrogates", () => {
    expect(cutText("a😀b", 3)).toBe("a…");
    expect(cutText("a\u{10000}b", 3)).toBe("a…"); // high surrogate U+D800
    expect(cutText("a\u{10FC00}b", 3)).toBe("a…"); // high surrogate U+DBFF
    expect(cutText("a\uDC00bc", 3)).toBe("a\uDC00…"); // a low surrogate alone is not the start of a pair
    expect(cutText("ab", 2)).toBe("ab");
  });
});

describe("boundedIssues: a quarantine row's issues stay within 2 KB", () => {
  it("keeps short issues as they are", () => {
    const issues = [{ path: "event", message: "is required" }];
    expect(boundedIssues(issues)).toEqual(issues);
  });

  it("cuts each path and message, and counts what does not fit", () => {
    const issues = Array.from({ length: 40 }, (_, i) => ({
      path: `${i}${"p".repeat(500)}`,
      message: "m".repeat(500),
    }));
    const kept = boundedIssues(issues);
    expect(utf8.encode(JSON.stringify(kept)).length).toBeLessThanOrEqual(ISSUES_BYTES);
    const last = kept.at(-1);
    expect(last).toEqual({ path: "", message: `and ${40 - (kept.length - 1)} more issues` });
    for (const issue of kept.slice(0, -1)) {
      expect(issue.path.length).toBe(200);
      expect(issue.message.length).toBe(300);
    }
  });

  it("is what a quarantine row holds, its detail in bytes too", () => {
    const record = quarantineOf(
      {
        source: "s",
        issues: [{ path: "x".repeat(5_000), message: "é".repeat(5_000) }],
        body: new Uint8Array(),
      },
      1,
    );
    expect(record.issues?.[0]?.path.length).toBe(200);
    expect(utf8.encode(record.detail).length).toBeLessThanOrEqual(2_048);
    expect(record.holds).toBe("body");
  });
});

const message = (extra: Partial<RelayMessage> = {}): RelayMessage => ({
  source: "default",
  eventId: "e1",
  event: "guideSeen",
  receivedAt: 1,
  calls: ['{"type":"track"}', '{"type":"identify"}'],
  bytes: 35,
  ...extra,
});

describe("the queue message carries the webhook's own bytes (v3)", () => {
  it("round-trips a webhook with newlines after its calls, and measures it as the queue does", () => {
    const raw = '{\n  "event": "guideSeen",\n  "x": "é"\n}';
    const encoded = encodeRelayMessage(message({ raw }));
    expect(encoded.split("\n")[0]).toContain('"v":3');
    expect(encoded.split("\n")[0]).toContain('"callCount":2');
    const decoded = decodeRelayMessage(encoded);
    expect(decoded).toEqual({ ok: true, message: message({ raw }) });
    expect(queuedBytes(message({ raw }), encoded)).toBe(utf8.encode(encoded).length);
    expect(queuedBytes(message(), encodeRelayMessage(message()))).toBe(
      utf8.encode(encodeRelayMessage(message())).length,
    );
  });

  it("keeps v2 for a message without its webhook", () => {
    const encoded = encodeRelayMessage(message());
    expect(encoded.startsWith('{"v":2,')).toBe(true);
    expect(decodeRelayMessage(encoded)).toEqual({ ok: true, message: message() });
  });

  it.each([
    [
      "fewer calls than counted",
      '{"v":3,"source":"s","eventId":"e","event":"x","receivedAt":1,"bytes":1,"callCount":3}\na\nb',
    ],
    [
      "a count that is not a whole number",
      '{"v":3,"source":"s","eventId":"e","event":"x","receivedAt":1,"bytes":1,"callCount":1.5}\na\n',
    ],
    [
      "a negative count",
      '{"v":3,"source":"s","eventId":"e","event":"x","receivedAt":1,"bytes":1,"callCount":-1}\n',
    ],
    [
      "no calls line at all",
      '{"v":3,"source":"s","eventId":"e","event":"x","receivedAt":1,"bytes":1,"callCount":1}',
    ],
  ])("refuses a v3 message with %s", (_name, body) => {
    expect(decodeRelayMessage(body).ok).toBe(false);
  });

  it("reads a v3 message with no calls as its webhook only", () => {
    const encoded = encodeRelayMessage(message({ calls: [], bytes: 0, raw: "r\n" }));
    expect(decodeRelayMessage(encoded)).toEqual({
      ok: true,
      message: message({ calls: [], bytes: 0, raw: "r\n" }),
    });
  });

  it.each([
    ["a header that is not JSON", "{v:2}\na", "the header line is not JSON"],
    ["a header of JSON null", "null\na", "message"],
    [
      "a v2 header without its fields",
      '{"v":2}\na',
      'source: Invalid key: Expected "source" but received undefined; eventId',
    ],
    [
      "a v3 header short of calls",
      '{"v":3,"source":"s","eventId":"e","event":"x","receivedAt":1,"bytes":1,"callCount":3}\na\n',
      "fewer than its 3 calls",
    ],
  ])("says why it refuses %s", (_name, body, detail) => {
    const decoded = decodeRelayMessage(body);
    expect(decoded.ok ? "" : decoded.detail).toContain(detail);
  });

  it("reads a header-only message, bytes as text, the v1 object, and the flags it carries", () => {
    const header = encodeRelayMessage(message({ calls: [], bytes: 0, probe: true, unmapped: true }));
    expect(header.includes("\n")).toBe(false);
    expect(decodeRelayMessage(header)).toEqual({
      ok: true,
      message: message({ calls: [], bytes: 0, probe: true, unmapped: true }),
    });
    const encoded = utf8.encode(encodeRelayMessage(message()));
    expect(decodeRelayMessage(encoded)).toEqual({ ok: true, message: message() });
    expect(decodeRelayMessage(encoded.buffer)).toEqual({ ok: true, message: message() });
    expect(decodeRelayMessage(new Uint8Array([0xff, 0xfe])).ok).toBe(false);
    // Bytes that are not UTF-8 anywhere are refused, never read with replacement characters; a
    // byte-order mark is not part of the text.
    const bad = utf8.encode(encodeRelayMessage(message({ calls: ['{"type":"track","x":"_"}'] })));
    bad[bad.length - 4] = 0xff;
    expect(decodeRelayMessage(bad).ok).toBe(false);
    expect(decodeRelayMessage(new Uint8Array([0xef, 0xbb, 0xbf, ...encoded]))).toEqual({
      ok: true,
      message: message(),
    });
    expect(decodeQueueBody({ v: 1, ...message() })).toEqual({ ok: true, message: message() });
  });

  it("tells control messages from relay messages", () => {
    const chain = {
      v: "control" as const,
      kind: "destination" as const,
      destination: "segment-0123456789ab",
      chain: "c1",
    };
    expect(decodeQueueBody(encodeControl(chain))).toEqual({ ok: true, control: chain });
    const job = { v: "control" as const, kind: "replay-job" as const, job: "j", chain: "c" };
    expect(decodeQueueBody(encodeControl(job))).toEqual({ ok: true, control: job });
    expect(decodeQueueBody('{"v":"control","kind":"destination"}').ok).toBe(false);
    const broken = decodeQueueBody('{"v":"control",');
    expect(broken.ok ? "" : "detail" in broken ? broken.detail : "").toBe("the control message is not JSON");
    expect(decodeQueueBody(encodeRelayMessage(message()))).toEqual({ ok: true, message: message() });
  });
});

describe("bytesOfBody: what a malformed message's dead letter keeps", () => {
  it("keeps bytes as they are, text as UTF-8, anything else as its JSON", () => {
    const raw = new Uint8Array([1, 2, 255]);
    expect(bytesOfBody(raw)).toBe(raw);
    expect([...bytesOfBody(raw.buffer)]).toEqual([1, 2, 255]);
    expect(text.decode(bytesOfBody("é\n"))).toBe("é\n");
    expect(text.decode(bytesOfBody({ a: [1] }))).toBe('{"a":[1]}');
    expect(text.decode(bytesOfBody(undefined))).toBe("undefined");
  });
});

describe("sendBatchGroups: what one sendBatch takes", () => {
  it("groups by 100 messages", () => {
    const groups = sendBatchGroups(
      Array.from({ length: 250 }, (_, i) => String(i)),
      (s) => s,
    );
    expect(groups.map((g) => g.length)).toEqual([100, 100, 50]);
  });

  it("groups by 256 KB, counting three bytes a character at most, never an empty group", () => {
    const big = "x".repeat(40_000); // counted as 120,000 bytes
    expect(sendBatchGroups([big, big, big, big], (s) => s).map((g) => g.length)).toEqual([2, 2]);
    const huge = "y".repeat(200_000); // capped at a queue message's 128,000 bytes
    expect(sendBatchGroups([huge, huge, huge], (s) => s).map((g) => g.length)).toEqual([2, 1]);
    expect(sendBatchGroups([], (s: string) => s)).toEqual([]);
  });
});

describe("refusedUnits: refusals in a 2xx pinned on events", () => {
  const unit = (id: string) => ({
    message: { ...message(), calls: [`{"messageId":"${id}","type":"track"}`] },
    calls: [],
    bytes: 0,
    attempts: 1,
  });
  it("pins a refusal on a unit by any of its calls' messageIds", () => {
    const both = {
      message: {
        ...message(),
        calls: ['{"messageId":"t","type":"track"}', '{"messageId":"i","type":"identify"}'],
      },
      calls: [],
      bytes: 0,
      attempts: 1,
    };
    expect(refusedUnits([both], [{ messageId: "i", detail: "x" }]).refused.get(both)).toEqual(["i: x"]);
  });

  it("pins a refusal naming a messageId on its unit, and keeps the others unattributed", () => {
    const [a, b] = [unit("m-a"), unit("m-b")];
    const { refused, unattributed } = refusedUnits(
      [a, b],
      [
        { messageId: "m-b", detail: "bad" },
        { messageId: "m-b", detail: "worse" },
        { messageId: undefined, detail: "someone" },
        { messageId: "rewritten", detail: "unknown id" },
      ],
    );
    expect(refused.get(b)).toEqual(["m-b: bad", "m-b: worse"]);
    expect(refused.has(a)).toBe(false);
    expect(unattributed).toEqual(["an event: someone", "rewritten: unknown id"]);
  });
});

describe("budgets and horizons", () => {
  const check = (used: number, keep: boolean): BudgetCheck => ({ used, keep, budget: 1_000 });
  it.each([
    [check(0, true), 799, false],
    [check(0, true), 800, true],
    [check(790, true), 10, true],
    [check(850, false), 500, true],
    [check(700, false), 500, false],
  ])("nearBudget(%o, %i) is %s", (budget, adding, near) => {
    expect(nearBudget(budget, adding)).toBe(near);
  });

  it("keeps do-not-process history as far back as anything can still be sent from", () => {
    const config = parseSettings({
      QUEUE_RETENTION_SECONDS: "86400",
      DEAD_LETTER_TTL_SECONDS: "3600",
      ARCHIVE_DAYS: "3",
    } as Env);
    if (!config.ok) throw new Error("settings");
    const now = 100 * 86_400_000;
    const day = 86_400_000;
    // The longest of queue retention (1 day), dead letters (1 hour), archive (3 days), and a day's margin.
    expect(flagCutoff(config.settings, now, null)).toBe(now - 3 * day - day);
    // A parked batch older than that keeps it further back: its events were received within the
    // queue's retention before it was parked.
    expect(flagCutoff(config.settings, now, now - 10 * day)).toBe(now - 10 * day - day - day);
    expect(flagCutoff(config.settings, now, now - day)).toBe(now - 4 * day);
  });
});

describe("fitForQueue: a message as the queue counts it", () => {
  const call = (pad: number) =>
    JSON.stringify({ type: "track", messageId: "m1", properties: { p: "x".repeat(pad) } });
  const messageOf = (calls: string[], raw?: string): RelayMessage => ({
    source: "default",
    eventId: "e1",
    event: "guideDisplayed",
    receivedAt: 1,
    bytes: calls.reduce((sum, c) => sum + new TextEncoder().encode(c).length, 0),
    calls,
    ...(raw === undefined ? {} : { raw }),
  });

  it("keeps a message at the limit whole and refuses one a byte over it", () => {
    // Four calls, the first padded until the whole message is exactly MAX_QUEUE_MESSAGE_BYTES
    // (its `bytes` header grows digits as the calls grow, hence more than one pass).
    const four = (pad: number, raw?: string) =>
      messageOf([call(pad), call(1_000), call(1_000), call(1_000)], raw);
    const padAtLimit = (raw?: string) => {
      let pad = 1_000;
      for (let pass = 0; pass < 3; pass++) {
        const message = four(pad, raw);
        pad += MAX_QUEUE_MESSAGE_BYTES - queuedBytes(message, encodeRelayMessage(message));
      }
      return pad;
    };
    // At the limit, the webhook still travels with its calls.
    const withRaw = four(padAtLimit("{}"), "{}");
    expect(fitForQueue(withRaw)).toMatchObject({ ok: true, bytes: MAX_QUEUE_MESSAGE_BYTES });
    expect(withRaw.raw).toBe("{}");
    const pad = padAtLimit();
    expect(fitForQueue(four(pad))).toMatchObject({ ok: true, bytes: MAX_QUEUE_MESSAGE_BYTES });
    const refused = fitForQueue(four(pad + 1));
    expect(refused).toMatchObject({ ok: false, bytes: MAX_QUEUE_MESSAGE_BYTES + 1 });
    expect(refused.ok || refused.detail).toContain(String(MAX_QUEUE_MESSAGE_BYTES));
  });

  it("drops the raw webhook when only it makes the message too large", () => {
    const small = messageOf([call(10)], "{}");
    expect(fitForQueue(small).ok).toBe(true);
    expect(small.raw).toBe("{}");
    const big = messageOf([call(10)], "y".repeat(MAX_QUEUE_MESSAGE_BYTES));
    const fitted = fitForQueue(big);
    expect(fitted.ok).toBe(true);
    expect(big.raw).toBeUndefined();
    expect(fitted.ok && fitted.encoded.includes("yyyy")).toBe(false);
  });
});
