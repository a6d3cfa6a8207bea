// bench/lib/report.ts: medians, the results table, and the ratios behind the targets (xswitch on TAP vs
// OVS userspace) plus every candidate's ratios to the Linux bridge.

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

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

function judged(name: string, value: number | null, op: 'ge' | 'lt', target: number): Ratio {
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
