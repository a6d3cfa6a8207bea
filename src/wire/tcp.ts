// wire/tcp.ts: the TCP header (RFC 9293) with options walked safely.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                        Sequence Number                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Acknowledgment Number                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Data |     |N|C|E|U|A|P|R|S|F|                               |
//  | Offset| Rsv |S|W|C|R|C|S|S|Y|I|            Window             |
//  |       |     | |R|E|G|K|H|T|N|N|                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Checksum            |         Urgent Pointer        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (data offset > 5)                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { checksumValid } from './checksum.js';
import type { Parsed, WireError } from './ethernet.js';

export const TCP_HLEN = 20;
export const TCP_FIN = 0x001;
export const TCP_SYN = 0x002;
export const TCP_RST = 0x004;
export const TCP_PSH = 0x008;
export const TCP_ACK = 0x010;
export const TCP_URG = 0x020;
export const TCP_ECE = 0x040;
export const TCP_CWR = 0x080;
export const TCP_NS = 0x100;

export const TCP_OPT_EOL = 0;
export const TCP_OPT_NOP = 1;
export const TCP_OPT_MSS = 2;
export const TCP_OPT_WSCALE = 3;
export const TCP_OPT_SACK_PERMITTED = 4;
export const TCP_OPT_SACK = 5;
export const TCP_OPT_TIMESTAMP = 8;

export class TcpView {
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
  get seq(): number {
    return readU32(this.u8, this.off + 4);
  }
  get ack(): number {
    return readU32(this.u8, this.off + 8);
  }
  get dataOffset(): number {
    return this.u8[this.off + 12]! >>> 4;
  }
  get headerLength(): number {
    return (this.u8[this.off + 12]! >>> 4) * 4;
  }
  /** The nine flag bits, NS..FIN (TCP_* constants). */
  get flags(): number {
    return readU16(this.u8, this.off + 12) & 0x1ff;
  }
  get syn(): boolean {
    return (this.u8[this.off + 13]! & TCP_SYN) !== 0;
  }
  get ackFlag(): boolean {
    return (this.u8[this.off + 13]! & TCP_ACK) !== 0;
  }
  get fin(): boolean {
    return (this.u8[this.off + 13]! & TCP_FIN) !== 0;
  }
  get rst(): boolean {
    return (this.u8[this.off + 13]! & TCP_RST) !== 0;
  }
  get window(): number {
    return readU16(this.u8, this.off + 14);
  }
  get checksum(): number {
    return readU16(this.u8, this.off + 16);
  }
  get urgent(): number {
    return readU16(this.u8, this.off + 18);
  }
  get payloadOffset(): number {
    return this.off + (this.u8[this.off + 12]! >>> 4) * 4;
  }
  /** `segmentLength`: the IP payload length. */
  checksumOk(segmentLength: number, pseudoSum: number): boolean {
    return checksumValid(this.u8, this.off, segmentLength, pseudoSum);
  }
}

const E_SHORT: WireError = { reason: 'truncated: TCP header needs 20 bytes' };
const E_DOFF: WireError = { reason: 'TCP data offset < 5' };
const E_DOFF_LEN: WireError = { reason: 'TCP data offset beyond the segment' };
const E_OPT_LEN: WireError = { reason: 'TCP option length < 2' };
const E_OPT_END: WireError = { reason: 'TCP option runs past the header' };

