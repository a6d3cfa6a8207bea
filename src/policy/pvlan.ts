// policy/pvlan.ts: private VLANs (isolated, community, promiscuous ports on a primary/secondary VLAN pair, as
// Hyper-V's Set-VMNetworkAdapterVlan -Isolated/-Community/-Promiscuous and RFC 5517).
//
// Model: every port of a private VLAN is classified into its primary VLAN (PortVlan treats it as an access port of
// the primary), so learning and flooding happen in one domain (shared VLAN learning). The secondary VLAN and the
// type then decide, per destination, after forwarding (the destinations are known only then):
//   - from an isolated port: only promiscuous ports (and ports outside the private VLAN scheme: trunks, the uplink,
//     plain access ports of the primary, which lead to the promiscuous side of the network);
//   - from a community port: promiscuous ports and ports of the same community (same secondary);
//   - from a promiscuous port: everyone, or only the secondaries in its list when it has one.
// A frame left with no destination is dropped as 'pvlan-blocked'.
//
// Trunks (RFC 5517 §3): a frame arriving on a trunk (any port outside the private VLAN scheme) tagged with a
// secondary VLAN that some local port uses is moved into the primary and treated as coming from an isolated /
// community port of that secondary (applyPvlanIngress, before forwarding); a primary-tagged frame is promiscuous
// traffic. On the way out, a frame of an isolated / community port is tagged with its secondary when every trunk it
// goes to carries that secondary, and with the primary otherwise: a trunk that carries only the primary is a
// promiscuous trunk (towards a router), which sees the private VLAN as its primary. One frame has one tag, so a frame
// flooded to both kinds of trunk at once gets the primary on both.

import type { Batch } from '../dataplane/frame.js';
import { VLAN_MODE_ACCESS } from '../dataplane/vlan.js';

export type PrivateVlanType = 'isolated' | 'community' | 'promiscuous';
export const PRIVATE_VLAN_TYPES: readonly PrivateVlanType[] = ['isolated', 'community', 'promiscuous'];

/** A port's private VLAN, as PortConfig.vlan carries it. */
export interface PrivateVlanConfig {
  readonly mode: 'private';
  readonly primary: number;
  readonly type: PrivateVlanType;
  /** isolated / community: exactly the port's secondary VLAN; promiscuous: the secondaries it serves ([] = all). */
  readonly secondary: readonly number[];
}

export const PVLAN_ISOLATED = 1;
export const PVLAN_COMMUNITY = 2;
export const PVLAN_PROMISCUOUS = 3;

export class PrivateVlan {
  readonly kind: number;
  readonly primary: number;
  /** The port's secondary (isolated / community), 0 for promiscuous. */
  readonly secondary: number;
  /** Promiscuous with a list: one byte per secondary VID it serves; null = all. */
  readonly serves: Uint8Array | null;

  constructor(cfg: PrivateVlanConfig) {
    this.kind = cfg.type === 'isolated' ? PVLAN_ISOLATED : cfg.type === 'community' ? PVLAN_COMMUNITY : PVLAN_PROMISCUOUS;
    this.primary = cfg.primary & 0xfff;
    this.secondary = this.kind === PVLAN_PROMISCUOUS ? 0 : (cfg.secondary[0] ?? 0) & 0xfff;
    if (this.kind === PVLAN_PROMISCUOUS && cfg.secondary.length > 0) {
      this.serves = new Uint8Array(4096);
      for (const v of cfg.secondary) this.serves[v & 0xfff] = 1;
    } else {
      this.serves = null;
    }
  }
}

export function compilePrivateVlan(cfg: PrivateVlanConfig): PrivateVlan {
  return new PrivateVlan(cfg);
}

/** May a frame from private VLAN port `s` (null: not in a private VLAN) go to port `d`? */
export function pvlanAllows(s: PrivateVlan | null, d: PrivateVlan | null): boolean {
  if (s === null || d === null) return true;
  if (s.primary !== d.primary) return true; // different private VLANs never meet in one domain anyway
  switch (s.kind) {
    case PVLAN_ISOLATED:
      return d.kind === PVLAN_PROMISCUOUS && (d.serves === null || d.serves[s.secondary] === 1);
    case PVLAN_COMMUNITY:
      if (d.kind === PVLAN_PROMISCUOUS) return d.serves === null || d.serves[s.secondary] === 1;
      return d.kind === PVLAN_COMMUNITY && d.secondary === s.secondary;
    default:
      // promiscuous: to any port of the secondaries it serves, and to every other promiscuous port
      return d.kind === PVLAN_PROMISCUOUS || s.serves === null || s.serves[d.secondary] === 1;
  }
}

