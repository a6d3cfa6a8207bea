// bench/lib/report.ts: medians, the results table, and the ratios behind the targets (xswitch on TAP vs
// OVS userspace) plus every candidate's ratios to the Linux bridge; the machine line and the JSON file that every
// benchmark writes.
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Durations, PpsResult } from './measure.js';

export interface Samples {
  tcpGbps: number[];
  pps: number[];
  rttUs: number[];
  senderTxPps: number[];
  senderTxDropPps: number[];
  /** Switch process CPU (cores) during each 64-byte window; empty for the kernel bridge. */
  switchCpu: number[];
  /** Whole-machine busy share (0..1) during each 64-byte window. */
  machineBusy: number[];
  /** 1-minute load average when each round of this candidate started (the machine may be shared). */
  loadAvg: number[];
  /** Machine busy share (0..1, all CPUs) over the 500 ms just before each round of this candidate. */
  busyBefore: number[];
  errors: string[];
  /** xswitch only: extension stats and switch counters after each round's 64-byte phase. */
  xswitch: unknown[];
}

export interface CandidateResult {
  readonly name: string;
  readonly label: string;
  readonly samples: Samples;
  readonly median: { tcpGbps: number | null; kpps: number | null; rttUs: number | null };
}

export interface Ratio {
  readonly name: string;
  readonly value: number | null;
  /** 'ge' the ratio must be >= target, 'lt' below it. */
  readonly op: 'ge' | 'lt';
  readonly target: number;
  readonly status: 'met' | 'missed' | 'n/a';
}

export function newSamples(): Samples {
  return {
    tcpGbps: [], pps: [], rttUs: [], senderTxPps: [], senderTxDropPps: [], switchCpu: [], machineBusy: [],
    loadAvg: [], busyBefore: [], errors: [], xswitch: [],
  };
}

