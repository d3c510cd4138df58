const encoder = new TextEncoder();

/** Hex digest of a text: SHA-1 for body-derived event ids, SHA-256 for visitor ids kept in KV. */
export async function digestHex(algorithm: "SHA-1" | "SHA-256", text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, encoder.encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
