// wire/udp.ts: the UDP header (RFC 768).
//
//   0      7 8     15 16    23 24    31
//  +--------+--------+--------+--------+
//  |   Source Port   |  Destination    |
//  |                 |     Port        |
//  +--------+--------+--------+--------+
//  |     Length      |    Checksum     |
//  +--------+--------+--------+--------+
//  |          data octets ...
//
// Length covers header and data. Checksum 0 over IPv4 means "none"; a computed 0 is sent as 0xffff.

import { E_BOUNDS, outOfBounds, readU16, writeU16 } from './byte-order.js';
import { checksumValid } from './checksum.js';
import type { Parsed, WireError } from './ethernet.js';

export const UDP_HLEN = 8;
export const UDP_PORT_DHCP_SERVER = 67;
export const UDP_PORT_DHCP_CLIENT = 68;
export const UDP_PORT_VXLAN = 4789;

export class UdpView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get sport(): number {
    return readU16(this.u8, this.off);
  }
  get dport(): number {
    return readU16(this.u8, this.off + 2);
  }
  get length(): number {
    return readU16(this.u8, this.off + 4);
  }
  get checksum(): number {
    return readU16(this.u8, this.off + 6);
  }
  get payloadOffset(): number {
    return this.off + UDP_HLEN;
  }
  get payloadLength(): number {
    return readU16(this.u8, this.off + 4) - UDP_HLEN;
  }
  /** Checksum verifies against a pseudo-header sum (a zero checksum counts as valid: "none", IPv4 only). */
  checksumOk(pseudoSum: number): boolean {
    return this.checksum === 0 || checksumValid(this.u8, this.off, this.length, pseudoSum);
  }
}

const E_SHORT: WireError = { reason: 'truncated: UDP header needs 8 bytes' };
const E_LEN_SMALL: WireError = { reason: 'UDP length < 8' };
const E_LEN_BIG: WireError = { reason: 'UDP length beyond the IP payload' };

/** `len`: the IP payload length (bytes from off that belong to this datagram). */
export function checkUdp(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < UDP_HLEN) return E_SHORT;
  const l = readU16(u8, off + 4);
  if (l < UDP_HLEN) return E_LEN_SMALL;
  if (l > len || off + l > u8.length) return E_LEN_BIG;
  return null;
}

export interface UdpFields {
  readonly sport: number;
  readonly dport: number;
  readonly length: number;
  readonly checksum: number;
  readonly payloadLength: number;
  /** null when no pseudo-header sum was given, or the checksum is 0 ("none"; illegal over IPv6: check it there). */
  readonly checksumOk: boolean | null;
}

/** `len`: the IP payload length; `pseudoSum` (e.g. Ipv4View.pseudoSum()) enables checksumOk. */
export function parseUdp(u8: Uint8Array, off: number, len: number, pseudoSum?: number): Parsed<UdpFields> {
  const e = checkUdp(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new UdpView(u8, off);
  return {
    ok: true,
    value: {
      sport: v.sport,
      dport: v.dport,
      length: v.length,
      checksum: v.checksum,
      payloadLength: v.payloadLength,
      checksumOk: pseudoSum === undefined || v.checksum === 0 ? null : v.checksumOk(pseudoSum),
    },
  };
}

export interface UdpInit {
  sport: number;
  dport: number;
  /** Default 8 (header only): the caller adds the payload length. */
  length?: number;
  /** Default 0; fill it afterwards with fillChecksum(..., udp = true). */
  checksum?: number;
}

export function emitUdp(f: UdpInit, u8: Uint8Array, off: number): number {
  writeU16(u8, off, f.sport);
  writeU16(u8, off + 2, f.dport);
  writeU16(u8, off + 4, f.length ?? UDP_HLEN);
  writeU16(u8, off + 6, f.checksum ?? 0);
  return UDP_HLEN;
}
