/**
 * The operator console's script: bundled by esbuild into src/console/assets.generated.ts
 * (`npm run docs`), served as /console/app.js under a CSP that allows no other script.
 */
import { $, setText } from "./dom";
import { fragmentToken } from "./pure";
import type { Section } from "./section";
import { archive } from "./sections/archive";
import { deadLetters } from "./sections/deadLetters";
import { drift } from "./sections/drift";
import { overview } from "./sections/overview";
import { playground } from "./sections/playground";
import { quarantine } from "./sections/quarantine";
import { status } from "./sections/status";
import { session } from "./session";

/** In the page's order. */
const SECTIONS: Section[] = [overview, status, deadLetters, quarantine, drift, archive, playground];

function signOut(message: string) {
  session.clear();
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#signin").hidden = false;
  for (const body of document.querySelectorAll("[data-clear]")) body.replaceChildren();
  setText($("#signin-error"), message);
}
session.whenRefused(signOut);

async function signIn() {
  const check = await fetch("/admin/alerts", { headers: { authorization: `Bearer ${session.token}` } });
  if (!check.ok) {
    signOut(check.status === 401 ? "That admin token is not valid." : `The relay answered ${check.status}.`);
    return;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  await Promise.all(SECTIONS.map((section) => section.load()));
}

// `npm start` prints the console's URL with the token in the fragment, which never reaches a
// server or its logs: read it, keep it for this tab only, and take it out of the address bar,
// whether it could be read or not. Read on load and on every later change of the fragment.
function takeFragmentToken() {
  const found = fragmentToken(location.hash);
  if (!found) return null;
  history.replaceState(null, "", location.pathname + location.search);
  if ("token" in found) session.set(found.token);
  return found;
}
const atLoad = takeFragmentToken();

document.addEventListener("DOMContentLoaded", () => {
  for (const section of SECTIONS) section.wire?.();
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $<HTMLInputElement>("#token");
    session.set(field.value.trim());
    field.value = "";
    void signIn();
  });
  $("#signout").addEventListener("click", () => signOut(""));
  $("#dialog-close").addEventListener("click", () => $<HTMLDialogElement>("#dialog").close());
  // A link pasted into a tab already open changes only the fragment: no load, so listen.
  window.addEventListener("hashchange", () => {
    const found = takeFragmentToken();
    if (found && "error" in found) signOut(found.error);
    else if (found) void signIn();
  });
  if (atLoad && "error" in atLoad) signOut(atLoad.error);
  else if (session.token) void signIn();
});
