// test/helpers/hosts.ts: the TESTING.md §3 "several hosts" topology for network virtualization tests: an
// underlay bridge, N host namespaces each running its own xswitchd, TAP VMs per tenant, and the shared document.
//
// API (everything under one per-run prefix; `cleanup()` in an `after` hook undoes it all, also on failure):
//   const mh = await MultiHost.create({ hosts: 2, underlayMtu: 1600 });   // names h1, h2; PAs 192.0.2.1, .2 /24
//   mh.underlay                      underlay namespace (bridge br0 inside, stp off, forward_delay 0)
//   mh.hosts / mh.host('h1')         NvHost {name, ns, pa, paCidr, d: Xswitchd (own store/socket), vms}
//   mh.addTenant({name:'red', subnets:[{vsid:5001, prefix:'10.0.0.0/24', gateway:'10.0.0.1'}]})  -> TenantSpec
//   await mh.addVm({name:'red1', host:'h1', vsid:5001, ca:'10.0.0.5', mac:'02:00:00:00:00:05', rule:'encap'})
//                                    -> NvVm: namespace made now; TAP `${prefix}t<n>` is opened at the next apply
//   await mh.applyAll({network?})    applies docFor(host) on every host (throws with output), then moves each
//                                    new TAP into its VM namespace (MAC, MTU, CA/prefix, default route via gateway)
//   await mh.tryApplyAll()           same documents, returns every host's XsctlResult without throwing or plugging
//   mh.docFor(host) / mh.network()   the document / the shared `network:` section the helper would apply
//   mh.uplinkOptions.set('h1', {tunnelOffload: true})   extra uplink keys in that host's document
//   mh.portOptions.set('red1', {acls: [...]})            extra port keys of that VM's port
//   mh.extra                         extra network entries tests add: records, providerAddresses, providerRoutes,
//                                    remotes, customerRoutes, routerMac (for peers that run no xswitch)
//   await mh.setRecord(ca, vsid, {pa?, rule?, mac?, vm?})   `xsctl record set` on EVERY host (live change); the
//                                    model follows, so a later applyAll() writes the same state
//   await mh.setRule(vm, rule)       setRecord with the PA the rule needs (rewrite: the VM's own PA)
//   mh.modelRule(vm, rule)           the same change in the model only (then applyAll() re-applies documents)
//   mh.paFor(vm, rule)               encap/vxlan: the VM host's PA; rewrite: the VM's per-CA PA (listed in
//                                    providerAddresses of its host, allocated 192.0.2.100+ per VM)
//   await mh.attachUnderlay('att', {cidr:'192.0.2.200/24'}) -> {ns, ifname:'ul0'} a non-xswitch namespace on br0
//   await mh.capture(ns, ifname, {seconds, bpf, name, snaplen}) -> CaptureLike: tshark in any namespace (peers.ts
//                                    Capture: fields/count/waitCount/stop)
//   await mh.captureUnderlay(opts)   the same on br0 in the underlay namespace
//   await decodeWithPrefs(file, ['tcp.check_checksum:TRUE'], filter, fields)   tshark -r with -o preferences
//   await mh.ping(vm, dstIp, opts) / mh.pingUntilReply(vm, dstIp, ms)   bounded ping from a VM namespace
//   await mh.iperf3(server, client, {port, seconds, udp})    bounded iperf3 on a chosen port (returns IperfResult)
//   await mh.counters(host, sw?) / mh.vsidList(host) / mh.recordList(host) / mh.virt(host)   xsctl --json
//   await mh.cleanup()               stops every xswitchd by PID (reverse order), then Topology.cleanup()
//                                    (other processes by PID, namespaces in reverse order, temp dir)
import { join } from 'node:path';
import type { VsidStatus } from '../../src/virtualization/api.js';
import { Topology } from './netns.js';
import { Capture, type IperfResult, parsePing, type PingResult, tsharkRows } from './peers.js';
import { run, waitFor } from './proc.js';
import { type Counters, Xswitchd, type XsctlResult } from './xswitchd.js';

