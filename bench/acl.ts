// bench/acl.ts: the switch's 64-byte forwarding rate with port ACLs and extended ACLs on a port, in one run:
// 0, 1, 100 and 10,000 port ACL rules, 10,000 extended ACL rules, and 10,000 extended rules with 50,000 tracked
// connections. In-process (two memory ports, batch 64) so that the data path, not the kernel, is measured; every
// frame crosses the rules (a -> b: out rules of a; b -> a: in rules of a). Rounds interleave the configurations and
// the median is printed with its ratio to the 0-rule rate. Prints figures; asserts nothing.
//   node dist/bench/acl.js [--rounds N] [--seconds S]

import { memoryPort, type MemoryPort } from '../src/io/memory.js';
import { Switch } from '../src/dataplane/switch.js';
import type { PortConfig } from '../src/dataplane/switch-api.js';
import type { AclSpec } from '../src/policy/acl.js';
import type { ExtendedAclSpec } from '../src/policy/extended-acl.js';
import { emitEthernet } from '../src/wire/ethernet.js';

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
      case 0: out.push({ direction: 'in', action: 'deny', weight, protocol: 'udp', remoteAddress: `${ip(base)}/32`, localPort: 1 + (i % 1000) }); break;
      case 1: out.push({ direction: 'out', action: 'deny', weight, protocol: 'tcp', remoteAddress: `${ip(base)}/30`, remotePort: 1 + (i % 1000) }); break;
      case 2: out.push({ direction: 'both', action: 'deny', weight, protocol: 'udp', remoteAddress: `${ip(base)}/32` }); break;
      default: out.push({ direction: 'in', action: 'allow', weight, protocol: 'tcp', remoteAddress: `${ip(base)}/32`, localPort: '8000-8099' }); break;
    }
  }
  if (stateful) {
    out.push({ direction: 'out', action: 'allow', weight: 10, protocol: 'udp', stateful: true, idleTimeoutSec: 3600 });
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function main(): void {
  const argv = process.argv.slice(2);
  let rounds = 3;
  let seconds = 1;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') rounds = Math.max(1, Math.min(20, Number(argv[++i])));
    else if (argv[i] === '--seconds') seconds = Math.max(0.2, Math.min(10, Number(argv[++i])));
    else {
      process.stderr.write('usage: node dist/bench/acl.js [--rounds N] [--seconds S]\n');
      process.exit(2);
    }
  }
  const setupStart = performance.now();
  const rigs = CONFIGS.map((c) => {
    const t = performance.now();
    const r = setup(c);
    process.stderr.write(`bench: ${c.name}: set up in ${((performance.now() - t) / 1000).toFixed(2)} s\n`);
    return r;
  });
  process.stderr.write(`bench: setup ${((performance.now() - setupStart) / 1000).toFixed(1)} s; ${rounds} round(s) x ${seconds} s\n`);
  const samples = CONFIGS.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < CONFIGS.length; j++) {
      const i = (j + round) % CONFIGS.length;
      samples[i]!.push(measure(rigs[i]!, seconds));
    }
  }
  const base = median(samples[0]!);
  process.stdout.write(`\nxswitch ACL benchmark: 64-byte IPv4/UDP frames a <-> b through Switch.poll (memory ports, batch 64), ` +
    `rules on port a; ${rounds} round(s) x ${seconds} s, median; node ${process.version}\n\n`);
  process.stdout.write(`${'configuration'.padEnd(40)} ${'Mframes/s'.padStart(10)}  ${'vs 0 rules'.padStart(10)}  tuples(in/out)  connections\n`);
  CONFIGS.forEach((c, i) => {
    const m = median(samples[i]!);
    const st = rigs[i]!.sw.portAcl(rigs[i]!.sw.portId('a')!);
    const tuples = st === null ? '-' : `${st.extendedTuples.in}/${st.extendedTuples.out}`;
    const conns = st?.connections === null || st === null ? '-' : `${st.connections.size} (limit ${st.connections.limit})`;
    process.stdout.write(`${c.name.padEnd(40)} ${(m / 1e6).toFixed(2).padStart(10)}  ${`${((m / base) * 100).toFixed(1)}%`.padStart(10)}  ${tuples.padEnd(14)}  ${conns}\n`);
  });
  for (const r of rigs) r.sw.close();
}

main();
