import guideDisplayed from "../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../src/pendo/examples/visitorCreated.json";

/**
 * Fixtures that need no Worker runtime, so that the pure tests run in Node as well (what
 * `npm run mutate` tries each mutant against): Pendo's published examples and fresh event ids.
 */

/** Pendo's published examples, unchanged (copied into src/pendo/examples). */
export const PUBLISHED = { guideDisplayed, trackEventReceived, visitorCreated } as const;

export function clone<T>(value: T): T {
  return structuredClone(value);
}

let counter = 0;
/** A fresh 40-hex uniqueId, so tests never see each other's dedup markers. */
export function freshUniqueId(): string {
  counter++;
  return `${Date.now().toString(16)}${counter.toString(16).padStart(6, "0")}`.padEnd(40, "a").slice(0, 40);
}

export function withUniqueId<T extends object>(
  webhook: T,
  uniqueId = freshUniqueId(),
): T & { uniqueId: string } {
  return { ...clone(webhook), uniqueId };
}
