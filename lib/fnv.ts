/**
 * FNV-1a, the 32-bit hash echod uses where it needs a fast, stable spread
 * of short keys: admission buckets, UDP loop fingerprints.
 *
 * @module
 */

/** FNV-1a's 32-bit offset basis. */
export const FNV_OFFSET = 0x811c9dc5;

/** FNV-1a over `data[0..end)`, from `basis`; an unsigned 32-bit number. */
export function fnv1a(data: Uint8Array, end: number = data.length, basis = FNV_OFFSET): number {
  let hash = basis;
  for (let i = 0; i < end; i++) {
    hash ^= data[i];
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
