// virtualization/policy-table.ts: a NetworkSpec compiled for one host's switch into numeric, indexed tables
// (records by VSID+MAC, by routing domain+CA, by rewrite PA; our PAs; provider and customer routes; tenant MTUs).

import { ipv4Mask, ipv6PrefixContains, parseIpv4Address, parseIpv4Prefix, parseIpv6Address, parseIpv6Prefix, type Ipv6Prefix } from '../wire/addresses.js';
import { parseMac } from '../wire/ethernet.js';
import { RULE_OVERHEAD, type HostNetworkInput, type LookupRule } from './model.js';

/** Dense rule codes (counter arrays, switch without strings). */
export const RULE_ENCAP = 0;
export const RULE_VXLAN = 1;
export const RULE_REWRITE = 2;
export function ruleCode(r: LookupRule): number {
  return r === 'encap' ? RULE_ENCAP : r === 'vxlan' ? RULE_VXLAN : RULE_REWRITE;
}

/** Tenant MTU overhead assumed for a VSID without remote records (NVGRE, the default rule). */
const DEFAULT_OVERHEAD = RULE_OVERHEAD.encap;

/** Keys split at 2^24 on the hot path: a MAC is two 24-bit halves, an IPv4 address its top octet and low 24 bits. */
export const KEY_SPLIT = 0x100_0000;

/**
 * Open-addressing hash map from a non-negative integer below 2^48 (a MAC, a uint32 IPv4 address) to V. The data
 * path looks keys up as two small integers (hi = key / 2^24, lo = key % 2^24) with at(hi, lo): a number of 2^30 or
 * more passed to (or returned from) a call that is not inlined becomes a heap number, and a Map keyed by such
 * numbers boxes every lookup. Built on the control path, read per frame without allocation.
 */
export class NumberMap<V> {
  private hi: Int32Array;
  private lo: Int32Array;
  private vals: (V | undefined)[];
  private used: Uint8Array;
  private mask: number;
  size = 0;

  constructor(capacity = 16) {
    const n = slotsFor(capacity);
    this.hi = new Int32Array(n);
    this.lo = new Int32Array(n);
    this.vals = new Array<V | undefined>(n).fill(undefined);
    this.used = new Uint8Array(n);
    this.mask = n - 1;
  }

  /** Lookup by the halves of key = hi * 2^24 + lo (both below 2^24). */
  at(hi: number, lo: number): V | undefined {
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    let i = h & this.mask;
    while (this.used[i] === 1) {
      if (this.lo[i] === lo && this.hi[i] === hi) return this.vals[i];
      i = (i + 1) & this.mask;
    }
    return undefined;
  }

  /** Control-path lookup by the whole key. */
  get(k: number): V | undefined {
    return this.at(Math.floor(k / KEY_SPLIT), k % KEY_SPLIT);
  }

  has(k: number): boolean {
    return this.get(k) !== undefined;
  }

  /** Insert or replace (control path). */
  set(k: number, v: V): void {
    if ((this.size + 1) * 2 > this.used.length) this.grow();
    const hi = Math.floor(k / KEY_SPLIT);
    const lo = k % KEY_SPLIT;
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    let i = h & this.mask;
    while (this.used[i] === 1) {
      if (this.lo[i] === lo && this.hi[i] === hi) {
        this.vals[i] = v;
        return;
      }
      i = (i + 1) & this.mask;
    }
    this.used[i] = 1;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.vals[i] = v;
    this.size++;
  }

  *values(): IterableIterator<V> {
    for (let i = 0; i < this.used.length; i++) if (this.used[i] === 1) yield this.vals[i]!;
  }

  private grow(): void {
    const oldHi = this.hi;
    const oldLo = this.lo;
    const oldVals = this.vals;
    const oldUsed = this.used;
    const n = oldUsed.length * 2;
    this.hi = new Int32Array(n);
    this.lo = new Int32Array(n);
    this.vals = new Array<V | undefined>(n).fill(undefined);
    this.used = new Uint8Array(n);
    this.mask = n - 1;
    this.size = 0;
    for (let i = 0; i < oldUsed.length; i++) if (oldUsed[i] === 1) this.set(oldHi[i]! * KEY_SPLIT + oldLo[i]!, oldVals[i]!);
  }
}

