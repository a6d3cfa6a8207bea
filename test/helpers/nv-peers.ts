// test/helpers/nv-peers.ts: independent network-virtualization peers for interop tests: an NVGRE peer (private
// userspace Open vSwitch with a `type=gre` port, key VSID<<8|FlowID) and a VXLAN peer (Linux kernel `vxlan`).
//
// Both are a third "host" plugged into the underlay bridge (e.g. br0 of hosts.ts) by a veth, plus a VM namespace
// whose `eth0` sits behind the tunnel. Facts used (TESTING.md §4.1, §4.2, this kernel): no gretap, so NVGRE comes
// from OVS netdev GRE (K bit only, proto 0x6558, DF); the tunnel endpoint IP must sit on an OVS bridge; the kernel
// vxlan default port is 8472, hence dstport 4789; `tx off` on the vxlan uplink so an AF_PACKET reader of the
// underlay gets complete inner checksums and no GSO frames.
import { join } from 'node:path';
import { ipOf, type Topology } from './netns.js';
import { OvsPeer } from './peers.js';
import { waitFor } from './proc.js';

/** Where the peer's underlay cable plugs in: a Linux bridge in an (underlay) namespace. */
export interface UnderlayPlug {
  /** Namespace that holds the bridge (e.g. hosts.ts's underlay namespace). */
  readonly ns: string;
  /** Bridge name there, e.g. "br0". */
  readonly bridge: string;
  /** MTU of both veth ends (default 1600: room for NVGRE/VXLAN around 1500-byte tenant frames). */
  readonly mtu?: number;
}

/** The peer's own VM, in its own namespace, NIC `eth0`. */
export interface PeerVm {
  /** "10.0.0.100/24" */
  readonly cidr: string;
  /** Fixed MAC for the xswitch lookup record, e.g. "02:00:00:00:01:00". */
  readonly mac: string;
  readonly mtu?: number;
}

interface PeerBase {
  /** Short name: the peer namespace is `${prefix}-${name}`, its VM's `${prefix}-${name}vm` (default nv / vx). */
  readonly name?: string;
  readonly underlay: UnderlayPlug;
  /** This peer's PA with prefix, e.g. "192.0.2.100/24". */
  readonly pa: string;
  /** PA of the xswitch host (or other peer) it tunnels to. */
  readonly remotePa: string;
  readonly vm: PeerVm;
}

export interface NvgrePeerOptions extends PeerBase {
  readonly vsid: number;
  /** 8-bit FlowID sent in the key's low byte (default 0x2a; receive accepts any FlowID). */
  readonly flowId?: number;
}

export interface VxlanPeerOptions extends PeerBase {
  /** VNI (= VSID). */
  readonly vni: number;
}

/** Fields common to both peers, for tests that treat them alike. */
export interface NvPeer {
  readonly kind: 'nvgre' | 'vxlan';
  /** The peer "host" namespace (underlay side). */
  readonly ns: string;
  /** The VM namespace behind the tunnel; its NIC is `eth0`. */
  readonly vmNs: string;
  readonly vmIf: string;
  readonly vmIp: string;
  readonly vmMac: string;
  /** The peer's PA without prefix. */
  readonly paIp: string;
  /** Underlay-side veth end (in UnderlayPlug.ns, enslaved to the bridge): capture here for the peer's traffic. */
  readonly underlayIf: string;
  stop(): Promise<void>;
}

const VM_IF = 'eth0';

/** Create the peer namespace and VM namespace, and the underlay veth `ul0` <-> `${prefix}${tag}u`. */
async function plumb(topo: Topology, name: string, tag: string, o: PeerBase): Promise<{ ns: string; vmNs: string; underlayIf: string }> {
  const ns = await topo.addNs(name);
  const vmNs = await topo.addNs(`${name}vm`);
  const underlayIf = topo.ifname(`${tag}u`);
  const mtu = o.underlay.mtu ?? 1600;
  await topo.veth({ ns, name: 'ul0' }, { ns: o.underlay.ns, name: underlayIf }, { mtu });
  await topo.ip(o.underlay.ns, 'link', 'set', underlayIf, 'master', o.underlay.bridge);
  await topo.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', 1);
  await topo.sysctl(vmNs, 'net.ipv6.conf.all.disable_ipv6', 1);
  return { ns, vmNs, underlayIf };
}

