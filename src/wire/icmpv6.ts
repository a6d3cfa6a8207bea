// wire/icmpv6.ts: ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861): RS, RA, NS, NA, Redirect and options.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  echo (128/129): Identifier | Sequence        packet too big (2): MTU (32)
//  RS (133):  Reserved (32)                                            | options at 8
//  RA (134):  Cur Hop Limit |M|O| rsvd | Router Lifetime |
//             Reachable Time (32) | Retrans Timer (32)                 | options at 16
//  NS (135):  Reserved (32) | Target Address (16)                      | options at 24
//  NA (136):  |R|S|O| Reserved (29) | Target Address (16)              | options at 24
//  Redirect (137): Reserved (32) | Target (16) | Destination (16)      | options at 40
//  ND option: | Type | Length (units of 8 octets, 0 is invalid) | data ... |
//    1 source link-layer address, 2 target link-layer address (6-byte MAC for Ethernet),
//    3 prefix information (32 bytes), 4 redirected header, 5 MTU
//
// The checksum covers an IPv6 pseudo header (next header 58) and the whole message.

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { checksumValid } from './checksum.js';
import { readMac, writeMac, type Parsed, type WireError } from './ethernet.js';

export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_ROUTER_SOLICITATION = 133;
export const ICMPV6_ROUTER_ADVERTISEMENT = 134;
export const ICMPV6_NEIGHBOR_SOLICITATION = 135;
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
export const ICMPV6_REDIRECT = 137;

export const ND_OPT_SOURCE_LINK_ADDR = 1;
export const ND_OPT_TARGET_LINK_ADDR = 2;
export const ND_OPT_PREFIX_INFO = 3;
export const ND_OPT_REDIRECTED_HEADER = 4;
export const ND_OPT_MTU = 5;

/** Where ND options start for an ND message type, or -1 for types without options. */
export function ndOptionsStart(type: number): number {
  switch (type) {
    case ICMPV6_ROUTER_SOLICITATION:
      return 8;
    case ICMPV6_ROUTER_ADVERTISEMENT:
      return 16;
    case ICMPV6_NEIGHBOR_SOLICITATION:
    case ICMPV6_NEIGHBOR_ADVERTISEMENT:
      return 24;
    case ICMPV6_REDIRECT:
      return 40;
    default:
      return -1;
  }
}

export function isNeighborDiscovery(type: number): boolean {
  return type >= ICMPV6_ROUTER_SOLICITATION && type <= ICMPV6_REDIRECT;
}

export class Icmpv6View {
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
  /** Packet Too Big MTU / the 32-bit word after the checksum. */
  get mtu(): number {
    return readU32(this.u8, this.off + 4);
  }
  /** RA */
  get curHopLimit(): number {
    return this.u8[this.off + 4]!;
  }
  get managed(): boolean {
    return (this.u8[this.off + 5]! & 0x80) !== 0;
  }
  get otherConfig(): boolean {
    return (this.u8[this.off + 5]! & 0x40) !== 0;
  }
  get routerLifetime(): number {
    return readU16(this.u8, this.off + 6);
  }
  get reachableTime(): number {
    return readU32(this.u8, this.off + 8);
  }
  get retransTimer(): number {
    return readU32(this.u8, this.off + 12);
  }
  /** NA */
  get router(): boolean {
    return (this.u8[this.off + 4]! & 0x80) !== 0;
  }
  get solicited(): boolean {
    return (this.u8[this.off + 4]! & 0x40) !== 0;
  }
  get override(): boolean {
    return (this.u8[this.off + 4]! & 0x20) !== 0;
  }
  /** Absolute offset of the 16-byte target address (NS, NA, Redirect). */
  get targetOffset(): number {
    return this.off + 8;
  }
  /** Absolute offset of the Redirect destination address. */
  get destinationOffset(): number {
    return this.off + 24;
  }
  /** Absolute offset of the value of the first ND option of `type` (after type and length), or -1. */
  findOption(len: number, type: number): number {
    const s = ndOptionsStart(this.type);
    if (s < 0) return -1;
    const end = this.off + len;
    for (let p = this.off + s; p + 2 <= end; ) {
      const l = this.u8[p + 1]! * 8;
      if (l === 0) return -1;
      if (this.u8[p] === type) return p + 2;
      p += l;
    }
    return -1;
  }
  /** MAC from the source (1) or target (2) link-layer address option, or -1 when absent. */
  linkAddr(len: number, type: number): number {
    const p = this.findOption(len, type);
    return p < 0 || this.u8[p - 1]! < 1 ? -1 : readMac(this.u8, p);
  }
  checksumOk(len: number, pseudoSum: number): boolean {
    return checksumValid(this.u8, this.off, len, pseudoSum);
  }
}

const E_SHORT: WireError = { reason: 'truncated: ICMPv6 header needs 8 bytes' };
const E_SHORT_ND: WireError = { reason: 'truncated: ICMPv6 ND message shorter than its fixed part' };
const E_OPT_ZERO: WireError = { reason: 'ICMPv6 ND option length 0' };
const E_OPT_END: WireError = { reason: 'ICMPv6 ND option runs past the message' };

