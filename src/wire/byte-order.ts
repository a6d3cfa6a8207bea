// wire/byte-order.ts: big-endian (network order) reads and writes of 16/32-bit fields on a Uint8Array.
// uint32 values use multiplication, not shifts: (b << 24) is negative for b >= 0x80.

export function readU16(u8: Uint8Array, off: number): number {
  return (u8[off]! << 8) | u8[off + 1]!;
}

export function writeU16(u8: Uint8Array, off: number, v: number): void {
  u8[off] = (v >>> 8) & 0xff;
  u8[off + 1] = v & 0xff;
}

export function readU32(u8: Uint8Array, off: number): number {
  return u8[off]! * 0x100_0000 + ((u8[off + 1]! << 16) | (u8[off + 2]! << 8) | u8[off + 3]!);
}

export function writeU32(u8: Uint8Array, off: number, v: number): void {
  u8[off] = (v >>> 24) & 0xff;
  u8[off + 1] = (v >>> 16) & 0xff;
  u8[off + 2] = (v >>> 8) & 0xff;
  u8[off + 3] = v & 0xff;
}

/** A (off, len) window that does not lie inside the buffer: callers passed inconsistent bounds. */
export function outOfBounds(u8: Uint8Array, off: number, len: number): boolean {
  return !(off >= 0 && len >= 0 && off + len <= u8.length);
}

export const E_BOUNDS = { reason: 'offset/length outside the buffer' } as const;
