// policy/guards.ts: the per-port guards of the switch edge (Hyper-V's DhcpGuard, RouterGuard, MacAddressSpoofing,
// StormLimit, and 802.1p trust), compiled per port from its PortConfig and applied to a batch.
//
// Where: after the ingress extensions, before forwarding (Switch.process). DESIGN.md puts built-in policies between
// ingress and egress, so capture and filter extensions still see a rogue DHCP offer or a spoofed frame (an IDS
// extension wants exactly those); running the guards before forwarding, rather than after it with the per-
// destination policy, keeps a spoofed source MAC out of the MAC table and spares the forwarder frames that die
// anyway. Private VLANs need the destinations, so they run after forwarding (pvlan.ts).
//
// Hot path: no allocation, no closures, no exceptions; one module-level IPv6 extension-header walker.

import type { DropReason } from '../dataplane/drop.js';
import type { Batch, FrameMeta } from '../dataplane/frame.js';
import { learningDomain, type MacTable } from '../dataplane/mac-table.js';
import type { PortConfig } from '../dataplane/switch-api.js';
import { NO_PORT, type Millis } from '../dataplane/types.js';
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../wire/ethernet.js';
import { ICMP_REDIRECT } from '../wire/icmp.js';
import { ICMPV6_REDIRECT, ICMPV6_ROUTER_ADVERTISEMENT } from '../wire/icmpv6.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_UDP } from '../wire/ipv4.js';
import { Ipv6ExtWalker } from '../wire/ipv6.js';
import { UDP_PORT_DHCP_SERVER } from '../wire/udp.js';
import { DEFAULT_POLICY, type PortPolicy } from './policy.js';
import { compilePrivateVlan, type PrivateVlan } from './pvlan.js';
import { StormBucket } from './storm.js';

export const DHCP6_SERVER_PORT = 547;
export const DHCP6_CLIENT_PORT = 546;
/** BOOTP op of a server message. */
const BOOTREQUEST = 1;
/** DHCPv6 messages only a server (or a relay towards a client) sends: ADVERTISE, REPLY, RECONFIGURE, RELAY-REPL. */
function isDhcp6ServerMessage(type: number): boolean {
  return type === 2 || type === 7 || type === 10 || type === 13;
}

/** A port's policy compiled for the data path. Rebuilt on every port change (so a new storm limit starts full). */
export class PortGuards {
  readonly dhcpGuard: boolean;
  readonly routerGuard: boolean;
  /** Source MAC check: on, and the port MAC as int halves (as forwarding reads MACs). */
  readonly macCheck: boolean;
  readonly macHi: number;
  readonly macLo: number;
  readonly resetPcp: boolean;
  readonly storm: StormBucket | null;
  /** Anything for applyIngressGuards to do. */
  readonly ingress: boolean;
  readonly pvlan: PrivateVlan | null;

  constructor(readonly policy: PortPolicy, mac: number | null, pvlan: PrivateVlan | null) {
    this.dhcpGuard = policy.dhcpGuard;
    this.routerGuard = policy.routerGuard;
    // validation refuses macSpoofing: false without a mac; a PortConfig built by hand without one checks nothing
    this.macCheck = !policy.macSpoofing && mac !== null;
    this.macHi = mac === null ? 0 : Math.floor(mac / 0x1_0000_0000) & 0xffff;
    this.macLo = mac === null ? 0 : mac % 0x1_0000_0000 | 0;
    this.resetPcp = !policy.trustPriority;
    this.storm = policy.stormLimit > 0 ? new StormBucket(policy.stormLimit) : null;
    this.ingress = this.dhcpGuard || this.routerGuard || this.macCheck || this.resetPcp || this.storm !== null;
    this.pvlan = pvlan;
  }
}

/** The compiled guards of a port, or null when it has neither policy nor private VLAN (the common case). */
export function compileGuards(cfg: PortConfig): PortGuards | null {
  const pv = cfg.vlan.mode === 'private' ? compilePrivateVlan(cfg.vlan) : null;
  const policy = cfg.policy ?? DEFAULT_POLICY;
  const g = new PortGuards(policy, cfg.mac, pv);
  return g.ingress || pv !== null ? g : null;
}

/** What applyIngressGuards needs of a port (PortState has it). */
export interface GuardedPort {
  readonly guards: PortGuards | null;
}
/** Ports by id (PortTable has it). */
export interface GuardPorts {
  get(id: number): GuardedPort | undefined;
}

const walker = new Ipv6ExtWalker();

/**
 * For frames [lo, hi) not dropped, not trusted and not consumed: apply the guards of the port they came from
 * (MAC spoofing, 802.1p trust, DHCP guard, router guard, then storm control, so frames a guard drops spend no
 * storm budget). `macs` is the switch's MAC table, read (never written) to tell unknown unicast; `builtIn` says
 * whether built-in forwarding decides (with a forwarding extension bound the table says nothing about unicast,
 * and only broadcast/multicast count).
 */