/** `len`: the segment length (IP payload length). */
export function checkTcp(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < TCP_HLEN) return E_SHORT;
  const hl = (u8[off + 12]! >>> 4) * 4;
  if (hl < TCP_HLEN) return E_DOFF;
  if (hl > len || off + hl > u8.length) return E_DOFF_LEN;
  const end = off + hl;
  for (let p = off + TCP_HLEN; p < end; ) {
    const k = u8[p]!;
    if (k === TCP_OPT_EOL) break;
    if (k === TCP_OPT_NOP) {
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

export interface TcpOption {
  readonly kind: number;
  readonly data: Uint8Array;
}

export interface TcpFields {
  readonly sport: number;
  readonly dport: number;
  readonly seq: number;
  readonly ack: number;
  readonly dataOffset: number;
  readonly headerLength: number;
  readonly flags: number;
  readonly window: number;
  readonly checksum: number;
  readonly urgent: number;
  readonly options: readonly TcpOption[];
  /** Decoded from the options when present, else null. */
  readonly mss: number | null;
  readonly windowScale: number | null;
  readonly sackPermitted: boolean;
  readonly payloadLength: number;
  /** null when no pseudo-header sum was given to parseTcp. */
  readonly checksumOk: boolean | null;
}

/** `len`: the segment length; `pseudoSum` (e.g. Ipv4View.pseudoSum()) enables checksumOk. */
export function parseTcp(u8: Uint8Array, off: number, len: number, pseudoSum?: number): Parsed<TcpFields> {
  const e = checkTcp(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new TcpView(u8, off);
  const hl = v.headerLength;
  const options: TcpOption[] = [];
  let mss: number | null = null;
  let ws: number | null = null;
  let sackOk = false;
  for (let p = off + TCP_HLEN; p < off + hl; ) {
    const k = u8[p]!;
    if (k === TCP_OPT_EOL) break;
    if (k === TCP_OPT_NOP) {
      p++;
      continue;
    }
    const l = u8[p + 1]!;
    options.push({ kind: k, data: u8.slice(p + 2, p + l) });
    if (k === TCP_OPT_MSS && l === 4) mss = readU16(u8, p + 2);
    else if (k === TCP_OPT_WSCALE && l === 3) ws = u8[p + 2]!;
    else if (k === TCP_OPT_SACK_PERMITTED && l === 2) sackOk = true;
    p += l;
  }
  return {
    ok: true,
    value: {
      sport: v.sport,
      dport: v.dport,
      seq: v.seq,
      ack: v.ack,
      dataOffset: v.dataOffset,
      headerLength: hl,
      flags: v.flags,
      window: v.window,
      checksum: v.checksum,
      urgent: v.urgent,
      options,
      mss,
      windowScale: ws,
      sackPermitted: sackOk,
      payloadLength: len - hl,
      checksumOk: pseudoSum === undefined ? null : v.checksumOk(len, pseudoSum),
    },
  };
}

/** Flags from scapy-style letters: F S R P A U E C N ("SA" = SYN+ACK). Unknown letters are ignored. */
export function tcpFlagsFromString(s: string): number {
  let f = 0;
  for (const c of s.toUpperCase()) {
    const i = 'FSRPAUECN'.indexOf(c);
    if (i >= 0) f |= 1 << i;
  }
  return f;
}

export interface TcpInit {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** Number (TCP_* bits) or letters ('S', 'SA', 'PA'). Default: ACK when ack is given, else SYN. */
  flags?: number | string;
  window?: number;
  urgent?: number;
  /** Raw option bytes; padded with EOL (zeros) to a multiple of 4. */
  options?: Uint8Array;
  /** Written as given instead of the computed header length / 4. */
  dataOffset?: number;
  /** Default 0; fill it afterwards with fillChecksum. */
  checksum?: number;
}

export function tcpHeaderLength(f: Pick<TcpInit, 'options'>): number {
  const ol = f.options === undefined ? 0 : f.options.length;
  return TCP_HLEN + ((ol + 3) & ~3);
}

export function emitTcp(f: TcpInit, u8: Uint8Array, off: number): number {
  const hl = tcpHeaderLength(f);
  const flags =
    f.flags === undefined
      ? f.ack === undefined
        ? TCP_SYN
        : TCP_ACK
      : typeof f.flags === 'string'
        ? tcpFlagsFromString(f.flags)
        : f.flags;
  writeU16(u8, off, f.sport);
  writeU16(u8, off + 2, f.dport);
  writeU32(u8, off + 4, f.seq ?? 0);
  writeU32(u8, off + 8, f.ack ?? 0);
  writeU16(u8, off + 12, (((f.dataOffset ?? hl / 4) & 0xf) << 12) | (flags & 0x1ff));
  writeU16(u8, off + 14, f.window ?? 65535);
  writeU16(u8, off + 16, f.checksum ?? 0);
  writeU16(u8, off + 18, f.urgent ?? 0);
  if (f.options !== undefined) {
    u8.set(f.options, off + TCP_HLEN);
    u8.fill(0, off + TCP_HLEN + f.options.length, off + hl);
  }
  return hl;
}
