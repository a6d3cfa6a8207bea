// virtualization/arp-cache.ts: the PA neighbour cache of the underlay (next-hop MACs for encapsulated frames)
// and the underlay ARP frames the switch sends and answers for its PAs. Time comes from the caller.

import type { FrameMeta } from '../dataplane/frame.js';
import type { Millis } from '../dataplane/types.js';
import { formatIpv4Address } from '../wire/addresses.js';
import { ARP_HTYPE_ETHERNET, ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ARP_PTYPE_IPV4, emitArp, type ArpInit } from '../wire/arp.js';
import { readU16, writeU16, writeU32 } from '../wire/byte-order.js';
import { ETHERTYPE_ARP, ETH_HLEN, MAC_BROADCAST, formatMac, writeMac } from '../wire/ethernet.js';
import type { ArpEntryStatus } from './api.js';
import { readI32, writeMacHalves } from './encap.js';

export interface ArpCacheOptions {
  /** Most entries kept (default 1024); a new address when full evicts an incomplete or stale entry first, then the
   *  least recently updated. */
  capacity?: number;
  /** Age after which a resolved entry is stale (default 300000 ms). */
  reachableMs?: number;
  /** Least time between two requests for one address (default 1000 ms). */
  retryMs?: number;
}

const STATE_INCOMPLETE = 0;
const STATE_REACHABLE = 1;
const STATE_STALE = 2;

class Entry {
  mac = -1;
  state = STATE_INCOMPLETE;
  /** When the MAC was last learned (or the entry created, while incomplete). */
  updated = 0;
  /** When a request was last wanted; -Infinity before the first. */
  requested = -Infinity;
  constructor(readonly ip: number) {}
}

export class ArpCache {
  /** Keyed by ip | 0: an int32 is a small integer, a uint32 above 2^31 would be a heap number per lookup. */
  private readonly map = new Map<number, Entry>();
  private readonly capacity: number;
  private readonly reachableMs: Millis;
  private readonly retryMs: Millis;

  constructor(opts: ArpCacheOptions = {}) {
    this.capacity = Math.max(1, opts.capacity ?? 1024);
    this.reachableMs = opts.reachableMs ?? 300_000;
    this.retryMs = opts.retryMs ?? 1000;
  }

  /** MAC (48-bit number) of ip, or -1 when unknown/incomplete. Stale entries still answer. */
  lookup(ip: number, now: Millis): number {
    const e = this.map.get(ip | 0);
    if (e === undefined || e.state === STATE_INCOMPLETE) return -1;
    if (e.state === STATE_REACHABLE && now - e.updated > this.reachableMs) e.state = STATE_STALE;
    return e.mac;
  }

  /** Record that ip is at mac (an ARP reply, or a request from ip): reachable from now. */
  learn(ip: number, mac: number, now: Millis): void {
    let e = this.map.get(ip | 0);
    if (e === undefined) e = this.add(ip);
    e.mac = mac;
    e.state = STATE_REACHABLE;
    e.updated = now;
  }

  /**
   * Should an ARP request for ip go out now? True at most once per retryMs per ip, for an unknown address (it is
   * then added as incomplete), an incomplete one, or a stale one (which keeps its MAC and keeps answering lookup
   * until a reply refreshes it). False for a reachable entry.
   */
  wantRequest(ip: number, now: Millis): boolean {
    let e = this.map.get(ip | 0);
    if (e === undefined) {
      e = this.add(ip);
      e.updated = now;
    } else if (e.state === STATE_REACHABLE) {
      if (now - e.updated <= this.reachableMs) return false;
      e.state = STATE_STALE;
    }
    if (now - e.requested < this.retryMs) return false;
    e.requested = now;
    return true;
  }

  /**
   * Entries older than reachableMs become stale (still used, refreshed by a new request). Incomplete entries that
   * nobody asked for within reachableMs are removed, and stale ones not refreshed for three times that.
   */
  expire(now: Millis): void {
    const r = this.reachableMs;
    for (const [key, e] of this.map) {
      if (e.state === STATE_REACHABLE) {
        if (now - e.updated > r) e.state = STATE_STALE;
      } else if (e.state === STATE_INCOMPLETE) {
        if (now - Math.max(e.updated, e.requested) > r) this.map.delete(key);
      } else if (now - e.updated > 3 * r) this.map.delete(key);
    }
  }