/** `len`: the ICMPv6 message length (upper-layer length from the IPv6 walk). */
export function checkIcmpv6(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < 8) return E_SHORT;
  const s = ndOptionsStart(u8[off]!);
  if (s < 0) return null;
  if (len < s) return E_SHORT_ND;
  const end = off + len;
  for (let p = off + s; p < end; ) {
    if (p + 2 > end) return E_OPT_END;
    const l = u8[p + 1]! * 8;
    if (l === 0) return E_OPT_ZERO;
    if (p + l > end) return E_OPT_END;
    p += l;
  }
  return null;
}

export interface NdPrefixInfo {
  readonly prefixLength: number;
  readonly onLink: boolean;
  readonly autonomous: boolean;
  readonly validLifetime: number;
  readonly preferredLifetime: number;
  readonly prefix: Uint8Array;
}

export interface NdOption {
  readonly type: number;
  /** Bytes, including type and length. */
  readonly length: number;
  /** Offset of the option from the ICMPv6 header start. */
  readonly offset: number;
}

export interface Icmpv6Fields {
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  /** null when no pseudo-header sum was given to parseIcmpv6. */
  readonly checksumOk: boolean | null;
  readonly id: number;
  readonly seq: number;
  /** Packet Too Big: the MTU; else 0. */
  readonly mtu: number;
  /** NS / NA / Redirect target, Redirect destination (copies), else null. */
  readonly target: Uint8Array | null;
  readonly destination: Uint8Array | null;
  /** RA */
  readonly curHopLimit: number;
  readonly managed: boolean;
  readonly otherConfig: boolean;
  readonly routerLifetime: number;
  readonly reachableTime: number;
  readonly retransTimer: number;
  /** NA */
  readonly router: boolean;
  readonly solicited: boolean;
  readonly override: boolean;
  readonly options: readonly NdOption[];
  readonly sourceLinkAddr: number | null;
  readonly targetLinkAddr: number | null;
  readonly prefixes: readonly NdPrefixInfo[];
  /** From the MTU option (RA). */
  readonly optionMtu: number | null;
}