export interface PvlanPort {
  readonly guards: { readonly pvlan: PrivateVlan | null } | null;
  /** The port's compiled VLAN mode and membership (PortVlan). */
  readonly vlan: { readonly mode: number; member(vlan: number): boolean };
}
export interface PvlanPorts {
  get(id: number): PvlanPort | undefined;
  /** Live ports; a new array after every change (PortTable rebuilds it), which is what invalidates the domain. */
  readonly list: readonly PvlanPort[];
}

/** The secondaries local ports use, for mapping trunk tags: rebuilt when the port list changes (control path). */
class PvlanDomain {
  /** Per secondary VID: a PrivateVlan standing for "a port of that secondary behind a trunk", or null. */
  readonly remote: (PrivateVlan | null)[] = new Array<PrivateVlan | null>(4096).fill(null);
  any = false;
  constructor(list: readonly PvlanPort[]) {
    for (const p of list) {
      const pv = p.guards?.pvlan ?? null;
      if (pv === null) continue;
      this.any = true;
      if (pv.kind !== PVLAN_PROMISCUOUS && this.remote[pv.secondary] === null) {
        this.remote[pv.secondary] = new PrivateVlan({ mode: 'private', primary: pv.primary, type: pv.kind === PVLAN_ISOLATED ? 'isolated' : 'community', secondary: [pv.secondary] });
      }
    }
  }
}
const domains = new WeakMap<readonly PvlanPort[], PvlanDomain>();
function domainOf(ports: PvlanPorts): PvlanDomain {
  let d = domains.get(ports.list);
  if (d === undefined) {
    d = new PvlanDomain(ports.list);
    domains.set(ports.list, d);
  }
  return d;
}

/**
 * Secondary VLAN a frame came in with on a trunk, by frame index, between applyPvlanIngress and applyPrivateVlans
 * of the same Switch.process call (synchronous: no other batch runs in between). Grows with the largest batch.
 */
let remoteSecondary = new Uint16Array(1024);

/**
 * Before forwarding: frames [lo, hi) from ports outside the private VLAN scheme tagged with a local secondary VLAN
 * move into its primary (so they are learned and forwarded there) and remember their secondary.
 */
export function applyPvlanIngress(b: Batch, lo: number, hi: number, ports: PvlanPorts): void {
  const dom = domainOf(ports);
  if (!dom.any) return;
  if (remoteSecondary.length < b.capacity) remoteSecondary = new Uint16Array(b.capacity);
  const rs = remoteSecondary;
  for (let i = lo; i < hi; i++) {
    rs[i] = 0;
    const m = b.meta[i]!;
    if (m.drop !== null || m.trusted || m.vlan === 0) continue;
    const r = dom.remote[m.vlan]!;
    if (r === null) continue;
    const p = ports.get(m.inPort);
    if (p === undefined || (p.guards !== null && p.guards.pvlan !== null)) continue;
    rs[i] = m.vlan;
    m.vlan = r.primary;
  }
}

/**
 * For frames [lo, hi) not dropped and not trusted, from a private VLAN port: exclude the destinations the private
 * VLAN forbids; a frame left without a live destination is dropped as 'pvlan-blocked'. Run after the switch's own
 * per-destination policy (so a frame with no destination for another reason keeps that reason).
 */
export function applyPrivateVlans(b: Batch, lo: number, hi: number, ports: PvlanPorts): void {
  const dom = domainOf(ports);
  if (!dom.any) return;
  const rs = remoteSecondary;
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null || m.trusted) continue;
    const sg = ports.get(m.inPort)?.guards;
    let s = sg === undefined || sg === null ? null : sg.pvlan;
    if (s === null && i < rs.length && rs[i] !== 0) s = dom.remote[rs[i]!]!;
    if (s === null) continue;
    const d = m.dest;
    let live = 0;
    let blocked = 0;
    // a trunk without the secondary among the live destinations: the frame keeps the primary's tag
    let promiscuousTrunk = false;
    for (let k = 0; k < d.count; k++) {
      if (d.excluded(k)) continue;
      const dport = ports.get(d.ports[k]!);
      const dg = dport?.guards;
      const dp = dg === undefined || dg === null ? null : dg.pvlan;
      if (pvlanAllows(s, dp)) {
        live++;
        if (dp === null && dport !== undefined && dport.vlan.mode !== VLAN_MODE_ACCESS && !dport.vlan.member(s.secondary)) promiscuousTrunk = true;
      } else {
        d.exclude(k);
        blocked++;
      }
    }
    if (live === 0 && blocked > 0) m.drop = 'pvlan-blocked';
    else if (s.kind !== PVLAN_PROMISCUOUS && !promiscuousTrunk) m.vlan = s.secondary;
  }
}
