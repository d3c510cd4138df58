import type { AlertScope } from "../alerts/notify";
import { runJobStep } from "../archive/jobs";
import type { Settings } from "../config";
import type { Env } from "../env";
import { randomHex } from "../ledger/records";
import { log } from "../log";
import { type ControlMessage, encodeControl } from "../queue/message";
import { destinationStep } from "./drain";
import type { Sender } from "./send";

/**
 * The relay's own chains run on its own queue: a control message does one step and sends the
 * next (with the step's delay) before it is acked, so a chain needs no timer and survives
 * isolates. Each chain is owned through the ledger (a destination's `chain` token, a job's
 * lease): a duplicate or stale message does nothing. The cron restarts a chain that went quiet.
 */

/** What a step answers: run the next step after this delay, or the chain ends (undefined). */
export type Next = { delaySeconds: number } | undefined;

// A step that threw is tried again after this: its claims are given back or lapse.
const FAILED_STEP_DELAY_SECONDS = 30;

/**
 * Does one step and sends the next. The step's token is chosen here, before the step takes the
 * chain with it (compare-and-set). A step that throws may have taken the chain or not (its first
 * statement may not have run): it sends a successor under each token, and since the ledger holds
 * exactly one of them, exactly one goes on and the other ends at once. Always acks its own message.
 */
export async function handleControl(
  env: Env,
  settings: Settings,
  scope: AlertScope,
  sender: Sender,
  control: ControlMessage,
): Promise<undefined> {
  const token = randomHex(8);
  let next: Next;
  let threw = false;
  try {
    next =
      control.kind === "destination"
        ? await destinationStep(env, settings, scope, sender, control.destination, control.chain, token)
        : await runJobStep(env, settings, control.job, control.chain, token, Date.now());
  } catch (error) {
    log("error", "chain-step-failed", { kind: control.kind, error: String(error) });
    next = { delaySeconds: FAILED_STEP_DELAY_SECONDS };
    threw = true;
  }
  if (!next) return undefined;
  try {
    await sendControl(env, { ...control, chain: token }, next.delaySeconds);
    if (threw) await sendControl(env, control, next.delaySeconds);
  } catch (error) {
    // Nothing can carry the chain on now: the cron restarts it once it has gone quiet.
    log("error", "chain-send-failed", { kind: control.kind, error: String(error) });
  }
  return undefined;
}

/** Starts (or restarts) a destination's probe and drain chain. A failure is left to the cron. */
export async function startChain(env: Env, destination: string, chain: string, delaySeconds: number) {
  try {
    await sendControl(env, { v: "control", kind: "destination", destination, chain }, delaySeconds);
  } catch (error) {
    log("error", "chain-send-failed", { kind: "destination", destination, error: String(error) });
  }
}

export async function startJob(env: Env, job: string, chain: string) {
  await sendControl(env, { v: "control", kind: "replay-job", job, chain }, 0);
}

// Queues delay a message at most 24 hours (developers.cloudflare.com/queues/configuration/batching-retries).
const MAX_DELAY_SECONDS = 86_400;

function sendControl(env: Env, control: ControlMessage, delaySeconds: number) {
  const delay = Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.ceil(delaySeconds)));
  return env.EVENTS.send(encodeControl(control), { contentType: "text", delaySeconds: delay });
}
