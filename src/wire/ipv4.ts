// wire/ipv4.ts: the IPv4 header (RFC 791) with options walked safely and fragments recognised.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version|  IHL  |    DSCP   |ECN|          Total Length         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Identification        |0|D|M|      Fragment Offset    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Time to Live |    Protocol   |         Header Checksum       |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                       Source Address                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Destination Address                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (IHL > 5)                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { checksumValid, internetChecksum, pseudoSumIpv4 } from './checksum.js';
import type { Parsed, WireError } from './ethernet.js';

export const IPV4_HLEN = 20;
export const IPV4_MAX_HLEN = 60;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IGMP = 2;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;

export const IPV4_OPT_EOL = 0;
export const IPV4_OPT_NOP = 1;

/** Zero-copy view of an IPv4 header; valid after checkIpv4 returned null for the same bytes. */
export class Ipv4View {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get version(): number {
    return this.u8[this.off]! >>> 4;
  }
  get ihl(): number {
    return this.u8[this.off]! & 0x0f;
  }
  get headerLength(): number {
    return (this.u8[this.off]! & 0x0f) * 4;
  }
  get tos(): number {
    return this.u8[this.off + 1]!;
  }
  get dscp(): number {
    return this.u8[this.off + 1]! >>> 2;
  }
  get ecn(): number {
    return this.u8[this.off + 1]! & 3;
  }
  get totalLength(): number {
    return readU16(this.u8, this.off + 2);
  }
  get id(): number {
    return readU16(this.u8, this.off + 4);
  }
  get df(): boolean {
    return (this.u8[this.off + 6]! & 0x40) !== 0;
  }
  get mf(): boolean {
    return (this.u8[this.off + 6]! & 0x20) !== 0;
  }
  /** Fragment offset in 8-byte units. */
  get fragmentOffset(): number {
    return readU16(this.u8, this.off + 6) & 0x1fff;
  }
  /** A fragment: MF set or a non-zero offset. */
  get isFragment(): boolean {
    return (readU16(this.u8, this.off + 6) & 0x3fff) !== 0;
  }
  get ttl(): number {
    return this.u8[this.off + 8]!;
  }
  get protocol(): number {
    return this.u8[this.off + 9]!;
  }
  get checksum(): number {
    return readU16(this.u8, this.off + 10);
  }
  get src(): number {
    return readU32(this.u8, this.off + 12);
  }
  get dst(): number {
    return readU32(this.u8, this.off + 16);
  }
  /** Absolute offset of the payload (the L4 header). */
  get payloadOffset(): number {
    return this.off + (this.u8[this.off]! & 0x0f) * 4;
  }
  get payloadLength(): number {
    return readU16(this.u8, this.off + 2) - (this.u8[this.off]! & 0x0f) * 4;
  }
  get checksumOk(): boolean {
    return checksumValid(this.u8, this.off, (this.u8[this.off]! & 0x0f) * 4);
  }
  /** Pseudo-header partial sum for this packet's L4 checksum. */
  pseudoSum(): number {
    return pseudoSumIpv4(this.src, this.dst, this.protocol, this.payloadLength);
  }
}

// Preallocated reasons: the check runs per frame and must not build strings.
const E_SHORT: WireError = { reason: 'truncated: IPv4 header needs 20 bytes' };
const E_VERSION: WireError = { reason: 'IPv4 version field is not 4' };
const E_IHL: WireError = { reason: 'IPv4 IHL < 5' };
const E_IHL_LEN: WireError = { reason: 'truncated: IPv4 IHL beyond the buffer' };
const E_TOTLEN_SMALL: WireError = { reason: 'IPv4 total length smaller than the header' };
const E_TOTLEN_BIG: WireError = { reason: 'IPv4 total length beyond the buffer' };
const E_OPT_LEN: WireError = { reason: 'IPv4 option length < 2' };
const E_OPT_END: WireError = { reason: 'IPv4 option runs past the header' };

/** Walk options in u8[start..end); null when well formed. */
function checkOptions(u8: Uint8Array, start: number, end: number): WireError | null {
  let p = start;
  while (p < end) {
    const t = u8[p]!;
    if (t === IPV4_OPT_EOL) return null;
    if (t === IPV4_OPT_NOP) {
      p++;
      continue;
    }
    if (p + 1 >= end) return E_OPT_END;
    const l = u8[p + 1]!;
    if (l < 2) return E_OPT_LEN;
    if (p + l > end) return E_OPT_END;
    p += l;
  }
  return null;
}

/** `len`: bytes available from off (the rest of the frame). Ethernet padding after total length is allowed. */
export function checkIpv4(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < IPV4_HLEN) return E_SHORT;
  const b0 = u8[off]!;
  if (b0 >>> 4 !== 4) return E_VERSION;
  const hl = (b0 & 0x0f) * 4;
  if (hl < IPV4_HLEN) return E_IHL;
  if (hl > len) return E_IHL_LEN;
  const tl = readU16(u8, off + 2);
  if (tl < hl) return E_TOTLEN_SMALL;
  if (tl > len) return E_TOTLEN_BIG;
  return hl > IPV4_HLEN ? checkOptions(u8, off + IPV4_HLEN, off + hl) : null;
}