/** Slots of an open-addressing table for `capacity` entries: a power of two (mask), at most half full, 16 or more. */
function slotsFor(capacity: number): number {
  let n = 16;
  while (n < capacity * 2) n *= 2;
  return n;
}

/** The 32-bit word of a 16-byte address at p, as an int32 (no heap number). */
function word(u8: Uint8Array, p: number): number {
  return (u8[p]! << 24) | (u8[p + 1]! << 16) | (u8[p + 2]! << 8) | u8[p + 3]!;
}

/**
 * Open-addressing hash map from an IPv6 address to V, looked up straight from the bytes of a frame (four int32
 * words compared in place): the data path never builds a key. Built on the control path.
 */
export class Ipv6Map<V> {
  private keys: Int32Array;
  private vals: (V | undefined)[];
  private used: Uint8Array;
  private mask: number;
  size = 0;

  constructor(capacity = 16) {
    const n = slotsFor(capacity);
    this.keys = new Int32Array(n * 4);
    this.vals = new Array<V | undefined>(n).fill(undefined);
    this.used = new Uint8Array(n);
    this.mask = n - 1;
  }

  /** Lookup of the address at u8[off..off+16). */
  at(u8: Uint8Array, off: number): V | undefined {
    const w0 = word(u8, off), w1 = word(u8, off + 4), w2 = word(u8, off + 8), w3 = word(u8, off + 12);
    let h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca6b) ^ Math.imul(w3, 0xc2b2ae35), 0x27d4eb2f);
    h ^= h >>> 15;
    let i = h & this.mask;
    const k = this.keys;
    while (this.used[i] === 1) {
      const j = i * 4;
      if (k[j + 3] === w3 && k[j + 2] === w2 && k[j + 1] === w1 && k[j] === w0) return this.vals[i];
      i = (i + 1) & this.mask;
    }
    return undefined;
  }

  get(a: Uint8Array): V | undefined {
    return this.at(a, 0);
  }

  has(a: Uint8Array): boolean {
    return this.at(a, 0) !== undefined;
  }

  /** Insert or replace (control path). */
  set(a: Uint8Array, v: V): void {
    if ((this.size + 1) * 2 > this.used.length) this.grow();
    const w0 = word(a, 0), w1 = word(a, 4), w2 = word(a, 8), w3 = word(a, 12);
    let h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca6b) ^ Math.imul(w3, 0xc2b2ae35), 0x27d4eb2f);
    h ^= h >>> 15;
    let i = h & this.mask;
    const k = this.keys;
    while (this.used[i] === 1) {
      const j = i * 4;
      if (k[j + 3] === w3 && k[j + 2] === w2 && k[j + 1] === w1 && k[j] === w0) {
        this.vals[i] = v;
        return;
      }
      i = (i + 1) & this.mask;
    }
    this.used[i] = 1;
    k[i * 4] = w0;
    k[i * 4 + 1] = w1;
    k[i * 4 + 2] = w2;
    k[i * 4 + 3] = w3;
    this.vals[i] = v;
    this.size++;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const oldUsed = this.used;
    const n = oldUsed.length * 2;
    this.keys = new Int32Array(n * 4);
    this.vals = new Array<V | undefined>(n).fill(undefined);
    this.used = new Uint8Array(n);
    this.mask = n - 1;
    this.size = 0;
    const a = new Uint8Array(16);
    for (let i = 0; i < oldUsed.length; i++) {
      if (oldUsed[i] !== 1) continue;
      for (let w = 0; w < 4; w++) {
        const x = oldKeys[i * 4 + w]!;
        a[w * 4] = (x >>> 24) & 0xff;
        a[w * 4 + 1] = (x >>> 16) & 0xff;
        a[w * 4 + 2] = (x >>> 8) & 0xff;
        a[w * 4 + 3] = x & 0xff;
      }
      this.set(a, oldVals[i]!);
    }
  }
}