export type NvRule = 'encap' | 'rewrite' | 'vxlan';

/** Underlay IPv4 prefix of the provider addresses. */
export const UNDERLAY_NET = '192.0.2';
export const UNDERLAY_PLEN = 24;
/** The switch every host runs (its external port is `uplink` on up0). */
export const NV_SWITCH = 'sw0';
/** The host-side underlay veth in every host namespace. */
export const UPLINK_IF = 'up0';
/** NVGRE / VXLAN / rewrite overhead against the underlay IP MTU (DESIGN.md §2). */
export const NV_OVERHEAD: Readonly<Record<NvRule, number>> = { encap: 42, vxlan: 50, rewrite: 0 };

export interface MultiHostOptions {
  /** Number of hosts (default 2), named h1..hN unless `names` is given. */
  readonly hosts?: number;
  readonly names?: readonly string[];
  /** MTU of up0 and its bridge port (default 1600). */
  readonly underlayMtu?: number;
  /** Reuse a Topology (the caller owns its cleanup then; mh.cleanup() still stops the daemons). */
  readonly topo?: Topology;
  readonly logLevel?: 'info' | 'debug' | 'warn';
}

export interface NvHost {
  readonly name: string;
  readonly index: number;
  readonly ns: string;
  /** "192.0.2.<index>" — the host's PA for encap/vxlan records. */
  readonly pa: string;
  readonly paCidr: string;
  readonly d: Xswitchd;
  readonly vms: NvVm[];
}

export interface SubnetInput {
  readonly vsid: number;
  readonly prefix: string;
  readonly gateway?: string | null;
  /** IPv6 prefix ("fd00:1::/64") and gateway of a dual-stack subnet. */
  readonly prefix6?: string;
  readonly gateway6?: string | null;
}

export interface TenantInput {
  readonly name: string;
  /** GUID with braces; default a fixed per-tenant one. */
  readonly id?: string;
  readonly subnets: readonly SubnetInput[];
}

export interface TenantSpec {
  readonly id: string;
  readonly name: string;
  readonly subnets: readonly SubnetInput[];
}

export interface VmInput {
  /** Port name on the switch and namespace suffix; unique in the run. */
  readonly name: string;
  readonly host: string;
  readonly vsid: number;
  readonly ca: string;
  readonly mac: string;
  /** Default 'encap'. */
  readonly rule?: NvRule;
  /** VM NIC MTU (default 1500). */
  readonly mtu?: number;
  /** Reuse an existing namespace (e.g. a VM that moves); default a new `${prefix}-${name}`. */
  readonly ns?: string;
  /** Leave the VM out of the lookup records (a test adds its own). */
  readonly noRecord?: boolean;
  /** An IPv6 CA too (the subnet needs prefix6): a second record, IPv6 enabled in the VM (no DAD, no RA). */
  readonly ca6?: string;
}

export interface NvVm {
  readonly name: string;
  readonly host: string;
  readonly vsid: number;
  readonly ca: string;
  readonly mac: string;
  /** "10.0.0.5/24" from the subnet's prefix length. */
  readonly cidr: string;
  readonly gateway: string | null;
  /** IPv6 CA, "fd00:1::5/64" and the IPv6 gateway, when the VM is dual-stack. */
  readonly ca6: string | null;
  readonly cidr6: string | null;
  readonly gateway6: string | null;
  readonly ns: string;
  /** TAP interface name (created by the host's xswitchd, then moved into ns). */
  readonly tap: string;
  readonly mtu: number;
  /** This VM's own PA for the rewrite rule (listed in providerAddresses of its host). */
  readonly rewritePa: string;
  /** Current record state (kept in step by setRecord/setRule). */
  rule: NvRule;
  pa: string;
  plugged: boolean;
  readonly noRecord: boolean;
}

