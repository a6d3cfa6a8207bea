// bench/acl.ts: the switch's 64-byte forwarding rate with port ACLs and extended ACLs on a port, in one run:
// 0, 1, 100 and 10,000 port ACL rules, 10,000 extended ACL rules, and 10,000 extended rules with 50,000 tracked
// connections. In-process (two memory ports, batch 64) so that the data path, not the kernel, is measured; every
// frame crosses the rules (a -> b: out rules of a; b -> a: in rules of a). Rounds interleave the configurations and
// the median is printed with its ratio to the 0-rule rate. Prints figures; asserts nothing.
//   node dist/bench/acl.js [--rounds N] [--seconds S] [--daemon [--quick]]
// --daemon (root): the same rule sets on vm1 of a real xswitchd with two TAP VMs (bench/lib, as
// bench/forwarding.ts builds xswitch-tap), applied live with `xsctl apply`, and the trafgen 64-byte flood A -> B
// measured at B for each (50,000 connections opened first by a UDP sweep from A). Needs iproute2 and trafgen.

import { MAX_BODY_BYTES } from '../src/control/api.js';
import { memoryPort, type MemoryPort } from '../src/io/memory.js';
import { Switch } from '../src/dataplane/switch.js';
import type { PortConfig } from '../src/dataplane/switch-api.js';
import type { AclSpec } from '../src/policy/acl.js';
import type { ExtendedAclSpec } from '../src/policy/extended-acl.js';
import { emitEthernet } from '../src/wire/ethernet.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchExtensionsBuilt, isRoot, log, parseOrUsage, repoRoot, runMain } from './lib/cli.js';
import { FULL, QUICK, measurePps, warmUp } from './lib/measure.js';
import { run } from './lib/proc.js';
import { median } from './lib/report.js';
import { BenchRun, interleaved } from './lib/run.js';
import { xswitchTapCandidate } from './lib/topology.js';
import { xswitchdAvailable } from './lib/xswitchd.js';

const MAC_A = 0x02_00_00_00_00_0a;
const MAC_B = 0x02_00_00_00_00_0b;
const IP_A = 0x0a_00_00_01;
const IP_B = 0x0a_00_00_02;

/** A 64-byte (60 + FCS) IPv4/UDP frame. */
function udpFrame(dst: number, src: number, ipSrc: number, ipDst: number, sport: number, dport: number): Uint8Array {
  const f = new Uint8Array(60);
  emitEthernet({ dst, src, tags: [], etherType: 0x0800 }, f, 0);
  const dv = new DataView(f.buffer);
  f[14] = 0x45;
  dv.setUint16(16, 46); // total length: 20 + 8 + 18
  f[22] = 64;
  f[23] = 17;
  dv.setUint32(26, ipSrc);
  dv.setUint32(30, ipDst);
  dv.setUint16(34, sport);
  dv.setUint16(36, dport);
  dv.setUint16(38, 26);
  return f;
}

const ip = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** n port ACL rules in a handful of shapes, none matching the traffic (the full lookup runs for every frame). */
function portAcls(n: number): AclSpec[] {
  const out: AclSpec[] = [];
  for (let i = 0; i < n; i++) {
    const base = (0xac10_0000 + i * 256) >>> 0; // 172.16.0.0 + i * 256
    switch (i % 4) {
      case 0: out.push({ direction: 'both', action: 'deny', remote: `${ip(base)}/24` }); break;
      case 1: out.push({ direction: 'in', action: 'deny', remote: `${ip(base + 7)}/32` }); break;
      case 2: out.push({ direction: 'out', action: 'meter', remote: `${ip(base)}/24` }); break;
      default: out.push({ direction: 'both', action: 'allow', local: `${ip(base + 9)}/32`, remote: `${ip(base)}/24` }); break;
    }
  }
  return out;
}

