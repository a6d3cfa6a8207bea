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
// A frame left with no destination is dropped as 'pvlan-blocked'. Trunks carry the primary's tag for every frame of
// the private VLAN; a frame arriving on a trunk tagged with a secondary VLAN is not mapped to the primary.

import type { Batch } from '../dataplane/frame.js';

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
}
export interface PvlanPorts {
  get(id: number): PvlanPort | undefined;
}

/**
 * For frames [lo, hi) not dropped and not trusted, from a private VLAN port: exclude the destinations the private
 * VLAN forbids; a frame left without a live destination is dropped as 'pvlan-blocked'. Run after the switch's own
 * per-destination policy (so a frame with no destination for another reason keeps that reason).
 */
export function applyPrivateVlans(b: Batch, lo: number, hi: number, ports: PvlanPorts): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null || m.trusted) continue;
    const sg = ports.get(m.inPort)?.guards;
    const s = sg === undefined || sg === null ? null : sg.pvlan;
    if (s === null) continue;
    const d = m.dest;
    let live = 0;
    let blocked = 0;
    for (let k = 0; k < d.count; k++) {
      if (d.excluded(k)) continue;
      const dg = ports.get(d.ports[k]!)?.guards;
      const dp = dg === undefined || dg === null ? null : dg.pvlan;
      if (pvlanAllows(s, dp)) {
        live++;
      } else {
        d.exclude(k);
        blocked++;
      }
    }
    if (live === 0 && blocked > 0) m.drop = 'pvlan-blocked';
  }
}