export interface RecordInput {
  readonly ca: string;
  readonly vsid: number;
  readonly mac: string;
  readonly pa: string;
  readonly rule: NvRule;
  readonly vm?: string | null;
}

export interface ProviderAddressInput {
  readonly host: string;
  readonly switch: string;
  readonly address: string;
  readonly vlan?: number;
}

/** Extra `network:` entries for things that are not xswitch VMs (peers, forged records). */
export interface NetworkExtras {
  records: RecordInput[];
  providerAddresses: ProviderAddressInput[];
  providerRoutes: { host: string; prefix: string; nextHop: string }[];
  remotes: { pa: string; flowId: number }[];
  customerRoutes: { rdid: string; vsid: number; prefix: string; nextHop: string }[];
  routerMac: string | null;
}

export interface RecordChange {
  readonly pa?: string;
  readonly rule?: NvRule;
  readonly mac?: string;
  readonly vm?: string;
}

/** One row of `xsctl vsid list --json`: the layer's VSID status and the switch it belongs to. */
export interface VsidRow extends VsidStatus {
  readonly switch: string;
}

/** One row of `xsctl record list --json`. */
export interface RecordRow {
  readonly switch?: string;
  readonly ca: string;
  readonly vsid: number;
  readonly mac: string;
  readonly pa: string;
  readonly rule: NvRule;
  readonly local: boolean;
}

export interface UnderlayAttachment {
  readonly ns: string;
  /** The interface inside ns (default ul0). */
  readonly ifname: string;
  /** The bridge port in the underlay namespace. */
  readonly port: string;
  readonly mac: string;
}

function prefixLen(prefix: string): number {
  const n = Number(prefix.split('/')[1]);
  if (!Number.isInteger(n)) throw new Error(`bad prefix ${prefix}`);
  return n;
}

function rdidFor(i: number): string {
  return `{11111111-2222-3333-4444-${(i + 1).toString(16).padStart(12, '0')}}`;
}

export class MultiHost {
  readonly topo: Topology;
  readonly underlay: string;
  readonly underlayMtu: number;
  readonly hosts: NvHost[] = [];
  readonly tenants: TenantSpec[] = [];
  readonly vms: NvVm[] = [];
  readonly extra: NetworkExtras = { records: [], providerAddresses: [], providerRoutes: [], remotes: [], customerRoutes: [], routerMac: null };
  /** Extra `uplink:` keys per host name (e.g. { tunnelOffload: true }), merged into docFor's uplink. */
  readonly uplinkOptions = new Map<string, Record<string, unknown>>();
  /** Extra port keys per VM name (e.g. { acls: [...] }), merged into that VM's port in docFor. */
  readonly portOptions = new Map<string, Record<string, unknown>>();
  private readonly ownsTopo: boolean;
  private tapCounter = 0;
  private attachCounter = 0;
  private cleaned = false;

  private constructor(topo: Topology, underlay: string, mtu: number, ownsTopo: boolean) {
    this.topo = topo;
    this.underlay = underlay;
    this.underlayMtu = mtu;
    this.ownsTopo = ownsTopo;
  }

