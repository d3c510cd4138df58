import type { AlertScope } from "../alerts/notify";
import { runJobStep } from "../archive/jobs";
import type { Settings } from "../config";
import type { Env } from "../env";
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

/** Does one step; returns a delay to retry this same message after (the next could not be sent). */
export async function handleControl(
  env: Env,
  settings: Settings,
  scope: AlertScope,
  sender: Sender,
  control: ControlMessage,
): Promise<number | undefined> {
  let next: { delaySeconds: number; chain: string } | undefined;
  try {
    next =
      control.kind === "destination"
        ? await destinationStep(env, settings, scope, sender, control.destination, control.chain)
        : await runJobStep(env, settings, control.job, control.chain, Date.now());
  } catch (error) {
    log("error", "chain-step-failed", { kind: control.kind, error: String(error) });
    // The step is retried; its claims lapse, so a retry redoes only what was not finished.
    return 30;
  }
  if (!next) return undefined;
  try {
    await sendControl(env, { ...control, chain: next.chain }, next.delaySeconds);
    return undefined;
  } catch (error) {
    // This message is acked: its token has moved on, so a retry would end at once; the cron
    // restarts the chain once it has gone quiet.
    log("error", "chain-send-failed", { kind: control.kind, error: String(error) });
    return undefined;
  }
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
