// virtualization/layer.ts: the virtualization layer of one switch (the WNV filter at the external port): policy
// ARP, distributed routing and tenant MTU on the VM side; NVGRE / VXLAN / IP rewrite and PA ARP on the underlay.

import type { DropReason } from '../dataplane/drop.js';
import { GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_TUNNEL_IPV4, type Batch, type FrameMeta } from '../dataplane/frame.js';
import { NO_PORT, type Clock, type Millis } from '../dataplane/types.js';
import type { Logger } from '../extensions/api.js';
import { readU16, readU32, writeU16 } from '../wire/byte-order.js';
import { checksumUpdate16 } from '../wire/checksum.js';
import { formatMac, isMulticastMac, makeTci, pushVlanTag, readMac, writeMac } from '../wire/ethernet.js';
import type {
  LocalPorts,
  RecordStatus,
  VirtualizationHost,
  VirtualizationLayer,
  VirtualizationStatus,
  VsidStatus,
} from './api.js';
import { ArpCache, arpReplyInPlace, writeArpRequest, writeGratuitousArp, type ArpCacheOptions } from './arp-cache.js';
import { decapInPlace, parseUnderlay, rewriteIn, Underlay, UNDERLAY_ARP, UNDERLAY_IPV4, UNDERLAY_NVGRE, UNDERLAY_VXLAN } from './decap.js';
import { encapNvgre, encapVxlan, flowHash, Outer, rewriteOut, VXLAN_PREPEND } from './encap.js';
import { fragNeededInPlace, timeExceededInPlace } from './icmp-reply.js';
import type { HostNetworkInput } from './model.js';
import {
  equal16,
  ETHERTYPE_IPV6,
  hopLimitExceededInPlace,
  neighborAdvertInPlace,
  nsTargetOffset,
  packetTooBigInPlace,
  unsolicitedNeighborAdvert,
} from './nd-reply.js';
import {
  compilePolicy,
  KEY_SPLIT,
  RULE_ENCAP,
  RULE_VXLAN,
  type LookupEntry,
  type PolicyTable,
  type SubnetEntry,
} from './policy-table.js';

const ETH_HLEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ARP_LEN = 28;
const ARP_REQUEST = 1;
const ARP_FRAME = 42;
/** A newly local record is announced at setPolicy and once more this much later (a first frame may be lost). */
const ANNOUNCE_REPEAT_MS = 1000;
const ANNOUNCE_COUNT = 2;

export interface VirtualizationOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly host: VirtualizationHost;
  readonly arp?: ArpCacheOptions;
}

/** Layer counters (status().counters). Plain numeric fields: incremented on the data path without lookups. */
export class LayerCounters {
  encapsulatedNvgre = 0;
  encapsulatedVxlan = 0;
  /** Of those, TCP super-frames sent whole as UDP-tunnel GSO (uplink.tunnelOffload). */
  encapsulatedVxlanGso = 0;
  rewrittenOut = 0;
  decapsulatedNvgre = 0;
  decapsulatedVxlan = 0;
  rewrittenIn = 0;
  /** Tenant ARP requests answered from the policy table. */
  arpAnswered = 0;
  /** Tenant IPv6 neighbor solicitations answered from the policy table (DAD defences included). */
  ndAnswered = 0;
  /** Underlay ARP requests for our PAs answered with the uplink MAC. */
  paArpAnswered = 0;
  /** Underlay ARP frames whose sender was learned into the PA ARP cache. */
  paArpLearned = 0;
  /** Underlay ARP frames consumed without being answered or learned. */
  paArpIgnored = 0;
  routed = 0;
  fragNeeded = 0;
  /** ICMPv6 packet too big sent back to a VM (IPv6 frames over the tenant MTU). */
  packetTooBig = 0;
  timeExceeded = 0;
  /** Gratuitous ARPs for CAs originated into their VSID. */
  garpSent = 0;
  /** Unsolicited neighbor advertisements for IPv6 CAs originated into their VSID. */
  unsolicitedNaSent = 0;
  /** Gratuitous ARPs for rewrite PAs sent on the underlay. */
  paGarpSent = 0;
  arpRequestsSent = 0;
  /** encapsulate() refused for an unresolved or unreachable next hop. */
  unresolved = 0;
  policyChanges = 0;
}

interface Announcement {
  readonly vsid: number;
  readonly ca: number;
  /** The IPv6 CA of an IPv6 record (announced with an unsolicited NA), else null. */
  readonly ca6: Uint8Array | null;
  readonly mac: number;
  readonly pa: number;
  readonly rewrite: boolean;
  readonly vlan: number;
  due: Millis;
  left: number;
}

function recordKey(r: LookupEntry): string {
  return `${r.vsid}|${r.caText}|${r.mac}|${r.pa}|${r.rule}`;
}