  /**
   * Underlay namespace `${prefix}-u` with br0; hosts `${prefix}-h<i>` with up0 (MTU, IPv6 off) in br0 and an
   * xswitchd each (store $D/<host>.db, socket $D/<host>.sock, --host <name>). On a failure halfway, what was made
   * is torn down before the error is rethrown.
   */
  static async create(opts: MultiHostOptions = {}): Promise<MultiHost> {
    const names = opts.names ?? Array.from({ length: opts.hosts ?? 2 }, (_, i) => `h${i + 1}`);
    const topo = opts.topo ?? Topology.create();
    const mtu = opts.underlayMtu ?? 1600;
    let mh: MultiHost | null = null;
    try {
      const u = await topo.addNs('u');
      mh = new MultiHost(topo, u, mtu, opts.topo === undefined);
      await topo.sysctl(u, 'net.ipv6.conf.all.disable_ipv6', 1);
      await topo.sysctl(u, 'net.ipv6.conf.default.disable_ipv6', 1);
      await topo.ip(u, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
      await topo.ip(u, 'link', 'set', 'br0', 'up');
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string;
        const index = i + 1;
        const ns = await topo.addNs(name);
        await topo.sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', 1);
        const port = topo.ifname(`p${index}`);
        await topo.veth({ ns, name: UPLINK_IF }, { ns: u, name: port }, { mtu });
        await topo.sysctl(ns, `net.ipv6.conf.${UPLINK_IF}.disable_ipv6`, 1);
        await topo.ip(u, 'link', 'set', port, 'master', 'br0');
        const d = await Xswitchd.start(topo, ns, {
          host: name, dbPath: join(topo.dir, `${name}.db`), socket: join(topo.dir, `${name}.sock`),
          ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
        });
        const pa = `${UNDERLAY_NET}.${index}`;
        mh.hosts.push({ name, index, ns, pa, paCidr: `${pa}/${UNDERLAY_PLEN}`, d, vms: [] });
      }
      return mh;
    } catch (e) {
      if (mh !== null) await mh.cleanup().catch(() => undefined);
      else if (opts.topo === undefined) await topo.cleanup().catch(() => undefined);
      throw e;
    }
  }

  host(name: string): NvHost {
    const h = this.hosts.find((x) => x.name === name);
    if (h === undefined) throw new Error(`no host ${name}`);
    return h;
  }

  vm(name: string): NvVm {
    const v = this.vms.find((x) => x.name === name);
    if (v === undefined) throw new Error(`no VM ${name}`);
    return v;
  }

  /** A routing domain (tenant) with its subnets; RDIDs default to {11111111-2222-3333-4444-00000000000N}. */
  addTenant(t: TenantInput): TenantSpec {
    const spec: TenantSpec = { id: t.id ?? rdidFor(this.tenants.length), name: t.name, subnets: t.subnets };
    this.tenants.push(spec);
    return spec;
  }

  private subnetOf(vsid: number): SubnetInput | null {
    for (const t of this.tenants) for (const s of t.subnets) if (s.vsid === vsid) return s;
    return null;
  }

  /** The PA a record of vm has under rule: the host's PA (encap, vxlan) or the VM's own PA (rewrite). */
  paFor(vm: NvVm, rule: NvRule): string {
    return rule === 'rewrite' ? vm.rewritePa : this.host(vm.host).pa;
  }

  /**
   * Declare a VM on a host: its namespace is made now; its TAP port goes into the host's next document, and
   * applyAll() plugs it. The VM's subnet (by VSID) must be declared with addTenant first.
   */
  async addVm(v: VmInput): Promise<NvVm> {
    const h = this.host(v.host);
    if (this.vms.some((x) => x.name === v.name)) throw new Error(`VM ${v.name} exists`);
    const subnet = this.subnetOf(v.vsid);
    if (subnet === null) throw new Error(`VSID ${v.vsid} is in no tenant subnet (addTenant first)`);
    const ns = v.ns ?? (await this.topo.addNs(v.name));
    const n = ++this.tapCounter;
    const rule = v.rule ?? 'encap';
    const vm: NvVm = {
      name: v.name, host: h.name, vsid: v.vsid, ca: v.ca, mac: v.mac.toLowerCase(),
      cidr: `${v.ca}/${prefixLen(subnet.prefix)}`, gateway: subnet.gateway ?? null, ns,
      ca6: v.ca6 ?? null, cidr6: v.ca6 === undefined ? null : `${v.ca6}/${prefixLen(subnet.prefix6 ?? '/64')}`, gateway6: subnet.gateway6 ?? null,
      tap: this.topo.ifname(`t${n}`), mtu: v.mtu ?? 1500, rewritePa: `${UNDERLAY_NET}.${99 + n}`,
      rule, pa: '', plugged: false, noRecord: v.noRecord === true,
    };
    vm.pa = this.paFor(vm, rule);
    this.vms.push(vm);
    h.vms.push(vm);
    return vm;
  }