/** n extended rules in a handful of shapes not matching the traffic, then (optionally) a stateful allow. */
function extendedAcls(n: number, stateful: boolean): ExtendedAclSpec[] {
  const out: ExtendedAclSpec[] = [];
  for (let i = 0; i < n; i++) {
    const base = (0xc0a8_0000 + i * 4) >>> 0; // 192.168.0.0 + 4i
    const weight = 1000 + i;
    switch (i % 4) {
      // short rules (a smaller document for --daemon); ports 60000+ match no traffic
      case 0: out.push({ direction: 'in', action: 'deny', weight, protocol: 'udp', localPort: 60000 + (i % 5000) }); break;
      case 1: out.push({ direction: 'out', action: 'deny', weight, protocol: 'tcp', remotePort: 60000 + (i % 5000) }); break;
      case 2: out.push({ direction: 'both', action: 'deny', weight, protocol: 'udp', remoteAddress: `${ip(base)}/32` }); break;
      default: out.push({ direction: 'in', action: 'allow', weight, protocol: 'tcp', remoteAddress: `${ip(base)}/32`, localPort: '8000-8099' }); break;
    }
  }
  if (stateful) {
    out.push({ direction: 'out', action: 'allow', weight: 10, protocol: 'udp', stateful: true, idleTimeoutSec: 3600 });
    out.push({ direction: 'out', action: 'allow', weight: 11, protocol: 'icmp', stateful: true }); // pings (warm-up)
    out.push({ direction: 'in', action: 'deny', weight: 5 });
  }
  return out;
}

interface Config {
  readonly name: string;
  readonly acls: AclSpec[];
  readonly ext: ExtendedAclSpec[];
  /** Tracked connections to open first (UDP from a, distinct source ports x addresses). */
  readonly connections: number;
}

const CONFIGS: Config[] = [
  { name: '0 rules', acls: [], ext: [], connections: 0 },
  { name: '1 ACL rule', acls: portAcls(1), ext: [], connections: 0 },
  { name: '100 ACL rules', acls: portAcls(100), ext: [], connections: 0 },
  { name: '10,000 ACL rules', acls: portAcls(10_000), ext: [], connections: 0 },
  { name: '10,000 extended ACL rules', acls: [], ext: extendedAcls(10_000, false), connections: 0 },
  { name: '10,000 extended + 50,000 connections', acls: [], ext: extendedAcls(10_000, true), connections: 50_000 },
];

interface Rig {
  sw: Switch;
  a: MemoryPort;
  b: MemoryPort;
  ab: Uint8Array[];
  ba: Uint8Array[];
}

function setup(c: Config): Rig {
  const sw = new Switch({ name: 'bench' });
  const a = memoryPort('a', { keepSent: false });
  const b = memoryPort('b', { keepSent: false });
  const cfg = (name: string, o: Partial<PortConfig> = {}): PortConfig => ({ name, kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0, ...o });
  sw.addPort(a, cfg('a', { acls: c.acls, extendedAcls: c.ext }));
  sw.addPort(b, cfg('b'));
  // 1024 flows each way; with connections, the flows are among the tracked ones (b -> a admitted by conntrack)
  const ab: Uint8Array[] = [];
  const ba: Uint8Array[] = [];
  for (let k = 0; k < 1024; k++) {
    const n = c.connections > 0 ? Math.floor((k * c.connections) / 1024) : k;
    const sport = 1024 + (n % 50_000);
    const dst = (IP_B + Math.floor(n / 50_000)) >>> 0;
    ab.push(udpFrame(MAC_B, MAC_A, IP_A, dst, sport, 53));
    ba.push(udpFrame(MAC_A, MAC_B, dst, IP_A, 53, sport));
  }
  if (c.connections > 0) {
    for (let n = 0; n < c.connections; n += 64) {
      for (let k = n; k < Math.min(c.connections, n + 64); k++) a.inject(udpFrame(MAC_B, MAC_A, IP_A, (IP_B + Math.floor(k / 50_000)) >>> 0, 1024 + (k % 50_000), 53));
      sw.poll();
    }
    const st = sw.portAcl(sw.portId('a')!);
    if (st?.connections?.size !== c.connections) throw new Error(`expected ${c.connections} connections, have ${JSON.stringify(st?.connections)}`);
  }
  return { sw, a, b, ab, ba };
}