/** Our non-rewrite PAs and their VLANs: a change invalidates the underlay neighbour cache. */
function tunnelSignature(t: PolicyTable): string {
  return t.ownPaList
    .filter((p) => !p.rewrite)
    .map((p) => `${p.text}@${p.vlan}`)
    .sort()
    .join(',');
}

/**
 * For a TCP GSO super-frame (untagged, at m.off) that may cross as one UDP-tunnel GSO frame: the end of its TCP
 * header from m.off (hdr_len), else -1: not TCPv4/v6 GSO, no partial checksum at the TCP checksum (the kernel's
 * tunnel GSO requires one), headers cut short, or an outer IPv4 packet over 64 KB.
 */
function innerTcpEnd(u8: Uint8Array, m: FrameMeta): number {
  const base = m.gsoType & ~GSO_ECN;
  if ((base !== GSO_TCPV4 && base !== GSO_TCPV6) || m.gsoSize === 0 || !m.needsCsum || m.csumOffset !== 16) return -1;
  if (m.l3Off < ETH_HLEN || m.csumStart < m.l3Off + (base === GSO_TCPV4 ? 20 : 40)) return -1;
  const th = m.off + m.csumStart;
  if (th + 20 > m.off + m.len || th + 20 > u8.length) return -1;
  const end = m.csumStart + ((u8[th + 12]! >>> 4) << 2);
  if (end < m.csumStart + 20 || end >= m.len) return -1;
  if (m.len + VXLAN_PREPEND - ETH_HLEN > 0xffff) return -1; // the outer IPv4 total length must hold the frame
  return end;
}

export class Virtualization implements VirtualizationLayer {
  private t: PolicyTable | null = null;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly host: VirtualizationHost;
  private readonly arp: ArpCache;
  private readonly u = new Underlay();
  private readonly outer = new Outer();
  private ipId = 0;
  private announcements: Announcement[] = [];
  readonly counters = new LayerCounters();

  constructor(opts: VirtualizationOptions) {
    this.clock = opts.clock;
    this.log = opts.log;
    this.host = opts.host;
    this.arp = new ArpCache(opts.arp ?? { reachableMs: 300_000, retryMs: 1000 });
  }

  /** The compiled tables (tests, status). */
  get table(): PolicyTable | null {
    return this.t;
  }

  // ---------------------------------------------------------------------------------------------------------
  // control path

  setPolicy(input: HostNetworkInput | null): void {
    const old = this.t;
    this.counters.policyChanges++;
    if (input === null) {
      this.t = null;
      this.arp.clear();
      this.announcements = [];
      this.log.info('virtualization off', {});
      return;
    }
    const t = compilePolicy(input);
    for (const w of t.warnings) this.log.warn('virtualization policy entry skipped', { detail: w });
    if (old === null || old.uplinkMac !== t.uplinkMac || tunnelSignature(old) !== tunnelSignature(t)) this.arp.clear();
    this.t = t;
    const now = this.clock.now();
    this.syncHops(t, now);

    const wasLocal = new Set<string>();
    if (old !== null) for (const r of old.records) if (r.local) wasLocal.add(recordKey(r));
    let announced = 0;
    for (const r of t.records) {
      if (!r.local || wasLocal.has(recordKey(r))) continue;
      this.announcements.push({
        vsid: r.vsid,
        ca: r.ca,
        ca6: r.ca6,
        mac: r.mac,
        pa: r.pa,
        rewrite: r.rule === 'rewrite',
        vlan: r.vlan,
        due: now,
        left: ANNOUNCE_COUNT,
      });
      announced++;
    }
    this.flushAnnouncements(now);

    let requested = 0;
    for (const nh of t.nextHops) {
      if (this.arp.wantRequest(nh.ip, now)) {
        this.sendArpRequest(nh.ip, nh.srcPa, nh.vlan);
        requested++;
      }
    }
    this.log.info('virtualization policy applied', {
      switch: t.switchName,
      providerAddresses: t.ownPaList.length,
      vsids: t.subnets.size,
      records: t.records.length,
      announced,
      arpRequests: requested,
    });
  }

  tick(now: Millis): void {
    const t = this.t;
    if (t === null) return;
    this.arp.expire(now);
    this.syncHops(t, now);
    this.flushAnnouncements(now);
    // unknown, incomplete and stale next hops are (re)requested, at most once per retry interval each
    for (const nh of t.nextHops) if (this.arp.wantRequest(nh.ip, now)) this.sendArpRequest(nh.ip, nh.srcPa, nh.vlan);
  }

