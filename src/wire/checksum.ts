// wire/checksum.ts: the Internet checksum (RFC 1071) over byte ranges, IPv4/IPv6 pseudo-header sums, and
// incremental updates (RFC 1624) for a rewritten 16- or 32-bit field.
//
//  checksum = ~( sum of 16-bit big-endian words, end-around carry folded ) & 0xffff
//  IPv4 pseudo header: src(4) dst(4) zero(1) protocol(1) L4-length(2)          (RFC 768/793)
//  IPv6 pseudo header: src(16) dst(16) L4-length(4) zero(3) next-header(1)      (RFC 8200 §8.1)
//
// Sums are kept unfolded as plain numbers (a 64 KB range sums below 2^32, far within 2^53), folded at the end.

/** Bytewise form of sumBytes (pairs relative to off: u8[off] is a high byte). */
export function sumBytesSlow(u8: Uint8Array, off: number, len: number, initial = 0): number {
  let s = initial;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) s += (u8[i]! << 8) | u8[i + 1]!;
  if (i < end) s += u8[i]! << 8;
  return s;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** One Uint32Array over each buffer seen (slabs are long-lived: made once). */
const wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();

/**
 * A Uint32Array over the whole buffer under u8 (index 0 = the buffer's first byte, not u8's: callers add
 * u8.byteOffset), made once per buffer. For word-at-a-time sums and copies over frame slabs.
 */
export function wordView(u8: Uint8Array): Uint32Array {
  let w = wordViews.get(u8.buffer);
  if (w === undefined) {
    w = new Uint32Array(u8.buffer, 0, u8.buffer.byteLength >>> 2);
    wordViews.set(u8.buffer, w);
  }
  return w;
}

function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/**
 * Unfolded one's-complement partial sum of u8[off..off+len), added to `initial`: u8[off] is the high byte of the
 * first word; an odd tail pads with zero. Long ranges sum whole 32-bit words: a little-endian word
 * b0 + b1·2^8 + b2·2^16 + b3·2^24 is congruent, mod 0xffff, to the sum of its two little-endian 16-bit halves,
 * so the folded total is the byte-swapped sum (RFC 1071 §2(B)) when the words start at an even distance from off.
 */
export function sumBytes(u8: Uint8Array, off: number, len: number, initial = 0): number {
  if (len < 128 || !LITTLE_ENDIAN) return sumBytesSlow(u8, off, len, initial);
  const base = u8.byteOffset;
  const end = off + len;
  let s = initial;
  let a = off;
  while (((base + a) & 3) !== 0) {
    s += ((a - off) & 1) === 0 ? u8[a]! << 8 : u8[a]!;
    a++;
  }
  const w = wordView(u8);
  let wi = (base + a) >>> 2;
  const n = (end - a) >>> 2;
  const wend = wi + n;
  let sw = 0; // < 2^32 per word, 2^21 words before 2^53: ranges up to 8 MB stay exact
  for (; wi + 8 <= wend; wi += 8)
    sw += w[wi]! + w[wi + 1]! + w[wi + 2]! + w[wi + 3]! + w[wi + 4]! + w[wi + 5]! + w[wi + 6]! + w[wi + 7]!;
  for (; wi < wend; wi++) sw += w[wi]!;
  const folded = foldSum(sw);
  s += ((a - off) & 1) === 0 ? swap16(folded) : folded;
  for (a += n * 4; a < end; a++) s += ((a - off) & 1) === 0 ? u8[a]! << 8 : u8[a]!;
  return s;
}

/** Fold a partial sum to 16 bits with end-around carry (not complemented). */
export function foldSum(s: number): number {
  // % and /, not & and >>: s may exceed 2^32
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** The Internet checksum of a range: the value to store in a checksum field that reads zero while summing. */
export function internetChecksum(u8: Uint8Array, off: number, len: number, initial = 0): number {
  return ~foldSum(sumBytes(u8, off, len, initial)) & 0xffff;
}

/** True when a range that includes its checksum field sums to 0xffff (i.e. the checksum verifies). */
export function checksumValid(u8: Uint8Array, off: number, len: number, initial = 0): boolean {
  return foldSum(sumBytes(u8, off, len, initial)) === 0xffff;
}

/** IPv4 pseudo-header partial sum for TCP/UDP/ (src, dst as uint32). */
export function pseudoSumIpv4(src: number, dst: number, protocol: number, l4Length: number): number {
  return (
    Math.floor(src / 0x10000) + (src & 0xffff) + Math.floor(dst / 0x10000) + (dst & 0xffff) + protocol + l4Length
  );
}

/** IPv6 pseudo-header partial sum; src and dst are 16 bytes at u8[srcOff] and u8[dstOff]. */
export function pseudoSumIpv6(
  u8: Uint8Array,
  srcOff: number,
  dstOff: number,
  nextHeader: number,
  l4Length: number,
): number {
  let s = sumBytes(u8, srcOff, 16);
  s = sumBytes(u8, dstOff, 16, s);
  return s + Math.floor(l4Length / 0x10000) + (l4Length & 0xffff) + nextHeader;
}

/**
 * Compute and store a checksum over u8[off..off+len) whose field sits at u8[off+fieldRel]; the field is zeroed
 * first. `udp`: a computed 0 is sent as 0xffff (RFC 768, 0 means "no checksum" over IPv4).
 * Returns the stored value.
 */
export function fillChecksum(
  u8: Uint8Array,
  off: number,
  len: number,
  fieldRel: number,
  pseudoSum = 0,
  udp = false,
): number {
  u8[off + fieldRel] = 0;
  u8[off + fieldRel + 1] = 0;
  let c = internetChecksum(u8, off, len, pseudoSum);
  if (udp && c === 0) c = 0xffff;
  u8[off + fieldRel] = c >>> 8;
  u8[off + fieldRel + 1] = c & 0xff;
  return c;
}

/**
 * RFC 1624 eqn. 3: new checksum after a 16-bit word of the covered data changes from `oldWord` to `newWord`.
 * HC' = ~(~HC + ~m + m')
 */
export function checksumUpdate16(oldChecksum: number, oldWord: number, newWord: number): number {
  const s = (~oldChecksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldSum(s) & 0xffff;
}

/** As checksumUpdate16 for a 32-bit field (an IPv4 address or a TCP sequence number), word-aligned. */
export function checksumUpdate32(oldChecksum: number, oldValue: number, newValue: number): number {
  const s =
    (~oldChecksum & 0xffff) +
    (~Math.floor(oldValue / 0x10000) & 0xffff) +
    (~oldValue & 0xffff) +
    (Math.floor(newValue / 0x10000) & 0xffff) +
    (newValue & 0xffff);
  return ~foldSum(s) & 0xffff;
}
