/**
 * JSON.parse makes "__proto__" an ordinary own key, but plain assignment (`obj[key] = value`,
 * Object.assign, valibot's object copy) turns it into a prototype change: no global pollution,
 * yet the field silently vanishes. These helpers keep it as data, so the relay stays lossless
 * and an attacker's "__proto__" is just another field.
 */
const PROTO = "__proto__";

export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === PROTO)
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

export function assignOwn(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const key of Object.keys(source)) setOwn(target, key, source[key]);
}

/** Puts back an own "__proto__" key that a copy of `raw` lost. Cheap when there is none. */
export function keepProtoKey(raw: unknown, copy: unknown): void {
  if (raw === null || typeof raw !== "object" || copy === null || typeof copy !== "object") return;
  if (Object.hasOwn(raw, PROTO) && !Object.hasOwn(copy, PROTO)) {
    setOwn(copy as Record<string, unknown>, PROTO, (raw as Record<string, unknown>)[PROTO]);
  }
}