function measure(r: Rig, seconds: number): number {
  let k = 0;
  const step = (): void => {
    for (let j = 0; j < 32; j++) {
      r.a.inject(r.ab[k]!);
      r.b.inject(r.ba[k]!);
      k = (k + 1) & 1023;
    }
    r.sw.poll();
  };
  for (let i = 0; i < 3000; i++) step(); // warm up (JIT, MAC learning)
  const t0 = performance.now();
  const f0 = r.sw.frameTotals().forwarded;
  const d0 = r.sw.frameTotals().dropped;
  let t = t0;
  while (t - t0 < seconds * 1000) {
    for (let i = 0; i < 200; i++) step();
    t = performance.now();
  }
  const frames = r.sw.frameTotals().forwarded - f0;
  const dropped = r.sw.frameTotals().dropped - d0;
  if (dropped > 0) throw new Error(`${dropped} frames dropped: the rules should pass this traffic`);
  return frames / ((t - t0) / 1000);
}


/**
 * The rule sets on vm1 of a real xswitchd (TAP ports), applied live one after another, rounds interleaved; the
 * 64-byte rate A -> B from trafgen. The flood (UDP A -> 10.0.0.99) matches no rule but crosses vm1's out
 * rules (and, with the stateful set, its one tracked connection).
 */
async function daemonMode(rounds: number, quick: boolean): Promise<number> {
  if (!isRoot('--daemon needs root (network namespaces)')) return 2;
  const root = repoRoot();
  if (!xswitchdAvailable(root) || !benchExtensionsBuilt(root)) throw new Error('xswitchd is not built (npm run build)');
  const r = new BenchRun().trapSignals();
  const { prefix, dir } = r;
  const d = quick ? QUICK : FULL;
  const results = CONFIGS.map(() => [] as number[]);
  const notes: string[] = [];
  try {
    const topo = await xswitchTapCandidate.setup({ prefix, tag: 'a0', dir, root });
    r.active = topo;
    const docFile = join(dir, 'a0-xswitch.json');
    const base = JSON.parse(readFileSync(docFile, 'utf8')) as { switches: { ports: Record<string, unknown>[] }[] };
    const texts = CONFIGS.map((c) => {
      const doc = structuredClone(base);
      const vm1 = doc.switches[0]!.ports.find((p) => p['name'] === 'vm1')!;
      if (c.acls.length > 0) vm1['acls'] = c.acls;
      if (c.ext.length > 0) vm1['extendedAcls'] = c.ext;
      return JSON.stringify(doc);
    });
    await warmUp(topo);
    await interleaved(rounds, CONFIGS, async (c, round, i) => {
      if (texts[i]!.length > MAX_BODY_BYTES) {
        if (round === 0) notes.push(`${c.name}: skipped, the document (${(texts[i]!.length / 1e6).toFixed(2)} MB) is over the API's ${MAX_BODY_BYTES >> 20} MiB body limit`);
        return;
      }
      const file = join(dir, `cfg-${i}.json`);
      writeFileSync(file, texts[i]!);
      await topo.xswitchd!.xsctl('apply', '-f', file);
      if (c.connections > 0) {
        // open the connections: one UDP datagram per (port, address) from A, through vm1's stateful out rule
        // paced: a TAP queue that overflows (ENOBUFS) is waited on, so every datagram reaches the switch
        const py = `import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(${c.connections}):\n    for _ in range(200):\n        try:\n            s.sendto(b'x', ('${topo.b.ip}', 1 + i))\n            break\n        except OSError:\n            time.sleep(0.002)\n    if i % 256 == 255:\n        time.sleep(0.002)\n`;
        await run('ip', ['netns', 'exec', topo.a.ns, 'python3', '-c', py], { timeoutMs: 60_000 });
        const st = JSON.parse(await topo.xswitchd!.xsctl('--json', 'acl', 'sw0', 'vm1')) as { connections: { size: number } | null };
        if (round === 0) notes.push(`${c.name}: ${st.connections?.size ?? 0} connections tracked before the flood`);
      }
      await warmUp(topo);
      const p = await measurePps(topo, d, dir);
      results[i]!.push(p.pps);
      log(`round ${round} ${c.name}: ${(p.pps / 1000).toFixed(0)} kpps`);
    }, () => r.interrupted);
  } finally {
    await r.cleanup();
  }
  const baseRate = median(results[0]!) ?? NaN;
  process.stdout.write(`\nxswitch ACL benchmark (daemon): trafgen 64-byte flood A -> B through xswitchd TAP ports, rules on vm1 (applied live); ` +
    `${rounds} round(s), median; node ${process.version}\n\n`);
  process.stdout.write(`${'configuration'.padEnd(40)} ${'kpps'.padStart(8)}  ${'vs 0 rules'.padStart(10)}\n`);
  CONFIGS.forEach((c, i) => {
    const xs = results[i]!;
    if (xs.length === 0) return void process.stdout.write(`${c.name.padEnd(40)} ${'-'.padStart(8)}\n`);
    const m = median(xs)!;
    process.stdout.write(`${c.name.padEnd(40)} ${(m / 1000).toFixed(0).padStart(8)}  ${`${((m / baseRate) * 100).toFixed(1)}%`.padStart(10)}\n`);
  });
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  return 0;
}

