// wire/icmp.ts: ICMP for IPv4 (RFC 792, RFC 1191 next-hop MTU).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  echo: Identifier | Sequence;  frag-needed: unused | Next-Hop MTU;
//  |  redirect: Gateway Internet Address;  others: unused           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  data (echo payload, or the offending IP header + 8 bytes)    |
//
// The checksum covers the whole ICMP message (no pseudo header).

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { checksumValid } from './checksum.js';
import type { Parsed, WireError } from './ethernet.js';

export const ICMP_HLEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;
/** Code of ICMP_DEST_UNREACHABLE: fragmentation needed and DF set (carries the next-hop MTU). */
export const ICMP_FRAG_NEEDED = 4;

export class IcmpView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get type(): number {
    return this.u8[this.off]!;
  }
  get code(): number {
    return this.u8[this.off + 1]!;
  }
  get checksum(): number {
    return readU16(this.u8, this.off + 2);
  }
  get id(): number {
    return readU16(this.u8, this.off + 4);
  }
  get seq(): number {
    return readU16(this.u8, this.off + 6);
  }
  get mtu(): number {
    return readU16(this.u8, this.off + 6);
  }
  get gateway(): number {
    return readU32(this.u8, this.off + 4);
  }
  /** The 32-bit rest-of-header word. */
  get rest(): number {
    return readU32(this.u8, this.off + 4);
  }
  get isEcho(): boolean {
    const t = this.u8[this.off]!;
    return t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY;
  }
  /** Error messages quote the offending IP header at off + 8. */
  get isError(): boolean {
    const t = this.u8[this.off]!;
    return t === ICMP_DEST_UNREACHABLE || t === ICMP_REDIRECT || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETER_PROBLEM;
  }
  /** `len`: the message length (IP payload length). */
  checksumOk(len: number): boolean {
    return checksumValid(this.u8, this.off, len);
  }
}

const E_SHORT: WireError = { reason: 'truncated: ICMP header needs 8 bytes' };

export function checkIcmp(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < ICMP_HLEN) return E_SHORT;
  return null;
}

export interface IcmpFields {
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  readonly checksumOk: boolean;
  /** Echo identifier and sequence (meaningful for types 0 and 8). */
  readonly id: number;
  readonly seq: number;
  /** Next-hop MTU for type 3 code 4, else 0. */
  readonly mtu: number;
  readonly rest: number;
  readonly payloadLength: number;
}

export function parseIcmp(u8: Uint8Array, off: number, len: number): Parsed<IcmpFields> {
  const e = checkIcmp(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new IcmpView(u8, off);
  return {
    ok: true,
    value: {
      type: v.type,
      code: v.code,
      checksum: v.checksum,
      checksumOk: v.checksumOk(len),
      id: v.id,
      seq: v.seq,
      mtu: v.type === ICMP_DEST_UNREACHABLE && v.code === ICMP_FRAG_NEEDED ? v.mtu : 0,
      rest: v.rest,
      payloadLength: len - ICMP_HLEN,
    },
  };
}

export interface IcmpInit {
  type: number;
  code?: number;
  id?: number;
  seq?: number;
  /** For type 3 code 4. */
  mtu?: number;
  /** For redirects. */
  gateway?: number;
  /** The raw rest-of-header word; overrides id/seq/mtu/gateway. */
  rest?: number;
  /** Default 0; fill afterwards with fillChecksum over the whole message (field at 2). */
  checksum?: number;
}

export function emitIcmp(f: IcmpInit, u8: Uint8Array, off: number): number {
  u8[off] = f.type;
  u8[off + 1] = f.code ?? 0;
  writeU16(u8, off + 2, f.checksum ?? 0);
  const rest =
    f.rest ?? f.gateway ?? (f.mtu !== undefined ? f.mtu & 0xffff : ((f.id ?? 0) & 0xffff) * 0x10000 + ((f.seq ?? 0) & 0xffff));
  writeU32(u8, off + 4, rest);
  return ICMP_HLEN;
}