function checkByte(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`${what} ${n} is not 0..255`);
  return n;
}

function checkVsid(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffff) throw new Error(`VSID/VNI ${n} is not 24 bits`);
  return n;
}

/** NVGRE key of a VSID and FlowID (RFC 7637: VSID in the high 24 bits). */
export function nvgreKey(vsid: number, flowId: number): number {
  return ((checkVsid(vsid) << 8) | checkByte(flowId, 'FlowID')) >>> 0;
}

export interface FlowCounts {
  /** Packets the VM sent into the tunnel (TX flow). */
  readonly tx: number;
  /** Tunnel packets with this peer's VSID delivered to the VM (RX flow). */
  readonly rx: number;
}

/** The fields both peers fill the same way: namespaces, the VM's address, the PAs. */
abstract class PeerCommon {
  readonly topo: Topology;
  readonly ns: string;
  readonly vmNs: string;
  readonly vmIf = VM_IF;
  readonly vmIp: string;
  readonly vmMac: string;
  readonly paIp: string;
  readonly remotePa: string;
  readonly underlayIf: string;

  protected constructor(topo: Topology, ns: string, vmNs: string, underlayIf: string, o: PeerBase) {
    this.topo = topo;
    this.ns = ns;
    this.vmNs = vmNs;
    this.underlayIf = underlayIf;
    this.vmIp = ipOf(o.vm.cidr);
    this.vmMac = o.vm.mac;
    this.paIp = ipOf(o.pa);
    this.remotePa = o.remotePa;
  }
}

/**
 * NVGRE peer: OVS netdev bridge `brphy` (holds ul0 and the PA, so OVS can route and ARP for the tunnel),
 * bridge `brint` (fail_mode secure) with the VM's veth (ofport 1) and GRE port `nvgre0` (ofport 2,
 * key=flow, remote_ip = remotePa). Flows: VM -> tun_id VSID<<8|FlowID; tunnel with tun_id VSID<<8/0xffffff00
 * (any FlowID) -> VM; everything else dropped.
 */
export class NvgrePeer extends PeerCommon implements NvPeer {
  readonly kind = 'nvgre';
  readonly ovs: OvsPeer;
  private vsidNow: number;
  private flowIdNow: number;

  private constructor(topo: Topology, ovs: OvsPeer, ns: string, vmNs: string, underlayIf: string, o: NvgrePeerOptions) {
    super(topo, ns, vmNs, underlayIf, o);
    this.ovs = ovs;
    this.vsidNow = checkVsid(o.vsid);
    this.flowIdNow = checkByte(o.flowId ?? 0x2a, 'FlowID');
  }

  get vsid(): number {
    return this.vsidNow;
  }

  get flowId(): number {
    return this.flowIdNow;
  }

  /** The 32-bit key this peer sends. */
  get key(): number {
    return nvgreKey(this.vsidNow, this.flowIdNow);
  }