  status(now: Millis): VirtualizationStatus {
    const t = this.t;
    const counters: Record<string, number> = { ...this.counters };
    if (t === null) {
      return {
        host: '',
        switchName: '',
        providerAddresses: [],
        underlayMtu: 0,
        routerMac: '',
        vsids: [],
        records: [],
        arp: [],
        counters,
      };
    }
    const vsids: VsidStatus[] = [];
    for (const s of t.subnets.values()) {
      vsids.push({
        vsid: s.vsid,
        rdid: s.domain.id,
        rdName: s.domain.name,
        prefix: s.prefix6Text === null ? s.prefixText : s.prefixText === '' ? s.prefix6Text : `${s.prefixText} ${s.prefix6Text}`,
        gateway: s.gateway6Text === null ? s.gatewayText : s.gatewayText === null ? s.gateway6Text : `${s.gatewayText} ${s.gateway6Text}`,
        tenantMtu: s.tenantMtu,
        records: s.records,
        localRecords: s.localRecords,
      });
    }
    vsids.sort((a, b) => a.vsid - b.vsid);
    const records: RecordStatus[] = t.records.map((r) => ({
      ca: r.caText,
      vsid: r.vsid,
      mac: r.macText,
      pa: r.paText,
      rule: r.rule,
      local: r.local,
    }));
    return {
      host: t.host,
      switchName: t.switchName,
      providerAddresses: t.ownPaList.map((p) => p.text),
      underlayMtu: t.underlayMtu,
      routerMac: formatMac(t.routerMac),
      vsids,
      records,
      arp: this.arp.entries(now),
      counters,
    };
  }

  /** Mirror the ARP cache into the next-hop entries encapsulation reads. */
  private syncHops(t: PolicyTable, now: Millis): void {
    for (const nh of t.nextHops) nh.mac = this.arp.lookup(nh.ip, now);
  }

  private learn(t: PolicyTable, ip: number, mac: number, now: Millis): void {
    this.arp.learn(ip, mac, now);
    const nh = t.nextHopSet.get(ip);
    if (nh !== undefined) nh.mac = mac;
  }

  private flushAnnouncements(now: Millis): void {
    const t = this.t;
    if (t === null || this.announcements.length === 0) return;
    const keep: Announcement[] = [];
    for (const a of this.announcements) {
      if (a.due > now) {
        keep.push(a);
        continue;
      }
      // announce only while the record is still ours and unchanged
      const d = t.subnets.get(a.vsid)?.domain;
      const r = a.ca6 !== null ? d?.byCa6.get(a.ca6) : d?.byCa.get(a.ca);
      if (r === undefined || !r.local || r.mac !== a.mac || r.pa !== a.pa) continue;
      if (a.ca6 !== null) {
        if (this.host.originate(unsolicitedNeighborAdvert(a.ca6, r.macHi, r.macLo), a.vsid)) this.counters.unsolicitedNaSent++;
        a.left--;
        a.due = now + ANNOUNCE_REPEAT_MS;
        if (a.left > 0) keep.push(a);
        continue;
      }
      const g = new Uint8Array(ARP_FRAME);
      writeGratuitousArp(g, 0, a.mac, a.ca);
      if (this.host.originate(g, a.vsid)) this.counters.garpSent++;
      if (a.rewrite) {
        const f = this.underlayFrame(a.vlan);
        writeGratuitousArp(f, a.vlan === 0 ? 0 : 4, t.uplinkMac, a.pa);
        if (this.host.sendUplink(this.tagged(f, a.vlan))) this.counters.paGarpSent++;
      }
      a.left--;
      a.due = now + ANNOUNCE_REPEAT_MS;
      if (a.left > 0) keep.push(a);
    }
    this.announcements = keep;
  }

  /** A fresh buffer for one underlay ARP frame (with room for a tag). Slow path: at most one per next hop per retry. */
  private underlayFrame(vlan: number): Uint8Array {
    return new Uint8Array(vlan === 0 ? ARP_FRAME : ARP_FRAME + 4);
  }

  /** The frame written at offset 4 gets its 802.1Q tag pushed in front (offset 0). */
  private tagged(f: Uint8Array, vlan: number): Uint8Array {
    if (vlan !== 0) pushVlanTag(f, 4, makeTci(0, 0, vlan));
    return f;
  }

  private sendArpRequest(target: number, srcPa: number, vlan: number): void {
    const t = this.t;
    if (t === null) return;
    const f = this.underlayFrame(vlan);
    writeArpRequest(f, vlan === 0 ? 0 : 4, t.uplinkMac, srcPa, target);
    if (this.host.sendUplink(this.tagged(f, vlan))) this.counters.arpRequestsSent++;
  }

  // ---------------------------------------------------------------------------------------------------------
  // VM side: built-in forwarding inside a VSID

