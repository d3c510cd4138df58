import type { PendoWebhook } from "./envelope";

/** Pendo's anonymous visitors carry ids with this prefix (Pendo agent docs). */
export const ANONYMOUS_VISITOR_PREFIX = "_PENDO_T_";

export type SegmentIdentity = { userId: string } | { anonymousId: string };

/** The visitor the event is about, if it names one. */
export function visitorOf(webhook: PendoWebhook): string | undefined {
  return webhook.visitorId?.trim() || undefined;
}

/**
 * Segment silently drops a call with neither userId nor anonymousId, so this always returns one.
 * A known visitor is the userId; an anonymous one the anonymousId. Events with no visitor (admin
 * events) get a stable anonymousId from the subscription, else the app, else the relay source.
 */
export function segmentIdentity(webhook: PendoWebhook, source: string): SegmentIdentity {
  const visitorId = visitorOf(webhook);
  if (visitorId) {
    return visitorId.startsWith(ANONYMOUS_VISITOR_PREFIX)
      ? { anonymousId: visitorId }
      : { userId: visitorId };
  }
  const subscriptionId = scalarId(webhook.subscription?.id);
  if (subscriptionId) return { anonymousId: `pendo-subscription-${subscriptionId}` };
  const appId = scalarId(webhook.app?.id);
  if (appId) return { anonymousId: `pendo-app-${appId}` };
  return { anonymousId: `pendo-source-${source}` };
}

function scalarId(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return typeof value === "string" && value !== "" ? value : undefined;
}
