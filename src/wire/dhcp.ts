// wire/dhcp.ts: DHCPv4 (RFC 2131/2132): the BOOTP fixed part, the magic cookie and options walked safely.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------+---------------+---------------+---------------+
//  |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
//  +---------------+---------------+---------------+---------------+
//  |                            xid (4)                            |
//  +-------------------------------+-------------------------------+
//  |           secs (2)            |           flags (2)           |
//  +-------------------------------+-------------------------------+
//  |  ciaddr (4) | yiaddr (4) | siaddr (4) | giaddr (4)            |
//  +---------------------------------------------------------------+
//  |  chaddr (16) | sname (64) | file (128)                        |
//  +---------------------------------------------------------------+
//  |  magic cookie 99.130.83.99 (at 236) | options (at 240) ...    |
//  +---------------------------------------------------------------+
//  option: | code | len | data (len) |   code 0 = pad (no length), 255 = end

import { E_BOUNDS, outOfBounds, readU16, readU32, writeU16, writeU32 } from './byte-order.js';
import { readMac, writeMac, type Parsed, type WireError } from './ethernet.js';

export const DHCP_FIXED_LEN = 236;
export const DHCP_OPTIONS_OFFSET = 240;
export const DHCP_MAGIC_COOKIE = 0x63825363;
export const DHCP_OP_REQUEST = 1;
export const DHCP_OP_REPLY = 2;

export const DHCP_OPT_PAD = 0;
export const DHCP_OPT_SUBNET_MASK = 1;
export const DHCP_OPT_ROUTER = 3;
export const DHCP_OPT_DNS = 6;
export const DHCP_OPT_HOSTNAME = 12;
export const DHCP_OPT_REQUESTED_IP = 50;
export const DHCP_OPT_LEASE_TIME = 51;
export const DHCP_OPT_MESSAGE_TYPE = 53;
export const DHCP_OPT_SERVER_ID = 54;
export const DHCP_OPT_PARAM_REQUEST = 55;
export const DHCP_OPT_CLIENT_ID = 61;
export const DHCP_OPT_RELAY_AGENT = 82;
export const DHCP_OPT_END = 255;

export const DHCP_DISCOVER = 1;
export const DHCP_OFFER = 2;
export const DHCP_REQUEST = 3;
export const DHCP_DECLINE = 4;
export const DHCP_ACK = 5;
export const DHCP_NAK = 6;
export const DHCP_RELEASE = 7;
export const DHCP_INFORM = 8;

/** Server-to-client message types (what a DHCP guard stops on a VM port). */
export function isDhcpServerMessage(type: number): boolean {
  return type === DHCP_OFFER || type === DHCP_ACK || type === DHCP_NAK;
}

export class DhcpView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get op(): number {
    return this.u8[this.off]!;
  }
  get htype(): number {
    return this.u8[this.off + 1]!;
  }
  get hlen(): number {
    return this.u8[this.off + 2]!;
  }
  get hops(): number {
    return this.u8[this.off + 3]!;
  }
  get xid(): number {
    return readU32(this.u8, this.off + 4);
  }
  get secs(): number {
    return readU16(this.u8, this.off + 8);
  }
  get broadcast(): boolean {
    return (this.u8[this.off + 10]! & 0x80) !== 0;
  }
  get ciaddr(): number {
    return readU32(this.u8, this.off + 12);
  }
  get yiaddr(): number {
    return readU32(this.u8, this.off + 16);
  }
  get siaddr(): number {
    return readU32(this.u8, this.off + 20);
  }
  get giaddr(): number {
    return readU32(this.u8, this.off + 24);
  }
  /** First 6 bytes of chaddr (the client MAC when htype 1, hlen 6). */
  get chaddr(): number {
    return readMac(this.u8, this.off + 28);
  }
  /** Absolute offset of the value of the first option `code` (its length byte is at -1), or -1. */
  findOption(len: number, code: number): number {
    const end = this.off + len;
    for (let p = this.off + DHCP_OPTIONS_OFFSET; p < end; ) {
      const c = this.u8[p]!;
      if (c === DHCP_OPT_END) return -1;
      if (c === DHCP_OPT_PAD) {
        p++;
        continue;
      }
      if (p + 2 > end) return -1;
      if (c === code) return p + 2;
      p += 2 + this.u8[p + 1]!;
    }
    return -1;
  }
  /** Option 53, or 0 when absent. */
  messageType(len: number): number {
    const p = this.findOption(len, DHCP_OPT_MESSAGE_TYPE);
    return p < 0 ? 0 : this.u8[p]!;
  }
}

