/** The body as text, and as the bytes received (what a quarantine entry keeps). */
export type BodyResult =
  | { ok: true; text: string; bytes: Uint8Array }
  | { ok: false; reason: "too-large" }
  | { ok: false; reason: "not-utf8"; bytes: Uint8Array };

/**
 * Reads at most `limit` bytes. A declared Content-Length over the limit is refused before any
 * byte is read; a body that streams past it is cut off as soon as it does.
 */
export async function readBodyLimited(request: Request, limit: number): Promise<BodyResult> {
  const length = request.headers.get("content-length");
  const declared = length === null ? Number.NaN : Number(length);
  if (Number.isFinite(declared) && declared > limit) return { ok: false, reason: "too-large" };
  if (!request.body) return { ok: true, text: "", bytes: new Uint8Array() };
  // A declared length within the limit bounds the body already (HTTP framing: no byte past it
  // belongs to this request), so it is read in one call: a read loop over the stream costs
  // several times the rest of the body's handling in workerd (bench/stages.ts). Checked anyway.
  if (Number.isFinite(declared)) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    return bytes.byteLength > limit ? { ok: false, reason: "too-large" } : decoded(bytes);
  }

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return { ok: false, reason: "too-large" };
    }
    chunks.push(value);
  }
  return decoded(chunks.length === 1 ? (chunks[0] as Uint8Array) : concat(chunks, size));
}

// One decoder per isolate: decode() without { stream: true } keeps no state between calls.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function decoded(bytes: Uint8Array): BodyResult {
  try {
    return { ok: true, text: utf8.decode(bytes), bytes };
  } catch {
    return { ok: false, reason: "not-utf8", bytes };
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
