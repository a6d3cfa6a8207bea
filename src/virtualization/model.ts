// virtualization/model.ts: the network virtualization policy (DESIGN.md §2) as the control plane validates it and
// hands it to a switch: routing domains, virtual subnets, provider addresses and routes, lookup records.

/** How a lookup record's frames cross the underlay. */
export type LookupRule = 'encap' | 'rewrite' | 'vxlan';
export const LOOKUP_RULES: readonly LookupRule[] = ['encap', 'rewrite', 'vxlan'];

export const VSID_MIN = 4096;
export const VSID_MAX = 16777214;
/** Bytes a rule costs against the underlay IP MTU (inner Ethernet included; DESIGN.md §2). */
export const RULE_OVERHEAD: Readonly<Record<LookupRule, number>> = { encap: 42, vxlan: 50, rewrite: 0 };
/** Virtual router MAC answered for every subnet gateway when the document names none. */
export const DEFAULT_ROUTER_MAC = '02:58:53:00:00:01';

/** All addresses are canonical strings: "10.0.0.5", prefixes "10.0.0.0/24", MACs "02:00:00:00:00:01". */
export interface SubnetSpec {
  readonly vsid: number;
  /** IPv4 prefix, or null for an IPv6-only subnet (then prefix6 is set). */
  readonly prefix: string | null;
  /** The subnet's gateway CA (answered by the distributed router with the router MAC), or null. */
  readonly gateway: string | null;
  /** IPv6 prefix ("fd00:1::/64", canonical), absent/null when the subnet has none. */
  readonly prefix6?: string | null;
  /** IPv6 gateway CA (answered in neighbor discovery with the router MAC, router flag set), or null. */
  readonly gateway6?: string | null;
}

export interface RoutingDomainSpec {
  /** GUID in canonical form: "{11111111-2222-3333-4444-000000000000}" (braces, lower case). */
  readonly id: string;
  readonly name: string;
  readonly subnets: readonly SubnetSpec[];
}

export interface ProviderAddressSpec {
  /** Host id (the document's `host`) whose switch owns this PA and answers ARP for it. */
  readonly host: string;
  readonly switch: string;
  /** "192.0.2.1/24": the address and its on-link underlay prefix. */
  readonly address: string;
  /** Underlay VLAN of this PA (0 = untagged). */
  readonly vlan: number;
}

export interface ProviderRouteSpec {
  readonly host: string;
  readonly prefix: string;
  readonly nextHop: string;
}

export interface LookupRecordSpec {
  /** IPv4 or IPv6 CA (a VM with both has two records with the same MAC and VSID; IPv6 only with encap/vxlan). */
  readonly ca: string;
  readonly vsid: number;
  readonly mac: string;
  readonly pa: string;
  readonly rule: LookupRule;
  /** The VM (port name on the host owning `pa`), or null. */
  readonly vm: string | null;
}

export interface CustomerRouteSpec {
  readonly rdid: string;
  readonly vsid: number;
  /** IPv4 or IPv6 prefix. */
  readonly prefix: string;
  /** A CA in the routing domain of the prefix's family, or "0.0.0.0" / "::" for on-link. */
  readonly nextHop: string;
}

/** A remote PA that needs a fixed NVGRE FlowID (a Linux gretap matches the exact 32-bit key). */
export interface RemoteSpec {
  readonly pa: string;
  readonly flowId: number;
}

export interface NetworkSpec {
  readonly routerMac: string;
  readonly providerAddresses: readonly ProviderAddressSpec[];
  readonly providerRoutes: readonly ProviderRouteSpec[];
  readonly remotes: readonly RemoteSpec[];
  readonly routingDomains: readonly RoutingDomainSpec[];
  readonly lookupRecords: readonly LookupRecordSpec[];
  readonly customerRoutes: readonly CustomerRouteSpec[];
}

export const EMPTY_NETWORK: NetworkSpec = {
  routerMac: DEFAULT_ROUTER_MAC,
  providerAddresses: [],
  providerRoutes: [],
  remotes: [],
  routingDomains: [],
  lookupRecords: [],
  customerRoutes: [],
};

/** What one switch's virtualization layer is given (control plane -> Switch.setVirtualization). */
export interface HostNetworkInput {
  /** This host's id: PAs and provider routes with this host are ours. */
  readonly host: string;
  readonly switchName: string;
  /** MAC of the uplink interface: source of underlay frames, answered in ARP for our PAs. */
  readonly uplinkMac: number;
  /** IP MTU of the underlay (the uplink interface's MTU). */
  readonly underlayMtu: number;
  readonly network: NetworkSpec;
}