const E_SHORT: WireError = { reason: 'truncated: DHCP needs 240 bytes (BOOTP fixed part and magic cookie)' };
const E_COOKIE: WireError = { reason: 'DHCP magic cookie missing' };
const E_OPT_END: WireError = { reason: 'DHCP option runs past the end' };
const E_MSG_TYPE_LEN: WireError = { reason: 'DHCP message type option length is not 1' };
const E_OP: WireError = { reason: 'DHCP op is neither 1 (request) nor 2 (reply)' };

/** `len`: the UDP payload length. Options end at code 255 or at the end of the payload. */
export function checkDhcp(u8: Uint8Array, off: number, len: number): WireError | null {
  if (outOfBounds(u8, off, len)) return E_BOUNDS;
  if (len < DHCP_OPTIONS_OFFSET) return E_SHORT;
  const op = u8[off]!;
  if (op !== DHCP_OP_REQUEST && op !== DHCP_OP_REPLY) return E_OP;
  if (readU32(u8, off + DHCP_FIXED_LEN) !== DHCP_MAGIC_COOKIE) return E_COOKIE;
  const end = off + len;
  for (let p = off + DHCP_OPTIONS_OFFSET; p < end; ) {
    const c = u8[p]!;
    if (c === DHCP_OPT_END) return null;
    if (c === DHCP_OPT_PAD) {
      p++;
      continue;
    }
    if (p + 2 > end) return E_OPT_END;
    const l = u8[p + 1]!;
    if (p + 2 + l > end) return E_OPT_END;
    if (c === DHCP_OPT_MESSAGE_TYPE && l !== 1) return E_MSG_TYPE_LEN;
    p += 2 + l;
  }
  return null;
}

export interface DhcpOption {
  readonly code: number;
  readonly data: Uint8Array;
}

export interface DhcpFields {
  readonly op: number;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  readonly broadcast: boolean;
  readonly ciaddr: number;
  readonly yiaddr: number;
  readonly siaddr: number;
  readonly giaddr: number;
  readonly chaddr: number;
  /** Option 53 (1 DISCOVER .. 8 INFORM), 0 when absent (plain BOOTP). */
  readonly messageType: number;
  readonly requestedIp: number | null;
  readonly serverId: number | null;
  readonly options: readonly DhcpOption[];
}

export function parseDhcp(u8: Uint8Array, off: number, len: number): Parsed<DhcpFields> {
  const e = checkDhcp(u8, off, len);
  if (e !== null) return { ok: false, reason: e.reason };
  const v = new DhcpView(u8, off);
  const options: DhcpOption[] = [];
  let mt = 0;
  let req: number | null = null;
  let sid: number | null = null;
  for (let p = off + DHCP_OPTIONS_OFFSET; p < off + len; ) {
    const c = u8[p]!;
    if (c === DHCP_OPT_END) break;
    if (c === DHCP_OPT_PAD) {
      p++;
      continue;
    }
    const l = u8[p + 1]!;
    options.push({ code: c, data: u8.slice(p + 2, p + 2 + l) });
    if (c === DHCP_OPT_MESSAGE_TYPE && mt === 0) mt = u8[p + 2]!;
    else if (c === DHCP_OPT_REQUESTED_IP && l === 4 && req === null) req = readU32(u8, p + 2);
    else if (c === DHCP_OPT_SERVER_ID && l === 4 && sid === null) sid = readU32(u8, p + 2);
    p += 2 + l;
  }
  return {
    ok: true,
    value: {
      op: v.op,
      htype: v.htype,
      hlen: v.hlen,
      hops: v.hops,
      xid: v.xid,
      secs: v.secs,
      broadcast: v.broadcast,
      ciaddr: v.ciaddr,
      yiaddr: v.yiaddr,
      siaddr: v.siaddr,
      giaddr: v.giaddr,
      chaddr: v.chaddr,
      messageType: mt,
      requestedIp: req,
      serverId: sid,
      options,
    },
  };
}

