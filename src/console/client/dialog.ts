import { $, clear, el, pretty, setText } from "./dom";

/** A dialog: a heading, content, and optionally a confirming button that runs `onConfirm`. */
export function openDialog(
  title: string,
  content: Node[],
  confirmLabel = "",
  onConfirm: () => Promise<void> = async () => undefined,
) {
  const dialog = $<HTMLDialogElement>("#dialog");
  // The title often holds a sender's name: set as text through `visible`, like every cell.
  setText($("#dialog-title"), title);
  clear($("#dialog-body"), ...content);
  const confirm = $<HTMLButtonElement>("#dialog-confirm");
  confirm.hidden = !confirmLabel;
  setText(confirm, confirmLabel);
  confirm.onclick = async () => {
    confirm.disabled = true;
    try {
      await onConfirm();
    } finally {
      confirm.disabled = false;
      dialog.close();
    }
  };
  dialog.showModal();
}

/** What one replay (or one delete) answered: a result, or an error answer of the API. */
export interface ReplayResult {
  ok?: boolean;
  id?: string;
  status?: string;
  removed?: boolean;
  reason?: string;
  error?: string;
  detail?: string;
  issues?: unknown[];
}

/** The results of a replay run, one line each, under the section that ran it. */
export function showResults(results: ReplayResult[]) {
  const line = (r: ReplayResult) =>
    r.ok
      ? `${r.status}${r.removed === false ? " (record kept: delete it)" : ""}`
      : `${r.reason ?? r.error}${r.detail ? ` (${r.detail})` : r.issues ? ` ${pretty(r.issues)}` : ""}`;
  clear(
    $("#replay-results"),
    el("h3", {}, "Replay results"),
    el(
      "ul",
      {},
      results.map((r) => el("li", { class: r.ok ? "ok" : "bad" }, `${r.id}: ${line(r)}`)),
    ),
  );
}