export class DomainEntry {
  /** CA -> record, over every subnet of the domain (CAs are unique inside one RDID). */
  readonly byCa = new NumberMap<LookupEntry>();
  /** IPv6 CA -> record, over every subnet of the domain. */
  readonly byCa6 = new Ipv6Map<LookupEntry>();
  readonly subnets: SubnetEntry[] = [];
  /** Customer routes, longest prefix first. */
  readonly routes: CustomerRouteEntry[] = [];
  /** IPv6 customer routes, longest prefix first. */
  readonly routes6: CustomerRoute6Entry[] = [];
  constructor(
    readonly index: number,
    readonly id: string,
    readonly name: string,
  ) {}
}

export class SubnetEntry {
  /** Records of this VSID by MAC (the first record wins when one VM has several CAs). */
  readonly byMac = new NumberMap<LookupEntry>();
  records = 0;
  localRecords = 0;
  /** Largest RULE_OVERHEAD over the remote records of this VSID, -1 when there are none. */
  maxRemoteOverhead = -1;
  tenantMtu = 0;
  constructor(
    readonly vsid: number,
    readonly domain: DomainEntry,
    readonly prefix: number,
    readonly mask: number,
    readonly prefixText: string,
    /** Gateway CA, -1 when none. */
    readonly gateway: number,
    readonly gatewayText: string | null,
    /** IPv6 prefix, null when the subnet has none. */
    readonly prefix6: Ipv6Prefix | null = null,
    readonly prefix6Text: string | null = null,
    /** IPv6 gateway CA (16 bytes), null when none. */
    readonly gateway6: Uint8Array | null = null,
    readonly gateway6Text: string | null = null,
  ) {}
}

export class LookupEntry {
  /** The IPv6 CA (16 bytes) of an IPv6 record (then `ca` is 0), else null. */
  ca6: Uint8Array | null = null;
  /** The MAC's halves (mac = macHi * 2^24 + macLo): written into frames without a heap number. */
  readonly macHi: number;
  readonly macLo: number;
  /** Fixed NVGRE FlowID for the record's PA (remotes[]), -1 = flow hash. */
  flowId = -1;
  /** Underlay next hop towards pa (the PA itself when on-link), 0 = unreachable. Remote records only. */
  nextHop = 0;
  /** Its shared next-hop entry (resolved MAC mirrored there), null when local or unreachable. */
  hop: NextHopEntry | null = null;
  /** Our PA the tunnel leaves from (encap/vxlan), 0 = none; for rewrite the source record's PA is used. */
  srcPa = 0;
  /** Underlay VLAN to send on (of srcPa; for a local rewrite record, of its own PA). */
  vlan = 0;
  /** Largest inner IP packet this record's rule carries: underlayMtu - RULE_OVERHEAD[rule]. */
  mtu = 0;
  constructor(
    readonly ca: number,
    readonly vsid: number,
    readonly mac: number,
    readonly pa: number,
    readonly rule: LookupRule,
    readonly ruleIndex: number,
    readonly local: boolean,
    readonly vm: string | null,
    readonly subnet: SubnetEntry,
    readonly caText: string,
    readonly macText: string,
    readonly paText: string,
  ) {
    this.macHi = Math.floor(mac / KEY_SPLIT);
    this.macLo = mac % KEY_SPLIT;
  }
}

export class OwnPa {
  /** Used by a rewrite record as its own PA (not a tunnel endpoint). */
  rewrite = false;
  constructor(
    readonly addr: number,
    readonly prefix: number,
    readonly mask: number,
    readonly vlan: number,
    readonly text: string,
  ) {}
}

export interface CustomerRouteEntry {
  readonly prefix: number;
  readonly mask: number;
  readonly length: number;
  readonly vsid: number;
  /** A CA of the domain, 0 = on-link; and its halves. */
  readonly nextHop: number;
  readonly nextHopHi: number;
  readonly nextHopLo: number;
}

export interface CustomerRoute6Entry {
  readonly prefix: Ipv6Prefix;
  readonly vsid: number;
  /** An IPv6 CA of the domain, null = on-link. */
  readonly nextHop: Uint8Array | null;
}

export interface ProviderRouteEntry {
  readonly prefix: number;
  readonly mask: number;
  readonly length: number;
  readonly nextHop: number;
}

