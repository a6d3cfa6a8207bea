// virtualization/virtualization.test-kit.ts: a two-host, two-tenant NetworkSpec (red and blue with the SAME CAs and
// MACs) shared by the virtualization tests, and a one-layer rig (ports and host services as test doubles of the
// api.ts interfaces) for the tests that drive Virtualization alone. Not used by the product.

import type { DropReason } from '../dataplane/drop.js';
import { Batch, HEADROOM, slotSizeFor, type FrameMeta } from '../dataplane/frame.js';
import { RecordingLogger } from '../dataplane/switch.test-kit.js';
import { ManualClock, NO_PORT, type PortId } from '../dataplane/types.js';
import { readU16 } from '../wire/byte-order.js';
import { readMac } from '../wire/ethernet.js';
import type { LocalPorts, VirtualizationHost } from './api.js';
import { Virtualization } from './layer.js';
import type { HostNetworkInput, LookupRecordSpec, LookupRule, NetworkSpec, ProviderAddressSpec } from './model.js';

export const RED = '{11111111-2222-3333-4444-000000000001}';
export const BLUE = '{11111111-2222-3333-4444-000000000002}';
export const ROUTER_MAC = 0x02_58_53_00_00_01;
export const UPLINK_A = 0x02_aa_00_00_00_01;
export const UPLINK_B = 0x02_bb_00_00_00_02;
export const GATEWAY_MAC = 0x02_ee_00_00_00_fe;
export const PA_A = '192.0.2.1';
export const PA_B = '192.0.2.2';

/** VM MACs, the same in both tenants. */
export const MAC5 = 0x02_00_00_00_00_05; // 10.0.0.5, subnet 1, host A
export const MAC6 = 0x02_00_00_00_00_06; // 10.0.0.6, subnet 1, host B
export const MAC7 = 0x02_00_00_00_00_07; // 10.0.1.7, subnet 2, host B
export const MAC8 = 0x02_00_00_00_00_08; // 10.0.1.8, subnet 2, host A

export interface Vm {
  readonly name: string;
  readonly ca: string;
  readonly mac: number;
  readonly macText: string;
  /** 1 = first subnet (5001 / 6001), 2 = second (5002 / 6002). */
  readonly subnet: 1 | 2;
  readonly host: 'host-a' | 'host-b';
  /** Last octet of its rewrite PA (red 192.0.2.1x, blue 192.0.2.2x). */
  readonly rewriteOctet: number;
}

export const VMS: readonly Vm[] = [
  { name: 'vm5', ca: '10.0.0.5', mac: MAC5, macText: '02:00:00:00:00:05', subnet: 1, host: 'host-a', rewriteOctet: 5 },
  { name: 'vm6', ca: '10.0.0.6', mac: MAC6, macText: '02:00:00:00:00:06', subnet: 1, host: 'host-b', rewriteOctet: 6 },
  { name: 'vm7', ca: '10.0.1.7', mac: MAC7, macText: '02:00:00:00:00:07', subnet: 2, host: 'host-b', rewriteOctet: 7 },
  { name: 'vm8', ca: '10.0.1.8', mac: MAC8, macText: '02:00:00:00:00:08', subnet: 2, host: 'host-a', rewriteOctet: 8 },
];

export type Tenant = 'red' | 'blue';
export function vsidOf(tenant: Tenant, subnet: 1 | 2): number {
  return (tenant === 'red' ? 5000 : 6000) + subnet;
}
export function rewritePa(tenant: Tenant, vm: Vm): string {
  return `192.0.2.${(tenant === 'red' ? 10 : 20) + vm.rewriteOctet}`;
}

export interface SpecOptions {
  /** Rule per tenant (default encap for both). */
  readonly rule?: LookupRule | { red: LookupRule; blue: LookupRule };
  /** Host of each VM by name (live migration); default VMS[].host. */
  readonly hostOf?: Readonly<Record<string, 'host-a' | 'host-b'>>;
  readonly remotes?: NetworkSpec['remotes'];
  readonly providerRoutes?: NetworkSpec['providerRoutes'];
  readonly customerRoutes?: NetworkSpec['customerRoutes'];
  readonly extraRecords?: readonly LookupRecordSpec[];
  readonly paVlan?: number;
  /** Dual stack: every subnet gets prefix6 fd00:<subnet>::/64 (gateway ::1) and every VM an IPv6 record (ca6Of). */
  readonly ipv6?: boolean;
}