export interface Ipv4Option {
  readonly type: number;
  /** Option data (after type and length), a copy. */
  readonly data: Uint8Array;
}

export interface Ipv4Fields {
  readonly ihl: number;
  readonly dscp: number;
  readonly ecn: number;
  readonly totalLength: number;
  readonly id: number;
  readonly df: boolean;
  readonly mf: boolean;
  /** In 8-byte units. */
  readonly fragmentOffset: number;
  readonly isFragment: boolean;
  readonly ttl: number;
  readonly protocol: number;
  readonly checksum: number;
  readonly checksumOk: boolean;
  readonly src: number;
  readonly dst: number;
  /** Raw option bytes (IHL*4 - 20), a copy, and the options decoded (NOP and EOL omitted). */
  readonly optionBytes: Uint8Array;
  readonly options: readonly Ipv4Option[];
  readonly headerLength: number;
  readonly payloadLength: number;
}

export function parseIpv4(u8: Uint8Array, off: number, len: number): Parsed<Ipv4Fields> {
  const e = checkIpv4(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new Ipv4View(u8, off);
  const hl = v.headerLength;
  const options: Ipv4Option[] = [];
  for (let p = off + IPV4_HLEN; p < off + hl; ) {
    const t = u8[p]!;
    if (t === IPV4_OPT_EOL) break;
    if (t === IPV4_OPT_NOP) {
      p++;
      continue;
    }
    const l = u8[p + 1]!;
    options.push({ type: t, data: u8.slice(p + 2, p + l) });
    p += l;
  }
  return {
    ok: true,
    value: {
      ihl: v.ihl,
      dscp: v.dscp,
      ecn: v.ecn,
      totalLength: v.totalLength,
      id: v.id,
      df: v.df,
      mf: v.mf,
      fragmentOffset: v.fragmentOffset,
      isFragment: v.isFragment,
      ttl: v.ttl,
      protocol: v.protocol,
      checksum: v.checksum,
      checksumOk: v.checksumOk,
      src: v.src,
      dst: v.dst,
      optionBytes: u8.slice(off + IPV4_HLEN, off + hl),
      options,
      headerLength: hl,
      payloadLength: v.payloadLength,
    },
  };
}

/** What emitIpv4 writes. Omitted fields take defaults; `ihl`, `totalLength`, `checksum` override for crafting. */
export interface Ipv4Init {
  src: number;
  dst: number;
  protocol: number;
  ttl?: number;
  dscp?: number;
  ecn?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** In 8-byte units. */
  fragmentOffset?: number;
  /** Raw option bytes; padded with EOL (zeros) to a multiple of 4. */
  options?: Uint8Array;
  /** Default: header length (the caller adds the payload length). */
  totalLength?: number;
  /** Written as given instead of the computed header length / 4. */
  ihl?: number;
  /** Written as given instead of the computed checksum. */
  checksum?: number;
  version?: number;
}

export function ipv4HeaderLength(f: Pick<Ipv4Init, 'options'>): number {
  const ol = f.options === undefined ? 0 : f.options.length;
  return IPV4_HLEN + ((ol + 3) & ~3);
}

/** Write the header, checksum included (over the header only); returns bytes written. */
export function emitIpv4(f: Ipv4Init, u8: Uint8Array, off: number): number {
  const hl = ipv4HeaderLength(f);
  u8[off] = ((f.version ?? 4) << 4) | ((f.ihl ?? hl / 4) & 0x0f);
  u8[off + 1] = ((f.dscp ?? 0) << 2) | ((f.ecn ?? 0) & 3);
  writeU16(u8, off + 2, f.totalLength ?? hl);
  writeU16(u8, off + 4, f.id ?? 0);
  writeU16(u8, off + 6, (f.df === true ? 0x4000 : 0) | (f.mf === true ? 0x2000 : 0) | ((f.fragmentOffset ?? 0) & 0x1fff));
  u8[off + 8] = f.ttl ?? 64;
  u8[off + 9] = f.protocol;
  writeU16(u8, off + 10, 0);
  writeU32(u8, off + 12, f.src);
  writeU32(u8, off + 16, f.dst);
  if (f.options !== undefined) {
    u8.set(f.options, off + IPV4_HLEN);
    u8.fill(0, off + IPV4_HLEN + f.options.length, off + hl);
  }
  writeU16(u8, off + 10, f.checksum ?? internetChecksum(u8, off, hl));
  return hl;
}

/** Recompute the header checksum in place (after a rewrite of a header field). */
export function fillIpv4Checksum(u8: Uint8Array, off: number): void {
  const hl = (u8[off]! & 0x0f) * 4;
  writeU16(u8, off + 10, 0);
  writeU16(u8, off + 10, internetChecksum(u8, off, hl));
}
