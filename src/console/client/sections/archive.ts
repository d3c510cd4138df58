import { $, block, clear, el, setText } from "../dom";
import type { Section } from "../section";
import { api } from "../session";

interface DryRun {
  /** The range as a job would run it: its end no later than ARCHIVE_SETTLE_SECONDS ago. */
  from: string;
  to: string;
  events: number;
  batches: number;
  complete: boolean;
  first: { eventId: string; receivedAt: string; willSend?: unknown[]; error?: string } | null;
}

interface Job {
  id: string;
  source: string;
  from: string;
  to: string;
  state: string;
  sent: number;
  total: number;
  skipped: number;
}

/** The form's request: a source and a range of `datetime-local` values read as UTC. */
function request() {
  const utc = (value: string) => (value ? `${value}:00Z` : "");
  return {
    source: $<HTMLSelectElement>("#ar-source").value,
    from: utc($<HTMLInputElement>("#ar-from").value),
    to: utc($<HTMLInputElement>("#ar-to").value),
  };
}

const issuesText = (body: { issues?: { path: string; message: string }[]; message?: string }) =>
  body.issues?.map((i) => `${i.path || "(body)"}: ${i.message}`).join("; ") ?? body.message ?? "";

function jobRow(job: Job) {
  const running = job.state === "running";
  return el(
    "li",
    {},
    `${job.source}, ${job.from} to ${job.to}: ${job.state}, ${job.sent} of ${job.total} sent${
      job.skipped ? `, ${job.skipped} skipped` : ""
    } `,
    el("progress", { max: Math.max(job.total, 1), value: Math.min(job.sent, job.total) }),
    running &&
      el(
        "button",
        {
          type: "button",
          onclick: async () => {
            await api(`/admin/archive/replay/${encodeURIComponent(job.id)}`, { method: "DELETE" });
            await archive.load();
          },
        },
        "Cancel",
      ),
  );
}

let polling: ReturnType<typeof setTimeout> | undefined;

/**
 * Archive: send a time range of one source again. The count (a dry run) and what the first
 * webhook maps to today come first; then a job, with its progress, refreshed while it runs.
 */
export const archive: Section = {
  async load() {
    const { body } = await api<{ entries: Job[] }>("/admin/archive/replay");
    const jobs = body.entries ?? [];
    clear($("#ar-jobs"), ...jobs.map(jobRow));
    clearTimeout(polling);
    if (jobs.some((job) => job.state === "running")) polling = setTimeout(() => void archive.load(), 2_000);
  },
  wire() {
    $("#ar-count").addEventListener("click", async () => {
      const { status, body } = await api<DryRun & { issues?: { path: string; message: string }[] }>(
        "/admin/archive/replay",
        {
          method: "POST",
          body: JSON.stringify({ ...request(), dryRun: true }),
          headers: { "content-type": "application/json" },
        },
      );
      const out = $("#ar-out");
      if (status !== 200) return setText(out, `Not counted: ${issuesText(body)}`);
      clear(
        out,
        el(
          "p",
          {},
          `${body.events} webhook(s) in ${body.batches} archive object(s)${body.complete ? "" : " (at least: the range holds more than one answer lists)"}, received from ${body.from} to ${body.to}.`,
        ),
        ...(body.first
          ? block(`The first (${body.first.eventId}) maps to`, body.first.willSend ?? body.first.error)
          : []),
      );
      $<HTMLButtonElement>("#ar-send").disabled = !body.events;
    });
    $("#ar-send").addEventListener("click", async () => {
      const { status, body } = await api<{
        job?: Job;
        issues?: { path: string; message: string }[];
        message?: string;
      }>("/admin/archive/replay", {
        method: "POST",
        body: JSON.stringify(request()),
        headers: { "content-type": "application/json" },
      });
      setText(
        $("#ar-out"),
        status === 202 ? "Sending again: progress below." : `Not started: ${issuesText(body)}`,
      );
      await archive.load();
    });
  },
};
