/**
 * One section of the page (Overview, Status, Dead letters, …): main.ts loads every section on
 * sign-in and wires each once. A new section is a module exporting one of these, listed there.
 */
export interface Section {
  /** Reads the admin API and draws the section. */
  load(): Promise<void>;
  /** Listens to the section's own controls, once, when the page is ready. */
  wire?(): void;
}