/** Keep one 64-byte phase's figures. */
export function pushPps(s: Samples, p: PpsResult): void {
  s.pps.push(p.pps);
  s.senderTxPps.push(p.senderTxPps);
  s.senderTxDropPps.push(p.senderTxDropPps);
  if (p.switchCpu !== null) s.switchCpu.push(p.switchCpu);
  s.machineBusy.push(p.machineBusy);
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarise(name: string, label: string, s: Samples): CandidateResult {
  const pps = median(s.pps);
  return {
    name,
    label,
    samples: s,
    median: { tcpGbps: median(s.tcpGbps), kpps: pps === null ? null : pps / 1000, rttUs: median(s.rttUs) },
  };
}

function fmt(x: number | null, digits: number): string {
  return x === null ? '-' : x.toFixed(digits);
}

/** Diagnostics for the 64-byte phase: how busy the switch process was, and frames per CPU-second. */
export function formatPpsDiagnostics(results: readonly CandidateResult[]): string {
  const head = ['candidate', 'switch CPU', 'kpps per core', 'machine busy', 'sender tx kpps', 'sender drop kpps'];
  const rows = results.map((r) => {
    const cpu = median(r.samples.switchCpu);
    const perCore = median(r.samples.pps.map((p, i) => {
      const c = r.samples.switchCpu[i];
      return c === undefined || c <= 0 ? Number.NaN : p / c;
    }).filter((x) => Number.isFinite(x)));
    const k = (xs: readonly number[]): string => fmt(median(xs) === null ? null : median(xs)! / 1000, 0);
    return [
      r.name,
      cpu === null ? '-' : `${(cpu * 100).toFixed(0)}%`,
      perCore === null ? '-' : (perCore / 1000).toFixed(0),
      median(r.samples.machineBusy) === null ? '-' : `${(median(r.samples.machineBusy)! * 100).toFixed(0)}%`,
      k(r.samples.senderTxPps),
      k(r.samples.senderTxDropPps),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    '64-byte phase (median): switch process CPU (100% = one core), received kpps per switch core, all-CPU busy share, A\'s tx and tx_dropped',
    line(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
  ].join('\n');
}

export function formatTable(results: readonly CandidateResult[]): string {
  const head = ['candidate', 'TCP Gbit/s', '64B kpps', 'RTT us', 'rounds'];
  const rows = results.map((r) => [
    `${r.name} (${r.label})`,
    fmt(r.median.tcpGbps, 2),
    fmt(r.median.kpps, 0),
    fmt(r.median.rttUs, 0),
    `${Math.max(r.samples.tcpGbps.length, r.samples.pps.length, r.samples.rttUs.length)}` +
      (r.samples.errors.length > 0 ? ` (${r.samples.errors.length} err)` : ''),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

export function judged(name: string, value: number | null, op: 'ge' | 'lt', target: number): Ratio {
  const status = value === null ? 'n/a' : (op === 'ge' ? value >= target : value < target) ? 'met' : 'missed';
  return { name, value, op, target, status };
}

/** The three targets: xswitch TAP (learning + capture + filter) against OVS userspace. */
export function targetRatios(byName: ReadonlyMap<string, CandidateResult>): Ratio[] {
  const xs = byName.get('xswitch-tap')?.median;
  const ovs = byName.get('ovs')?.median ?? byName.get('ovs-tso')?.median;
  const ovsTso = byName.get('ovs-tso')?.median;
  return [
    judged('64B rate: xswitch-tap / ovs', ratio(xs?.kpps ?? null, ovs?.kpps ?? null), 'ge', 1.5),
    judged('TCP: xswitch-tap (vnet hdr) / ovs-tso', ratio(xs?.tcpGbps ?? null, ovsTso?.tcpGbps ?? null), 'ge', 1.0),
    judged('RTT: xswitch-tap / ovs', ratio(xs?.rttUs ?? null, ovs?.rttUs ?? null), 'lt', 1.0),
  ];
}

export interface BridgeRatio {
  readonly name: string;
  readonly tcp: number | null;
  readonly pps: number | null;
  readonly rtt: number | null;
}

export function bridgeRatios(results: readonly CandidateResult[]): BridgeRatio[] {
  const br = results.find((r) => r.name === 'bridge')?.median;
  if (br === undefined) return [];
  return results
    .filter((r) => r.name !== 'bridge')
    .map((r) => ({
      name: r.name,
      tcp: ratio(r.median.tcpGbps, br.tcpGbps),
      pps: ratio(r.median.kpps, br.kpps),
      rtt: ratio(r.median.rttUs, br.rttUs),
    }));
}

export function formatRatios(targets: readonly Ratio[], bridge: readonly BridgeRatio[]): string {
  const out = ['targets (xswitch TAP with MAC learning + capture + filter):'];
  for (const t of targets) {
    const cond = t.op === 'ge' ? `>= ${t.target.toFixed(1)}` : `< ${t.target.toFixed(1)}`;
    out.push(`  ${t.name.padEnd(40)} ${fmt(t.value, 2).padStart(6)}  (target ${cond})  ${t.status}`);
  }
  if (bridge.length > 0) {
    out.push('ratios to the Linux bridge (TCP, 64B rate, RTT):');
    for (const b of bridge) {
      out.push(`  ${b.name.padEnd(24)} TCP ${fmt(b.tcp, 2).padStart(5)}  64B ${fmt(b.pps, 2).padStart(5)}  ` +
        `RTT ${fmt(b.rtt, 2).padStart(5)}`);
    }
  }
  return out.join('\n');
}

// ---- encapsulation benchmark (bench/encap.ts): two simulated hosts, VM A on host 1 -> VM B on host 2 ----

/** Host 1's frames on the underlay during the TCP phase: bytes per frame says whether super-frames crossed. */
export interface UnderlaySamples {
  /** rx bytes / rx packets at host 1's underlay port over each TCP phase. */
  bytesPerFrame: number[];
  /** Underlay frames per second in each TCP phase. */
  framesPerSec: number[];
}

/** `mtuFrameBytes`: the largest frame the underlay MTU allows (MTU + 14); a larger average means super-frames. */
export function formatEncapTable(
  results: readonly CandidateResult[], underlay: ReadonlyMap<string, UnderlaySamples>, mtuFrameBytes: number,
): string {
  const head = ['candidate', 'TCP Gbit/s', '64B kpps', 'underlay B/frame (TCP)', 'underlay kfps (TCP)', 'rounds'];
  const rows = results.map((r) => {
    const u = underlay.get(r.name);
    const bpf = u === undefined ? null : median(u.bytesPerFrame);
    const fps = u === undefined ? null : median(u.framesPerSec);
    return [
      `${r.name} (${r.label})`,
      fmt(r.median.tcpGbps, 2),
      fmt(r.median.kpps, 0),
      bpf === null ? '-' : `${bpf.toFixed(0)} ${bpf > mtuFrameBytes ? 'super-frames' : 'MTU-size'}`,
      fps === null ? '-' : (fps / 1000).toFixed(1),
      `${Math.max(r.samples.tcpGbps.length, r.samples.pps.length)}` +
        (r.samples.errors.length > 0 ? ` (${r.samples.errors.length} err)` : ''),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The encapsulation targets for each xswitch encapsulation, plus ratios against the kernel's vxlan. */
export function encapRatios(
  byName: ReadonlyMap<string, CandidateResult>, encaps: readonly string[],
): { targets: Ratio[]; info: { name: string; value: number | null }[] } {
  const m = (n: string): CandidateResult['median'] | undefined => byName.get(n)?.median;
  const plain = m('xswitch-plain');
  const ovs = m('ovs-gre');
  const kvx = m('kernel-vxlan');
  const targets: Ratio[] = [];
  const info: { name: string; value: number | null }[] = [];
  for (const e of encaps) {
    const x = m(e);
    if (x === undefined) continue;
    targets.push(judged(`TCP: ${e} / xswitch-plain`, ratio(x.tcpGbps, plain?.tcpGbps ?? null), 'ge', 0.8));
    targets.push(judged(`TCP: ${e} / ovs-gre`, ratio(x.tcpGbps, ovs?.tcpGbps ?? null), 'ge', 5));
    targets.push(judged(`64B: ${e} / ovs-gre`, ratio(x.kpps, ovs?.kpps ?? null), 'ge', 3));
    info.push({ name: `TCP: ${e} / kernel-vxlan`, value: ratio(x.tcpGbps, kvx?.tcpGbps ?? null) });
    info.push({ name: `64B: ${e} / kernel-vxlan`, value: ratio(x.kpps, kvx?.kpps ?? null) });
  }
  const br = m('kernel-bridge');
  for (const n of ['xswitch-plain', 'ovs-gre', 'kernel-vxlan']) {
    const x = m(n);
    if (x === undefined || br === undefined) continue;
    info.push({ name: `TCP: ${n} / kernel-bridge`, value: ratio(x.tcpGbps, br.tcpGbps) });
    info.push({ name: `64B: ${n} / kernel-bridge`, value: ratio(x.kpps, br.kpps) });
  }
  return { targets, info };
}

export function formatEncapRatios(r: { targets: readonly Ratio[]; info: readonly { name: string; value: number | null }[] }): string {
  const out = ['targets (issue 3: encapsulated VM-to-VM across two hosts):'];
  for (const t of r.targets) {
    const cond = t.op === 'ge' ? `>= ${t.target.toFixed(1)}` : `< ${t.target.toFixed(1)}`;
    out.push(`  ${t.name.padEnd(38)} ${fmt(t.value, 2).padStart(6)}  (target ${cond})  ${t.status}`);
  }
  if (r.info.length > 0) {
    out.push('other ratios (no target):');
    for (const i of r.info) out.push(`  ${i.name.padEnd(38)} ${fmt(i.value, 2).padStart(6)}`);
  }
  return out.join('\n');
}

/** The load average and busy share before the measurements (a line ending in a newline), or '' without samples. */
export function formatMachine(results: readonly CandidateResult[]): string {
  const loads = results.flatMap((x) => x.samples.loadAvg);
  const busy = results.flatMap((x) => x.samples.busyBefore);
  if (loads.length === 0) return '';
  return `machine: ${availableParallelism()} CPUs; load average (1 min) at each measurement ` +
    `${Math.min(...loads).toFixed(2)} .. ${Math.max(...loads).toFixed(2)}` +
    (busy.length > 0 ? `; busy just before ${(Math.min(...busy) * 100).toFixed(0)}% .. ${(Math.max(...busy) * 100).toFixed(0)}%` : '') +
    ' (other work on the machine skews every figure)\n';
}

/** The fields every benchmark's JSON document starts with. */
export function jsonHead(kernel: string, rounds: number, quick: boolean, durations: Durations): Record<string, unknown> {
  return { date: new Date().toISOString(), kernel, node: process.version, rounds, quick, durations };
}

/** Write the JSON document (2-space indent) and say so on stdout. */
export function writeJson(path: string, doc: unknown): void {
  writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`results written to ${path}\n`);
}
