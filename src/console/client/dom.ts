import { visible } from "../../visible";

/**
 * Building the page. Everything the relay answers is a sender's text (webhook bodies, event
 * names): it becomes text nodes, never markup, and `textOf` is the one place such a node is made,
 * so every string shown passes through `visible` (src/visible.ts, the table alerts use too).
 */

export const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
};

/** A sender's string as a text node; a `block` (a <pre>) keeps its tabs and line feeds. */
export const textOf = (value: string, block = false) => document.createTextNode(visible(value, block));

/** An element's whole text, replaced. */
export const setText = (node: Node, value: string, block = false) => {
  node.textContent = "";
  node.appendChild(textOf(value, block));
};

export type Child = Node | string | null | undefined | false | readonly Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => unknown)>;

function fill<T extends Element>(node: T, attrs: Attrs, children: readonly Child[]): T {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  const add = (child: Child) => {
    if (child === undefined || child === null || child === false) return;
    if (typeof child === "string") node.append(textOf(child));
    else if (child instanceof Node) node.append(child);
    else for (const inner of child) add(inner);
  };
  for (const child of children) add(child);
  return node;
}

/** An HTML element; `on…` attributes are listeners. */
export const el = (tag: string, attrs: Attrs = {}, ...children: Child[]) =>
  fill(document.createElement(tag), attrs, children);

// SVG built as nodes with attributes: the CSP allows no inline style, and needs none.
export const svg = (tag: string, attrs: Attrs = {}, ...children: Child[]) =>
  fill(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, children);

export const clear = (node: Element, ...children: Node[]) => node.replaceChildren(...children);

export const pretty = (value: unknown) => JSON.stringify(value, null, 2);

/** A time in ms as the console shows it, in UTC. */
export const when = (ms: number | null | undefined) =>
  ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "never";

/** A query string of the values that are set. */
export const query = (values: Record<string, string | undefined>) =>
  new URLSearchParams(
    Object.entries(values).filter(
      (entry): entry is [string, string] => entry[1] !== "" && entry[1] !== undefined,
    ),
  );

/** A heading and a <pre> of a value (a string as it is, anything else as JSON). */
export const block = (label: string, value: unknown) => [
  el("h3", {}, label),
  el("pre", {}, textOf(typeof value === "string" ? value : pretty(value), true)),
];

/** A table that scrolls on its own on a narrow screen: a caption, column headings, the rows. */
export const table = (caption: string, headings: readonly string[], rows: readonly Node[]) =>
  el(
    "div",
    { class: "scroll" },
    el(
      "table",
      {},
      el("caption", {}, caption),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          headings.map((h) => el("th", { scope: "col" }, h)),
        ),
      ),
      el("tbody", {}, rows),
    ),
  );