  forward(b: Batch, i: number, ports: LocalPorts, now: Millis): void {
    void now;
    const m = b.meta[i]!;
    if (m.drop !== null || m.consumed) return;
    const t = this.t;
    if (t === null) {
      // no policy: plain learning-switch semantics inside the VSID, never the uplink
      const p = isMulticastMac(m.dstMac) ? NO_PORT : ports.find(m.vsid, m.dstMac);
      if (p !== NO_PORT) m.dest.only(p);
      else ports.floodLocal(m);
      return;
    }
    const s = t.subnets.get(m.vsid);
    if (s === undefined) {
      m.drop = 'unknown-vsid';
      return;
    }
    const u8 = b.slab;
    if (m.etherType === ETHERTYPE_ARP && this.tenantArp(t, u8, m, s, ports)) return;
    if (m.etherType === ETHERTYPE_IPV6 && m.inPort !== ports.external && this.tenantNd(t, u8, m, s, ports)) return;
    // the destination MAC as two 24-bit halves read from the frame: no heap number on the way
    const o = m.off;
    if ((u8[o]! & 1) !== 0) {
      ports.floodLocal(m);
      return;
    }
    const dHi = (u8[o]! << 16) | (u8[o + 1]! << 8) | u8[o + 2]!;
    const dLo = (u8[o + 3]! << 16) | (u8[o + 4]! << 8) | u8[o + 5]!;
    if (dHi === t.routerMacHi && dLo === t.routerMacLo) {
      this.route(t, u8, m, s, ports);
      return;
    }
    const rec = s.byMac.at(dHi, dLo);
    if (rec === undefined) {
      // a MAC without a record (a local VM the switch learned): local port or local flood, never the uplink
      const p = ports.find(m.vsid, m.dstMac);
      if (p !== NO_PORT) m.dest.only(p);
      else ports.floodLocal(m);
      return;
    }
    if (!rec.local) {
      if (this.stuck(m, ports) || !this.fitsMtu(t, u8, m, rec, s, ports)) return;
      m.dest.only(ports.external);
      return;
    }
    const p = ports.find(rec.vsid, rec.mac);
    if (p !== NO_PORT) m.dest.only(p);
    else ports.floodLocal(m);
  }

  /**
   * ARP from a tenant: requests are answered from the policy table (true = handled). Gratuitous ARPs and probes
   * for the sender's own address stay in the VSID; replies and malformed ARP go on as ordinary frames (false).
   */
  private tenantArp(t: PolicyTable, u8: Uint8Array, m: FrameMeta, s: SubnetEntry, ports: LocalPorts): boolean {
    if (m.len < m.l3Off + ARP_LEN) return false;
    const a = m.off + m.l3Off;
    if (readU16(u8, a) !== 1 || readU16(u8, a + 2) !== ETHERTYPE_IPV4 || u8[a + 4] !== 6 || u8[a + 5] !== 4) return false;
    if (readU16(u8, a + 6) !== ARP_REQUEST) return false;
    const spa = readU32(u8, a + 14);
    const tpa = readU32(u8, a + 24);
    if (spa === tpa) {
      ports.floodLocal(m);
      return true;
    }
    const d = s.domain;
    let mac = -1;
    const rec = d.byCa.at(u8[a + 24]!, (u8[a + 25]! << 16) | (u8[a + 26]! << 8) | u8[a + 27]!);
    if (rec !== undefined) {
      // a CA of another subnet of the same routing domain is reached through the router
      mac = rec.vsid === s.vsid ? rec.mac : t.routerMac;
    } else {
      for (let k = 0; k < d.subnets.length; k++) if (d.subnets[k]!.gateway === tpa) mac = t.routerMac;
    }
    if (mac === -1) {
      m.drop = 'no-lookup-record';
      return true;
    }
    if (mac === m.srcMac || mac === readMac(u8, a + 8)) {
      ports.floodLocal(m); // a probe for the sender's own address: not answered on its behalf
      return true;
    }
    if (!arpReplyInPlace(u8, m, mac)) return false;
    m.trusted = true;
    m.consumed = true;
    m.dest.only(m.inPort);
    this.counters.arpAnswered++;
    return true;
  }

  /**
   * IPv6 neighbor solicitation from a tenant VM (true = handled): answered from the policy table for a CA of the
   * routing domain (a CA of another subnet, or a gateway, with the router MAC; router flag for gateways), unicast
   * or multicast alike, so that no NS ever crosses the underlay. A DAD probe for another VM's address is
   * defended; probes and solicitations for the sender's own address, and link-local targets (not in the policy),
   * stay inside the VSID on this host. Other targets are dropped like ARP for unknown CAs.
   */
  private tenantNd(t: PolicyTable, u8: Uint8Array, m: FrameMeta, s: SubnetEntry, ports: LocalPorts): boolean {
    const tg = nsTargetOffset(u8, m);
    if (tg < 0) return false;
    const d = s.domain;
    let hi = -1;
    let lo = -1;
    let router = false;
    const rec = d.byCa6.at(u8, tg);
    if (rec !== undefined) {
      if (rec.vsid === s.vsid) {
        hi = rec.macHi;
        lo = rec.macLo;
      } else {
        hi = t.routerMacHi;
        lo = t.routerMacLo;
        router = true;
      }
    } else {
      for (let k = 0; k < d.subnets.length; k++) {
        const g = d.subnets[k]!.gateway6;
        if (g !== null && equal16(u8, tg, g, 0)) {
          hi = t.routerMacHi;
          lo = t.routerMacLo;
          router = true;
        }
      }
    }
    if (hi === -1) {
      if (u8[tg] === 0xfe && (u8[tg + 1]! & 0xc0) === 0x80) {
        ports.floodLocal(m); // link-local: the VMs on this host answer for themselves
        return true;
      }
      m.drop = 'no-lookup-record';
      return true;
    }
    const o = m.off;
    if (
      hi === ((u8[o + 6]! << 16) | (u8[o + 7]! << 8) | u8[o + 8]!) &&
      lo === ((u8[o + 9]! << 16) | (u8[o + 10]! << 8) | u8[o + 11]!)
    ) {
      ports.floodLocal(m); // the sender's own address (its DAD or a self-probe): not answered on its behalf
      return true;
    }
    if (!neighborAdvertInPlace(u8, m, hi, lo, router)) {
      m.drop = 'no-lookup-record';
      return true;
    }
    m.trusted = true;
    m.consumed = true;
    m.dest.only(m.inPort);
    this.counters.ndAnswered++;
    return true;
  }

