// bench/lib/hosts.ts: two simulated hosts for the encapsulation benchmark (TESTING.md §3): an underlay namespace
// with bridge br0, host namespaces with up0 (MTU 1600), VM A on host 1 and VM B on host 2; candidates are xswitchd
// per host (NVGRE, IP rewrite, VXLAN, plain L2), OVS userspace GRE, kernel vxlan, and a kernel bridge reference.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addNs, addVeth, configureVmIf, delNs, ifExists, ifStats, ip, nsExec, txOff, type IfStats } from './netns.js';
import { startOvs, type PrivateOvs } from './ovs.js';
import { Background, run, until } from './proc.js';
import { guarded, Undo, type Endpoint, type Topology } from './topology.js';
import { startXswitchd, type Xswitchd } from './xswitchd.js';

/** What the underlay must carry, checked with tshark on host 1's underlay port during warm-up pings. */
export interface UnderlayExpectation {
  /** pcap filter that only the expected encapsulation matches. */
  readonly filter: string;
  readonly what: string;
}

export interface TwoHostTopology extends Topology {
  /** Underlay namespace and host 1's port on br0 (its rx is what host 1 puts on the wire). */
  readonly underlay: { readonly ns: string; readonly ifname: string };
  /** One xswitchd per host for the xswitch candidates (host 1 first), else empty. */
  readonly daemons: readonly Xswitchd[];
  readonly expect: UnderlayExpectation;
}

export interface HostsContext {
  readonly prefix: string;
  /** Short tag (candidate letter + round): keeps namespaces unique within the run. */
  readonly tag: string;
  readonly dir: string;
  readonly root: string;
  /** Start host 1's xswitchd under --cpu-prof into this directory. */
  readonly cpuProfileDir?: string;
}

export type EncapRule = 'encap' | 'rewrite' | 'vxlan';

export interface HostsCandidate {
  readonly name: string;
  readonly label: string;
  readonly kind: 'kernel' | 'ovs' | 'xswitch';
  /** The xswitch encapsulation rule, null for the others. */
  readonly rule: EncapRule | null;
  /** Needs the virtualization data path (network: in the document). */
  readonly needsVirtualization: boolean;
  setup(ctx: HostsContext): Promise<TwoHostTopology>;
}

export const VSID = 5001;
/** OVS GRE key: VSID << 8 | FlowID 0x2a, the same on both ends (OVS matches the exact key). */
export const OVS_GRE_KEY = (VSID << 8) | 0x2a;
export const UNDERLAY_MTU = 1600;

const VM = [
  { ip: '10.0.0.1', cidr: '10.0.0.1/24', mac: '02:00:00:00:00:01' },
  { ip: '10.0.0.2', cidr: '10.0.0.2/24', mac: '02:00:00:00:00:02' },
] as const;
/** Provider addresses: per host (NVGRE, VXLAN, OVS, kernel vxlan) and per CA (IP rewrite). */
const PA = ['192.0.2.1', '192.0.2.2'] as const;
const REWRITE_PA = ['192.0.2.11', '192.0.2.12'] as const;
const HOST_NAMES = ['host-a', 'host-b'] as const;
const RDID = '{11111111-2222-3333-4444-000000000001}';

interface Names {
  readonly u: string;
  readonly h: readonly [string, string];
  readonly vm: readonly [string, string];
}

/** Namespaces, br0 in the underlay, up0 (MTU 1600) in each host joined to br0 as ${P}p1 / ${P}p2. */
async function hosts(ctx: HostsContext, undo: Undo): Promise<Names> {
  const base = `${ctx.prefix}-${ctx.tag}`;
  const n: Names = { u: `${base}u`, h: [`${base}1`, `${base}2`], vm: [`${base}a`, `${base}b`] };
  for (const ns of [n.u, ...n.h, ...n.vm]) {
    undo.push(() => delNs(ns));
    await addNs(ns);
    // no IPv6 anywhere (no RS/MLD noise on the underlay or in the VMs); new devices inherit "default"
    await nsExec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  // The bridges (br0, the hosts' brv) act as wires: no iptables/arptables hooks per bridged frame (br_netfilter
  // is built in and defaults to on in every namespace). Tolerant: absent without br_netfilter.
  for (const ns of [n.u, ...n.h]) {
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0',
      'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0'], { timeoutMs: 5000 });
  }
  await ip('-n', n.u, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  await ip('-n', n.u, 'link', 'set', 'br0', 'up');
  for (const i of [0, 1] as const) {
    const port = `${ctx.prefix}p${i + 1}`;
    await ip('link', 'add', 'up0', 'netns', n.h[i], 'mtu', String(UNDERLAY_MTU), 'type', 'veth', 'peer', 'name', port,
      'netns', n.u, 'mtu', String(UNDERLAY_MTU));
    await ip('-n', n.u, 'link', 'set', port, 'master', 'br0', 'up');
    await ip('-n', n.h[i], 'link', 'set', 'up0', 'up');
  }
  return n;
}

