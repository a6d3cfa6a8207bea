// bench/lib/topology.ts: the benchmark's candidates, each the same two-VM topology (VM namespaces A and B, the
// switch in its own namespace H): Linux bridge, private OVS netdev (with/without userspace TSO), xswitchd on TAP
// ports (vnet header on/off) or AF_PACKET veth ports. setup() builds one; teardown() undoes it, also after a
// failure half way (every step registers its undo first).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  addNs, addVeth, configureVmIf, delNs, disableIpv6, ifExists, ip, txOff,
} from './netns.js';
import { startOvs } from './ovs.js';
import { until } from './proc.js';
import { startXswitchd, type Xswitchd } from './xswitchd.js';

export interface Endpoint {
  readonly ns: string;
  readonly ifname: string;
  readonly ip: string;
  readonly mac: string;
}

export interface Topology {
  readonly candidate: string;
  readonly a: Endpoint;
  readonly b: Endpoint;
  /** The xswitch daemon, for xswitch candidates. */
  readonly xswitchd: Xswitchd | null;
  /** PID of the switching process (xswitchd node, ovs-vswitchd), null for the kernel bridge. */
  readonly switchPid: number | null;
  /** Every switching process when there are several (one per simulated host); CPU is summed over them. */
  readonly switchPids?: readonly number[];
  teardown(): Promise<void>;
}

export interface SetupContext {
  /** Run prefix ('xs' + 4 hex). */
  readonly prefix: string;
  /** Short tag for this instance (candidate letter + round), keeps namespaces unique within the run. */
  readonly tag: string;
  /** The run's temp dir. */
  readonly dir: string;
  /** Repository root (bin/xswitchd, dist/bench/extensions). */
  readonly root: string;
  /** Start xswitchd under --cpu-prof, writing into this directory. */
  readonly cpuProfileDir?: string;
}

export interface Candidate {
  readonly name: string;
  readonly label: string;
  readonly kind: 'bridge' | 'ovs' | 'xswitch';
  setup(ctx: SetupContext): Promise<Topology>;
}

const VM_A = { ip: '10.0.0.1', cidr: '10.0.0.1/24', mac: '02:00:00:00:00:01' };
const VM_B = { ip: '10.0.0.2', cidr: '10.0.0.2/24', mac: '02:00:00:00:00:02' };

/** Undo steps run in reverse order; each is tolerant so one failure does not stop the rest. */
export class Undo {
  private steps: (() => Promise<void>)[] = [];
  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    const errors: string[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(String(err));
      }
    }
    this.steps = [];
    if (errors.length > 0) process.stderr.write(`bench: teardown: ${errors.join('; ')}\n`);
  }
}

interface Names {
  readonly h: string;
  readonly a: string;
  readonly b: string;
}

async function namespaces(ctx: SetupContext, undo: Undo): Promise<Names> {
  const n = { h: `${ctx.prefix}-${ctx.tag}h`, a: `${ctx.prefix}-${ctx.tag}a`, b: `${ctx.prefix}-${ctx.tag}b` };
  for (const ns of [n.h, n.a, n.b]) {
    undo.push(() => delNs(ns));
    await addNs(ns);
  }
  return n;
}

/** Two veth pairs: ${P}a/${P}b in H, eth0 in each VM, addressed; tx off in the VMs if asked. */
async function vethPair(ctx: SetupContext, n: Names, vmTxOff: boolean): Promise<[string, string]> {
  const ha = `${ctx.prefix}a`;
  const hb = `${ctx.prefix}b`;
  await addVeth(n.h, ha, n.a, 'eth0');
  await addVeth(n.h, hb, n.b, 'eth0');
  await configureVmIf(n.a, 'eth0', VM_A.mac, VM_A.cidr);
  await configureVmIf(n.b, 'eth0', VM_B.mac, VM_B.cidr);
  if (vmTxOff) {
    await txOff(n.a, 'eth0');
    await txOff(n.b, 'eth0');
  }
  return [ha, hb];
}

function endpoints(n: Names, ifA: string, ifB: string): { a: Endpoint; b: Endpoint } {
  return {
    a: { ns: n.a, ifname: ifA, ip: VM_A.ip, mac: VM_A.mac },
    b: { ns: n.b, ifname: ifB, ip: VM_B.ip, mac: VM_B.mac },
  };
}

export async function guarded<T>(undo: Undo, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    await undo.run();
    throw err;
  }
}