  /** Distributed routing: same routing domain only, TTL - 1, MACs rewritten, VSID of the destination record. */
  private route(t: PolicyTable, u8: Uint8Array, m: FrameMeta, s: SubnetEntry, ports: LocalPorts): void {
    if (m.etherType === ETHERTYPE_IPV6) {
      this.route6(t, u8, m, s, ports);
      return;
    }
    if (m.etherType !== ETHERTYPE_IPV4) {
      m.drop = 'no-route';
      return;
    }
    const l3 = m.off + m.l3Off;
    const dstHi = u8[l3 + 16]!;
    const dstLo = (u8[l3 + 17]! << 16) | (u8[l3 + 18]! << 8) | u8[l3 + 19]!;
    const d = s.domain;
    let rec = d.byCa.at(dstHi, dstLo);
    if (rec === undefined) rec = t.customerRoute(d, dstHi, dstLo);
    if (rec === undefined) {
      m.drop = 'no-route';
      return;
    }
    if (!rec.local && this.stuck(m, ports)) return;
    const ttl = u8[l3 + 8]!;
    if (ttl <= 1) {
      if (this.aclDenied(u8, m, ports)) return;
      const from = s.gateway !== -1 ? s.gateway : dstHi * KEY_SPLIT + dstLo;
      this.expired(u8, m, m.inPort !== NO_PORT && timeExceededInPlace(u8, m, from, t.routerMac));
      return;
    }
    // checked before the MACs change: an ICMP error goes back to the original sender
    if (!rec.local && !this.fitsMtu(t, u8, m, rec, s, ports)) return;
    const oldWord = (ttl << 8) | u8[l3 + 9]!;
    u8[l3 + 8] = ttl - 1;
    writeU16(u8, l3 + 10, checksumUpdate16(readU16(u8, l3 + 10), oldWord, oldWord - 0x100));
    this.routedTo(t, u8, m, rec, ports);
  }

  /**
   * Distributed routing for IPv6: a CA of the routing domain or an IPv6 customer route, hop limit - 1, MACs
   * rewritten. At hop limit <= 1 the sender gets ICMPv6 time exceeded (from the subnet's IPv6 gateway, else the
   * destination), counted 'ttl-exceeded'.
   */
  private route6(t: PolicyTable, u8: Uint8Array, m: FrameMeta, s: SubnetEntry, ports: LocalPorts): void {
    const l3 = m.off + m.l3Off;
    if (m.len < m.l3Off + 40 || (u8[l3]! >>> 4) !== 6) {
      m.drop = 'no-route';
      return;
    }
    let rec = s.domain.byCa6.at(u8, l3 + 24);
    if (rec === undefined) rec = t.customerRoute6(s.domain, u8, l3 + 24);
    if (rec === undefined) {
      m.drop = 'no-route';
      return;
    }
    if (!rec.local && this.stuck(m, ports)) return;
    const hops = u8[l3 + 7]!;
    if (hops <= 1) {
      if (this.aclDenied(u8, m, ports)) return;
      const answered = m.inPort !== NO_PORT && hopLimitExceededInPlace(u8, m, s.gateway6, 0, t.routerMacHi, t.routerMacLo);
      this.expired(u8, m, answered);
      return;
    }
    if (!rec.local && !this.fitsMtu(t, u8, m, rec, s, ports)) return;
    u8[l3 + 7] = hops - 1; // no header checksum in IPv6
    this.routedTo(t, u8, m, rec, ports);
  }

  /**
   * Can frame m not leave for a remote record? Without an uplink it is dropped 'no-destination'; a frame that came
   * from the uplink (decapsulated) is dropped 'hairpin': never reflected onto the underlay. Returns true then.
   */
  private stuck(m: FrameMeta, ports: LocalPorts): boolean {
    if (ports.external === NO_PORT) {
      m.drop = 'no-destination';
      return true;
    }
    if (m.inPort === ports.external) {
      m.drop = 'hairpin';
      return true;
    }
    return false;
  }