  static async start(topo: Topology, o: NvgrePeerOptions): Promise<NvgrePeer> {
    const name = o.name ?? 'nv';
    const { ns, vmNs, underlayIf } = await plumb(topo, name, name, o);
    const ovs = await OvsPeer.start(topo, ns, name);
    const p = new NvgrePeer(topo, ovs, ns, vmNs, underlayIf, o);
    topo.onCleanup(() => p.stop());
    // Underlay bridge: the tunnel endpoint IP must be on an OVS bridge for userspace tunnels.
    await ovs.vsctl('add-br', 'brphy', '--', 'set', 'bridge', 'brphy', 'datapath_type=netdev', '--', 'add-port', 'brphy', 'ul0');
    await topo.ip(ns, 'addr', 'add', o.pa, 'dev', 'brphy');
    await topo.ip(ns, 'link', 'set', 'brphy', 'up');
    // VM veth: its VM end sends into OVS's AF_PACKET reader, so no checksum offload there.
    await topo.veth({ ns, name: 'vmp0' }, { ns: vmNs, name: VM_IF }, { mtu: o.underlay.mtu ?? 1600 });
    await topo.execOk(vmNs, ['ethtool', '-K', VM_IF, 'tx', 'off']);
    await topo.configureVmLink(vmNs, VM_IF, { mac: o.vm.mac, cidr: o.vm.cidr, mtu: o.vm.mtu ?? 1500 });
    await ovs.vsctl('add-br', 'brint', '--', 'set', 'bridge', 'brint', 'datapath_type=netdev', 'fail_mode=secure',
      '--', 'add-port', 'brint', 'vmp0', '--', 'set', 'interface', 'vmp0', 'ofport_request=1',
      '--', 'add-port', 'brint', 'nvgre0', '--', 'set', 'interface', 'nvgre0', 'type=gre', 'ofport_request=2',
      `options:remote_ip=${o.remotePa}`, 'options:key=flow');
    await p.installFlows();
    return p;
  }

  /** Replace the TX/RX flows (e.g. another VSID for an isolation check); counters restart at 0. */
  async setVsid(vsid: number, flowId = this.flowIdNow): Promise<void> {
    this.vsidNow = checkVsid(vsid);
    this.flowIdNow = checkByte(flowId, 'FlowID');
    await this.installFlows();
  }

  private async installFlows(): Promise<void> {
    await this.ovs.ofctl('del-flows', 'brint');
    const rxKey = `0x${(this.vsidNow << 8 >>> 0).toString(16)}/0xffffff00`;
    await this.ovs.ofctl('add-flow', 'brint', `priority=10,in_port=1,actions=set_field:0x${this.key.toString(16)}->tun_id,output:2`);
    await this.ovs.ofctl('add-flow', 'brint', `priority=10,in_port=2,tun_id=${rxKey},actions=output:1`);
    await this.ovs.ofctl('add-flow', 'brint', 'priority=0,actions=drop');
  }

  /** n_packets of the TX (in_port=1) and RX (in_port=2, tun_id) flows. */
  async flowCounts(): Promise<FlowCounts> {
    const r = await this.ovs.ofctl('dump-flows', 'brint');
    let tx = 0;
    let rx = 0;
    for (const line of r.stdout.split('\n')) {
      const n = /n_packets=(\d+)/.exec(line);
      if (n === null) continue;
      if (/priority=10,in_port=1\b/.test(line) || /priority=10,in_port="?vmp0"?/.test(line)) tx += Number(n[1]);
      else if (/priority=10,.*tun_id=/.test(line)) rx += Number(n[1]);
    }
    return { tx, rx };
  }

  /** The raw flow dump (for assertion messages). */
  async dumpFlows(): Promise<string> {
    return (await this.ovs.ofctl('dump-flows', 'brint')).stdout;
  }

  /** OVS's underlay ARP cache (tunnel neighbours), for assertion messages. */
  async neighbours(): Promise<string> {
    return (await this.ovs.appctl('tnl/neigh/show')).stdout;
  }

  /** The OVS log (for assertion messages). */
  logFile(): string {
    return join(this.ovs.dir, 'ovs-vswitchd.log');
  }

  async stop(): Promise<void> {
    await this.ovs.stop();
  }
}

/**
 * VXLAN peer: kernel `vx0` (id VNI, local PA, remote remotePa, dstport 4789, dev ul0, nolearning) in Linux bridge
 * `brv` with the VM veth; PA on ul0 with `tx off`.
 */
export class VxlanPeer extends PeerCommon implements NvPeer {
  readonly kind = 'vxlan';
  private vniNow: number;

