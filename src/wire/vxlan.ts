// wire/vxlan.ts: the VXLAN header (RFC 7348), carried in UDP to port 4789.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |R|R|R|R|I|R|R|R|            Reserved                           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                VXLAN Network Identifier (VNI) |   Reserved    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  inner Ethernet frame ...

import { E_BOUNDS, outOfBounds, readU32, writeU32 } from './byte-order.js';
import type { Parsed, WireError } from './ethernet.js';

export const VXLAN_HLEN = 8;
export const VXLAN_PORT = 4789;
export const VXLAN_FLAG_I = 0x08;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

export class VxlanView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get flags(): number {
    return this.u8[this.off]!;
  }
  get vni(): number {
    return readU32(this.u8, this.off + 4) >>> 8;
  }
  get payloadOffset(): number {
    return this.off + VXLAN_HLEN;
  }
}

const E_SHORT: WireError = { reason: 'truncated: VXLAN header needs 8 bytes' };
const E_FLAG_I: WireError = { reason: 'VXLAN I flag not set' };

/** RFC 7348: the I flag must be set; other flag and reserved bits are ignored on receipt. */
export function checkVxlan(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < VXLAN_HLEN) return E_SHORT;
  if ((u8[off]! & VXLAN_FLAG_I) === 0) return E_FLAG_I;
  return null;
}

export interface VxlanFields {
  readonly flags: number;
  readonly vni: number;
}

export function parseVxlan(u8: Uint8Array, off: number, len: number): Parsed<VxlanFields> {
  const e = checkVxlan(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new VxlanView(u8, off);
  return { ok: true, value: { flags: v.flags, vni: v.vni } };
}

export interface VxlanInit {
  vni: number;
  /** Default 0x08 (I). */
  flags?: number;
}

export function emitVxlan(f: VxlanInit, u8: Uint8Array, off: number): number {
  writeU32(u8, off, ((f.flags ?? VXLAN_FLAG_I) & 0xff) << 24);
  // as an int32 bit pattern: a VNI from 2^23 up times 256 is a double, a heap number if writeU32 is not inlined
  writeU32(u8, off + 4, (f.vni & 0xffffff) << 8);
  return VXLAN_HLEN;
}