export const bridgeCandidate: Candidate = {
  name: 'bridge',
  label: 'Linux bridge',
  kind: 'bridge',
  setup: (ctx) => {
    const undo = new Undo();
    return guarded(undo, async () => {
      const n = await namespaces(ctx, undo);
      await ip('-n', n.h, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
      await ip('-n', n.h, 'link', 'set', 'br0', 'up');
      const [ha, hb] = await vethPair(ctx, n, false);
      for (const h of [ha, hb]) await ip('-n', n.h, 'link', 'set', h, 'master', 'br0', 'up');
      return { candidate: 'bridge', ...endpoints(n, 'eth0', 'eth0'), xswitchd: null, switchPid: null,
        teardown: () => undo.run() };
    });
  },
};

function ovsCandidate(name: string, label: string, tso: boolean): Candidate {
  return {
    name,
    label,
    kind: 'ovs',
    setup: (ctx) => {
      const undo = new Undo();
      return guarded(undo, async () => {
        const n = await namespaces(ctx, undo);
        // Without userspace TSO, OVS reads plain frames: the VMs must not send GSO/partial-checksum ones.
        const [ha, hb] = await vethPair(ctx, n, !tso);
        for (const h of [ha, hb]) await ip('-n', n.h, 'link', 'set', h, 'up');
        const ovs = await startOvs(join(ctx.dir, `${ctx.tag}-ovs`), n.h, tso);
        undo.push(() => ovs.stop());
        await ovs.vsctl(
          'add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail_mode=standalone',
          '--', 'add-port', 'br0', ha, '--', 'add-port', 'br0', hb,
        );
        await ip('-n', n.h, 'link', 'set', 'br0', 'up');
        return { candidate: name, ...endpoints(n, 'eth0', 'eth0'), xswitchd: null, switchPid: ovs.vswitchdPid(),
          teardown: () => undo.run() };
      });
    },
  };
}

export const ovsNoTsoCandidate = ovsCandidate('ovs', 'OVS netdev', false);
export const ovsTsoCandidate = ovsCandidate('ovs-tso', 'OVS netdev + userspace TSO', true);

/** The switch document: MAC learning (built-in forwarding), one capture and one filter extension. */
function xswitchDocument(
  root: string,
  ports: readonly { name: string; iface: Record<string, string>; offload: boolean }[],
): unknown {
  return {
    host: 'bench',
    switches: [
      {
        name: 'sw0',
        extensions: [
          { name: 'count', path: join(root, 'dist', 'bench', 'extensions', 'capture-count.js'), enabled: true },
          { name: 'pass', path: join(root, 'dist', 'bench', 'extensions', 'filter-pass.js'), enabled: true },
        ],
        ports: ports.map((p) => ({ name: p.name, interface: p.iface, offload: p.offload, up: true })),
      },
    ],
  };
}

function xswitchCandidate(
  name: string, label: string, mode: 'tap' | 'veth', offload: boolean, env?: Readonly<Record<string, string>>,
): Candidate {
  return {
    name,
    label,
    kind: 'xswitch',
    setup: (ctx) => {
      const undo = new Undo();
      return guarded(undo, async () => {
        const n = await namespaces(ctx, undo);
        let ifA = 'eth0';
        let ifB = 'eth0';
        let hostA: string;
        let hostB: string;
        if (mode === 'veth') {
          // With offload the VMs' TSO super-frames and partial checksums cross whole, as on a TAP. The candidate
          // without it is the plain-frame A/B: the VMs send plain frames (tx off) and the switch sends plain ones.
          [hostA, hostB] = await vethPair(ctx, n, !offload);
          for (const h of [hostA, hostB]) await ip('-n', n.h, 'link', 'set', h, 'up');
        } else {
          hostA = ifA = `${ctx.prefix}t1`;
          hostB = ifB = `${ctx.prefix}t2`;
        }
        const d = await startXswitchd({
          root: ctx.root, netns: n.h, dir: ctx.dir, name: `${ctx.tag}-xs`, ...(env === undefined ? {} : { env }),
          ...(ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir }),
        });
        undo.push(() => d.stop());
        const iface = (h: string): Record<string, string> => (mode === 'tap' ? { tap: h } : { veth: h });
        const doc = xswitchDocument(ctx.root, [
          { name: 'vm1', iface: iface(hostA), offload },
          { name: 'vm2', iface: iface(hostB), offload },
        ]);
        const file = join(ctx.dir, `${ctx.tag}-xswitch.json`);
        writeFileSync(file, JSON.stringify(doc, null, 2));
        await d.xsctl('apply', '-f', file);
        if (mode === 'tap') {
          // xswitchd opened the TAPs in H; move them into the VMs (the fd stays attached).
          for (const [t, vm, addr] of [[hostA, n.a, VM_A], [hostB, n.b, VM_B]] as const) {
            await until(() => ifExists(n.h, t), 5000, `TAP ${t} in ${n.h}`);
            await ip('-n', n.h, 'link', 'set', t, 'netns', vm);
            await configureVmIf(vm, t, addr.mac, addr.cidr);
          }
        } else {
          for (const h of [hostA, hostB]) await disableIpv6(n.h, h).catch(() => undefined);
        }
        return { candidate: name, ...endpoints(n, ifA, ifB), xswitchd: d, switchPid: d.pid,
          teardown: () => undo.run() };
      });
    },
  };
}

export const xswitchTapCandidate = xswitchCandidate('xswitch-tap', 'xswitch TAP, vnet hdr', 'tap', true);
export const xswitchTapNoOffloadCandidate = xswitchCandidate(
  'xswitch-tap-no-offload', 'xswitch TAP, no vnet hdr', 'tap', false,
);
/** The TAP candidate with its batches as one read()/write() per frame instead of io_uring (A/B of the same build). */
export const xswitchTapSyscallsCandidate = xswitchCandidate(
  'xswitch-tap-syscalls', 'xswitch TAP, vnet hdr, read/write loop', 'tap', true, { XSWITCH_IO_URING: '0' },
);
export const xswitchVethCandidate = xswitchCandidate('xswitch-veth', 'xswitch AF_PACKET veth, vnet hdr', 'veth', true);
export const xswitchVethNoOffloadCandidate = xswitchCandidate(
  'xswitch-veth-no-offload', 'xswitch AF_PACKET veth, offloads off', 'veth', false,
);

export const ALL_CANDIDATES: readonly Candidate[] = [
  bridgeCandidate,
  ovsNoTsoCandidate,
  ovsTsoCandidate,
  xswitchTapCandidate,
  xswitchTapNoOffloadCandidate,
  xswitchTapSyscallsCandidate,
  xswitchVethCandidate,
  xswitchVethNoOffloadCandidate,
];
