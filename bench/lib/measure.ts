// bench/lib/measure.ts: the three measurements, all bounded by count and `timeout`: TCP throughput (iperf3),
// 64-byte frame rate (trafgen in VM A, counted at VM B's rx_packets), idle RTT (ping). A -> B in every case.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuTimes } from './machine.js';
import { ifStats } from './netns.js';
import { Background, run, sleep, until } from './proc.js';
import type { Topology } from './topology.js';

export interface Durations {
  /** iperf3 -t seconds. */
  readonly tcpSeconds: number;
  /** trafgen: ramp-up before the first counter sample, then the measured window. */
  readonly ppsWarmupMs: number;
  readonly ppsWindowMs: number;
  /** ping count at 20 ms intervals. */
  readonly pingCount: number;
}

export const FULL: Durations = { tcpSeconds: 3, ppsWarmupMs: 700, ppsWindowMs: 3000, pingCount: 50 };
export const QUICK: Durations = { tcpSeconds: 1, ppsWarmupMs: 400, ppsWindowMs: 1000, pingCount: 20 };

/** Wait until A reaches B (ARP resolved, MACs learned): bounded pings. */
export async function warmUp(t: Topology, timeoutMs = 10_000): Promise<void> {
  await until(
    async () => {
      const r = await run('ip', ['netns', 'exec', t.a.ns, 'ping', '-c', '1', '-W', '1', t.b.ip], { timeoutMs: 3000 });
      return r.code === 0;
    },
    timeoutMs,
    `${t.candidate}: ping ${t.b.ip}`,
    100,
  );
  // a few more so both directions are learned and caches are warm
  await run('ip', ['netns', 'exec', t.a.ns, 'ping', '-c', '5', '-i', '0.02', '-W', '1', '-q', t.b.ip], {
    timeoutMs: 5000,
  });
}

/** Idle RTT: ping -c N -i 0.02, the average in microseconds. */
export async function measureRtt(t: Topology, d: Durations): Promise<number> {
  const r = await run(
    'ip',
    ['netns', 'exec', t.a.ns, 'timeout', '15', 'ping', '-c', String(d.pingCount), '-i', '0.02', '-W', '1', '-q',
      '-w', '10', t.b.ip],
    { timeoutMs: 20_000 },
  );
  const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  if (m === null || m[2] === undefined) throw new Error(`ping: no rtt line: ${r.stdout.trim()} ${r.stderr.trim()}`);
  return Number.parseFloat(m[2]) * 1000;
}