/**
 * A next hop the layer keeps resolved, with the PA and VLAN its ARP requests leave from. `mac` mirrors the ARP
 * cache (-1 = unresolved) so that encapsulation reads a field instead of a cache lookup per frame.
 */
export class NextHopEntry {
  mac = -1;
  constructor(
    readonly ip: number,
    readonly srcPa: number,
    readonly vlan: number,
  ) {}
}

export class PolicyTable {
  readonly subnets = new Map<number, SubnetEntry>();
  readonly domains: DomainEntry[] = [];
  readonly records: LookupEntry[] = [];
  /** Rewrite records (local and remote) by their own PA. */
  readonly rewriteByPa = new NumberMap<LookupEntry>();
  readonly ownPas = new NumberMap<OwnPa>();
  readonly ownPaList: OwnPa[] = [];
  /** Longest prefix first. */
  readonly providerRoutes: ProviderRouteEntry[] = [];
  readonly remoteFlowIds = new NumberMap<number>();
  readonly nextHops: NextHopEntry[] = [];
  readonly nextHopSet = new NumberMap<NextHopEntry>();
  /** Spec entries skipped because a string did not parse (the control plane validates; this is a backstop). */
  readonly warnings: string[] = [];
  readonly routerMac: number;
  readonly routerMacHi: number;
  readonly routerMacLo: number;

  constructor(readonly input: HostNetworkInput) {
    this.routerMac = parseMac(input.network.routerMac) ?? 0x02_58_53_00_00_01;
    this.routerMacHi = Math.floor(this.routerMac / KEY_SPLIT);
    this.routerMacLo = this.routerMac % KEY_SPLIT;
  }

  get host(): string {
    return this.input.host;
  }
  get switchName(): string {
    return this.input.switchName;
  }
  get uplinkMac(): number {
    return this.input.uplinkMac;
  }
  get underlayMtu(): number {
    return this.input.underlayMtu;
  }

  /** Record of `mac` in virtual subnet `vsid` (control path; the data path uses subnet.byMac.at). */
  byVsidMac(vsid: number, mac: number): LookupEntry | undefined {
    const s = this.subnets.get(vsid);
    return s === undefined ? undefined : s.byMac.get(mac);
  }

  /** The underlay next hop towards PA `pa`: itself when inside one of our PA prefixes, else a provider route; 0 = none. */
  resolveNextHop(pa: number): number {
    const own = this.ownPaList;
    for (let i = 0; i < own.length; i++) if (((pa & own[i]!.mask) >>> 0) === own[i]!.prefix) return pa;
    const r = this.providerRoutes;
    for (let i = 0; i < r.length; i++) if (((pa & r[i]!.mask) >>> 0) === r[i]!.prefix) return r[i]!.nextHop;
    return 0;
  }

  /** Longest-prefix customer route of domain d for CA caHi * 2^24 + caLo -> the record it leads to. */
  customerRoute(d: DomainEntry, caHi: number, caLo: number): LookupEntry | undefined {
    const ca = caHi * KEY_SPLIT + caLo;
    const r = d.routes;
    for (let i = 0; i < r.length; i++) {
      const e = r[i]!;
      if (((ca & e.mask) >>> 0) !== e.prefix) continue;
      return e.nextHop === 0 ? d.byCa.at(caHi, caLo) : d.byCa.at(e.nextHopHi, e.nextHopLo);
    }
    return undefined;
  }

  /** Longest-prefix IPv6 customer route of domain d for the IPv6 CA at u8[off] -> the record it leads to. */
  customerRoute6(d: DomainEntry, u8: Uint8Array, off: number): LookupEntry | undefined {
    const r = d.routes6;
    for (let i = 0; i < r.length; i++) {
      const e = r[i]!;
      if (!ipv6PrefixContains(e.prefix, u8, off)) continue;
      return e.nextHop === null ? d.byCa6.at(u8, off) : d.byCa6.at(e.nextHop, 0);
    }
    return undefined;
  }

