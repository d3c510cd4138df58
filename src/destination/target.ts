import { digestHex } from "../hash";
import type { SegmentTarget } from "./client";
import type { DestinationProfile } from "./profiles";

/**
 * A destination as outage mode sees it: one profile, endpoint and write key. Its id names it in
 * the ledger, the console and `/admin/destinations/:name`: the profile and 12 hex characters of a
 * SHA-256 of endpoint and key, so sources sharing a destination share its state, and the id says
 * nothing usable about the key.
 */
export interface Target extends SegmentTarget {
  id: string;
  host: string;
}

export const DESTINATION_ID = /^[a-z]{1,16}-[0-9a-f]{12}$/;

export async function targetOf(
  profile: DestinationProfile,
  endpoint: string,
  writeKey: string,
): Promise<Target> {
  const digest = await digestHex("SHA-256", `${endpoint}\n${writeKey}`);
  let host = endpoint;
  try {
    host = new URL(endpoint).host;
  } catch {
    // config.ts accepts only URLs; kept as given otherwise.
  }
  return { endpoint, writeKey, profile, id: `${profile.name}-${digest.slice(0, 12)}`, host };
}
