/**
 * A realistic Pendo webhook for every event in the catalog, for `npm run send`, the black-box
 * test and the benchmarks. Built on Pendo's published examples; each call gets a fresh uniqueId
 * and the current time, so sending twice is two events, not a duplicate.
 */
import { randomBytes } from "node:crypto";
import { CATALOG, type CatalogEntry, type EventFamily } from "../src/pendo/catalog";
import guideDisplayed from "../src/pendo/examples/guideDisplayed.json";
import trackEventReceived from "../src/pendo/examples/trackEventReceived.json";
import visitorCreated from "../src/pendo/examples/visitorCreated.json";

const GUIDE = guideDisplayed.properties;
const NPS = { rating: 9, reason: "Keep up the great work!", source: "web" };

function properties(entry: CatalogEntry): Record<string, unknown> {
  const byFamily: Record<EventFamily, () => Record<string, unknown>> = {
    visitor: () =>
      entry.name === "visitorDoNotProcessUpdated"
        ? { doNotProcess: false } // false: a sample must not block the sample visitor's later events
        : entry.name === "visitorMetadataUpdated"
          ? { metadata: { agent: { email: "ada@example.com", plan: "pro" } } }
          : visitorCreated.properties,
    account: () => ({ metadata: { agent: { name: "Acme Corp", tier: "gold" } } }),
    track: () => trackEventReceived.properties,
    page: () => ({ pageId: "aJ0KOADQZVL5h9zQhiQ0q26PNTM", url: "https://app.example.com/dashboard" }),
    feature: () => ({ featureId: "q7Yy5wKpHn3mX", featureName: "Export CSV" }),
    guide: () => GUIDE,
    poll: () =>
      entry.name === "pollSubmitted" ? { ...GUIDE, pollId: "ab12cd", pollResponse: "Very useful" } : GUIDE,
    nps: () => (/submitted/i.test(entry.name) ? { ...GUIDE, nps: NPS } : GUIDE),
    goal: () => ({ goalId: "g-42", name: "Activation" }),
    path: () => ({ pathId: "p-7", name: "Signup to first report" }),
    funnel: () => ({ funnelId: "f-3", name: "Onboarding" }),
    user: () => ({ invitedUser: { username: "new.pm@example.com" } }),
    email: () => ({ emailAddress: "ada@example.com", campaignId: "c-1" }),
  };
  return structuredClone(byFamily[entry.family]());
}

export function sampleWebhook(name: string, now = Date.now()): Record<string, unknown> {
  const entry = CATALOG.find((candidate) => candidate.name === name) ?? {
    name,
    family: "track" as const,
    subject: "visitor" as const,
    fanOut: [],
    origin: "url-webhook" as const,
  };
  const { app, subscription, userAgent, accountId, visitorId } = guideDisplayed;
  const common = {
    app,
    subscription,
    event: name,
    timestamp: Math.floor(now / 1000),
    uniqueId: randomBytes(20).toString("hex"),
  };
  if (entry.subject === "admin") {
    return { ...common, user: { id: "aBcD1234", username: "pm@example.com" }, properties: properties(entry) };
  }
  return { ...common, accountId, userAgent, visitorId, properties: properties(entry) };
}

export const SAMPLE_EVENTS: readonly string[] = CATALOG.map((entry) => entry.name);