  /**
   * A routed frame's TTL / hop limit ran out: when `answered` (the time exceeded reply is built in place) it goes
   * back to its sender, counted; else it is dropped 'ttl-exceeded'.
   */
  private expired(u8: Uint8Array, m: FrameMeta, answered: boolean): void {
    if (answered) {
      this.replied(u8, m, 'ttl-exceeded');
      this.counters.timeExceeded++;
    } else {
      m.drop = 'ttl-exceeded';
    }
  }

  /** The routed frame m goes to record rec: MACs rewritten (router MAC as source), VSID of rec, counted. */
  private routedTo(t: PolicyTable, u8: Uint8Array, m: FrameMeta, rec: LookupEntry, ports: LocalPorts): void {
    const o = m.off;
    u8[o] = rec.macHi >>> 16;
    u8[o + 1] = (rec.macHi >>> 8) & 0xff;
    u8[o + 2] = rec.macHi & 0xff;
    u8[o + 3] = rec.macLo >>> 16;
    u8[o + 4] = (rec.macLo >>> 8) & 0xff;
    u8[o + 5] = rec.macLo & 0xff;
    u8[o + 6] = t.routerMacHi >>> 16;
    u8[o + 7] = (t.routerMacHi >>> 8) & 0xff;
    u8[o + 8] = t.routerMacHi & 0xff;
    u8[o + 9] = t.routerMacLo >>> 16;
    u8[o + 10] = (t.routerMacLo >>> 8) & 0xff;
    u8[o + 11] = t.routerMacLo & 0xff;
    m.sentDstMac = m.dstMac;
    m.sentSrcMac = m.srcMac;
    m.dstMac = rec.mac;
    m.srcMac = t.routerMac;
    m.vsid = rec.vsid;
    this.counters.routed++;
    if (!rec.local) {
      m.dest.only(ports.external);
      return;
    }
    const p = ports.find(rec.vsid, rec.mac);
    if (p !== NO_PORT) m.dest.only(p);
    else ports.floodLocal(m);
  }

  /**
   * Does frame m fit the tenant MTU of record rec's rule? If not, the sender's ACLs judge it first (aclDenied);
   * allowed, it becomes ICMP fragmentation needed back to its sender (IPv4 with DF) or is dropped
   * 'tenant-mtu-exceeded'; returns false then.
   */
  private fitsMtu(
    t: PolicyTable,
    u8: Uint8Array,
    m: FrameMeta,
    rec: LookupEntry,
    s: SubnetEntry,
    ports: LocalPorts,
  ): boolean {
    const mtu = rec.mtu;
    const gso = m.gsoType !== GSO_NONE;
    if (m.etherType === ETHERTYPE_IPV4) {
      const l3 = m.off + m.l3Off;
      const ipLen = gso ? m.hdrLen - m.l3Off + m.gsoSize : readU16(u8, l3 + 2);
      if (ipLen <= mtu) return true;
      if (this.aclDenied(u8, m, ports)) return false;
      const from = s.gateway !== -1 ? s.gateway : readU32(u8, l3 + 16);
      if (m.inPort !== NO_PORT && (u8[l3 + 6]! & 0x40) !== 0 && fragNeededInPlace(u8, m, mtu, from, t.routerMac)) {
        this.replied(u8, m, 'tenant-mtu-exceeded');
        this.counters.fragNeeded++;
        return false;
      }
      m.drop = 'tenant-mtu-exceeded';
      return false;
    }
    const l3Len = gso ? m.hdrLen - m.l3Off + m.gsoSize : m.len - m.l3Off;
    if (l3Len <= mtu) return true;
    if (this.aclDenied(u8, m, ports)) return false;
    // IPv6 is never fragmented on the way: packet too big, from the subnet's IPv6 gateway or the destination
    if (
      m.etherType === ETHERTYPE_IPV6 &&
      m.inPort !== NO_PORT &&
      packetTooBigInPlace(u8, m, mtu, s.gateway6, 0, t.routerMacHi, t.routerMacLo)
    ) {
      this.replied(u8, m, 'tenant-mtu-exceeded');
      this.counters.packetTooBig++;
      return false;
    }
    m.drop = 'tenant-mtu-exceeded';
    return false;
  }

  /**
   * Frame m will not be forwarded (over the tenant MTU, TTL expired): before the switch answers it (or drops it for
   * that), the sending port's ACLs judge it as port policy judges every frame's out direction, on the frame as it
   * left the VM (a routed frame is judged before its MACs are rewritten, as port policy would see it through
   * FrameMeta.sentSrcMac/sentDstMac), so the switch never answers for a destination the sender may not reach.
   * Denied: m.drop = the ACL's reason (counted by the switch), true. The reply, if any, is the switch's own frame
   * (trusted, as an ARP answer): the VM's inbound ACLs do not judge it, as for any frame the switch originates
   * (DESIGN §1).
   */
  private aclDenied(u8: Uint8Array, m: FrameMeta, ports: LocalPorts): boolean {
    const r = ports.sourceAcl(u8, m);
    if (r === null) return false;
    m.drop = r;
    return true;
  }