  /** The shared `network:` section: every host's PA (+ every VM's rewrite PA on its host), tenants, records. */
  network(): Record<string, unknown> {
    const pas: ProviderAddressInput[] = [];
    for (const h of this.hosts) {
      pas.push({ host: h.name, switch: NV_SWITCH, address: h.paCidr });
      for (const vm of h.vms) pas.push({ host: h.name, switch: NV_SWITCH, address: `${vm.rewritePa}/${UNDERLAY_PLEN}` });
    }
    pas.push(...this.extra.providerAddresses);
    const records: Record<string, unknown>[] = this.vms.filter((vm) => !vm.noRecord).map((vm) =>
      ({ ca: vm.ca, vsid: vm.vsid, mac: vm.mac, pa: vm.pa, rule: vm.rule, vm: vm.name }));
    for (const vm of this.vms) {
      if (!vm.noRecord && vm.ca6 !== null) records.push({ ca: vm.ca6, vsid: vm.vsid, mac: vm.mac, pa: vm.pa, rule: vm.rule, vm: vm.name });
    }
    for (const r of this.extra.records) records.push({ ...r });
    const net: Record<string, unknown> = {
      providerAddresses: pas,
      routingDomains: this.tenants.map((t) => ({
        id: t.id, name: t.name,
        subnets: t.subnets.map((s) => ({
          vsid: s.vsid, prefix: s.prefix, ...(s.gateway != null ? { gateway: s.gateway } : {}),
          ...(s.prefix6 !== undefined ? { prefix6: s.prefix6 } : {}), ...(s.gateway6 != null ? { gateway6: s.gateway6 } : {}),
        })),
      })),
      lookupRecords: records,
    };
    if (this.extra.routerMac !== null) net['routerMac'] = this.extra.routerMac;
    if (this.extra.providerRoutes.length > 0) net['providerRoutes'] = this.extra.providerRoutes;
    if (this.extra.remotes.length > 0) net['remotes'] = this.extra.remotes;
    if (this.extra.customerRoutes.length > 0) net['customerRoutes'] = this.extra.customerRoutes;
    return net;
  }

  /** Host h's whole document: sw0 with uplink up0 and its VMs' TAP ports (with their VSID), plus network(). */
  docFor(host: string, opts: { network?: boolean } = {}): Record<string, unknown> {
    const h = this.host(host);
    const doc: Record<string, unknown> = {
      host: h.name,
      switches: [{
        name: NV_SWITCH,
        uplink: { interface: UPLINK_IF, ...(this.uplinkOptions.get(h.name) ?? {}) },
        ports: h.vms.map((vm) => ({ name: vm.name, interface: { tap: vm.tap }, mac: vm.mac, vsid: vm.vsid, ...(this.portOptions.get(vm.name) ?? {}) })),
      }],
    };
    if (opts.network !== false) doc['network'] = this.network();
    return doc;
  }

  /** Apply every host's document; returns the results (never throws on a rejected document, plugs nothing). */
  async tryApplyAll(opts: { network?: boolean } = {}): Promise<Map<string, XsctlResult>> {
    const out = new Map<string, XsctlResult>();
    for (const h of this.hosts) out.set(h.name, await h.d.apply(this.docFor(h.name, opts)));
    return out;
  }

  /** Apply every host's document (throws with the host, output and daemon log on a refusal), then plug new TAPs. */
  async applyAll(opts: { network?: boolean } = {}): Promise<void> {
    const res = await this.tryApplyAll(opts);
    for (const [name, r] of res) {
      if (r.code !== 0) {
        throw new Error(`apply on ${name} failed (exit ${r.code}): ${r.stdout.slice(-3000)} ${r.stderr.slice(-3000)}\n${this.host(name).d.logTail(1500)}`);
      }
    }
    for (const vm of this.vms) if (!vm.plugged) await this.plug(vm);
  }

