// wire/ipv6.ts: the IPv6 header (RFC 8200) and a bounded walk over its extension headers to the upper layer.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version| Traffic Class |           Flow Label                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Payload Length        |  Next Header  |   Hop Limit   |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                   Source Address (16)                         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Destination Address (16)                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers (each starts with Next Header):
//  Hop-by-Hop (0), Destination Options (60), Routing (43): | NH | HdrExtLen | ... |  (HdrExtLen + 1) * 8 bytes
//  Fragment (44):   | NH | rsvd | Fragment Offset (13) |Res|M| Identification (32) |  8 bytes
//  AH (51):         | NH | PayloadLen | rsvd (16) | SPI | Seq | ICV ... |            (PayloadLen + 2) * 4 bytes

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { pseudoSumIpv6 } from './checksum.js';
import type { Parsed, WireError } from './ethernet.js';

export const IPV6_HLEN = 40;
export const IPV6_EXT_HOP_BY_HOP = 0;
export const IPV6_EXT_ROUTING = 43;
export const IPV6_EXT_FRAGMENT = 44;
export const IPV6_EXT_ESP = 50;
export const IPV6_EXT_AH = 51;
export const IPV6_NO_NEXT_HEADER = 59;
export const IPV6_EXT_DEST_OPTS = 60;
/** At most this many extension headers are walked; more is rejected (a chain of tiny headers is an attack). */
export const IPV6_MAX_EXT_HEADERS = 8;
/** At most this many bytes of extension headers. */
export const IPV6_MAX_EXT_BYTES = 1024;

export function isIpv6ExtensionHeader(nh: number): boolean {
  return (
    nh === IPV6_EXT_HOP_BY_HOP ||
    nh === IPV6_EXT_ROUTING ||
    nh === IPV6_EXT_FRAGMENT ||
    nh === IPV6_EXT_AH ||
    nh === IPV6_EXT_DEST_OPTS
  );
}

export class Ipv6View {
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
  get trafficClass(): number {
    return (readU16(this.u8, this.off) >>> 4) & 0xff;
  }
  get flowLabel(): number {
    return readU32(this.u8, this.off) & 0xfffff;
  }
  get payloadLength(): number {
    return readU16(this.u8, this.off + 4);
  }
  get nextHeader(): number {
    return this.u8[this.off + 6]!;
  }
  get hopLimit(): number {
    return this.u8[this.off + 7]!;
  }
  /** Absolute offsets of the 16-byte addresses (zero-copy). */
  get srcOffset(): number {
    return this.off + 8;
  }
  get dstOffset(): number {
    return this.off + 24;
  }
  /** A copy of the source address. */
  src(): Uint8Array {
    return this.u8.slice(this.off + 8, this.off + 24);
  }
  dst(): Uint8Array {
    return this.u8.slice(this.off + 24, this.off + 40);
  }
  /** Pseudo-header sum for an upper layer `protocol` of `l4Length` bytes. */
  pseudoSum(protocol: number, l4Length: number): number {
    return pseudoSumIpv6(this.u8, this.off + 8, this.off + 24, protocol, l4Length);
  }
}

const E_SHORT: WireError = { reason: 'truncated: IPv6 header needs 40 bytes' };
const E_VERSION: WireError = { reason: 'IPv6 version field is not 6' };
const E_PLEN: WireError = { reason: 'IPv6 payload length beyond the buffer' };
const E_EXT_COUNT: WireError = { reason: 'more than 8 IPv6 extension headers' };
const E_EXT_BYTES: WireError = { reason: 'IPv6 extension headers longer than 1024 bytes' };
const E_EXT_TRUNC: WireError = { reason: 'truncated: IPv6 extension header past the payload' };
const E_HBH_NOT_FIRST: WireError = { reason: 'IPv6 hop-by-hop header not first' };
const E_OPT_END: WireError = { reason: 'IPv6 option runs past its header' };

/** `len`: bytes available from off. Checks the fixed header only; see Ipv6ExtWalker for the chain. */
export function checkIpv6(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < IPV6_HLEN) return E_SHORT;
  if (u8[off]! >>> 4 !== 6) return E_VERSION;
  if (IPV6_HLEN + readU16(u8, off + 4) > len) return E_PLEN;
  return null;
}

