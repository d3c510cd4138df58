/**
 * The one format of every object the relay writes to R2: a sequence of frames, each a line of
 * JSON metadata naming its length, then exactly that many bytes, then a newline.
 *
 *   {"n":1234,"id":"…"}\n<1234 bytes>\n{"n":56,…}\n<56 bytes>\n
 *
 * Bytes stay bytes (a webhook that is not UTF-8 is kept as it came), a reader needs no schema to
 * split an object, and a ledger row can point at one frame's bytes by offset and length, read
 * back with one ranged get. `JSON.stringify` never writes a raw newline, so the metadata line
 * ends at the first one.
 */

export interface Frame<M extends object = Record<string, unknown>> {
  meta: M;
  bytes: Uint8Array;
}

/** Where one frame's bytes sit in the object. */
export interface Slice {
  offset: number;
  length: number;
}

const encoder = new TextEncoder();
const NEWLINE = 0x0a;

/** The object's bytes, and where each frame's bytes sit in it (in the order given). */
export function encodeFrames(frames: readonly Frame[]): { data: Uint8Array; slices: Slice[] } {
  const heads = frames.map((frame) =>
    encoder.encode(`${JSON.stringify({ ...frame.meta, n: frame.bytes.length })}\n`),
  );
  const size = frames.reduce(
    (sum, frame, i) => sum + (heads[i] as Uint8Array).length + frame.bytes.length + 1,
    0,
  );
  const data = new Uint8Array(size);
  const slices: Slice[] = [];
  let at = 0;
  frames.forEach((frame, i) => {
    const head = heads[i] as Uint8Array;
    data.set(head, at);
    at += head.length;
    slices.push({ offset: at, length: frame.bytes.length });
    data.set(frame.bytes, at);
    at += frame.bytes.length;
    data[at++] = NEWLINE;
  });
  return { data, slices };
}

export type DecodedFrames = { ok: true; frames: Frame[] } | { ok: false; detail: string; frames: Frame[] };

const decoder = new TextDecoder();

/**
 * Splits an object into its frames. A damaged object yields the frames before the damage and
 * says where it stopped, so a reader can use what is whole and report the rest.
 */
export function decodeFrames(data: Uint8Array): DecodedFrames {
  const frames: Frame[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf(NEWLINE, at);
    if (end < 0) return { ok: false, detail: `no metadata line at byte ${at}`, frames };
    let meta: unknown;
    try {
      meta = JSON.parse(decoder.decode(data.subarray(at, end)));
    } catch {
      return { ok: false, detail: `the metadata at byte ${at} is not JSON`, frames };
    }
    const length = (meta as { n?: unknown } | null)?.n;
    if (!Number.isInteger(length) || (length as number) < 0) {
      return { ok: false, detail: `the metadata at byte ${at} names no length`, frames };
    }
    const start = end + 1;
    // Past the end of the object there is no byte, so no newline either: cut short.
    if (data[start + (length as number)] !== NEWLINE) {
      return { ok: false, detail: `the frame at byte ${at} is cut short`, frames };
    }
    frames.push({
      meta: meta as Record<string, unknown>,
      bytes: data.subarray(start, start + (length as number)),
    });
    at = start + (length as number) + 1;
  }
  return { ok: true, frames };
}