/** `pseudoSum` (from Ipv6View.pseudoSum(58, len)) enables checksumOk. */
export function parseIcmpv6(u8: Uint8Array, off: number, len: number, pseudoSum?: number): Parsed<Icmpv6Fields> {
  const e = checkIcmpv6(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new Icmpv6View(u8, off);
  const t = v.type;
  const isRa = t === ICMPV6_ROUTER_ADVERTISEMENT;
  const isNa = t === ICMPV6_NEIGHBOR_ADVERTISEMENT;
  const hasTarget = t === ICMPV6_NEIGHBOR_SOLICITATION || isNa || t === ICMPV6_REDIRECT;
  const options: NdOption[] = [];
  let sll: number | null = null;
  let tll: number | null = null;
  let optMtu: number | null = null;
  const prefixes: NdPrefixInfo[] = [];
  const s = ndOptionsStart(t);
  if (s >= 0) {
    for (let p = off + s; p < off + len; ) {
      const ot = u8[p]!;
      const l = u8[p + 1]! * 8;
      options.push({ type: ot, length: l, offset: p - off });
      if (ot === ND_OPT_SOURCE_LINK_ADDR && sll === null) sll = readMac(u8, p + 2);
      else if (ot === ND_OPT_TARGET_LINK_ADDR && tll === null) tll = readMac(u8, p + 2);
      else if (ot === ND_OPT_MTU && optMtu === null) optMtu = readU32(u8, p + 4);
      else if (ot === ND_OPT_PREFIX_INFO && l >= 32)
        prefixes.push({
          prefixLength: u8[p + 2]!,
          onLink: (u8[p + 3]! & 0x80) !== 0,
          autonomous: (u8[p + 3]! & 0x40) !== 0,
          validLifetime: readU32(u8, p + 4),
          preferredLifetime: readU32(u8, p + 8),
          prefix: u8.slice(p + 16, p + 32),
        });
      p += l;
    }
  }
  return {
    ok: true,
    value: {
      type: t,
      code: v.code,
      checksum: v.checksum,
      checksumOk: pseudoSum === undefined ? null : v.checksumOk(len, pseudoSum),
      id: v.id,
      seq: v.seq,
      mtu: t === ICMPV6_PACKET_TOO_BIG ? v.mtu : 0,
      target: hasTarget ? u8.slice(off + 8, off + 24) : null,
      destination: t === ICMPV6_REDIRECT ? u8.slice(off + 24, off + 40) : null,
      curHopLimit: isRa ? v.curHopLimit : 0,
      managed: isRa && v.managed,
      otherConfig: isRa && v.otherConfig,
      routerLifetime: isRa ? v.routerLifetime : 0,
      reachableTime: isRa ? v.reachableTime : 0,
      retransTimer: isRa ? v.retransTimer : 0,
      router: isNa && v.router,
      solicited: isNa && v.solicited,
      override: isNa && v.override,
      options,
      sourceLinkAddr: sll,
      targetLinkAddr: tll,
      prefixes,
      optionMtu: optMtu,
    },
  };
}

export type NdOptionInit =
  | { kind: 'sll'; mac: number }
  | { kind: 'tll'; mac: number }
  | {
      kind: 'prefix';
      prefix: Uint8Array;
      prefixLength: number;
      onLink?: boolean;
      autonomous?: boolean;
      validLifetime?: number;
      preferredLifetime?: number;
    }
  | { kind: 'mtu'; mtu: number }
  /** Raw option: `data` follows type and length; padded to 8; `lengthByte` overrides the length (e.g. 0). */
  | { kind: 'raw'; type: number; data: Uint8Array; lengthByte?: number };

export function ndOptionLength(o: NdOptionInit): number {
  switch (o.kind) {
    case 'sll':
    case 'tll':
    case 'mtu':
      return 8;
    case 'prefix':
      return 32;
    case 'raw':
      return (o.data.length + 2 + 7) & ~7;
    default:
      return assertNeverOption(o);
  }
}

function assertNeverOption(x: never): never {
  throw new Error(`unhandled ND option ${JSON.stringify(x)}`);
}

export interface Icmpv6Init {
  type: number;
  code?: number;
  /** Default 0: fill afterwards with fillChecksum and the IPv6 pseudo-header sum. */
  checksum?: number;
  /** Echo */
  id?: number;
  seq?: number;
  /** Packet Too Big */
  mtu?: number;
  /** NS / NA / Redirect */
  target?: Uint8Array;
  /** Redirect */
  destination?: Uint8Array;
  /** NA flags */
  router?: boolean;
  solicited?: boolean;
  override?: boolean;
  /** RA */
  curHopLimit?: number;
  managed?: boolean;
  otherConfig?: boolean;
  routerLifetime?: number;
  reachableTime?: number;
  retransTimer?: number;
  options?: readonly NdOptionInit[];
}

export function icmpv6Length(f: Icmpv6Init): number {
  const s = ndOptionsStart(f.type);
  let n = s < 0 ? 8 : s;
  for (const o of f.options ?? []) n += ndOptionLength(o);
  return n;
}

/** Write the message (fixed part and ND options); the checksum is left for the caller. Returns bytes written. */
export function emitIcmpv6(f: Icmpv6Init, u8: Uint8Array, off: number): number {
  const total = icmpv6Length(f);
  u8.fill(0, off, off + total);
  const t = f.type;
  u8[off] = t;
  u8[off + 1] = f.code ?? 0;
  writeU16(u8, off + 2, f.checksum ?? 0);
  if (t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY) {
    writeU16(u8, off + 4, f.id ?? 0);
    writeU16(u8, off + 6, f.seq ?? 0);
  } else if (t === ICMPV6_PACKET_TOO_BIG) {
    writeU32(u8, off + 4, f.mtu ?? 1280);
  } else if (t === ICMPV6_ROUTER_ADVERTISEMENT) {
    u8[off + 4] = f.curHopLimit ?? 64;
    u8[off + 5] = (f.managed === true ? 0x80 : 0) | (f.otherConfig === true ? 0x40 : 0);
    writeU16(u8, off + 6, f.routerLifetime ?? 1800);
    writeU32(u8, off + 8, f.reachableTime ?? 0);
    writeU32(u8, off + 12, f.retransTimer ?? 0);
  } else if (t === ICMPV6_NEIGHBOR_ADVERTISEMENT) {
    u8[off + 4] = (f.router === true ? 0x80 : 0) | (f.solicited === true ? 0x40 : 0) | (f.override === true ? 0x20 : 0);
  }
  if (f.target !== undefined) u8.set(f.target.subarray(0, 16), off + 8);
  if (f.destination !== undefined) u8.set(f.destination.subarray(0, 16), off + 24);
  let p = off + (ndOptionsStart(t) < 0 ? 8 : ndOptionsStart(t));
  for (const o of f.options ?? []) {
    const l = ndOptionLength(o);
    switch (o.kind) {
      case 'sll':
      case 'tll':
        u8[p] = o.kind === 'sll' ? ND_OPT_SOURCE_LINK_ADDR : ND_OPT_TARGET_LINK_ADDR;
        u8[p + 1] = 1;
        writeMac(u8, p + 2, o.mac);
        break;
      case 'mtu':
        u8[p] = ND_OPT_MTU;
        u8[p + 1] = 1;
        writeU32(u8, p + 4, o.mtu);
        break;
      case 'prefix':
        u8[p] = ND_OPT_PREFIX_INFO;
        u8[p + 1] = 4;
        u8[p + 2] = o.prefixLength;
        u8[p + 3] = (o.onLink === false ? 0 : 0x80) | (o.autonomous === false ? 0 : 0x40);
        writeU32(u8, p + 4, o.validLifetime ?? 2592000);
        writeU32(u8, p + 8, o.preferredLifetime ?? 604800);
        u8.set(o.prefix.subarray(0, 16), p + 16);
        break;
      case 'raw':
        u8[p] = o.type;
        u8[p + 1] = o.lengthByte ?? l / 8;
        u8.set(o.data, p + 2);
        break;
      default:
        assertNeverOption(o);
    }
    p += l;
  }
  return total;
}