  /** Move vm's TAP from its host namespace into the VM namespace and configure it (TESTING.md §3). */
  async plug(vm: NvVm): Promise<void> {
    const h = this.host(vm.host);
    await h.d.plugTap(vm.tap, vm.ns, { mac: vm.mac, mtu: vm.mtu, cidr: vm.cidr });
    if (vm.gateway !== null) await this.topo.ip(vm.ns, 'route', 'replace', 'default', 'via', vm.gateway, 'dev', vm.tap);
    if (vm.cidr6 !== null) {
      // IPv6 on for this NIC only: no DAD delay (nodad) and no router discovery; the switch answers neighbor discovery
      for (const [k, v] of [['accept_dad', 0], ['accept_ra', 0], ['disable_ipv6', 0]] as const) await this.topo.sysctl(vm.ns, `net.ipv6.conf.${vm.tap}.${k}`, v);
      await this.topo.ip(vm.ns, '-6', 'addr', 'replace', vm.cidr6, 'dev', vm.tap, 'nodad');
      if (vm.gateway6 !== null) await this.topo.ip(vm.ns, '-6', 'route', 'replace', 'default', 'via', vm.gateway6, 'dev', vm.tap);
    }
    vm.plugged = true;
  }

  /**
   * `xsctl record set CA --vsid N [--pa A] [--rule R] [--mac M] [--vm NAME]` on every host (a live change: rule
   * switch, migration). Throws with the output if a host refuses; on success the helper's model follows.
   */
  async setRecord(ca: string, vsid: number, c: RecordChange): Promise<void> {
    const args = ['record', 'set', ca, '--vsid', String(vsid)];
    if (c.pa !== undefined) args.push('--pa', c.pa);
    if (c.rule !== undefined) args.push('--rule', c.rule);
    if (c.mac !== undefined) args.push('--mac', c.mac);
    if (c.vm !== undefined) args.push('--vm', c.vm);
    for (const h of this.hosts) await h.d.xsctlOk(args);
    const vm = this.vms.find((x) => x.ca === ca && x.vsid === vsid && !x.noRecord);
    if (vm !== undefined) {
      if (c.pa !== undefined) vm.pa = c.pa;
      if (c.rule !== undefined) vm.rule = c.rule;
    }
    const i = this.extra.records.findIndex((r) => r.ca === ca && r.vsid === vsid);
    const r = this.extra.records[i];
    if (r !== undefined) {
      this.extra.records[i] = { ...r, ...(c.pa !== undefined ? { pa: c.pa } : {}), ...(c.rule !== undefined ? { rule: c.rule } : {}),
        ...(c.mac !== undefined ? { mac: c.mac } : {}), ...(c.vm !== undefined ? { vm: c.vm } : {}) };
    }
  }

  /** Change vm's rule (and the PA it needs) in the helper's model only: the next applyAll() carries it. */
  modelRule(vm: NvVm, rule: NvRule): void {
    vm.rule = rule;
    vm.pa = this.paFor(vm, rule);
  }

  /** Switch vm's record to rule on every host, with the PA that rule needs. */
  async setRule(vm: NvVm, rule: NvRule): Promise<void> {
    await this.setRecord(vm.ca, vm.vsid, { rule, pa: this.paFor(vm, rule) });
  }

