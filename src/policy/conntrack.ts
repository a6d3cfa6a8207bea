// policy/conntrack.ts: the connection table of a port's stateful extended ACLs. An entry is keyed by the
// connection's 5-tuple as seen from the port (family, protocol, local address, remote address, local port, remote
// port: extKey), so both directions of a connection find the same entry. An ExpiringTable (expiring-table.ts): at
// most `limit` entries, a full table refuses new ones (counted), never grows; idle entries expire lazily on lookup
// and by a bounded sweep (tick).
//
// TCP: created by a SYN (SYN_SENT) or, picked up mid-stream, ESTABLISHED; the responder's SYN+ACK establishes;
// a FIN from either side moves to CLOSING, a RST to CLOSED; each state has its timeout, capped by the rule's idle
// timeout: SYN_SENT 30 s, ESTABLISHED idle, CLOSING 10 s, CLOSED 2 s. UDP and other protocols: idle timeout.
// ICMP/ICMPv6 echo: keyed by identifier (in both port fields), created by an echo request.

import type { Millis } from '../dataplane/types.js';
import { formatIpv4Address, formatIpv6Address } from '../wire/addresses.js';
import { ExpiringTable } from './expiring-table.js';
import { type Flow, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './flow.js';

export const CT_KEY_WIDTH = 12;
export const DEFAULT_CONNTRACK_LIMIT = 65_536;

export const CT_NONE = 0;
export const CT_SYN_SENT = 1;
export const CT_ESTABLISHED = 2;
export const CT_CLOSING = 3;
export const CT_CLOSED = 4;
export const CT_UDP = 5;
export const CT_ICMP = 6;
export const CT_OTHER = 7;
export const CT_STATE_NAMES = ['none', 'syn-sent', 'established', 'closing', 'closed', 'udp', 'icmp', 'other'] as const;

const SYN_SENT_MS = 30_000;
const CLOSING_MS = 10_000;
const CLOSED_MS = 2_000;
/** Slots a sweep visits per call (bounded work per tick). */
export const SWEEP_SLOTS = 8192;


export interface ConnTrackStats {
  size: number;
  limit: number;
  created: number;
  expired: number;
  /** New connections not tracked because the table was full. */
  refused: number;
  /** Frames admitted by an entry (related ICMP errors included). */
  hits: number;
  /** ICMP/ICMPv6 errors admitted because they quote a tracked connection (RELATED, port-acl.ts). */
  related: number;
}

export interface ConnEntry {
  readonly protocol: number;
  /** "address port" on the port's (VM's) side and the far side. */
  readonly local: string;
  readonly remote: string;
  /** Who opened it: out = the VM, in = the far side. */
  readonly opened: 'in' | 'out';
  readonly state: string;
  readonly rule: number;
  readonly expiresInMs: number;
}

export class ConnTrack extends ExpiringTable {
  private readonly state: Uint8Array;
  /** 1 = the connection was opened out of the port (from the VM), 0 = into it. */
  private readonly origDir: Uint8Array;
  private readonly rule: Int32Array;
  private readonly idle: Float64Array;
  readonly stats: ConnTrackStats;

  constructor(limit = DEFAULT_CONNTRACK_LIMIT) {
    super(limit, CT_KEY_WIDTH, 0x9e3779b9, SWEEP_SLOTS);
    const cap = this.cap;
    this.state = new Uint8Array(cap);
    this.origDir = new Uint8Array(cap);
    this.rule = new Int32Array(cap);
    this.idle = new Float64Array(cap);
    this.stats = { size: 0, limit: this.limit, created: 0, expired: 0, refused: 0, hits: 0, related: 0 };
  }

  protected moveSlot(from: number, to: number): void {
    this.state[to] = this.state[from]!;
    this.origDir[to] = this.origDir[from]!;
    this.rule[to] = this.rule[from]!;
    this.idle[to] = this.idle[from]!;
  }

  /**
   * Track a new connection opened by flow f in direction dir (1 = out of the port) under rule `rule` with idle
   * timeout idleMs. Returns the slot, or -1 when the frame does not open a connection or the table is full.
   */
  create(k: Uint32Array, f: Flow, dir: number, rule: number, idleMs: number, now: Millis): number {
    let st: number;
    const p = f.proto;
    if (p === PROTO_TCP) {
      if (!f.l4 || (f.tcpFlags & TCP_RST) !== 0) return -1;
      st = (f.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN ? CT_SYN_SENT : CT_ESTABLISHED;
    } else if (p === PROTO_UDP) {
      if (!f.l4) return -1;
      st = CT_UDP;
    } else if (p === PROTO_ICMP || p === PROTO_ICMPV6) {
      if (!f.echoRequest) return -1;
      st = CT_ICMP;
    } else {
      st = CT_OTHER;
    }
    const s = this.insert(k, now + this.timeout(st, idleMs), now);
    if (s < 0) {
      this.stats.refused++;
      return -1;
    }
    this.state[s] = st;
    this.origDir[s] = dir;
    this.rule[s] = rule;
    this.idle[s] = idleMs;
    this.stats.created++;
    return s;
  }

  private timeout(st: number, idle: number): number {
    switch (st) {
      case CT_SYN_SENT: return Math.min(idle, SYN_SENT_MS);
      case CT_CLOSING: return Math.min(idle, CLOSING_MS);
      case CT_CLOSED: return Math.min(idle, CLOSED_MS);
      default: return idle;
    }
  }

  /** A frame of the connection at slot s passed in direction dir: advance the TCP state, refresh the timeout. */
  update(s: number, f: Flow, dir: number, now: Millis): void {
    this.stats.hits++;
    let st = this.state[s]!;
    if (f.proto === PROTO_TCP && f.l4) {
      const fl = f.tcpFlags;
      if ((fl & TCP_RST) !== 0) st = CT_CLOSED;
      else if ((fl & TCP_FIN) !== 0) {
        if (st !== CT_CLOSED) st = CT_CLOSING;
      } else if (st === CT_SYN_SENT) {
        if (dir !== this.origDir[s] && (fl & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) st = CT_ESTABLISHED;
      } else if ((st === CT_CLOSED || st === CT_CLOSING) && dir === this.origDir[s] && (fl & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
        st = CT_SYN_SENT; // the same 5-tuple reopened
      }
      this.state[s] = st;
    }
    this.expires[s] = now + this.timeout(st, this.idle[s]!);
  }

  /** An ICMP error about the connection at s passed: counted; neither its state nor its timeout changes. */
  related(_s: number): void {
    this.stats.hits++;
    this.stats.related++;
  }

  /**
   * Whether the entry at s admits flow f in direction dir: an echo entry admits more requests from its
   * originator and replies to it, never a request from the far side (an echo key is only its identifier).
   */
  admits(s: number, f: Flow, dir: number): boolean {
    return this.state[s] !== CT_ICMP || dir === this.origDir[s] || f.echoReply;
  }

  stateOf(s: number): number {
    return this.state[s]!;
  }

  /** Up to `max` entries (control path). */
  entries(now: Millis, max = 1000): ConnEntry[] {
    const out: ConnEntry[] = [];
    for (let s = 0; s < this.cap && out.length < max; s++) {
      if (this.used[s] === 0 || now >= this.expires[s]!) continue;
      const k = this.keys.subarray(s * CT_KEY_WIDTH, (s + 1) * CT_KEY_WIDTH);
      out.push({
        protocol: k[1]!,
        local: `${addrText(k, 2, k[0]!)} ${k[10]!}`,
        remote: `${addrText(k, 6, k[0]!)} ${k[11]!}`,
        opened: this.origDir[s] === 1 ? 'out' : 'in',
        state: CT_STATE_NAMES[this.state[s]!] ?? 'none',
        rule: this.rule[s]!,
        expiresInMs: this.expires[s]! - now,
      });
    }
    return out;
  }
}

function addrText(k: Uint32Array, off: number, family: number): string {
  if (family === 4) return formatIpv4Address(k[off]!);
  const b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const w = k[off + i]!;
    b[4 * i] = w >>> 24;
    b[4 * i + 1] = (w >>> 16) & 0xff;
    b[4 * i + 2] = (w >>> 8) & 0xff;
    b[4 * i + 3] = w & 0xff;
  }
  return formatIpv6Address(b);
}