/** TCP throughput A -> B with iperf3, Gbit/s at the receiver. */
export async function measureTcp(t: Topology, d: Durations): Promise<number> {
  const server = new Background('ip', [
    'netns', 'exec', t.b.ns, 'timeout', '12', 'iperf3', '-s', '-1', '--forceflush', '-B', t.b.ip,
  ]);
  try {
    await server.waitFor((out) => out.includes('Server listening'), 5000, 'iperf3 server');
    const r = await run(
      'ip',
      ['netns', 'exec', t.a.ns, 'timeout', '8', 'iperf3', '-c', t.b.ip, '-t', String(d.tcpSeconds),
        '--connect-timeout', '2000', '-J'],
      { timeoutMs: 12_000 },
    );
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.stdout);
    } catch {
      throw new Error(`iperf3: no JSON (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    }
    const p = parsed as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
    if (p.error !== undefined) throw new Error(`iperf3: ${p.error}`);
    const bps = p.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error('iperf3: no end.sum_received');
    return bps / 1e9;
  } finally {
    await server.stop('SIGTERM', 3000);
  }
}

export interface PpsResult {
  /** 64-byte frames per second received by B (rx_packets delta over the window). */
  readonly pps: number;
  /** Frames A's interface sent and dropped in the same window (diagnostics). */
  readonly senderTxPps: number;
  readonly senderTxDropPps: number;
  /** CPU used by the switch process (all threads) in the window, in cores (1.0 = one core busy); null if none. */
  readonly switchCpu: number | null;
  /** Busy share of the whole machine (all CPUs, 0..1) in the window: idle left over means nobody was saturated. */
  readonly machineBusy: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process (all its threads), in seconds; null if it cannot be read. */
function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the ')' that closes comm: state is field 3, utime 14, stime 15
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLOCK_TICKS : null;
  } catch {
    return null;
  }
}

/** utime + stime summed over several processes; null if there are none or one cannot be read. */
function cpuOf(pids: readonly number[]): number | null {
  if (pids.length === 0) return null;
  let sum = 0;
  for (const pid of pids) {
    const c = processCpuSeconds(pid);
    if (c === null) return null;
    sum += c;
  }
  return sum;
}

/** 60 bytes on the wire + FCS = 64: UDP from A to a non-local address on B's subnet, to B's MAC. B's kernel
 *  drops it at the routing step (forwarding off), so the receiver costs little and the switch is measured. */
function trafgenConfig(t: Topology): string {
  const mac = (s: string): string =>
    s.split(':').map((x) => `0x${x}`).join(', ');
  const ipb = (s: string): string => s.split('.').join(', ');
  return [
    '{',
    `  ${mac(t.b.mac)}, ${mac(t.a.mac)}, 0x08, 0x00,`,
    `  0x45, 0x00, 0x00, 46, 0x00, 0x00, 0x40, 0x00, 64, 17, csumip(14, 33),`,
    `  ${ipb(t.a.ip)}, 10, 0, 0, 99,`,
    '  0x30, 0x39, 0x00, 0x09, 0x00, 26, 0x00, 0x00,',
    '  fill(0x00, 18)',
    '}',
    '',
  ].join('\n');
}

/** Counter sample with the time taken in the middle of the netlink call. */
async function sample(ns: string, ifname: string): Promise<{ rx: number; tx: number; txDrop: number; at: number }> {
  const t0 = performance.now();
  const s = await ifStats(ns, ifname);
  const t1 = performance.now();
  return { rx: s.rxPackets, tx: s.txPackets, txDrop: s.txDropped, at: (t0 + t1) / 2 };
}

/** 64-byte frame rate: trafgen (one sender process) floods A -> B; pps from B's rx_packets over the window. */
export async function measurePps(t: Topology, d: Durations, dir: string): Promise<PpsResult> {
  const cfg = join(dir, `${t.candidate}-${t.a.ns}.trafgen`);
  writeFileSync(cfg, trafgenConfig(t));
  const limitS = Math.ceil((d.ppsWarmupMs + d.ppsWindowMs) / 1000) + 3;
  // At most 2 M frames per second for limitS: --num bounds the flood even if the timeout were lost.
  const num = 2_000_000 * limitS;
  const gen = new Background('ip', [
    'netns', 'exec', t.a.ns, 'timeout', '-s', 'INT', '-k', '2', String(limitS), 'trafgen', '--dev', t.a.ifname,
    '--conf', cfg, '--num', String(num), '--cpus', '1', '--no-sock-mem', '--notouch-irq', '--no-cpu-stats',
  ]);
  try {
    await sleep(d.ppsWarmupMs);
    if (!gen.running) throw new Error(`trafgen exited early: ${gen.stderr.trim().slice(0, 300)}`);
    const pids = t.switchPids ?? (t.switchPid === null ? [] : [t.switchPid]);
    const c0 = cpuOf(pids);
    const m0 = cpuTimes();
    const b0 = await sample(t.b.ns, t.b.ifname);
    const a0 = await sample(t.a.ns, t.a.ifname);
    await sleep(d.ppsWindowMs);
    const b1 = await sample(t.b.ns, t.b.ifname);
    const a1 = await sample(t.a.ns, t.a.ifname);
    const c1 = cpuOf(pids);
    const m1 = cpuTimes();
    if (!gen.running) throw new Error(`trafgen ended within the window: ${gen.stderr.trim().slice(0, 300)}`);
    const secs = (b1.at - b0.at) / 1000;
    const asecs = (a1.at - a0.at) / 1000;
    return {
      pps: (b1.rx - b0.rx) / secs,
      senderTxPps: (a1.tx - a0.tx) / asecs,
      senderTxDropPps: (a1.txDrop - a0.txDrop) / asecs,
      switchCpu: c0 === null || c1 === null ? null : (c1 - c0) / ((a1.at - b0.at) / 1000),
      machineBusy: m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : 0,
    };
  } finally {
    await gen.stop('SIGINT', 4000);
  }
}