  /**
   * A namespace that runs no xswitch, on the underlay: veth `ifname` (default ul0, MTU of the underlay, IPv6 off,
   * optional address) whose peer `${prefix}a<n>` is a br0 port.
   */
  async attachUnderlay(name: string, opts: { cidr?: string; ifname?: string; mtu?: number } = {}): Promise<UnderlayAttachment> {
    const ns = await this.topo.addNs(name);
    const ifname = opts.ifname ?? 'ul0';
    const port = this.topo.ifname(`a${++this.attachCounter}`);
    await this.topo.sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', 1);
    await this.topo.veth({ ns, name: ifname }, { ns: this.underlay, name: port }, { mtu: opts.mtu ?? this.underlayMtu });
    await this.topo.sysctl(ns, `net.ipv6.conf.${ifname}.disable_ipv6`, 1);
    await this.topo.ip(this.underlay, 'link', 'set', port, 'master', 'br0');
    if (opts.cidr !== undefined) await this.topo.addAddr(ns, ifname, opts.cidr);
    const mac = (await this.topo.execOk(ns, ['cat', `/sys/class/net/${ifname}/address`])).stdout.trim();
    return { ns, ifname, port, mac };
  }

  /**
   * tshark in any namespace (peers.ts Capture); resolves once the interface is open. snaplen: bytes kept per
   * frame, for captures under bulk TCP (tshark `-s snaplen`).
   */
  capture(ns: string, ifname: string, opts: CaptureOptions = {}): Promise<CaptureLike> {
    return Capture.start(this.topo, ns, ifname, opts);
  }

  /** tshark on br0 in the underlay namespace (sees every host's uplink traffic). */
  captureUnderlay(opts: CaptureOptions = {}): Promise<CaptureLike> {
    return this.capture(this.underlay, 'br0', { name: `${this.topo.prefix}-underlay`, ...opts });
  }

  /** Bounded ping from vm's namespace; extra e.g. ['-p', 'aa55'] (payload pattern), ['-s', '1400', '-M', 'do']. */
  async ping(vm: NvVm, dst: string, opts: { count?: number; interval?: number; extra?: string[] } = {}): Promise<PingResult> {
    const count = opts.count ?? 3;
    const interval = opts.interval ?? 0.2;
    const bound = Math.ceil(count * interval + 10);
    const argv = ['timeout', String(bound), 'ping', '-n', '-c', String(count), '-i', String(interval), '-W', '1', ...(opts.extra ?? []), dst];
    return parsePing(await this.topo.exec(vm.ns, argv, { timeout: (bound + 5) * 1000 }));
  }

