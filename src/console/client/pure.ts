/**
 * The console's pure parts: no DOM, no clock, no I/O (test-node/console-pure.test.ts runs them).
 * A sender's string is made visible by src/visible.ts, the table alerts use too.
 */

export const HOUR_MS = 3_600_000;
export const OUTCOMES = ["delivered", "deadLettered", "dropped", "refused"] as const;
export type Outcome = (typeof OUTCOMES)[number];
export type Counts = Record<Outcome, number>;

export type FragmentToken = { token: string } | { error: string } | null;

const UNREADABLE = "That link's token could not be read.";

/** `#token=…` as `npm start` prints it: the token, an error when it cannot be decoded, or null. */
export function fragmentToken(hash: string): FragmentToken {
  const match = /(?:^#|&)token=([^&]*)/.exec(hash);
  if (!match) return null;
  try {
    const token = decodeURIComponent(match[1] ?? "").trim();
    return token ? { token } : { error: UNREADABLE };
  } catch {
    return { error: UNREADABLE };
  }
}

export interface Slot extends Counts {
  hour: number;
}

/** /admin/overview's `perHour`: one entry per hour from `start`, by outcome. */
export interface PerHour extends Record<Outcome, number[]> {
  start: string;
}

/** The last `hours` of the answer's hours as slots to draw (all of them when absent). */
export function hourSlots(perHour: PerHour, hours = perHour.delivered.length): Slot[] {
  const start = Date.parse(perHour.start);
  const skip = Math.max(0, perHour.delivered.length - hours);
  return perHour.delivered.slice(skip).map((_, i) => {
    const at = skip + i;
    const slot = { hour: start + at * HOUR_MS, delivered: 0, deadLettered: 0, dropped: 0, refused: 0 };
    for (const outcome of OUTCOMES) slot[outcome] = perHour[outcome][at] ?? 0;
    return slot;
  });
}

/** /admin/overview's `bySource`: per source, each event's [delivered, deadLettered, dropped, refused, lastSeen]. */
export type BySource = { source: string; events: Record<string, number[]> }[];

export interface Total extends Counts {
  source: string;
  event: string;
  /** ms; 0 when never. */
  lastSeen: number;
}

/** One row per source and event, as the table lists them. */
export const totalsOf = (bySource: BySource): Total[] =>
  bySource.flatMap(({ source, events }) =>
    Object.entries(events).map(
      ([event, [delivered = 0, deadLettered = 0, dropped = 0, refused = 0, lastSeen = 0]]) => ({
        source,
        event,
        delivered,
        deadLettered,
        dropped,
        refused,
        lastSeen,
      }),
    ),
  );

/** The smallest of 1, 2, 5 × 10^n at or above `n`: a scale with a round top. */
export function roundUp(n: number): number {
  if (n <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= n) ?? 10 * power;
}

export interface Bar {
  outcome: Outcome;
  hour: number;
  value: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

const total = (counts: Counts) => OUTCOMES.reduce((sum, outcome) => sum + counts[outcome], 0);
const hundredths = (n: number) => Math.round(n * 100) / 100;

/** Stacked bars, one per slot, in a width × height box (y grows downwards, as in SVG). */
export function stackedBars(slots: readonly Slot[], width: number, height: number) {
  const top = roundUp(Math.max(0, ...slots.map(total)));
  const step = width / slots.length;
  const barWidth = Math.max(1, step * 0.8);
  const bars: Bar[] = [];
  slots.forEach((slot, i) => {
    let y = height;
    for (const outcome of OUTCOMES) {
      if (!slot[outcome]) continue;
      const h = (slot[outcome] / top) * height;
      y -= h;
      bars.push({
        outcome,
        hour: slot.hour,
        value: slot[outcome],
        x: hundredths(i * step + (step - barWidth) / 2),
        y: hundredths(y),
        width: hundredths(barWidth),
        height: hundredths(h),
      });
    }
  });
  return { top, bars };
}

/** Per source and event, the busiest first. */
export const byVolume = <T extends Counts & { event: string }>(totals: readonly T[] | undefined): T[] =>
  [...(totals ?? [])].sort((a, b) => total(b) - total(a) || String(a.event).localeCompare(String(b.event)));