  private constructor(topo: Topology, ns: string, vmNs: string, underlayIf: string, o: VxlanPeerOptions) {
    super(topo, ns, vmNs, underlayIf, o);
    this.vniNow = checkVsid(o.vni);
  }

  get vni(): number {
    return this.vniNow;
  }

  static async start(topo: Topology, o: VxlanPeerOptions): Promise<VxlanPeer> {
    const name = o.name ?? 'vx';
    const { ns, vmNs, underlayIf } = await plumb(topo, name, name, o);
    const p = new VxlanPeer(topo, ns, vmNs, underlayIf, o);
    await topo.ip(ns, 'addr', 'add', o.pa, 'dev', 'ul0');
    await topo.execOk(ns, ['ethtool', '-K', 'ul0', 'tx', 'off']);
    await topo.ip(ns, 'link', 'add', 'brv', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await topo.veth({ ns, name: 'vmp0' }, { ns: vmNs, name: VM_IF }, { mtu: o.vm.mtu ?? 1500 });
    await topo.ip(ns, 'link', 'set', 'vmp0', 'master', 'brv');
    await topo.ip(ns, 'link', 'set', 'brv', 'up');
    await topo.configureVmLink(vmNs, VM_IF, { mac: o.vm.mac, cidr: o.vm.cidr, mtu: o.vm.mtu ?? 1500 });
    await p.addVxlan();
    return p;
  }

  private async addVxlan(): Promise<void> {
    await this.topo.ip(this.ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', String(this.vniNow), 'local', this.paIp,
      'remote', this.remotePa, 'dstport', '4789', 'dev', 'ul0', 'nolearning');
    await this.topo.ip(this.ns, 'link', 'set', 'vx0', 'master', 'brv');
    await this.topo.ip(this.ns, 'link', 'set', 'vx0', 'up');
  }

  /** Re-create vx0 with another VNI (isolation check); its counters restart at 0. */
  async setVni(vni: number): Promise<void> {
    this.vniNow = checkVsid(vni);
    await this.topo.ip(this.ns, 'link', 'del', 'vx0');
    await this.addVxlan();
  }

  /** rx/tx packets of vx0 (rx = decapsulated packets with our VNI). */
  async counts(): Promise<FlowCounts> {
    return {
      tx: await this.topo.linkStat(this.ns, 'vx0', 'tx_packets'),
      rx: await this.topo.linkStat(this.ns, 'vx0', 'rx_packets'),
    };
  }

  /** MTU the kernel gave vx0 (underlay - 50). */
  async vxlanMtu(): Promise<number> {
    const r = await this.topo.execOk(this.ns, ['cat', '/sys/class/net/vx0/mtu']);
    return Number(r.stdout.trim());
  }

  async stop(): Promise<void> {
    // Nothing runs in the namespaces: the topology's cleanup deletes them (and vx0, the veths with them).
  }
}

/** A Linux bridge `bridge` (no STP delay) in a namespace: a stand-alone underlay for trying peers without hosts.ts. */
export async function makeUnderlayBridge(topo: Topology, ns: string, bridge = 'br0'): Promise<void> {
  await topo.ip(ns, 'link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  await topo.ip(ns, 'link', 'set', bridge, 'up');
  await waitFor(async () => (await topo.exec(ns, ['ip', 'link', 'show', bridge])).stdout.includes('UP'), { timeout: 5000, what: `${bridge} up` });
}

/**
 * `ethtool -K IF tx off` on an xswitch host's underlay veth: the kernel then completes the checksums of frames
 * xswitch hands to AF_PACKET with offload metadata (partial inner TCP/UDP checksum), as a physical NIC would on
 * the wire. Needed when the far end reads the veth through AF_PACKET without a virtio-net header (the OVS
 * peer): it would otherwise get the partial checksum and its VM drops the segment (TCP fails, ping works).
 */
export async function completeTxChecksums(topo: Topology, ns: string, ifname = 'up0'): Promise<void> {
  await topo.execOk(ns, ['ethtool', '-K', ifname, 'tx', 'off']);
}
