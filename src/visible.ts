/**
 * Characters a sender's string may hold that must never reach a reader as they are: they are
 * invisible, or they reorder, break or hide the text around them, so an event name could pass
 * for another ("\u202Egnp.exe" reads "exe.png"). Wherever the relay shows a sender's string, in
 * the console (src/console/client/) and in alerts (src/alerts/alert.ts), each is written out as
 * `\u202E` (`\u{E0041}` past U+FFFF). Both import this one table; nothing keeps a copy.
 *
 * Kept as they are: the zero-width joiner and non-joiner (U+200C, U+200D), which Persian, the
 * Indic scripts and emoji sequences need, and variation selectors, which emoji need.
 */
export const HIDDEN_CHARACTERS: readonly (readonly [low: number, high: number])[] = [
  [0x00, 0x1f], // C0 controls
  [0x7f, 0x9f], // DEL and C1 controls
  [0xad, 0xad], // soft hyphen
  [0x61c, 0x61c], // Arabic letter mark
  [0x180e, 0x180e], // Mongolian vowel separator
  [0x200b, 0x200b], // zero-width space
  [0x200e, 0x200f], // left-to-right and right-to-left marks
  [0x2028, 0x2029], // line and paragraph separators
  [0x202a, 0x202e], // bidirectional embeddings and overrides
  [0x2060, 0x206f], // word joiner, invisible operators, bidirectional isolates, deprecated formats
  [0xd800, 0xdfff], // lone surrogates (a pair is read as one code point)
  [0xfeff, 0xfeff], // byte order mark (zero-width no-break space)
  [0xfff9, 0xfffb], // interlinear annotation controls
  [0xe0000, 0xe007f], // tag characters
];

export const isHidden = (code: number) =>
  HIDDEN_CHARACTERS.some(([low, high]) => code >= low && code <= high);

/** A code point written out: `\u202E`, or `\u{E0041}` past U+FFFF. */
export function writtenOut(code: number): string {
  const hex = code.toString(16).toUpperCase();
  return code > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, "0")}`;
}

// Printable ASCII (and, in a block, tab and newline): most strings, returned untouched at once.
const PLAIN = /^[\x20-\x7e]*$/;
const PLAIN_BLOCK = /^[\t\n\x20-\x7e]*$/;

/**
 * A sender's string as it may be shown: every hidden character written out. A `block` (a raw
 * body in a <pre>) keeps its tabs and line feeds, which lay it out and hide nothing.
 */
export function visible(value: string, block = false): string {
  if ((block ? PLAIN_BLOCK : PLAIN).test(value)) return value;
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    const kept = block && (code === 0x09 || code === 0x0a);
    out += !kept && isHidden(code) ? writtenOut(code) : char;
  }
  return out;
}
