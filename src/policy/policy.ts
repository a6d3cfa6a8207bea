// policy/policy.ts: the built-in port policy settings a port carries (DESIGN.md §3 `policy:`), as the data path
// and the control plane share them. Guards follow Hyper-V's Set-VMNetworkAdapter (DhcpGuard, RouterGuard,
// MacAddressSpoofing, StormLimit) and 802.1p trust; private VLANs live in the port's VLAN config (pvlan.ts).
//
// Defaults keep a port without `policy` exactly as it always behaved: no guard on, any source MAC, PCP trusted.
// Unlike Hyper-V, MAC spoofing is allowed unless `macSpoofing: false` is written down: xswitch ports have never
// checked source MACs, and turning on an unrelated guard must not silently start dropping a VM's traffic.

/** A port's guard settings, every default filled in (the normalized form stores, APIs and the switch use). */
export interface PortPolicy {
  /** Drop DHCPv4/DHCPv6 server messages received from the port ('dhcp-guard'). */
  readonly dhcpGuard: boolean;
  /** Drop ICMPv6 router advertisements and redirects, ICMPv4 redirects received from the port ('router-guard'). */
  readonly routerGuard: boolean;
  /** false: frames whose source MAC is not the port's configured `mac` are dropped ('mac-spoof'). Needs `mac`. */
  readonly macSpoofing: boolean;
  /** Broadcast + multicast + unknown-unicast frames per second accepted from the port; 0 = unlimited. */
  readonly stormLimit: number;
  /** false: the 802.1p priority (PCP) of frames from the port is reset to 0. */
  readonly trustPriority: boolean;
}

export const DEFAULT_POLICY: PortPolicy = Object.freeze({
  dhcpGuard: false,
  routerGuard: false,
  macSpoofing: true,
  stormLimit: 0,
  trustPriority: true,
});

/** Highest storm limit accepted (frames per second): far above what one port can carry in userspace. */
export const STORM_LIMIT_MAX = 100_000_000;

/** Policy keys of the document that belong to other features, refused until they exist. */
export const POLICY_NOT_YET: Readonly<Record<string, string>> = {
};

export const POLICY_KEYS = ['dhcpGuard', 'routerGuard', 'macSpoofing', 'stormLimit', 'trustPriority'] as const;

export function isDefaultPolicy(p: PortPolicy): boolean {
  for (const k of POLICY_KEYS) if (p[k] !== DEFAULT_POLICY[k]) return false;
  return true;
}

/** The document form: only what differs from the defaults (so `export` reads back what was written). */
export function policyDoc(p: PortPolicy): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const k of POLICY_KEYS) if (p[k] !== DEFAULT_POLICY[k]) o[k] = p[k];
  return o;
}

/** One line for tables: "dhcpGuard routerGuard noMacSpoofing storm=1000 untrustedPcp", or "-". */
export function policyText(v: unknown): string {
  if (typeof v !== 'object' || v === null) return '-';
  const p = v as Record<string, unknown>;
  const out: string[] = [];
  if (p['dhcpGuard'] === true) out.push('dhcp-guard');
  if (p['routerGuard'] === true) out.push('router-guard');
  if (p['macSpoofing'] === false) out.push('no-mac-spoofing');
  if (typeof p['stormLimit'] === 'number' && p['stormLimit'] > 0) out.push(`storm=${p['stormLimit']}pps`);
  if (p['trustPriority'] === false) out.push('pcp-untrusted');
  // QoS (qos.ts)
  if (typeof p['maxMbps'] === 'number') out.push(`max=${p['maxMbps']}Mbps${typeof p['maxBurstKB'] === 'number' ? `/${p['maxBurstKB']}KB` : ''}`);
  if (typeof p['minWeight'] === 'number') out.push(`min-weight=${p['minWeight']}`);
  if (typeof p['minMbps'] === 'number') out.push(`min=${p['minMbps']}Mbps`);
  if (typeof p['linkMbps'] === 'number') out.push(`link=${p['linkMbps']}Mbps`);
  if (Array.isArray(p['pcpWeights'])) out.push(`pcp-weights=${p['pcpWeights'].join(':')}`);
  return out.length === 0 ? '-' : out.join(' ');
}