  entries(now: Millis): ArpEntryStatus[] {
    const out: ArpEntryStatus[] = [];
    const sorted = [...this.map.values()].sort((x, y) => x.ip - y.ip);
    for (const e of sorted) {
      const stale = e.state === STATE_STALE || (e.state === STATE_REACHABLE && now - e.updated > this.reachableMs);
      out.push({
        address: formatIpv4Address(e.ip),
        mac: e.state === STATE_INCOMPLETE ? null : formatMac(e.mac),
        state: e.state === STATE_INCOMPLETE ? 'incomplete' : stale ? 'stale' : 'reachable',
        ageMs: Math.max(0, now - e.updated),
      });
    }
    return out;
  }

  /** Number of entries, any state. */
  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }

  private add(ip: number): Entry {
    if (this.map.size >= this.capacity) {
      let victim: Entry | undefined;
      // an unresolved or stale entry goes before a reachable one, then the least recently updated
      for (const e of this.map.values()) {
        if (victim === undefined) victim = e;
        else {
          const ev = e.state === STATE_REACHABLE ? 1 : 0, vv = victim.state === STATE_REACHABLE ? 1 : 0;
          if (ev < vv || (ev === vv && e.updated < victim.updated)) victim = e;
        }
      }
      if (victim !== undefined) this.map.delete(victim.ip | 0);
    }
    const e = new Entry(ip >>> 0);
    this.map.set(ip | 0, e);
    return e;
  }
}

const FRAME_LEN = ETH_HLEN + ARP_LEN;
/** One reused emitArp record: writing a request allocates nothing. */
const arpInit: ArpInit = { op: ARP_OP_REQUEST, sha: 0, spa: 0, tha: 0, tpa: 0 };

function writeArpFrame(out: Uint8Array, off: number, dst: number, op: number, sha: number, spa: number, tha: number, tpa: number): number {
  if (!(off >= 0 && off + FRAME_LEN <= out.length)) return 0;
  writeMac(out, off, dst);
  writeMac(out, off + 6, sha);
  writeU16(out, off + 12, ETHERTYPE_ARP);
  arpInit.op = op;
  arpInit.sha = sha;
  arpInit.spa = spa;
  arpInit.tha = tha;
  arpInit.tpa = tpa;
  emitArp(arpInit, out, off + ETH_HLEN);
  return FRAME_LEN;
}

/** Write a broadcast ARP request (who-has targetIp tell srcIp) into out at off; returns bytes (42), or 0 if it
 *  does not fit. */
export function writeArpRequest(out: Uint8Array, off: number, srcMac: number, srcIp: number, targetIp: number): number {
  return writeArpFrame(out, off, MAC_BROADCAST, ARP_OP_REQUEST, srcMac, srcIp, 0, targetIp);
}

/** Gratuitous ARP (request, sender = target = ip, broadcast). Returns bytes (42), or 0 if it does not fit. */
export function writeGratuitousArp(out: Uint8Array, off: number, mac: number, ip: number): number {
  return writeArpFrame(out, off, MAC_BROADCAST, ARP_OP_REQUEST, mac, ip, 0, ip);
}

/** Turn the ARP request frame m (m.l3Off from m.off) into the reply in place: "targetIp is at mac" sent to the
 *  requester (Ethernet dst = requester's sender hardware address, src = mac; m.dstMac/m.srcMac set too). Length
 *  unchanged. Returns false (frame untouched) if m is not an Ethernet/IPv4 ARP request that fits the frame. */
export function arpReplyInPlace(u8: Uint8Array, m: FrameMeta, mac: number): boolean {
  const off = m.off;
  const a = off + m.l3Off;
  if (off < 0 || m.l3Off < ETH_HLEN || a + ARP_LEN > off + m.len || off + m.len > u8.length) return false;
  if (readU16(u8, a) !== ARP_HTYPE_ETHERNET || readU16(u8, a + 2) !== ARP_PTYPE_IPV4) return false;
  if (u8[a + 4] !== 6 || u8[a + 5] !== 4 || readU16(u8, a + 6) !== ARP_OP_REQUEST) return false;
  // bytes are moved, and addresses held as int32 bit patterns: no per-frame heap numbers
  const spa = readI32(u8, a + 14);
  const tpa = readI32(u8, a + 24);
  u8.copyWithin(off, a + 8, a + 14); // Ethernet dst = the requester
  u8.copyWithin(a + 18, a + 8, a + 14); // target hardware address = the requester
  const hi = (mac / 0x1_0000_0000) | 0, lo = mac | 0;
  writeMacHalves(u8, off + 6, hi, lo);
  writeU16(u8, a + 6, ARP_OP_REPLY);
  writeMacHalves(u8, a + 8, hi, lo);
  writeU32(u8, a + 14, tpa);
  writeU32(u8, a + 24, spa);
  m.dstMac = readU16(u8, off) * 0x1_0000_0000 + (readI32(u8, off + 2) >>> 0);
  m.srcMac = mac;
  return true;
}
