import type { PendoWebhook } from "./envelope";

/** Pendo's anonymous visitors carry ids with this prefix (Pendo agent docs). */
export const ANONYMOUS_VISITOR_PREFIX = "_PENDO_T_";

export type SegmentIdentity = { userId: string } | { anonymousId: string };

/**
 * Segment silently drops a call with neither userId nor anonymousId, so this always returns one.
 * A known visitor is the userId; an anonymous one the anonymousId. Events with no visitor (admin
 * events) get a stable anonymousId from the subscription, else the app, else the relay source.
 */
export function segmentIdentity(webhook: PendoWebhook, source: string): SegmentIdentity {
  const visitorId = webhook.visitorId?.trim();
  if (visitorId) {
    return visitorId.startsWith(ANONYMOUS_VISITOR_PREFIX)
      ? { anonymousId: visitorId }
      : { userId: visitorId };
  }
  const subscriptionId = webhook.subscription?.id;
  if (subscriptionId !== undefined && subscriptionId !== null && subscriptionId !== "") {
    return { anonymousId: `pendo-subscription-${subscriptionId}` };
  }
  const appId = webhook.app?.id;
  if (appId !== undefined && appId !== null && appId !== "") return { anonymousId: `pendo-app-${appId}` };
  return { anonymousId: `pendo-source-${source}` };
}
