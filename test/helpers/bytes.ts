// test/helpers/bytes.ts: big-endian reads and writes, a reference Internet checksum and deterministic payloads
// for the unit tests that build frames by hand (offload, GRO). Plain and slow on purpose: the reference the
// product's fast code is checked against.

export const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
export const be32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, (v >>> 16) & 0xffff);
  put16(b, o + 2, v & 0xffff);
}

/** Reference ones'-complement sum (RFC 1071, one BE word at a time, odd tail padded) of b[a..e) plus seed, folded. */
export function refSum(b: Uint8Array, a = 0, e = b.length, seed = 0): number {
  let s = seed;
  for (let i = a; i + 1 < e; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if ((e - a) & 1) s += b[e - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** A deterministic payload (xorshift), so a swapped or misplaced byte shows. */
export function payload(n: number, seed: number): Uint8Array {
  const p = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    p[i] = x & 0xff;
  }
  return p;
}
