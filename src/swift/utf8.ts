// UTF-8 as Python's codecs see it, shared by the pickle reader and writer, hash_path and the
// metadata's surrogateescape: strings without a lone surrogate are plain UTF-8 for both, and
// the WHATWG decoder with fatal set refuses exactly the bytes Python's 'utf8' refuses
// (overlong forms, encoded surrogates, past U+10FFFF; a BOM is text, kept).

/** A strict decoder: throws on bytes that are not UTF-8. */
export const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
export const UTF8_ENCODER = new TextEncoder();

/**
 * Whether s holds a surrogate with no partner, which Python's 'utf8' refuses (and
 * surrogateescape/surrogatepass turn into bytes) and TextEncoder would make U+FFFD.
 */
export function hasLoneSurrogate(s: string): boolean {
  // String.prototype.isWellFormed: ES2024, in every Node this project runs on (>= 20)
  return !(s as string & { isWellFormed(): boolean }).isWellFormed();
}