/** A VM's IPv6 CA in the dual-stack spec: fd00:<subnet>::<last octet of its IPv4 CA>. */
export function ca6Of(vm: Vm): string {
  return `fd00:${vm.subnet}::${vm.rewriteOctet}`;
}
export const GW6 = { 1: 'fd00:1::1', 2: 'fd00:2::1' } as const;

export function spec(o: SpecOptions = {}): NetworkSpec {
  const ruleOf = (t: Tenant): LookupRule => (o.rule === undefined ? 'encap' : typeof o.rule === 'string' ? o.rule : o.rule[t]);
  const hostOf = (vm: Vm): 'host-a' | 'host-b' => o.hostOf?.[vm.name] ?? vm.host;
  const vlan = o.paVlan ?? 0;
  const pas: ProviderAddressSpec[] = [
    { host: 'host-a', switch: 'sw0', address: `${PA_A}/24`, vlan },
    { host: 'host-b', switch: 'sw0', address: `${PA_B}/24`, vlan },
  ];
  const records: LookupRecordSpec[] = [];
  for (const t of ['red', 'blue'] as const) {
    for (const vm of VMS) {
      const rule = ruleOf(t);
      const pa = rule === 'rewrite' ? rewritePa(t, vm) : hostOf(vm) === 'host-a' ? PA_A : PA_B;
      if (rule === 'rewrite') pas.push({ host: hostOf(vm), switch: 'sw0', address: `${pa}/24`, vlan });
      records.push({ ca: vm.ca, vsid: vsidOf(t, vm.subnet), mac: vm.macText, pa, rule, vm: `${t}-${vm.name}` });
      if (o.ipv6 === true && rule !== 'rewrite') records.push({ ca: ca6Of(vm), vsid: vsidOf(t, vm.subnet), mac: vm.macText, pa, rule, vm: `${t}-${vm.name}` });
    }
  }
  records.push(...(o.extraRecords ?? []));
  const v6 = (sub: 1 | 2): { prefix6?: string; gateway6?: string } => (o.ipv6 === true ? { prefix6: `fd00:${sub}::/64`, gateway6: GW6[sub] } : {});
  return {
    routerMac: '02:58:53:00:00:01',
    providerAddresses: pas,
    providerRoutes: o.providerRoutes ?? [],
    remotes: o.remotes ?? [],
    routingDomains: [
      {
        id: RED,
        name: 'red',
        subnets: [
          { vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1', ...v6(1) },
          { vsid: 5002, prefix: '10.0.1.0/24', gateway: '10.0.1.1', ...v6(2) },
        ],
      },
      {
        id: BLUE,
        name: 'blue',
        subnets: [
          { vsid: 6001, prefix: '10.0.0.0/24', gateway: '10.0.0.1', ...v6(1) },
          { vsid: 6002, prefix: '10.0.1.0/24', gateway: '10.0.1.1', ...v6(2) },
        ],
      },
    ],
    lookupRecords: records,
    customerRoutes: o.customerRoutes ?? [],
  };
}

export function hostInput(host: 'host-a' | 'host-b', network: NetworkSpec, underlayMtu = 1500): HostNetworkInput {
  return { host, switchName: 'sw0', uplinkMac: host === 'host-a' ? UPLINK_A : UPLINK_B, underlayMtu, network };
}

export const EXT = 100 as PortId;
/** A VM on host A in red 5001 that has no lookup record (learned by the switch only). */
export const MAC_NOREC = 0x02_00_00_00_00_aa;

export class TestPorts implements LocalPorts {
  readonly external: PortId = EXT;
  private readonly byKey = new Map<string, PortId>();
  private readonly members = new Map<number, PortId[]>();
  add(port: number, vsid: number, mac: number): this {
    this.byKey.set(`${vsid}/${mac}`, port as PortId);
    const l = this.members.get(vsid) ?? [];
    l.push(port as PortId);
    this.members.set(vsid, l);
    return this;
  }
  find(vsid: number, mac: number): PortId {
    return this.byKey.get(`${vsid}/${mac}`) ?? NO_PORT;
  }
  floodLocal(m: FrameMeta): void {
    for (const p of this.members.get(m.vsid) ?? []) if (p !== m.inPort) m.dest.add(p);
  }
  /** What sourceAcl answers, and the frames it was asked about (source / destination MAC as it saw them). */
  aclVerdict: DropReason | null = null;
  readonly aclAsked: { srcMac: number; dstMac: number }[] = [];
  sourceAcl(_slab: Uint8Array, m: FrameMeta): DropReason | null {
    this.aclAsked.push({ srcMac: m.srcMac, dstMac: m.dstMac });
    return this.aclVerdict;
  }
}

export class TestHost implements VirtualizationHost {
  readonly drops: { port: PortId; reason: DropReason }[] = [];
  readonly uplink: Uint8Array[] = [];
  readonly originated: { bytes: Uint8Array; vsid: number }[] = [];
  countDrop(port: PortId, reason: DropReason): void {
    this.drops.push({ port, reason });
  }
  sendUplink(bytes: Uint8Array): boolean {
    this.uplink.push(bytes.slice());
    return true;
  }
  originate(bytes: Uint8Array, vsid: number): boolean {
    this.originated.push({ bytes: bytes.slice(), vsid });
    return true;
  }
}

export interface Rig {
  v: Virtualization;
  host: TestHost;
  ports: TestPorts;
  clock: ManualClock;
  b: Batch;
}

/**
 * One layer with the ports of `host`. Host A: red vm5 1, red vm8 2, blue vm5 3, blue vm8 4, red 5001 record-less
 * VM 5. Host B: vm6 1, vm7 2, blue 3, 4. The batch has `slots` slots of `slotBytes`.
 */
export function rig(host: 'host-a' | 'host-b', s: NetworkSpec = spec(), mtu = 1500, slots = 4, slotBytes = 66000): Rig {
  const clock = new ManualClock(10_000);
  const h = new TestHost();
  const v = new Virtualization({ clock, log: new RecordingLogger(), host: h });
  v.setPolicy(hostInput(host, s, mtu));
  const ports = new TestPorts();
  if (host === 'host-a') ports.add(1, 5001, MAC5).add(2, 5002, MAC8).add(3, 6001, MAC5).add(4, 6002, MAC8).add(5, 5001, MAC_NOREC);
  else ports.add(1, 5001, MAC6).add(2, 5002, MAC7).add(3, 6001, MAC6).add(4, 6002, MAC7);
  return { v, host: h, ports, clock, b: new Batch(slots, slotSizeFor(slotBytes)) };
}

/** Put bytes into slot i as the switch would after classification (untagged, l3 at 14). */
export function load(b: Batch, i: number, bytes: Uint8Array, inPort: number, vsid: number): FrameMeta {
  const m = b.meta[i]!;
  m.reset();
  m.off = b.slotStart(i) + HEADROOM;
  b.slab.set(bytes, m.off);
  m.len = bytes.length;
  m.inPort = inPort as PortId;
  m.vsid = vsid;
  m.dstMac = readMac(b.slab, m.off);
  m.srcMac = readMac(b.slab, m.off + 6);
  m.etherType = readU16(b.slab, m.off + 12);
  m.l3Off = 14;
  if (b.count <= i) b.count = i + 1;
  return m;
}

/** Forward the frame in slot 0 through r's layer at r's clock. */
export function fwd(r: Rig, bytes: Uint8Array, inPort: number, vsid: number): FrameMeta {
  const m = load(r.b, 0, bytes, inPort, vsid);
  r.v.forward(r.b, 0, r.ports, r.clock.now());
  return m;
}

/** The ports m is sent to, ascending. */
export function dests(m: FrameMeta): number[] {
  const out: number[] = [];
  for (let k = 0; k < m.dest.count; k++) out.push(m.dest.port(k));
  return out.sort((x, y) => x - y);
}