/** Walk TLV options of a hop-by-hop / destination options header body in u8[p..end). */
function checkTlvOptions(u8: Uint8Array, p: number, end: number): WireError | null {
  while (p < end) {
    if (u8[p] === 0) {
      p++; // Pad1
      continue;
    }
    if (p + 2 > end) return E_OPT_END;
    p += 2 + u8[p + 1]!;
    if (p > end) return E_OPT_END;
  }
  return null;
}

/**
 * Walks the extension-header chain of one packet without allocating; reuse one per pipeline stage.
 * After walk() returns null: `protocol` is the upper-layer protocol (or 59 / 50 when the chain ends in "no next
 * header" / ESP), `offset` its absolute offset; a non-first fragment stops at the fragment header
 * (`laterFragment`: the bytes at `offset` are not an upper-layer header).
 */
export class Ipv6ExtWalker {
  protocol = 0;
  offset = 0;
  /** Extension headers walked. */
  count = 0;
  /** Bytes from the IPv6 header start to the end of the payload (40 + payload length). */
  end = 0;
  isFragment = false;
  /** In 8-byte units. */
  fragmentOffset = 0;
  moreFragments = false;
  fragmentId = 0;
  laterFragment = false;
  /** The header types walked, in order (first `count` entries valid). */
  readonly chain = new Uint8Array(IPV6_MAX_EXT_HEADERS);

  walk(u8: Uint8Array, off: number, len: number): WireError | null {
    const e = checkIpv6(u8, off, len);
    if (e !== null) return e;
    this.count = 0;
    this.isFragment = false;
    this.fragmentOffset = 0;
    this.moreFragments = false;
    this.fragmentId = 0;
    this.laterFragment = false;
    const end = off + IPV6_HLEN + readU16(u8, off + 4);
    this.end = end - off;
    let nh = u8[off + 6]!;
    let p = off + IPV6_HLEN;
    while (isIpv6ExtensionHeader(nh)) {
      if (this.count === IPV6_MAX_EXT_HEADERS) return E_EXT_COUNT;
      if (nh === IPV6_EXT_HOP_BY_HOP && this.count !== 0) return E_HBH_NOT_FIRST;
      if (p + 8 > end) return E_EXT_TRUNC;
      let hl: number;
      if (nh === IPV6_EXT_FRAGMENT) hl = 8;
      else if (nh === IPV6_EXT_AH) hl = (u8[p + 1]! + 2) * 4;
      else hl = (u8[p + 1]! + 1) * 8;
      if (p + hl > end) return E_EXT_TRUNC;
      if (p + hl - off - IPV6_HLEN > IPV6_MAX_EXT_BYTES) return E_EXT_BYTES;
      if (nh === IPV6_EXT_HOP_BY_HOP || nh === IPV6_EXT_DEST_OPTS) {
        const oe = checkTlvOptions(u8, p + 2, p + hl);
        if (oe !== null) return oe;
      }
      this.chain[this.count++] = nh;
      const next = u8[p]!;
      if (nh === IPV6_EXT_FRAGMENT) {
        const fo = readU16(u8, p + 2);
        this.isFragment = true;
        this.fragmentOffset = fo >>> 3;
        this.moreFragments = (fo & 1) !== 0;
        this.fragmentId = readU32(u8, p + 4);
        if (this.fragmentOffset !== 0) {
          this.laterFragment = true;
          this.protocol = next;
          this.offset = p + hl;
          return null;
        }
      }
      nh = next;
      p += hl;
    }
    this.protocol = nh;
    this.offset = p;
    return null;
  }
}

export interface Ipv6Fields {
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly payloadLength: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** Extension header types in order (e.g. [0, 43, 44]). */
  readonly extensions: readonly number[];
  /** Upper-layer protocol and its offset from the IPv6 header start. */
  readonly protocol: number;
  readonly l4Offset: number;
  readonly l4Length: number;
  readonly fragment: { readonly offset: number; readonly more: boolean; readonly id: number } | null;
  /** A fragment with a non-zero offset: l4Offset points at fragment data, not an upper-layer header. */
  readonly laterFragment: boolean;
}

