/**
 * The operator console in a real browser: Debian's Chromium driven by playwright-core, against
 * the real `wrangler dev` and the Segment stand-in. Signs in, reads the Overview's counters of a
 * delivered and a dead-lettered event, finds the dead letter, previews and replays it and checks
 * Segment got it; reads the quarantine and the playground; reads token links
 * and shows bidi characters written out; draws the Overview; and checks the page raised no script
 * error and asked no other origin for anything.
 *
 * Chromium: `apt-get install chromium` (as .ci/run does), or CHROMIUM_PATH. Without it the test
 * fails in CI and, elsewhere, is skipped with that instruction printed: never a silent pass.
 * SCREENSHOT=docs/console.png rewrites the README's screenshot.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import {
  LOCAL_ADMIN_TOKEN,
  LOCAL_TOKEN,
  type LocalRelay,
  startLocalRelay,
  waitFor,
} from "../scripts/harness/local-relay";
import { sampleWebhook } from "../scripts/samples";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HOW_TO_INSTALL = `Chromium is missing at ${CHROMIUM}: install Debian's package (sudo apt-get install -y chromium) or set CHROMIUM_PATH.`;
const available = existsSync(CHROMIUM);
if (!available) console.error(`\n*** console browser test: ${HOW_TO_INSTALL}\n`);
const browserTest = available || process.env.CI ? test : test.skip;

let local: LocalRelay;
let browser: Browser;

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${local.url}/admin${path}`, { ...init, headers: { authorization: `Bearer ${LOCAL_ADMIN_TOKEN}` } });
const post = (body: unknown) =>
  fetch(`${local.url}/pendo?token=${LOCAL_TOKEN}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

before(async () => {
  if (!available) return;
  // The archive replay reads up to now: the test counts webhooks it has just sent.
  local = await startLocalRelay({ ARCHIVE_SETTLE_SECONDS: "0" });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // As this machine's probe runs it: no sandbox as root, and no calls home.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  await local?.stop();
});

/** A page of the console that records script errors and every request to another origin. */
async function openConsole(width = 1280) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const errors: string[] = [];
  const foreign: string[] = [];
  const asked: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("request", (request) => {
    if (!request.url().startsWith(local.url)) foreign.push(request.url());
    else asked.push(`${request.method()} ${request.url().slice(local.url.length)}`);
  });
  return { page, errors, foreign, asked };
}

const section = (page: Page, name: string) => page.getByRole("region", { name });

/** Posts the webhook while Segment refuses the batch (413), and waits for its dead letter. */
async function deadLetter(webhook: Record<string, unknown>) {
  local.standIn.standIn.failNext(413);
  assert.equal((await post(webhook)).status, 202);
  await waitFor(
    "the dead letter",
    async () => {
      const list = (await (await admin("/dead-letters?limit=500")).json()) as {
        entries: { eventId: string }[];
      };
      return list.entries.some((e) => e.eventId === webhook.uniqueId) ? true : undefined;
    },
    30_000,
  );
  return webhook;
}

