// wire/gre.ts: GRE (RFC 2784 with the RFC 2890 key and sequence extensions) and NVGRE (RFC 7637) helpers.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |      Checksum (optional)      |       Reserved1 (Optional)    |   present when C
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                         Key (optional)                        |   present when K
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 Sequence Number (Optional)                    |   present when S
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// NVGRE: C=0 K=1 S=0, protocol 0x6558 (transparent Ethernet bridging), Key = VSID (24 bits) << 8 | FlowID (8).

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { checksumValid } from './checksum.js';
import type { Parsed, WireError } from './ethernet.js';

export const GRE_HLEN = 4;
export const GRE_FLAG_C = 0x8000;
export const GRE_FLAG_R = 0x4000;
export const GRE_FLAG_K = 0x2000;
export const GRE_FLAG_S = 0x1000;
export const GRE_PROTO_TEB = 0x6558;
/** R (bit 1) and bits 4-5 of Reserved0. */
const GRE_RESERVED0_MUST_BE_ZERO = 0x4c00;
/** GRE (8 with key) + outer IPv4 (20) + inner Ethernet (14). */
export const NVGRE_OVERHEAD = 42;
export const NVGRE_HLEN = 8;

export function nvgreKey(vsid: number, flowId: number): number {
  return ((vsid & 0xffffff) * 256 + (flowId & 0xff)) >>> 0;
}
export function nvgreVsid(key: number): number {
  return key >>> 8;
}
export function nvgreFlowId(key: number): number {
  return key & 0xff;
}

export class GreView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get flags(): number {
    return readU16(this.u8, this.off) & 0xfff8;
  }
  get version(): number {
    return this.u8[this.off + 1]! & 7;
  }
  get hasChecksum(): boolean {
    return (this.u8[this.off]! & 0x80) !== 0;
  }
  get hasKey(): boolean {
    return (this.u8[this.off]! & 0x20) !== 0;
  }
  get hasSequence(): boolean {
    return (this.u8[this.off]! & 0x10) !== 0;
  }
  get protocol(): number {
    return readU16(this.u8, this.off + 2);
  }
  get headerLength(): number {
    const b = this.u8[this.off]!;
    return GRE_HLEN + ((b >>> 7) & 1) * 4 + ((b >>> 5) & 1) * 4 + ((b >>> 4) & 1) * 4;
  }
  get checksum(): number {
    return this.hasChecksum ? readU16(this.u8, this.off + 4) : 0;
  }
  /** The key (only meaningful when hasKey). */
  get key(): number {
    return readU32(this.u8, this.off + 4 + (this.hasChecksum ? 4 : 0));
  }
  get sequence(): number {
    return readU32(this.u8, this.off + 4 + (this.hasChecksum ? 4 : 0) + (this.hasKey ? 4 : 0));
  }
  get vsid(): number {
    return this.key >>> 8;
  }
  get flowId(): number {
    return this.key & 0xff;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  /** `len`: the GRE header plus payload (IP payload length). */
  checksumOk(len: number): boolean {
    return checksumValid(this.u8, this.off, len);
  }
}

const E_SHORT: WireError = { reason: 'truncated: GRE header needs 4 bytes' };
const E_VERSION: WireError = { reason: 'GRE version is not 0' };
const E_RESERVED: WireError = { reason: 'GRE routing bit or reserved0 bits set' };
const E_OPT_SHORT: WireError = { reason: 'truncated: GRE optional fields past the buffer' };
const E_NVGRE_FLAGS: WireError = { reason: 'NVGRE needs K=1, C=0, S=0' };
const E_NVGRE_PROTO: WireError = { reason: 'NVGRE protocol is not 0x6558' };

export function checkGre(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < GRE_HLEN) return E_SHORT;
  const w = readU16(u8, off);
  if ((w & 7) !== 0) return E_VERSION;
  // RFC 2784 §2.5: bits 1-5 non-zero are discarded (bits 2-3 are K and S under RFC 2890); 6-12 are ignored
  if ((w & GRE_RESERVED0_MUST_BE_ZERO) !== 0) return E_RESERVED;
  const hl = new GreView(u8, off).headerLength;
  if (hl > len || off + hl > u8.length) return E_OPT_SHORT;
  return null;
}

/** GRE check plus the NVGRE profile. */
export function checkNvgre(u8: Uint8Array, off: number, len: number): WireError | null {
  const e = checkGre(u8, off, len);
  if (e !== null) return e;
  if ((u8[off]! & 0xb0) !== 0x20) return E_NVGRE_FLAGS;
  if (readU16(u8, off + 2) !== GRE_PROTO_TEB) return E_NVGRE_PROTO;
  return null;
}

export interface GreFields {
  readonly flags: number;
  readonly version: number;
  readonly protocol: number;
  readonly checksum: number | null;
  readonly checksumOk: boolean | null;
  readonly key: number | null;
  readonly sequence: number | null;
  readonly headerLength: number;
  /** When the key is present: NVGRE's reading of it. */
  readonly vsid: number | null;
  readonly flowId: number | null;
}

export function parseGre(u8: Uint8Array, off: number, len: number): Parsed<GreFields> {
  const e = checkGre(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new GreView(u8, off);
  const key = v.hasKey ? v.key : null;
  return {
    ok: true,
    value: {
      flags: v.flags,
      version: v.version,
      protocol: v.protocol,
      checksum: v.hasChecksum ? v.checksum : null,
      checksumOk: v.hasChecksum ? v.checksumOk(len) : null,
      key,
      sequence: v.hasSequence ? v.sequence : null,
      headerLength: v.headerLength,
      vsid: key === null ? null : key >>> 8,
      flowId: key === null ? null : key & 0xff,
    },
  };
}

export interface GreInit {
  protocol: number;
  key?: number;
  sequence?: number;
  /** true: C bit set, checksum left 0 for fillChecksum over header + payload; a number is written as is. */
  checksum?: boolean | number;
  /** Extra bits OR-ed into the flags word (crafting: version, reserved0). */
  rawFlags?: number;
}

export function greHeaderLength(f: Omit<GreInit, 'protocol'>): number {
  return (
    GRE_HLEN +
    (f.checksum !== undefined && f.checksum !== false ? 4 : 0) +
    (f.key !== undefined ? 4 : 0) +
    (f.sequence !== undefined ? 4 : 0)
  );
}

export function emitGre(f: GreInit, u8: Uint8Array, off: number): number {
  const c = f.checksum !== undefined && f.checksum !== false;
  const flags =
    (c ? GRE_FLAG_C : 0) |
    (f.key !== undefined ? GRE_FLAG_K : 0) |
    (f.sequence !== undefined ? GRE_FLAG_S : 0) |
    (f.rawFlags ?? 0);
  writeU16(u8, off, flags);
  writeU16(u8, off + 2, f.protocol);
  let p = off + GRE_HLEN;
  if (c) {
    writeU16(u8, p, typeof f.checksum === 'number' ? f.checksum : 0);
    writeU16(u8, p + 2, 0);
    p += 4;
  }
  if (f.key !== undefined) {
    writeU32(u8, p, f.key);
    p += 4;
  }
  if (f.sequence !== undefined) {
    writeU32(u8, p, f.sequence);
    p += 4;
  }
  return p - off;
}