  /** Frame m became a reply to its sender in place; the original is counted as dropped for `reason`. */
  private replied(u8: Uint8Array, m: FrameMeta, reason: DropReason): void {
    m.dstMac = readMac(u8, m.off);
    m.srcMac = readMac(u8, m.off + 6);
    m.trusted = true;
    m.dest.only(m.inPort);
    this.host.countDrop(m.inPort, reason);
  }

  // ---------------------------------------------------------------------------------------------------------
  // underlay side

  needsSegmentation(b: Batch, i: number, tunnelGso: boolean): boolean {
    const t = this.t;
    if (t === null) return true;
    const m = b.meta[i]!;
    const rec = this.recordOfDst(t, b.slab, m);
    if (rec === undefined || rec.ruleIndex === RULE_ENCAP) return true;
    if (rec.ruleIndex !== RULE_VXLAN) return false;
    // A tagged underlay frame would move every offset the TAP's header gives: segment those as before.
    return !tunnelGso || rec.vlan !== 0 || innerTcpEnd(b.slab, m) < 0;
  }

  encapsulate(b: Batch, i: number, now: Millis): DropReason | null {
    const t = this.t;
    if (t === null) return 'no-lookup-record';
    const m = b.meta[i]!;
    const u8 = b.slab;
    const rec = this.recordOfDst(t, u8, m);
    if (rec === undefined || rec.local) return 'no-lookup-record';
    const hop = rec.hop;
    if (hop === null) {
      this.counters.unresolved++;
      return 'pa-unresolved';
    }
    const mac = hop.mac;
    if (mac < 0) {
      if (this.arp.wantRequest(hop.ip, now)) this.sendArpRequest(hop.ip, hop.srcPa, hop.vlan);
      this.counters.unresolved++;
      return 'pa-unresolved';
    }
    const o = this.outer;
    o.srcMac = t.uplinkMac;
    o.dstMac = mac;
    o.dstPa = rec.pa;
    switch (rec.ruleIndex) {
      case RULE_ENCAP: {
        if (rec.srcPa === 0) return 'pa-unresolved';
        o.srcPa = rec.srcPa;
        const flowId = rec.flowId >= 0 ? rec.flowId : flowHash(u8, m) & 0xff;
        this.ipId = (this.ipId + 1) & 0xffff;
        if (!encapNvgre(b, m, o, rec.vsid, flowId, this.ipId)) return 'tx-error'; // no headroom: ruled out by HEADROOM
        m.vlan = rec.vlan;
        this.counters.encapsulatedNvgre++;
        return null;
      }
      case RULE_VXLAN: {
        if (rec.srcPa === 0) return 'pa-unresolved';
        o.srcPa = rec.srcPa;
        const srcPort = 49152 + ((flowHash(u8, m) >>> 0) % 16384);
        this.ipId = (this.ipId + 1) & 0xffff;
        const gso = m.gsoType !== GSO_NONE;
        // A super-frame crosses whole (needsSegmentation said so): the kernel's segmenter gives each segment the
        // next outer IP ID, as for its own vxlan (ip_select_ident_segs), so reserve them all.
        const hl = gso ? innerTcpEnd(u8, m) : -1;
        if (gso && hl < 0) return 'gso-unsupported'; // not one needsSegmentation lets through
        const nh = m.l3Off;
        const id = this.ipId;
        if (gso) this.ipId = (this.ipId + Math.ceil((m.len - hl) / m.gsoSize) - 1) & 0xffff;
        if (!encapVxlan(b, m, o, rec.vsid, srcPort, id)) return 'tx-error';
        if (gso) {
          m.gsoType |= GSO_UDP_TUNNEL_IPV4;
          m.hdrLen = hl + VXLAN_PREPEND;
          m.outerThOff = ETH_HLEN + 20;
          m.innerNhOff = VXLAN_PREPEND + nh;
          this.counters.encapsulatedVxlanGso++;
        }
        m.vlan = rec.vlan;
        this.counters.encapsulatedVxlan++;
        return null;
      }
      default: {
        // IP rewrite: the source CA's own PA (its record must be a local rewrite record: the receiver maps PAs back)
        if (m.len < ETH_HLEN + 20 || readU16(u8, m.off + 12) !== ETHERTYPE_IPV4) return 'rewrite-unsupported';
        const sa = m.off + ETH_HLEN + 12;
        const src = rec.subnet.domain.byCa.at(u8[sa]!, (u8[sa + 1]! << 16) | (u8[sa + 2]! << 8) | u8[sa + 3]!);
        if (src === undefined || !src.local) return 'no-lookup-record';
        if (src.rule !== 'rewrite') return 'rewrite-unsupported';
        o.srcPa = src.pa;
        const r = rewriteOut(b, m, o);
        if (r !== null) return r;
        m.vlan = src.vlan;
        this.counters.rewrittenOut++;
        return null;
      }
    }
  }