/** A veth per VM: ${P}v1 / ${P}v2 in the host, eth0 in the VM, addressed. */
async function vmVeths(ctx: HostsContext, n: Names, vmTxOff: boolean): Promise<[string, string]> {
  const out: string[] = [];
  for (const i of [0, 1] as const) {
    const hv = `${ctx.prefix}v${i + 1}`;
    await addVeth(n.h[i], hv, n.vm[i], 'eth0');
    await configureVmIf(n.vm[i], 'eth0', VM[i].mac, VM[i].cidr);
    if (vmTxOff) await txOff(n.vm[i], 'eth0');
    await ip('-n', n.h[i], 'link', 'set', hv, 'up');
    out.push(hv);
  }
  return [out[0]!, out[1]!];
}

function endpoints(n: Names, ifA: string, ifB: string): { a: Endpoint; b: Endpoint } {
  return {
    a: { ns: n.vm[0], ifname: ifA, ip: VM[0].ip, mac: VM[0].mac },
    b: { ns: n.vm[1], ifname: ifB, ip: VM[1].ip, mac: VM[1].mac },
  };
}

function topology(
  name: string, ctx: HostsContext, n: Names, ifA: string, ifB: string, undo: Undo,
  extra: { pids: number[]; daemons: Xswitchd[]; expect: UnderlayExpectation },
): TwoHostTopology {
  return {
    candidate: name,
    ...endpoints(n, ifA, ifB),
    xswitchd: extra.daemons[0] ?? null,
    switchPid: extra.pids[0] ?? null,
    switchPids: extra.pids,
    daemons: extra.daemons,
    underlay: { ns: n.u, ifname: `${ctx.prefix}p1` },
    expect: extra.expect,
    teardown: () => undo.run(),
  };
}

const EXPECT = {
  plain: { filter: 'icmp and src host 10.0.0.1 and dst host 10.0.0.2', what: 'plain Ethernet/IPv4 between the CAs' },
  gre: { filter: `ip proto 47 and src host ${PA[0]} and dst host ${PA[1]}`, what: 'GRE (NVGRE) between the host PAs' },
  vxlan: { filter: `udp dst port 4789 and src host ${PA[0]} and dst host ${PA[1]}`, what: 'VXLAN between the host PAs' },
  rewrite: {
    filter: `icmp and src host ${REWRITE_PA[0]} and dst host ${REWRITE_PA[1]}`,
    what: 'plain IPv4 between the per-CA PAs (IP rewrite)',
  },
} as const satisfies Record<string, UnderlayExpectation>;

/** setup() of a candidate with veth VMs: the hosts and the VMs' veths, then `build`; all undone if a step fails. */
function vethHostsSetup(
  vmTxOff: boolean,
  build: (ctx: HostsContext, n: Names, hv: [string, string], undo: Undo) => Promise<TwoHostTopology>,
): HostsCandidate['setup'] {
  return (ctx) => {
    const undo = new Undo();
    return guarded(undo, async () => {
      const n = await hosts(ctx, undo);
      return build(ctx, n, await vmVeths(ctx, n, vmTxOff), undo);
    });
  };
}

/**
 * A kernel candidate: per host, `configure` readies the host's side (host namespace, index, the VM's host-side
 * veth) and returns the members of bridge brv (stp off), each enslaved and brought up in that order.
 */