export function applyIngressGuards(b: Batch, lo: number, hi: number, ports: GuardPorts, macs: MacTable, builtIn: boolean, now: Millis): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null || m.trusted || m.consumed || m.inPort === NO_PORT) continue;
    const g = ports.get(m.inPort)?.guards;
    if (g === undefined || g === null || !g.ingress) continue;
    const r = guardFrame(b.slab, m, g, macs, builtIn, now);
    if (r !== null) m.drop = r;
  }
}

/** The guards' verdict on one frame (null = pass). Also resets the PCP of an untrusted port. */
export function guardFrame(u8: Uint8Array, m: FrameMeta, g: PortGuards, macs: MacTable | null, builtIn: boolean, now: Millis): DropReason | null {
  const o = m.off;
  if (m.len < ETH_HLEN) return null; // classification dropped it already; never read past the frame
  // filters may have rewritten the bytes: read the MACs and EtherType again (as int halves: no boxed doubles)
  if (g.macCheck) {
    const srcHi = (u8[o + 6]! << 8) | u8[o + 7]!;
    const srcLo = (u8[o + 8]! << 24) | (u8[o + 9]! << 16) | (u8[o + 10]! << 8) | u8[o + 11]!;
    if (srcHi !== g.macHi || srcLo !== g.macLo) return 'mac-spoof';
  }
  if (g.resetPcp) m.pcp = 0;
  if (g.dhcpGuard || g.routerGuard) {
    const r = l3Guards(u8, o, m.len, g);
    if (r !== null) return r;
  }
  if (g.storm !== null) {
    const dstHi = (u8[o]! << 8) | u8[o + 1]!;
    let counts = (dstHi & 0x100) !== 0; // broadcast or multicast
    if (!counts && builtIn && macs !== null && m.vsid === 0) {
      // unknown unicast (would be flooded); a VSID port's unicast follows the policy table, never a flood
      const dstLo = (u8[o + 2]! << 24) | (u8[o + 3]! << 16) | (u8[o + 4]! << 8) | u8[o + 5]!;
      counts = macs.lookup(learningDomain(m.vlan, m.vsid), dstHi, dstLo, now) === NO_PORT;
    }
    if (counts && !g.storm.take(now)) return 'storm-control';
  }
  return null;
}

/** DHCP guard and router guard over the L3/L4 headers of an untagged frame at `o` (length `len`). */
function l3Guards(u8: Uint8Array, o: number, len: number, g: PortGuards): DropReason | null {
  const type = (u8[o + 12]! << 8) | u8[o + 13]!;
  const l3 = o + ETH_HLEN;
  const end = o + len;
  if (type === ETHERTYPE_IPV4) {
    if (l3 + 20 > end) return null;
    const ihl = (u8[l3]! & 0x0f) * 4;
    if (ihl < 20) return null;
    // a later fragment carries no L4 header: nothing to recognise (the first fragment was judged)
    if ((((u8[l3 + 6]! & 0x1f) << 8) | u8[l3 + 7]!) !== 0) return null;
    const proto = u8[l3 + 9]!;
    const l4 = l3 + ihl;
    if (proto === IPPROTO_UDP && g.dhcpGuard) {
      if (l4 + 8 > end) return null;
      const sport = (u8[l4]! << 8) | u8[l4 + 1]!;
      if (sport !== UDP_PORT_DHCP_SERVER) return null;
      // from the server port and not a BOOTREQUEST (a relay forwarding a client's request is op 1): a server message;
      // a payload too short to say is treated as one (it can only be a malformed offer)
      const op = l4 + 8 < end ? u8[l4 + 8]! : 0;
      return op === BOOTREQUEST ? null : 'dhcp-guard';
    }
    if (proto === IPPROTO_ICMP && g.routerGuard) {
      if (l4 + 1 > end) return null;
      return u8[l4] === ICMP_REDIRECT ? 'router-guard' : null;
    }
    return null;
  }
  if (type === ETHERTYPE_IPV6) {
    if (walker.walk(u8, l3, end - l3) !== null || walker.laterFragment) return null;
    const proto = walker.protocol;
    const l4 = walker.offset;
    const l4end = l3 + walker.end;
    if (proto === IPPROTO_UDP && g.dhcpGuard) {
      if (l4 + 8 > l4end) return null;
      const sport = (u8[l4]! << 8) | u8[l4 + 1]!;
      if (sport !== DHCP6_SERVER_PORT) return null;
      const dport = (u8[l4 + 2]! << 8) | u8[l4 + 3]!;
      if (dport === DHCP6_CLIENT_PORT) return 'dhcp-guard';
      return l4 + 8 < l4end && isDhcp6ServerMessage(u8[l4 + 8]!) ? 'dhcp-guard' : null;
    }
    if (proto === IPPROTO_ICMPV6 && g.routerGuard) {
      if (l4 + 1 > l4end) return null;
      const t = u8[l4]!;
      return t === ICMPV6_ROUTER_ADVERTISEMENT || t === ICMPV6_REDIRECT ? 'router-guard' : null;
    }
  }
  return null;
}