  /** The record of frame m's destination MAC in its VSID (read from the frame, as two halves). */
  private recordOfDst(t: PolicyTable, u8: Uint8Array, m: FrameMeta): LookupEntry | undefined {
    const s = t.subnets.get(m.vsid);
    if (s === undefined) return undefined;
    const o = m.off;
    return s.byMac.at((u8[o]! << 16) | (u8[o + 1]! << 8) | u8[o + 2]!, (u8[o + 3]! << 16) | (u8[o + 4]! << 8) | u8[o + 5]!);
  }

  uplinkIngress(b: Batch, i: number, now: Millis): void {
    const t = this.t;
    if (t === null) return;
    const m = b.meta[i]!;
    if (m.drop !== null) return;
    const u = this.u;
    const u8 = b.slab;
    const err = parseUnderlay(u8, m, u);
    if (err !== null) {
      m.drop = err;
      return;
    }
    switch (u.kind) {
      case UNDERLAY_NVGRE:
      case UNDERLAY_VXLAN: {
        if (t.ownPas.at(u.dstIp >>> 24, u.dstIp & 0xffffff) === undefined) {
          m.drop = 'pa-not-owned';
          return;
        }
        if (!t.subnets.has(u.vsid)) {
          m.drop = 'unknown-vsid';
          return;
        }
        decapInPlace(m, u);
        m.vsid = u.vsid;
        const o = m.off;
        m.dstMac = ((u8[o]! << 16) | (u8[o + 1]! << 8) | u8[o + 2]!) * KEY_SPLIT + ((u8[o + 3]! << 16) | (u8[o + 4]! << 8) | u8[o + 5]!);
        m.srcMac = ((u8[o + 6]! << 16) | (u8[o + 7]! << 8) | u8[o + 8]!) * KEY_SPLIT + ((u8[o + 9]! << 16) | (u8[o + 10]! << 8) | u8[o + 11]!);
        if (u.kind === UNDERLAY_NVGRE) this.counters.decapsulatedNvgre++;
        else this.counters.decapsulatedVxlan++;
        return;
      }
      case UNDERLAY_ARP:
        this.underlayArp(t, u8, m, u, now);
        return;
      case UNDERLAY_IPV4:
        this.rewriteInbound(t, b, m, u);
        return;
      default:
        return; // plain underlay traffic: left alone
    }
  }

  private underlayArp(t: PolicyTable, u8: Uint8Array, m: FrameMeta, u: Underlay, now: Millis): void {
    m.consumed = true;
    if (u.arpSenderMac === t.uplinkMac || u.srcIp === 0) {
      this.counters.paArpIgnored++;
      return;
    }
    const forUs = t.ownPas.has(u.dstIp);
    if (u.srcIp === u.dstIp) {
      // gratuitous: a neighbour announcing itself (a rewrite PA that moved); one claiming our PA is ignored
      if (!forUs && t.nextHopSet.has(u.srcIp)) {
        this.learn(t, u.srcIp, u.arpSenderMac, now);
        this.counters.paArpLearned++;
      } else this.counters.paArpIgnored++;
      return;
    }
    if (u.arpOp === ARP_REQUEST && forUs) {
      this.learn(t, u.srcIp, u.arpSenderMac, now);
      if (!arpReplyInPlace(u8, m, t.uplinkMac)) return;
      m.trusted = true;
      m.dest.only(m.inPort);
      this.counters.paArpAnswered++;
      return;
    }
    // replies, and requests for other addresses: learn next hops we use, answer nothing
    if (t.nextHopSet.has(u.srcIp)) {
      this.learn(t, u.srcIp, u.arpSenderMac, now);
      this.counters.paArpLearned++;
    } else this.counters.paArpIgnored++;
  }

  /** Plain IPv4 to the PA of a local rewrite record: map PAs back to CAs. Other IPv4 is left alone. */
  private rewriteInbound(t: PolicyTable, b: Batch, m: FrameMeta, u: Underlay): void {
    const dst = t.rewriteByPa.at(u.dstIp >>> 24, u.dstIp & 0xffffff);
    if (dst === undefined || !dst.local) return;
    const src = t.rewriteByPa.at(u.srcIp >>> 24, u.srcIp & 0xffffff);
    if (src === undefined || src.local || src.subnet.domain !== dst.subnet.domain) {
      m.drop = 'no-lookup-record';
      return;
    }
    const srcMac = src.vsid === dst.vsid ? src.mac : t.routerMac;
    const r = rewriteIn(b, m, src.ca, dst.ca, srcMac, dst.mac);
    if (r !== null) {
      m.drop = r;
      return;
    }
    m.vsid = dst.vsid;
    m.vlan = 0;
    m.dstMac = dst.mac;
    m.srcMac = srcMac;
    this.counters.rewrittenIn++;
  }
}
