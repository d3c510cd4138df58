import { $, clear, el, pretty, query, setText } from "../dom";
import type { Section } from "../section";
import { api } from "../session";

interface Transform {
  calls: unknown[];
  warnings: unknown[];
}

/** The sources the relay serves, to map a payload as one of them would (Status reads them). */
/** The configured sources, in every picker of the page (the playground's, the archive's). */
export function showSources(names: string[]) {
  for (const picker of ["#pg-source", "#ar-source"])
    clear($(picker), ...names.map((name) => el("option", { value: name }, name)));
}

async function preview(event: Event) {
  event.preventDefault();
  const source = $<HTMLSelectElement>("#pg-source").value || "default";
  const { status, body } = await api<Transform>(`/debug/transform?${query({ source })}`, {
    method: "POST",
    body: $<HTMLTextAreaElement>("#pg-payload").value,
  });
  const shown = status === 200 ? { calls: body.calls, warnings: body.warnings } : { status, ...body };
  setText($("#pg-out"), pretty(shown), true);
}

export const playground: Section = {
  // Nothing to read: the examples are in the page, the sources come with Status.
  async load() {},
  wire() {
    const examples = JSON.parse($("#examples").textContent ?? "{}") as Record<string, unknown>;
    clear(
      $("#pg-examples"),
      ...Object.entries(examples).map(([name, example]) =>
        el(
          "button",
          {
            type: "button",
            onclick: () => {
              $<HTMLTextAreaElement>("#pg-payload").value = pretty(example);
            },
          },
          `${name} example`,
        ),
      ),
    );
    $("#pg-form").addEventListener("submit", preview);
  },
};