browserTest("signs in, previews and replays a dead letter, reads quarantine and the playground", async () => {
  assert.ok(available, HOW_TO_INSTALL);
  const standIn = local.standIn.standIn;
  const webhook = await deadLetter(sampleWebhook("guideDisplayed"));
  // A quarantined webhook: no event name.
  assert.equal((await post({ visitorId: "quarantined-visitor" })).status, 400);
  // A delivered one, for the Overview's counters.
  const delivered = sampleWebhook("guideDisplayed");
  assert.equal((await post(delivered)).status, 202);
  await waitFor(
    "the delivered event at Segment",
    async () => (standIn.messageIds.includes(`pendo:default:${delivered.uniqueId}:track`) ? true : undefined),
    30_000,
  );

  // Without a token only the sign-in shows; a wrong one is refused.
  const { page, errors, foreign, asked } = await openConsole();
  await page.goto(`${local.url}/console`);
  await page.getByLabel("Admin token").fill("not-the-admin-token-0123456789");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That admin token is not valid.").waitFor();
  assert.equal(await section(page, "Status").isVisible(), false);
  await page.getByLabel("Admin token").fill(LOCAL_ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await section(page, "Status").getByText("Relay ok").waitFor();

  // The Overview: both charts drawn from the counters, a row per event name, the backlog.
  const overview = section(page, "Overview");
  const counted = overview.getByRole("row").filter({ hasText: "guideDisplayed" }).first();
  await counted.waitFor();
  const cells = (await counted.getByRole("cell").allTextContents()).map((text) => text.trim());
  // Source, then Delivered, Dead-lettered, Dropped, Refused, Last seen (the event is the row header).
  assert.equal(cells[0], "default");
  assert.ok(
    Number(cells[1]) >= 1 && Number(cells[2]) >= 1,
    `delivered and dead-lettered: ${cells.join(" | ")}`,
  );
  assert.match(cells[5] ?? "", /UTC$/);
  for (const window of ["Last 24 hours", "Last 7 days"]) {
    const caption = overview.locator("figcaption").filter({ hasText: window });
    assert.match((await caption.textContent()) ?? "", /delivered [1-9]\d*, dead-lettered [1-9]/);
  }
  assert.ok(
    (await overview.locator("svg.chart rect.delivered").count()) >= 2,
    "a delivered bar in each chart",
  );
  assert.ok(
    (await overview.locator("svg.chart rect.deadLettered").count()) >= 2,
    "a dead-lettered bar in each",
  );
  await overview.getByText(/^Queue backlog: /).waitFor();

  // The dead letter, by its full uniqueId; preview, then the confirming "Replay".
  const row = section(page, "Dead letters")
    .getByRole("row")
    .filter({ hasText: String(webhook.uniqueId) });
  await row.waitFor();
  assert.match((await row.textContent()) ?? "", /segment-refused/);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  await row.getByRole("button", { name: "Replay", exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByText("Will send").waitFor();
  assert.match((await dialog.textContent()) ?? "", new RegExp(`pendo:default:${webhook.uniqueId}:track`));
  await dialog.getByRole("button", { name: "Replay", exact: true }).click();
  await page.getByText(/: replayed/).waitFor();
  const messageId = `pendo:default:${webhook.uniqueId}:track`;
  await waitFor(
    "the replayed event at Segment",
    async () => (standIn.messageIds.includes(messageId) ? true : undefined),
    30_000,
  );

  // Quarantine lists the refused webhook with its issue by field path, from the list alone: no
  // record (its body up to 256 KB) is read until Details asks for it. The Overview asks once.
  await section(page, "Quarantine")
    .getByRole("row")
    .filter({ hasText: "event: event is required" })
    .first()
    .waitFor();
  assert.deepEqual(
    asked.filter((request) => /^GET \/admin\/quarantine\/[^?]/.test(request)),
    [],
  );
  assert.deepEqual(
    asked.filter((request) => request.startsWith("GET /admin/overview")),
    ["GET /admin/overview?hours=168"],
  );

  // The playground maps a published example.
  const playground = section(page, "Playground");
  await playground.getByRole("button", { name: "guideDisplayed example" }).click();
  await playground.getByRole("button", { name: "Preview" }).click();
  await playground.getByText('"event": "guideDisplayed"').waitFor();

  // The Overview lists each destination, nothing parked; hold and resume it by hand.
  const parked = section(page, "Overview").getByRole("table", { name: /Parked batches per destination/ });
  await parked.getByRole("button", { name: "Hold" }).click();
  await parked.getByRole("cell", { name: "held" }).waitFor();
  await parked.getByRole("button", { name: "Resume" }).click();
  await parked.getByRole("cell", { name: "open" }).waitFor();

  // The Archive: the last hour of the default source counted, then sent again as a job.
  const archive = section(page, "Archive");
  const minute = (ms: number) => new Date(ms).toISOString().slice(0, 16);
  await archive.getByLabel("From").fill(minute(Date.now() - 3_600_000));
  await archive.getByLabel("To").fill(minute(Date.now() + 120_000));
  await archive.getByRole("button", { name: "Count" }).click();
  await archive.getByText(/\d+ webhook\(s\) in \d+ archive object\(s\), received from .* to /).waitFor();
  await archive.getByRole("button", { name: "Send again" }).click();
  await archive.getByText("Sending again: progress below.").waitFor();
  await archive.locator("#ar-jobs progress").first().waitFor();

  // The one error the test provoked: the wrong token's 401.
  assert.deepEqual(
    errors.filter((e) => !e.includes("status of 401")),
    [],
  );
  assert.deepEqual(foreign, []);
  await page.close();
});

browserTest("takes the token from the URL fragment, and fits a phone-width screen", async () => {
  assert.ok(available, HOW_TO_INSTALL);
  const { page, errors } = await openConsole(390);
  await page.goto(`${local.url}/console#token=${LOCAL_ADMIN_TOKEN}`);
  await section(page, "Status").getByText("Relay ok").waitFor();
  assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");
  // Evaluated in the page, where the DOM exists (this file is type-checked without it).
  const overflow = (await page.evaluate(
    "document.documentElement.scrollWidth - window.innerWidth",
  )) as number;
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  assert.deepEqual(errors, []);
  await page.close();
});

browserTest(
  "reads a token link pasted into an open tab, refuses an unreadable one, shows bidi characters",
  async () => {
    assert.ok(available, HOW_TO_INSTALL);
    // An unknown event whose name would read backwards past U+202E: drift lists it.
    const hostile = `invoice\u202Efdp.exe-${Date.now()}`;
    assert.equal((await post({ ...sampleWebhook("guideDisplayed"), event: hostile })).status, 202);
    await waitFor(
      "the drift entry",
      async () => {
        const drift = (await (await admin("/drift")).json()) as { entries: { event: string }[] };
        return drift.entries.some((e) => e.event === hostile) ? true : undefined;
      },
      30_000,
    );

    const { page, errors } = await openConsole();
    await page.goto(`${local.url}/console`);
    await page.getByLabel("Admin token").waitFor();
    // The fragment changes with no load: a link pasted into the open tab.
    await page.evaluate('location.hash = "#token=%E0%A4%A"');
    await page.getByText("That link's token could not be read").waitFor();
    assert.equal(new URL(page.url()).hash, "", "an unreadable token leaves the address bar too");
    assert.equal(await section(page, "Status").isVisible(), false);
    await page.evaluate(`location.hash = "#token=${LOCAL_ADMIN_TOKEN}"`);
    await section(page, "Status").getByText("Relay ok").waitFor();
    assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");

    // The name is shown with its override written out, so it cannot reorder the row.
    const shown = hostile.replace("\u202E", "\\u202E");
    const cell = section(page, "Drift").getByRole("cell", { name: shown, exact: true });
    await cell.waitFor();
    assert.equal(await cell.textContent(), shown);
    // A dead letter whose name reads "exe.png evil" unescaped: its row and its dialog's title
    // both show what it is, and the dialog's body is set from the record without a raw override.
    const disguised = `\u202Egnp.exe\u202C evil ${Date.now()}`;
    const letter = await deadLetter({ ...sampleWebhook("guideDisplayed"), event: disguised });
    await page.reload();
    const escaped = disguised.replace("\u202E", "\\u202E").replace("\u202C", "\\u202C");
    const row = section(page, "Dead letters")
      .getByRole("row")
      .filter({ hasText: String(letter.uniqueId) });
    await row.getByRole("cell", { name: escaped, exact: true }).waitFor();
    await row.getByRole("button", { name: "Details" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("Segment's answer").waitFor();
    assert.equal(await dialog.getByRole("heading").first().textContent(), `Dead letter ${escaped}`);
    await dialog.getByRole("button", { name: "Close" }).click();

    // Markup in a sender's strings shows as the literal text it is, in the row and in the dialog:
    // nothing is parsed as HTML, so no element appears and no handler runs.
    const markup = `<b>x</b><img src=x onerror=window.__pwned=1> ${Date.now()}`;
    const marked = await deadLetter({ ...sampleWebhook("guideDisplayed"), event: markup });
    await page.reload();
    const markedRow = section(page, "Dead letters")
      .getByRole("row")
      .filter({ hasText: String(marked.uniqueId) });
    const markedCell = markedRow.getByRole("cell", { name: markup, exact: true });
    await markedCell.waitFor();
    assert.equal(await markedCell.textContent(), markup);
    await markedRow.getByRole("button", { name: "Details" }).click();
    await page.getByRole("dialog").getByText("Segment's answer").waitFor();
    assert.equal(
      await page.getByRole("dialog").getByRole("heading").first().textContent(),
      `Dead letter ${markup}`,
    );
    assert.ok(
      ((await page.getByRole("dialog").textContent()) ?? "").includes("<img src=x onerror=window.__pwned=1>"),
      "the dialog shows the stored body's markup as text",
    );
    await page.getByRole("dialog").getByRole("button", { name: "Close" }).click();
    assert.equal(await page.locator("main b, main img, dialog b, dialog img").count(), 0);
    assert.equal(await page.evaluate("window.__pwned"), undefined);

    const pageText = (await page.evaluate("document.body.textContent")) as string;
    for (const raw of ["\u202E", "\u202C"])
      assert.ok(!pageText.includes(raw), `no raw ${escape(raw)} anywhere on the page`);
    assert.deepEqual(errors, []);
    await page.close();
  },
);

browserTest("draws the Overview from /admin/overview's answer, with or without queue metrics", async () => {
  assert.ok(available, HOW_TO_INSTALL);
  const HOUR = 3_600_000;
  const last = Math.floor(Date.now() / HOUR);
  // 168 hours, the hour now the last: hour 0 has three outcomes, hour 3 one, hour 100 one.
  const series = (at: Record<number, number>) => Array.from({ length: 168 }, (_, i) => at[167 - i] ?? 0);
  const answer = (backlog: unknown, backlogNote?: string) => ({
    from: new Date((last - 167) * HOUR).toISOString(),
    to: new Date().toISOString(),
    perHour: {
      start: new Date((last - 167) * HOUR).toISOString(),
      delivered: series({ 0: 30, 3: 10, 100: 3 }),
      deadLettered: series({ 0: 2 }),
      dropped: series({ 0: 1 }),
      refused: series({}),
    },
    bySource: [
      {
        source: "default",
        events: { guideDisplayed: [40, 2, 1, 0, last * HOUR], "evil\u202Eexe": [3, 0, 0, 0, 0] },
      },
    ],
    backlog,
    ...(backlogNote ? { backlogNote } : {}),
  });
  const { page, errors } = await openConsole(390);
  let backlog: unknown = null;
  // The page asks its own origin; only the answer is made up, to the contract main serves.
  await page.route(/\/admin\/overview\?hours=168$/, (route) =>
    route.fulfill({ json: answer(backlog, backlog ? undefined : "this runtime offers no queue metrics") }),
  );
  await page.goto(`${local.url}/console#token=${LOCAL_ADMIN_TOKEN}`);
  const overview = section(page, "Overview");
  await overview.getByText("Queue backlog: not shown").waitFor();
  assert.equal(
    await overview.getByText(/^Queue backlog/).textContent(),
    "Queue backlog: not shown: this platform offers no queue metrics (the relay says: this runtime offers no queue metrics).",
  );
  const day = overview.locator("figure").filter({ hasText: "Last 24 hours" });
  const week = overview.locator("figure").filter({ hasText: "Last 7 days" });
  assert.equal(
    await day.locator("figcaption").textContent(),
    "Last 24 hours: delivered 40, dead-lettered 2, dropped 1, refused 0",
  );
  assert.equal(
    await week.locator("figcaption").textContent(),
    "Last 7 days: delivered 43, dead-lettered 2, dropped 1, refused 0",
  );
  // Stacked bars: hour 0 has three outcomes, hour 3 one; the 7-day chart also hour 100.
  assert.equal(await day.locator("rect.bar").count(), 4);
  assert.equal(await week.locator("rect.bar").count(), 5);
  assert.equal(await overview.locator("[style]").count(), 0, "no inline style: the CSP would block it");
  assert.doesNotMatch((await overview.textContent()) ?? "", /undefined|null|NaN/);
  const rows = overview.getByRole("row");
  assert.deepEqual((await rows.nth(1).getByRole("cell").allTextContents()).slice(0, 5), [
    "default",
    "40",
    "2",
    "1",
    "0",
  ]);
  await overview.getByRole("rowheader", { name: "evil\\u202Eexe" }).waitFor();
  const overflow = (await page.evaluate(
    "document.documentElement.scrollWidth - window.innerWidth",
  )) as number;
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);

  backlog = { messages: 12, bytes: 3400, oldestAt: "2026-11-30T05:00:00.000Z" };
  await page.reload();
  await overview
    .getByText("Queue backlog: 12 message(s), 3400 bytes, the oldest from 2026-11-30 05:00:00 UTC.")
    .waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});