  /** The tunnel PA of ours a next hop is reached from: on-link with it, else the first. 0 when we have none. */
  sourcePaFor(nextHop: number): OwnPa | undefined {
    let first: OwnPa | undefined;
    let firstAny: OwnPa | undefined;
    for (const p of this.ownPaList) {
      if (firstAny === undefined) firstAny = p;
      if (p.rewrite) continue;
      if (first === undefined) first = p;
      if (((nextHop & p.mask) >>> 0) === p.prefix) return p;
    }
    return first ?? firstAny;
  }
}

/** Compile the spec for input.host / input.switchName. Never throws; unparsable entries land in warnings. */
export function compilePolicy(input: HostNetworkInput): PolicyTable {
  const t = new PolicyTable(input);
  const net = input.network;

  for (const p of net.providerAddresses) {
    if (p.host !== input.host || p.switch !== input.switchName) continue;
    const pre = parseIpv4Prefix(p.address);
    const addr = parseIpv4Address(p.address.split('/')[0] ?? '');
    if (!pre.ok || addr === null) {
      t.warnings.push(`provider address '${p.address}' skipped`);
      continue;
    }
    if (t.ownPas.has(addr)) continue;
    const own = new OwnPa(addr, pre.value.addr, pre.value.mask, p.vlan, p.address);
    t.ownPas.set(addr, own);
    t.ownPaList.push(own);
  }

  for (const r of net.providerRoutes) {
    if (r.host !== input.host) continue;
    const pre = parseIpv4Prefix(r.prefix);
    const nh = parseIpv4Address(r.nextHop);
    if (!pre.ok || nh === null) {
      t.warnings.push(`provider route '${r.prefix}' skipped`);
      continue;
    }
    t.providerRoutes.push({ prefix: pre.value.addr, mask: pre.value.mask, length: pre.value.length, nextHop: nh });
  }
  t.providerRoutes.sort((a, b) => b.length - a.length);

  for (const r of net.remotes) {
    const pa = parseIpv4Address(r.pa);
    if (pa === null) t.warnings.push(`remote '${r.pa}' skipped`);
    else t.remoteFlowIds.set(pa, r.flowId & 0xff);
  }

  const domainById = new Map<string, DomainEntry>();
  for (const rd of net.routingDomains) {
    const d = new DomainEntry(t.domains.length, rd.id, rd.name);
    t.domains.push(d);
    domainById.set(rd.id, d);
    for (const s of rd.subnets) {
      // an IPv6-only subnet has no IPv4 prefix: prefix/mask 0 there (no IPv4 record compiles into it)
      const pre = s.prefix === null ? null : parseIpv4Prefix(s.prefix);
      const gw = s.gateway === null ? -1 : parseIpv4Address(s.gateway) ?? -1;
      const p6 = s.prefix6 === undefined || s.prefix6 === null ? null : parseIpv6Prefix(s.prefix6);
      const gw6 = s.gateway6 === undefined || s.gateway6 === null ? null : parseIpv6Address(s.gateway6);
      if ((pre !== null && !pre.ok) || (p6 !== null && !p6.ok) || (pre === null && p6 === null)) {
        t.warnings.push(`subnet ${s.vsid} '${s.prefix ?? ''} ${s.prefix6 ?? ''}' skipped`);
        continue;
      }
      if (t.subnets.has(s.vsid)) {
        t.warnings.push(`subnet ${s.vsid} listed twice; first kept`);
        continue;
      }
      const e = new SubnetEntry(
        s.vsid,
        d,
        pre === null ? 0 : pre.value.addr,
        pre === null ? 0 : pre.value.mask,
        s.prefix ?? '',
        gw,
        gw === -1 ? null : s.gateway,
        p6 === null ? null : p6.value,
        p6 === null ? null : s.prefix6!,
        gw6,
        gw6 === null ? null : s.gateway6!,
      );
      d.subnets.push(e);
      t.subnets.set(s.vsid, e);
    }
  }

  // rewrite PAs are per-CA addresses, not tunnel endpoints
  for (const r of net.lookupRecords) {
    if (r.rule !== 'rewrite') continue;
    const pa = parseIpv4Address(r.pa);
    if (pa !== null) {
      const own = t.ownPas.get(pa);
      if (own !== undefined) own.rewrite = true;
    }
  }

  for (const r of net.lookupRecords) {
    const s = t.subnets.get(r.vsid);
    const v6 = r.ca.includes(':');
    const ca6 = v6 ? parseIpv6Address(r.ca) : null;
    const ca = v6 ? (ca6 === null ? null : 0) : parseIpv4Address(r.ca);
    const mac = parseMac(r.mac);
    const pa = parseIpv4Address(r.pa);
    if (s === undefined || ca === null || mac === null || pa === null || (v6 && r.rule === 'rewrite')) {
      t.warnings.push(`record ${r.vsid}/${r.ca} skipped`);
      continue;
    }
    if (ca6 !== null ? s.domain.byCa6.has(ca6) : s.domain.byCa.has(ca)) {
      t.warnings.push(`record ${r.vsid}/${r.ca}: duplicate CA in its routing domain; first kept`);
      continue;
    }
    const local = t.ownPas.has(pa);
    const e = new LookupEntry(ca, r.vsid, mac, pa, r.rule, ruleCode(r.rule), local, r.vm, s, r.ca, r.mac, r.pa);
    e.ca6 = ca6;
    e.mtu = input.underlayMtu - RULE_OVERHEAD[r.rule];
    if (local) {
      e.vlan = t.ownPas.get(pa)!.vlan;
    } else {
      e.flowId = t.remoteFlowIds.get(pa) ?? -1;
      e.nextHop = t.resolveNextHop(pa);
      const src = t.sourcePaFor(e.nextHop !== 0 ? e.nextHop : pa);
      if (src !== undefined) {
        e.srcPa = src.addr;
        e.vlan = src.vlan;
      }
      if (e.nextHop !== 0 && !t.ownPas.has(e.nextHop)) {
        let nh = t.nextHopSet.get(e.nextHop);
        if (nh === undefined) {
          nh = new NextHopEntry(e.nextHop, e.srcPa, e.vlan);
          t.nextHopSet.set(e.nextHop, nh);
          t.nextHops.push(nh);
        }
        e.hop = nh;
      }
      const ov = RULE_OVERHEAD[r.rule];
      if (ov > s.maxRemoteOverhead) s.maxRemoteOverhead = ov;
    }
    t.records.push(e);
    if (ca6 !== null) s.domain.byCa6.set(ca6, e);
    else s.domain.byCa.set(ca, e);
    if (s.byMac.get(mac) === undefined) s.byMac.set(mac, e);
    if (r.rule === 'rewrite') t.rewriteByPa.set(pa, e);
    s.records++;
    if (local) s.localRecords++;
  }

  for (const s of t.subnets.values()) {
    s.tenantMtu = input.underlayMtu - (s.maxRemoteOverhead < 0 ? DEFAULT_OVERHEAD : s.maxRemoteOverhead);
  }

  for (const r of net.customerRoutes) {
    if (r.prefix.includes(':')) {
      const d = domainById.get(r.rdid);
      const pre = parseIpv6Prefix(r.prefix);
      const nh = parseIpv6Address(r.nextHop);
      if (d === undefined || !pre.ok || nh === null) {
        t.warnings.push(`customer route ${r.rdid} '${r.prefix}' skipped`);
        continue;
      }
      d.routes6.push({ prefix: pre.value, vsid: r.vsid, nextHop: nh.every((x) => x === 0) ? null : nh });
      continue;
    }
    const d = domainById.get(r.rdid);
    const pre = parseIpv4Prefix(r.prefix);
    const nh = parseIpv4Address(r.nextHop);
    if (d === undefined || !pre.ok || nh === null) {
      t.warnings.push(`customer route ${r.rdid} '${r.prefix}' skipped`);
      continue;
    }
    d.routes.push({
      prefix: pre.value.addr,
      mask: ipv4Mask(pre.value.length),
      length: pre.value.length,
      vsid: r.vsid,
      nextHop: nh,
      nextHopHi: Math.floor(nh / KEY_SPLIT),
      nextHopLo: nh % KEY_SPLIT,
    });
  }
  for (const d of t.domains) {
    d.routes.sort((a, b) => b.length - a.length);
    d.routes6.sort((a, b) => b.prefix.length - a.prefix.length);
  }
  return t;
}