const USAGE = 'usage: node dist/bench/acl.js [--rounds N] [--seconds S] [--daemon [--quick]]';

async function main(): Promise<number> {
  let seconds = 1;
  let daemon = false;
  const parsed = parseOrUsage(process.argv.slice(2), {
    flags: ['rounds', 'quick'],
    rounds: { default: 3, min: 1, max: 20 },
    quickShortens: false,
    extra: (a, argv, i) => {
      if (a === '--seconds') {
        seconds = Math.max(0.2, Math.min(10, Number(argv[i + 1])));
        return i + 1;
      }
      if (a !== '--daemon') return null;
      daemon = true;
      return i;
    },
  }, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { rounds, quick } = parsed;
  if (daemon) return daemonMode(rounds, quick);
  const setupStart = performance.now();
  const rigs = CONFIGS.map((c) => {
    const t = performance.now();
    const r = setup(c);
    process.stderr.write(`bench: ${c.name}: set up in ${((performance.now() - t) / 1000).toFixed(2)} s\n`);
    return r;
  });
  process.stderr.write(`bench: setup ${((performance.now() - setupStart) / 1000).toFixed(1)} s; ${rounds} round(s) x ${seconds} s\n`);
  const samples = CONFIGS.map(() => [] as number[]);
  await interleaved(rounds, rigs, (rig, _round, i) => void samples[i]!.push(measure(rig, seconds)));
  const base = median(samples[0]!)!;
  process.stdout.write(`\nxswitch ACL benchmark: 64-byte IPv4/UDP frames a <-> b through Switch.poll (memory ports, batch 64), ` +
    `rules on port a; ${rounds} round(s) x ${seconds} s, median; node ${process.version}\n\n`);
  process.stdout.write(`${'configuration'.padEnd(40)} ${'Mframes/s'.padStart(10)}  ${'vs 0 rules'.padStart(10)}  tuples(in/out)  connections\n`);
  CONFIGS.forEach((c, i) => {
    const m = median(samples[i]!)!;
    const st = rigs[i]!.sw.portAcl(rigs[i]!.sw.portId('a')!);
    const tuples = st === null ? '-' : `${st.extendedTuples.in}/${st.extendedTuples.out}`;
    const conns = st?.connections === null || st === null ? '-' : `${st.connections.size} (limit ${st.connections.limit})`;
    process.stdout.write(`${c.name.padEnd(40)} ${(m / 1e6).toFixed(2).padStart(10)}  ${`${((m / base) * 100).toFixed(1)}%`.padStart(10)}  ${tuples.padEnd(14)}  ${conns}\n`);
  });
  for (const r of rigs) r.sw.close();
  return 0;
}

runMain(main);
