/**
 * JSON.parse makes "__proto__" an ordinary own key, but plain assignment (`obj[key] = value`,
 * Object.assign) turns it into a prototype change: no global pollution, yet the field silently
 * vanishes. `setOwn` keeps it as data, so the relay stays lossless and an attacker's "__proto__"
 * is just another field. (Spread and rest copies define properties, so they keep it too.)
 */
const PROTO = "__proto__";

export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === PROTO)
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
