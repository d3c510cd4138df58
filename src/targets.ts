import type { Settings } from "./config";
import { PROFILES } from "./destination/profiles";
import { type Target, targetOf } from "./destination/target";
import { resolveSource, sourceNames } from "./sources";

/**
 * Where a message goes: its source's destination, or the one an archive replay named. Targets are
 * computed once per settings object (once per isolate), for configured sources only.
 */

export type TargetResolution =
  | { ok: true; target: Target }
  | { ok: false; missing: "source" | "key" | "url" | "destination"; detail: string };

const cache = new WeakMap<Settings, Promise<Map<string, TargetResolution>>>();

/** Every configured source's target (or why it has none), by source name. */
export function sourceTargets(settings: Settings): Promise<Map<string, TargetResolution>> {
  let targets = cache.get(settings);
  if (!targets) {
    targets = buildTargets(settings);
    cache.set(settings, targets);
  }
  return targets;
}

async function buildTargets(settings: Settings): Promise<Map<string, TargetResolution>> {
  const entries = await Promise.all(
    sourceNames(settings).map(async (name): Promise<[string, TargetResolution]> => {
      const source = resolveSource(settings, name);
      if (!source)
        return [name, { ok: false, missing: "source", detail: "this source is no longer configured" }];
      if (!source.endpoint) {
        return [
          name,
          {
            ok: false,
            missing: "url",
            detail: `no DESTINATION_URL is set for this source's destination (${source.destination})`,
          },
        ];
      }
      if (!source.writeKey) {
        return [name, { ok: false, missing: "key", detail: "no Segment write key is set for this source" }];
      }
      const target = await targetOf(PROFILES[source.destination], source.endpoint, source.writeKey);
      return [name, { ok: true, target }];
    }),
  );
  return new Map(entries);
}

/** The target for a message: its own `destination` (an archive replay's choice), else its source's. */
export async function targetFor(
  settings: Settings,
  source: string,
  destination?: string,
): Promise<TargetResolution> {
  const targets = await sourceTargets(settings);
  if (destination !== undefined) {
    const found = destinationById(targets, destination);
    return found
      ? { ok: true, target: found }
      : {
          ok: false,
          missing: "destination",
          detail: `no configured source sends to destination ${destination}`,
        };
  }
  return (
    targets.get(source) ?? { ok: false, missing: "source", detail: "this source is no longer configured" }
  );
}

export function destinationById(targets: Map<string, TargetResolution>, id: string): Target | undefined {
  for (const resolution of targets.values())
    if (resolution.ok && resolution.target.id === id) return resolution.target;
  return undefined;
}

/** Each configured destination with the sources that send to it, for the console and the admin API. */
export async function destinationsOf(settings: Settings): Promise<{ target: Target; sources: string[] }[]> {
  const byId = new Map<string, { target: Target; sources: string[] }>();
  for (const [name, resolution] of await sourceTargets(settings)) {
    if (!resolution.ok) continue;
    const entry = byId.get(resolution.target.id) ?? { target: resolution.target, sources: [] };
    entry.sources.push(name);
    byId.set(resolution.target.id, entry);
  }
  return [...byId.values()];
}
