import type { Settings } from "../config";
import { prepareEvent } from "../delivery/prepare";
import { type DeadLetter, deleteRecord, type QuarantineEntry, type RecordKind } from "../delivery/records";
import type { Env } from "../env";
import { log } from "../log";
import type { ValidationIssue } from "../pendo/envelope";
import { resolveSource } from "../sources";

export type ReplayResult =
  | { ok: true; id: string; eventId: string }
  | { ok: false; id: string; reason: "invalid"; issues: ValidationIssue[] }
  | {
      ok: false;
      id: string;
      reason: "event-too-large" | "unknown-source" | "queue-unavailable";
      detail: string;
    };

/**
 * Re-enqueue one stored entry. The dedup marker is not consulted: replay exists to send again
 * what the edge once accepted. Segment still keeps one copy per messageId. A raw body (quarantine,
 * too-large dead letters) goes through validation and the transform again, so a fixed relay can
 * ingest what it once refused. The entry is deleted only once the queue has the event.
 */
export async function replayRecord(
  env: Env,
  settings: Settings,
  kind: RecordKind,
  record: DeadLetter | QuarantineEntry,
  now: number,
): Promise<ReplayResult> {
  let message = "message" in record ? record.message : undefined;
  if (!message) {
    const source = resolveSource(settings, record.source);
    if (!source) return { ok: false, id: record.id, reason: "unknown-source", detail: record.source };
    const prepared = await prepareEvent(record.rawBody ?? "", source, now);
    if (!prepared.ok) {
      return prepared.kind === "invalid"
        ? { ok: false, id: record.id, reason: "invalid", issues: prepared.issues }
        : { ok: false, id: record.id, reason: "event-too-large", detail: prepared.detail };
    }
    message = prepared.message;
  }
  try {
    await env.EVENTS.send({ ...message, replayedAt: now });
  } catch (error) {
    return { ok: false, id: record.id, reason: "queue-unavailable", detail: String(error) };
  }
  await deleteRecord(env.DEDUP, kind, record.id);
  log("info", "replayed", {
    kind,
    id: record.id,
    source: message.source,
    event: message.event,
    uniqueId: message.eventId,
  });
  return { ok: true, id: record.id, eventId: message.eventId };
}