  /** Ping (one at a time) until a reply arrives or `timeout` ms pass; true if one did. */
  async pingUntilReply(vm: NvVm, dst: string, timeout = 15_000, extra: string[] = []): Promise<boolean> {
    try {
      await waitFor(async () => (await this.ping(vm, dst, { count: 1, extra })).received === 1, { timeout, interval: 200, what: `reply from ${dst}` });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Bounded iperf3 TCP (or UDP) from client to server's CA on a chosen port (so captures can tell flows apart):
   * one-shot server, `seconds` (default 2) client with JSON output.
   */
  async iperf3(server: NvVm, client: NvVm, opts: { port?: number; seconds?: number; udp?: boolean; dst?: string } = {}): Promise<IperfResult> {
    const port = String(opts.port ?? 5201);
    const dst = opts.dst ?? server.ca;
    const seconds = opts.seconds ?? 2;
    const srv = this.topo.spawn(server.ns, ['timeout', String(seconds + 20), 'iperf3', '-s', '-1', '--forceflush', '-B', dst, '-p', port],
      { timeout: (seconds + 25) * 1000 });
    await waitFor(async () => {
      if (!srv.running) throw new Error(`iperf3 server exited: ${srv.stdout} ${srv.stderr}`);
      return (await this.topo.exec(server.ns, ['ss', '-Hltn', `sport = :${port}`])).stdout.includes(port);
    }, { timeout: 10_000, interval: 100, what: `iperf3 server on ${dst}:${port}` });
    const argv = ['timeout', String(seconds + 10), 'iperf3', '-c', dst, '-p', port, '-t', String(seconds), '--connect-timeout', '2000', '-J'];
    if (opts.udp === true) argv.push('-u', '-b', '50M', '-l', '1200');
    const client1 = await this.topo.exec(client.ns, argv, { timeout: (seconds + 15) * 1000 });
    await srv.waitExit(5000);
    await srv.stop(1000);
    let bitsPerSecond = 0;
    let bytes = 0;
    let error: string | null = null;
    try {
      const j = JSON.parse(client1.stdout) as { error?: string; end?: { sum_received?: { bits_per_second?: number; bytes?: number }; sum?: { bits_per_second?: number; bytes?: number } } };
      if (j.error !== undefined) error = j.error;
      const sum = j.end?.sum_received ?? j.end?.sum;
      bitsPerSecond = sum?.bits_per_second ?? 0;
      bytes = sum?.bytes ?? 0;
    } catch {
      error = `not JSON: ${client1.stdout.slice(0, 500)} ${client1.stderr.slice(0, 500)}`;
    }
    return { ok: client1.code === 0 && error === null && bytes > 0, bitsPerSecond, bytes, error, client: client1,
      server: { stdout: srv.stdout, stderr: srv.stderr, exitCode: srv.exitCode } };
  }

  counters(host: string, sw = NV_SWITCH): Promise<Counters> {
    return this.host(host).d.counters(sw);
  }

  vsidList(host: string): Promise<VsidRow[]> {
    return this.host(host).d.json<VsidRow[]>(['vsid', 'list']);
  }

  recordList(host: string): Promise<RecordRow[]> {
    return this.host(host).d.json<RecordRow[]>(['record', 'list']);
  }

  /** `xsctl virt sw0 --json` (VirtualizationStatus, with layer counters). */
  virt<T = Record<string, unknown>>(host: string, sw = NV_SWITCH): Promise<T> {
    return this.host(host).d.json<T>(['virt', sw]);
  }

  /** Daemon logs of every host, for assertion messages. */
  logs(chars = 1500): string {
    return this.hosts.map((h) => `--- ${h.name} (${h.d.running ? 'running' : `exited ${h.d.proc?.exitCode ?? '?'}`})\n${h.d.logTail(chars)}`).join('\n');
  }

  /** Every xswitchd still running? */
  allRunning(): boolean {
    return this.hosts.every((h) => h.d.running);
  }

  /**
   * Stop every xswitchd by PID (reverse order), then, if the helper made the Topology, its cleanup (remaining
   * processes by PID, namespaces in reverse order, temp dir). Safe to call twice.
   */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const h of [...this.hosts].reverse()) await h.d.stop().catch(() => undefined);
    if (this.ownsTopo) await this.topo.cleanup();
  }
}

export interface CaptureOptions {
  /** Capture duration bound in seconds (default 30). */
  readonly seconds?: number;
  /** BPF capture filter. */
  readonly bpf?: string;
  /** File name stem. */
  readonly name?: string;
  /** Bytes kept per frame (tshark -s). */
  readonly snaplen?: number;
}

/** What Capture (peers.ts) offers. */
export interface CaptureLike {
  readonly file: string;
  stop(): Promise<void>;
  fields(displayFilter: string, fields: readonly string[], occurrence?: 'f' | 'l' | 'a'): Promise<string[][]>;
  count(displayFilter: string): Promise<number>;
  waitCount(displayFilter: string, n: number, timeout?: number): Promise<number>;
}

/**
 * tshark -r FILE with preferences (e.g. ['ip.check_checksum:TRUE', 'tcp.check_checksum:TRUE']) and a display
 * filter; rows of the fields asked for.
 */
export async function decodeWithPrefs(file: string, prefs: readonly string[], displayFilter: string, fields: readonly string[]): Promise<string[][]> {
  return tsharkRows(file, prefs.flatMap((p) => ['-o', p]), displayFilter, fields, 'a', 60_000);
}

/** `ip -n ns link show` as text (diagnostics). */
export async function linkDump(ns: string): Promise<string> {
  return (await run(['ip', '-n', ns, '-d', 'link', 'show'])).stdout;
}