export function parseIpv6(u8: Uint8Array, off: number, len: number): Parsed<Ipv6Fields> {
  const w = new Ipv6ExtWalker();
  const e = w.walk(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new Ipv6View(u8, off);
  return {
    ok: true,
    value: {
      trafficClass: v.trafficClass,
      flowLabel: v.flowLabel,
      payloadLength: v.payloadLength,
      nextHeader: v.nextHeader,
      hopLimit: v.hopLimit,
      src: v.src(),
      dst: v.dst(),
      extensions: Array.from(w.chain.subarray(0, w.count)),
      protocol: w.protocol,
      l4Offset: w.offset - off,
      l4Length: off + w.end - w.offset,
      fragment: w.isFragment ? { offset: w.fragmentOffset, more: w.moreFragments, id: w.fragmentId } : null,
      laterFragment: w.laterFragment,
    },
  };
}

export interface Ipv6Init {
  src: Uint8Array;
  dst: Uint8Array;
  nextHeader: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  /** Default 0 (the caller sets it once the payload is known). */
  payloadLength?: number;
  version?: number;
}

export function emitIpv6(f: Ipv6Init, u8: Uint8Array, off: number): number {
  const tc = f.trafficClass ?? 0;
  writeU32(u8, off, ((f.version ?? 6) & 0xf) * 0x1000_0000 + (tc & 0xff) * 0x10_0000 + ((f.flowLabel ?? 0) & 0xfffff));
  writeU16(u8, off + 4, f.payloadLength ?? 0);
  u8[off + 6] = f.nextHeader;
  u8[off + 7] = f.hopLimit ?? 64;
  u8.set(f.src.subarray(0, 16), off + 8);
  u8.set(f.dst.subarray(0, 16), off + 24);
  return IPV6_HLEN;
}

/** One extension header to emit. `body`: bytes after the first two (padded with zeros to the header's unit). */
export interface Ipv6ExtInit {
  type: number;
  body?: Uint8Array;
  /** Fragment header fields. */
  fragmentOffset?: number;
  more?: boolean;
  id?: number;
  /** Written as given instead of the computed length byte. */
  lengthByte?: number;
}

export function ipv6ExtLength(f: Ipv6ExtInit): number {
  if (f.type === IPV6_EXT_FRAGMENT) return 8;
  const bl = f.body?.length ?? (f.type === IPV6_EXT_AH ? 22 : 6);
  if (f.type === IPV6_EXT_AH) return Math.max(12, (bl + 2 + 3) & ~3);
  return Math.max(8, (bl + 2 + 7) & ~7);
}

/** Default HBH/DestOpts body: one PadN option filling 6 bytes. */
const PADN6 = new Uint8Array([1, 4, 0, 0, 0, 0]);

export function emitIpv6Ext(f: Ipv6ExtInit, nextHeader: number, u8: Uint8Array, off: number): number {
  const hl = ipv6ExtLength(f);
  u8.fill(0, off, off + hl);
  u8[off] = nextHeader;
  if (f.type === IPV6_EXT_FRAGMENT) {
    writeU16(u8, off + 2, ((f.fragmentOffset ?? 0) << 3) | (f.more === true ? 1 : 0));
    writeU32(u8, off + 4, f.id ?? 0);
    if (f.lengthByte !== undefined) u8[off + 1] = f.lengthByte;
    return hl;
  }
  u8[off + 1] = f.lengthByte ?? (f.type === IPV6_EXT_AH ? hl / 4 - 2 : hl / 8 - 1);
  let body = f.body;
  if (body === undefined && (f.type === IPV6_EXT_HOP_BY_HOP || f.type === IPV6_EXT_DEST_OPTS)) body = PADN6;
  if (body !== undefined) u8.set(body.subarray(0, hl - 2), off + 2);
  // pad HBH/DestOpts with a PadN covering what the body left (keeps the TLV walk valid)
  const used = 2 + (body?.length ?? 0);
  if ((f.type === IPV6_EXT_HOP_BY_HOP || f.type === IPV6_EXT_DEST_OPTS) && used < hl) {
    if (hl - used === 1) u8[off + used] = 0;
    else {
      u8[off + used] = 1;
      u8[off + used + 1] = hl - used - 2;
    }
  }
  return hl;
}