function kernelCandidate(
  name: string, label: string, expect: UnderlayExpectation,
  configure: (h: string, i: 0 | 1, hv: string) => Promise<readonly string[]>,
): HostsCandidate {
  return {
    name,
    label,
    kind: 'kernel',
    rule: null,
    needsVirtualization: false,
    setup: vethHostsSetup(false, async (ctx, n, hv, undo) => {
      for (const i of [0, 1] as const) {
        const h = n.h[i];
        const members = await configure(h, i, hv[i]);
        await ip('-n', h, 'link', 'add', 'brv', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
        for (const m of members) await ip('-n', h, 'link', 'set', m, 'master', 'brv', 'up');
        await ip('-n', h, 'link', 'set', 'brv', 'up');
      }
      return topology(name, ctx, n, 'eth0', 'eth0', undo, { pids: [], daemons: [], expect });
    }),
  };
}

/** Kernel reference: a Linux bridge per host joins the VM veth and up0: plain L2 across the underlay. */
export const kernelBridgeCandidate = kernelCandidate(
  'kernel-bridge', 'Linux bridge per host, plain L2', EXPECT.plain, async (_h, _i, hv) => [hv, 'up0'],
);

/** Linux kernel vxlan: vx0 (VNI 5001, dstport 4789, static remote) bridged to the VM veth; the PA on up0. */
export const kernelVxlanCandidate = kernelCandidate(
  'kernel-vxlan', 'Linux kernel vxlan devices', EXPECT.vxlan, async (h, i, hv) => {
    await ip('-n', h, 'addr', 'add', `${PA[i]}/24`, 'dev', 'up0');
    await ip('-n', h, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', String(VSID), 'local', PA[i],
      'remote', PA[1 - i]!, 'dstport', '4789', 'dev', 'up0', 'nolearning');
    return ['vx0', hv];
  },
);

/**
 * Open vSwitch userspace GRE (TESTING.md §4.1): per host a private OVS netdev with bridge brphy (up0, the PA on
 * the bridge's internal port: userspace tunnels need it there) and bridge brint (the VM veth and a `type=gre`
 * port with a fixed key, MAC learning). No userspace TSO: it cannot cross OVS tunnels, so the VMs send plain
 * frames (`tx off`).
 */
export const ovsGreCandidate: HostsCandidate = {
  name: 'ovs-gre',
  label: 'OVS 3.x netdev, type=gre',
  kind: 'ovs',
  rule: null,
  needsVirtualization: false,
  setup: vethHostsSetup(true, async (ctx, n, hv, undo) => {
    const pids: number[] = [];
    for (const i of [0, 1] as const) {
      const h = n.h[i];
      const ovs: PrivateOvs = await startOvs(join(ctx.dir, `${ctx.tag}${i + 1}-ovs`), h, false);
      undo.push(() => ovs.stop());
      await ovs.vsctl('add-br', 'brphy', '--', 'set', 'bridge', 'brphy', 'datapath_type=netdev',
        '--', 'add-port', 'brphy', 'up0');
      await ip('-n', h, 'addr', 'add', `${PA[i]}/24`, 'dev', 'brphy');
      await ip('-n', h, 'link', 'set', 'brphy', 'up');
      await ovs.vsctl('add-br', 'brint', '--', 'set', 'bridge', 'brint', 'datapath_type=netdev',
        'fail_mode=standalone', '--', 'add-port', 'brint', hv[i],
        '--', 'add-port', 'brint', 'gre0', '--', 'set', 'interface', 'gre0', 'type=gre',
        `options:remote_ip=${PA[1 - i]!}`, `options:key=${OVS_GRE_KEY}`);
      const pid = ovs.vswitchdPid();
      if (pid !== null) pids.push(pid);
    }
    return topology('ovs-gre', ctx, n, 'eth0', 'eth0', undo, { pids, daemons: [], expect: EXPECT.gre });
  }),
};

/** The per-host document: one switch with the uplink on up0 and the VM's TAP port; `network:` when rule != null. */
export function xswitchHostDocument(prefix: string, host: 0 | 1, rule: EncapRule | null, uplink: Record<string, unknown> = {}): Record<string, unknown> {
  const port: Record<string, unknown> = {
    name: `vm${host + 1}`,
    interface: { tap: `${prefix}t${host + 1}` },
    mac: VM[host].mac,
  };
  if (rule !== null) port['vsid'] = VSID;
  const doc: Record<string, unknown> = {
    host: HOST_NAMES[host],
    switches: [{ name: 'sw0', uplink: { interface: 'up0', ...uplink }, ports: [port] }],
  };
  if (rule === null) return doc;
  const pas: Record<string, string>[] = [0, 1].map((i) => ({
    host: HOST_NAMES[i]!, switch: 'sw0', address: `${PA[i]!}/24`,
  }));
  if (rule === 'rewrite') {
    for (const i of [0, 1]) pas.push({ host: HOST_NAMES[i]!, switch: 'sw0', address: `${REWRITE_PA[i]!}/24` });
  }
  doc['network'] = {
    providerAddresses: pas,
    routingDomains: [{
      id: RDID,
      name: 'red',
      subnets: [{ vsid: VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.254' }],
    }],
    lookupRecords: [0, 1].map((i) => ({
      ca: VM[i]!.ip,
      vsid: VSID,
      mac: VM[i]!.mac,
      pa: rule === 'rewrite' ? REWRITE_PA[i]! : PA[i]!,
      rule,
      vm: `vm${i + 1}`,
    })),
  };
  return doc;
}

/** `uplink`: extra uplink keys of both hosts' documents (xswitch-vxlan: tunnelOffload). */
function xswitchCandidate(name: string, label: string, rule: EncapRule | null, expect: UnderlayExpectation, uplink: Record<string, unknown> = {}): HostsCandidate {
  return {
    name,
    label,
    kind: 'xswitch',
    rule,
    needsVirtualization: rule !== null,
    setup: (ctx) => {
      const undo = new Undo();
      return guarded(undo, async () => {
        const n = await hosts(ctx, undo);
        const daemons: Xswitchd[] = [];
        for (const i of [0, 1] as const) {
          const d = await startXswitchd({
            root: ctx.root, netns: n.h[i], dir: ctx.dir, name: `${ctx.tag}${i + 1}-xs`, host: HOST_NAMES[i],
            ...(i === 0 && ctx.cpuProfileDir !== undefined ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
          });
          undo.push(() => d.stop());
          daemons.push(d);
          const file = join(ctx.dir, `${ctx.tag}${i + 1}-xswitch.json`);
          writeFileSync(file, JSON.stringify(xswitchHostDocument(ctx.prefix, i, rule, uplink), null, 2));
          await d.xsctl('apply', '-f', file);
          // xswitchd opened the TAP in the host namespace; move it into the VM (the fd stays attached).
          const tap = `${ctx.prefix}t${i + 1}`;
          await until(() => ifExists(n.h[i], tap), 5000, `TAP ${tap} in ${n.h[i]}`);
          await ip('-n', n.h[i], 'link', 'set', tap, 'netns', n.vm[i]);
          await configureVmIf(n.vm[i], tap, VM[i].mac, VM[i].cidr);
        }
        return topology(name, ctx, n, `${ctx.prefix}t1`, `${ctx.prefix}t2`, undo,
          { pids: daemons.map((d) => d.pid), daemons, expect });
      });
    },
  };
}

export const xswitchPlainCandidate = xswitchCandidate(
  'xswitch-plain', 'xswitch, no VSID, uplinks bridged (L2)', null, EXPECT.plain,
);
export const xswitchNvgreCandidate = xswitchCandidate('xswitch-nvgre', 'xswitch NVGRE', 'encap', EXPECT.gre);
export const xswitchRewriteCandidate = xswitchCandidate('xswitch-rewrite', 'xswitch IP rewrite', 'rewrite', EXPECT.rewrite);
// VXLAN super-frames cross whole through the uplink's tunnel-GSO TAP, as the kernel's own vxlan sends them
export const xswitchVxlanCandidate = xswitchCandidate('xswitch-vxlan', 'xswitch VXLAN, uplink tunnelOffload', 'vxlan', EXPECT.vxlan, { tunnelOffload: true });

export const HOSTS_CANDIDATES: readonly HostsCandidate[] = [
  xswitchNvgreCandidate,
  xswitchRewriteCandidate,
  xswitchVxlanCandidate,
  xswitchPlainCandidate,
  ovsGreCandidate,
  kernelVxlanCandidate,
  kernelBridgeCandidate,
];

/**
 * Check that the underlay carries what the candidate claims: tshark on host 1's underlay port while VM A pings B;
 * at least one frame must match the candidate's filter. Returns a problem, or null.
 */
export async function checkUnderlay(t: TwoHostTopology): Promise<string | null> {
  const cap = new Background('ip', [
    'netns', 'exec', t.underlay.ns, 'timeout', '10', 'tshark', '-n', '-l', '-i', t.underlay.ifname,
    '-a', 'duration:6', '-c', '2', '-f', t.expect.filter, '-T', 'fields', '-e', 'frame.len',
  ]);
  try {
    await cap.waitFor((_out, err) => err.includes('Capturing on'), 8000, 'tshark on the underlay');
    for (let k = 0; k < 20 && cap.running; k++) {
      await run('ip', ['netns', 'exec', t.a.ns, 'ping', '-c', '1', '-W', '1', t.b.ip], { timeoutMs: 3000 });
    }
    await cap.exited;
  } finally {
    await cap.stop('SIGTERM', 2000);
  }
  const frames = cap.stdout.split('\n').filter((l) => l.trim() !== '').length;
  return frames > 0 ? null : `underlay: no frame of ${t.expect.what} (filter "${t.expect.filter}") seen on ${t.underlay.ifname}`;
}

/** Host 1's frames on the underlay (rx at its br0 port): counters for frames-per-byte figures. */
export function underlayStats(t: TwoHostTopology): Promise<IfStats> {
  return ifStats(t.underlay.ns, t.underlay.ifname);
}