export interface DhcpInit {
  /** Default: 1 for DISCOVER/REQUEST/DECLINE/RELEASE/INFORM, 2 for OFFER/ACK/NAK. */
  op?: number;
  /** Option 53; omit (0) for plain BOOTP. */
  messageType?: number;
  xid?: number;
  secs?: number;
  broadcast?: boolean;
  ciaddr?: number;
  yiaddr?: number;
  siaddr?: number;
  giaddr?: number;
  chaddr?: number;
  hops?: number;
  requestedIp?: number;
  serverId?: number;
  /** More options, written after 53/50/54 and before End. */
  options?: readonly DhcpOption[];
  /** Omit the End option (crafting). */
  noEnd?: boolean;
}

export function dhcpLength(f: DhcpInit): number {
  let n = DHCP_OPTIONS_OFFSET;
  if (f.messageType !== undefined && f.messageType !== 0) n += 3;
  if (f.requestedIp !== undefined) n += 6;
  if (f.serverId !== undefined) n += 6;
  for (const o of f.options ?? []) n += 2 + o.data.length;
  if (f.noEnd !== true) n += 1;
  return n;
}

export function emitDhcp(f: DhcpInit, u8: Uint8Array, off: number): number {
  const total = dhcpLength(f);
  u8.fill(0, off, off + total);
  const mt = f.messageType ?? 0;
  u8[off] = f.op ?? (isDhcpServerMessage(mt) ? DHCP_OP_REPLY : DHCP_OP_REQUEST);
  u8[off + 1] = 1;
  u8[off + 2] = 6;
  u8[off + 3] = f.hops ?? 0;
  writeU32(u8, off + 4, f.xid ?? 0);
  writeU16(u8, off + 8, f.secs ?? 0);
  writeU16(u8, off + 10, f.broadcast === true ? 0x8000 : 0);
  writeU32(u8, off + 12, f.ciaddr ?? 0);
  writeU32(u8, off + 16, f.yiaddr ?? 0);
  writeU32(u8, off + 20, f.siaddr ?? 0);
  writeU32(u8, off + 24, f.giaddr ?? 0);
  writeMac(u8, off + 28, f.chaddr ?? 0);
  writeU32(u8, off + DHCP_FIXED_LEN, DHCP_MAGIC_COOKIE);
  let p = off + DHCP_OPTIONS_OFFSET;
  if (mt !== 0) {
    u8[p] = DHCP_OPT_MESSAGE_TYPE;
    u8[p + 1] = 1;
    u8[p + 2] = mt;
    p += 3;
  }
  if (f.requestedIp !== undefined) {
    u8[p] = DHCP_OPT_REQUESTED_IP;
    u8[p + 1] = 4;
    writeU32(u8, p + 2, f.requestedIp);
    p += 6;
  }
  if (f.serverId !== undefined) {
    u8[p] = DHCP_OPT_SERVER_ID;
    u8[p + 1] = 4;
    writeU32(u8, p + 2, f.serverId);
    p += 6;
  }
  for (const o of f.options ?? []) {
    u8[p] = o.code;
    u8[p + 1] = o.data.length;
    u8.set(o.data, p + 2);
    p += 2 + o.data.length;
  }
  if (f.noEnd !== true) u8[p++] = DHCP_OPT_END;
  return p - off;
}
