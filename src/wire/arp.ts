// wire/arp.ts: ARP (RFC 826) for Ethernet / IPv4 only: hlen 6, plen 4, 28 bytes.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |      Hardware type (1)        |     Protocol type (0x0800)    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  HLEN (6)     |   PLEN (4)    |   Operation (1 req, 2 reply)  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |              Sender hardware address (6) ...                  |
//  |   ... | Sender protocol address (4)   | Target hardware (6)...|
//  |       ...                             | Target protocol (4)   |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { readMac, writeMac, type Parsed, type WireError } from './ethernet.js';

export const ARP_LEN = 28;
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_PTYPE_IPV4 = 0x0800;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export class ArpView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get htype(): number {
    return readU16(this.u8, this.off);
  }
  get ptype(): number {
    return readU16(this.u8, this.off + 2);
  }
  get hlen(): number {
    return this.u8[this.off + 4]!;
  }
  get plen(): number {
    return this.u8[this.off + 5]!;
  }
  get op(): number {
    return readU16(this.u8, this.off + 6);
  }
  get sha(): number {
    return readMac(this.u8, this.off + 8);
  }
  get spa(): number {
    return readU32(this.u8, this.off + 14);
  }
  get tha(): number {
    return readMac(this.u8, this.off + 18);
  }
  get tpa(): number {
    return readU32(this.u8, this.off + 24);
  }
  /** Gratuitous: sender and target protocol addresses equal. */
  get isGratuitous(): boolean {
    return readU32(this.u8, this.off + 14) === readU32(this.u8, this.off + 24);
  }
}

const E_SHORT8: WireError = { reason: 'truncated: ARP header needs 8 bytes' };
const E_HTYPE: WireError = { reason: 'ARP hardware type is not Ethernet (1)' };
const E_PTYPE: WireError = { reason: 'ARP protocol type is not IPv4 (0x0800)' };
const E_HPLEN: WireError = { reason: 'ARP hlen/plen not 6/4 for Ethernet/IPv4' };
const E_SHORT: WireError = { reason: 'truncated: ARP for Ethernet/IPv4 needs 28 bytes' };

export function checkArp(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < 8) return E_SHORT8;
  if (readU16(u8, off) !== ARP_HTYPE_ETHERNET) return E_HTYPE;
  if (readU16(u8, off + 2) !== ARP_PTYPE_IPV4) return E_PTYPE;
  if (u8[off + 4] !== 6 || u8[off + 5] !== 4) return E_HPLEN;
  if (len < ARP_LEN || off + ARP_LEN > u8.length) return E_SHORT;
  return null;
}

export interface ArpFields {
  readonly op: number;
  readonly sha: number;
  readonly spa: number;
  readonly tha: number;
  readonly tpa: number;
}

export function parseArp(u8: Uint8Array, off: number, len: number): Parsed<ArpFields> {
  const e = checkArp(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new ArpView(u8, off);
  return { ok: true, value: { op: v.op, sha: v.sha, spa: v.spa, tha: v.tha, tpa: v.tpa } };
}

export interface ArpInit {
  op: number;
  sha: number;
  spa: number;
  tha: number;
  tpa: number;
  /** Overrides for crafting bad frames. */
  htype?: number;
  ptype?: number;
  hlen?: number;
  plen?: number;
}

export function emitArp(f: ArpInit, u8: Uint8Array, off: number): number {
  writeU16(u8, off, f.htype ?? ARP_HTYPE_ETHERNET);
  writeU16(u8, off + 2, f.ptype ?? ARP_PTYPE_IPV4);
  u8[off + 4] = f.hlen ?? 6;
  u8[off + 5] = f.plen ?? 4;
  writeU16(u8, off + 6, f.op);
  writeMac(u8, off + 8, f.sha);
  writeU32(u8, off + 14, f.spa);
  writeMac(u8, off + 18, f.tha);
  writeU32(u8, off + 24, f.tpa);
  return ARP_LEN;
}
