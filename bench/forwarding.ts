// bench/forwarding.ts: xswitch's forwarding benchmark. The same two-VM namespace topology through each candidate
// (Linux bridge, OVS netdev with/without userspace TSO, xswitchd on TAP/veth); TCP, 64-byte rate, idle RTT.
//   node dist/bench/forwarding.js [--rounds N] [--only NAME,...] [--quick] [--json PATH] [--profile]
//                                 [--quiet-wait S] [--list]
// Rounds are interleaved across candidates (each round rebuilds each topology); medians are reported, with the
// ratios behind the targets. Needs root. Everything is bounded and cleaned up, also on Ctrl-C.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProfile, summariseProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { FULL, QUICK, measurePps, measureRtt, measureTcp, warmUp, type Durations } from './lib/measure.js';
import { waitQuiet } from './lib/machine.js';
import { delNs, listNs, runPrefix } from './lib/netns.js';
import { killOvsUnder } from './lib/ovs.js';
import { killAll, run } from './lib/proc.js';
import {
  bridgeRatios, formatPpsDiagnostics, formatRatios, formatTable, summarise, targetRatios, type CandidateResult, type Samples,
} from './lib/report.js';
import { ALL_CANDIDATES, xswitchTapCandidate, type Candidate, type Topology } from './lib/topology.js';
import { checkXswitch, newestProfile, xswitchdAvailable, xswitchSnapshot } from './lib/xswitchd.js';

interface Options {
  rounds: number;
  only: string[] | null;
  quick: boolean;
  json: string | null;
  profile: boolean;
  list: boolean;
  /** Before each candidate, wait up to this long for the machine to be < 15% busy (0: never wait). */
  quietWaitMs: number;
}

const USAGE = `usage: node dist/bench/forwarding.js [--rounds N] [--only NAME,...] [--quick] [--json PATH] [--profile]
       [--quiet-wait S] [--list]
  --rounds N      interleaved rounds (default 3); the median is reported
  --only A,B      candidates: ${ALL_CANDIDATES.map((c) => c.name).join(', ')}
  --quick         1 round, short durations (development)
  --json PATH     also write the results as JSON
  --quiet-wait S  before each candidate, wait up to S seconds (default 30) for the machine to be < 15% busy
  --profile       afterwards, profile xswitchd (TAP) under the 64-byte flood and print the top self times
  --list          list the candidates and exit`;

function parseArgs(argv: readonly string[]): Options | string {
  const o: Options = {
    rounds: 3, only: null, quick: false, json: null, profile: false, list: false, quietWaitMs: 30_000,
  };
  let roundsGiven = false;
  let quietGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (a) {
      case '--rounds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0 || n > 50) return '--rounds needs an integer 0..50';
        o.rounds = n;
        roundsGiven = true;
        break;
      }
      case '--only': {
        const v = value();
        if (v === undefined) return '--only needs a list';
        o.only = v.split(',').filter((s) => s !== '');
        const unknown = o.only.filter((n) => !ALL_CANDIDATES.some((c) => c.name === n));
        if (unknown.length > 0) return `unknown candidate(s): ${unknown.join(', ')}`;
        break;
      }
      case '--quick':
        o.quick = true;
        break;
      case '--json': {
        const v = value();
        if (v === undefined) return '--json needs a path';
        o.json = v;
        break;
      }
      case '--quiet-wait': {
        const n = Number(value());
        if (!Number.isFinite(n) || n < 0 || n > 600) return '--quiet-wait needs seconds 0..600';
        o.quietWaitMs = n * 1000;
        quietGiven = true;
        break;
      }
      case '--profile':
        o.profile = true;
        break;
      case '--list':
        o.list = true;
        break;
      case '-h':
      case '--help':
        return '';
      default:
        return `unknown option ${a}`;
    }
  }
  if (o.quick && !roundsGiven) o.rounds = 1;
  if (o.quick && !quietGiven) o.quietWaitMs = 5000;
  return o;
}

/** Everything this run owns, for the normal exit path and for Ctrl-C / errors. */
class Run {
  readonly prefix = runPrefix();
  readonly dir: string;
  active: Topology | null = null;
  private cleaned = false;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  }

  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const t = this.active;
    this.active = null;
    if (t !== null) await t.teardown().catch((err: unknown) => log(`teardown: ${String(err)}`));
    await killAll();
    await killOvsUnder(this.dir);
    for (const ns of await listNs()) if (ns.startsWith(`${this.prefix}-`)) await delNs(ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

function loadAvg1(): number {
  try {
    return Number.parseFloat(readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? 'NaN');
  } catch {
    return Number.NaN;
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const TAGS: Readonly<Record<string, string>> = {
  bridge: 'k',
  ovs: 'o',
  'ovs-tso': 's',
  'xswitch-tap': 't',
  'xswitch-tap-no-offload': 'n',
  'xswitch-veth': 'v',
};

async function measureCandidate(
  r: Run, c: Candidate, round: number, d: Durations, root: string, s: Samples, quietWaitMs: number,
): Promise<void> {
  if (quietWaitMs > 0) {
    const q = await waitQuiet(0.15, quietWaitMs);
    s.busyBefore.push(q.busy);
    if (q.busy >= 0.15) log(`machine still ${(q.busy * 100).toFixed(0)}% busy after ${q.waitedMs} ms; measuring anyway`);
  }
  const started = performance.now();
  s.loadAvg.push(loadAvg1());
  let t: Topology;
  try {
    t = await c.setup({ prefix: r.prefix, tag: `${TAGS[c.name] ?? 'x'}${round}`, dir: r.dir, root });
  } catch (err) {
    s.errors.push(`round ${round} setup: ${errText(err)}`);
    log(`${c.name} round ${round}: setup failed: ${errText(err)}`);
    return;
  }
  r.active = t;
  try {
    await warmUp(t);
    if (t.xswitchd !== null) {
      const problems = await checkXswitch(t.xswitchd, [t.a.mac, t.b.mac]);
      if (problems.length > 0) throw new Error(`xswitch configuration: ${problems.join('; ')}`);
    }
    const steps: [string, () => Promise<void>][] = [
      ['rtt', async () => void s.rttUs.push(await measureRtt(t, d))],
      ['tcp', async () => void s.tcpGbps.push(await measureTcp(t, d))],
      ['pps', async () => {
        const p = await measurePps(t, d, r.dir);
        s.pps.push(p.pps);
        s.senderTxPps.push(p.senderTxPps);
        s.senderTxDropPps.push(p.senderTxDropPps);
        if (p.switchCpu !== null) s.switchCpu.push(p.switchCpu);
        s.machineBusy.push(p.machineBusy);
        if (t.xswitchd !== null) s.xswitch.push(await xswitchSnapshot(t.xswitchd));
      }],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        s.errors.push(`round ${round} ${what}: ${errText(err)}`);
        log(`${c.name} round ${round}: ${what} failed: ${errText(err)}`);
      }
    }
  } catch (err) {
    s.errors.push(`round ${round}: ${errText(err)}`);
    log(`${c.name} round ${round}: ${errText(err)}`);
    if (t.xswitchd !== null) log(`xswitchd stderr: ${t.xswitchd.stderrTail()}`);
  } finally {
    r.active = null;
    await t.teardown();
  }
  const last = (xs: number[]): string => (xs.length === 0 ? '-' : xs[xs.length - 1]!.toFixed(2));
  log(
    `${c.name} round ${round}: TCP ${last(s.tcpGbps)} Gbit/s, ${((s.pps[s.pps.length - 1] ?? 0) / 1000).toFixed(0)} kpps, ` +
      `RTT ${last(s.rttUs)} us (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
}

async function hasPerf(): Promise<boolean> {
  return (await run('perf', ['--version'], { timeoutMs: 5000 })).code === 0;
}

/** Kernel vs user split and top symbols of a perf.data, as text. */
async function perfSummary(file: string): Promise<string> {
  const report = async (sort: string): Promise<string[]> => {
    const r = await run('perf', ['report', '-i', file, '--no-children', '--sort', sort, '--stdio', '-g', 'none'], {
      timeoutMs: 30_000,
    });
    return r.stdout.split('\n').filter((l) => /^\s+\d+\.\d+%/.test(l)).map((l) => `  ${l.trim()}`);
  };
  return ['perf (same daemon, same window), by object:', ...(await report('dso')).slice(0, 6),
    'top symbols:', ...(await report('sym')).slice(0, 20)].join('\n');
}

interface ProfileResult {
  readonly kpps: number;
  readonly cpuProfile: ProfileSummary | null;
  /** perf's kernel/user split and top symbols, when perf is installed. */
  readonly perf: string | null;
}

/**
 * xswitchd (TAP) under --cpu-prof during a 64-byte flood: where the daemon's time goes. The profile also holds
 * the daemon's start (module loading, about 100 ms) and idle time outside the flood, shown as (idle).
 */
async function profileXswitch(r: Run, root: string, d: Durations, quietWaitMs: number): Promise<ProfileResult> {
  if (quietWaitMs > 0) await waitQuiet(0.15, quietWaitMs);
  const profDir = join(r.dir, 'cpuprof');
  mkdirSync(profDir, { recursive: true });
  const t = await xswitchTapCandidate.setup({ prefix: r.prefix, tag: 'p', dir: r.dir, root, cpuProfileDir: profDir });
  r.active = t;
  let pps = 0;
  let perfText: string | null = null;
  const pd = { ...d, ppsWindowMs: Math.max(d.ppsWindowMs, 4000) };
  try {
    await warmUp(t);
    // perf (if installed) samples the same daemon for the window: how much of its time is in the kernel.
    const perfData = join(r.dir, 'perf.data');
    const perf = t.switchPid === null || !(await hasPerf()) ? null : run(
      'timeout', ['20', 'perf', 'record', '-q', '-F', '499', '-p', String(t.switchPid), '-o', perfData, '--',
        'sleep', String((pd.ppsWarmupMs + pd.ppsWindowMs) / 1000)],
      { timeoutMs: 25_000 },
    );
    pps = (await measurePps(t, pd, r.dir)).pps;
    if (perf !== null && (await perf).code === 0) perfText = await perfSummary(perfData);
  } finally {
    r.active = null;
    await t.teardown(); // SIGTERM: the daemon exits cleanly and node writes the profile
  }
  const file = newestProfile(profDir);
  if (file === null) log('profile: no .cpuprofile written (did xswitchd exit cleanly on SIGTERM?)');
  else log(`profile: ${(pps / 1000).toFixed(0)} kpps under --cpu-prof; ${file}`);
  return { kpps: pps / 1000, cpuProfile: file === null ? null : summariseProfile(file, 25), perf: perfText };
}

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2));
  if (typeof parsed === 'string') {
    if (parsed !== '') process.stderr.write(`${parsed}\n`);
    process.stderr.write(`${USAGE}\n`);
    return parsed === '' ? 0 : 2;
  }
  const opts = parsed;
  if (opts.list) {
    for (const c of ALL_CANDIDATES) process.stdout.write(`${c.name.padEnd(24)} ${c.label}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (network namespaces)\n');
    return 2;
  }
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const d = opts.quick ? QUICK : FULL;
  let candidates = ALL_CANDIDATES.filter((c) => opts.only === null || opts.only.includes(c.name));
  const skipped: string[] = [];
  if (!xswitchdAvailable(root) || !existsSync(join(root, 'dist', 'bench', 'extensions', 'capture-count.js'))) {
    for (const c of candidates) if (c.kind === 'xswitch') skipped.push(c.name);
    candidates = candidates.filter((c) => c.kind !== 'xswitch');
    if (skipped.length > 0) log(`xswitchd not built (bin/xswitchd, dist/src/control/daemon.js): skipping ${skipped.join(', ')}`);
  }

  const r = new Run();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: cleaning up`);
    void r.cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const samples = new Map<string, Samples>();
  for (const c of candidates) {
    samples.set(c.name, { tcpGbps: [], pps: [], rttUs: [], senderTxPps: [], senderTxDropPps: [], switchCpu: [], machineBusy: [], loadAvg: [], busyBefore: [], errors: [], xswitch: [] });
  }
  let profile: ProfileResult | null = null;
  const kernel = (await run('uname', ['-r'])).stdout.trim();
  try {
    log(`run ${r.prefix}: ${candidates.map((c) => c.name).join(', ')}; ${opts.rounds} round(s)${opts.quick ? ', quick' : ''}`);
    for (let round = 0; round < opts.rounds && !interrupted; round++) {
      // rotate the order each round so no candidate always runs first (or right after the same neighbour)
      const order = candidates.map((_, i) => candidates[(i + round) % candidates.length]!);
      for (const c of order) {
        if (interrupted) break;
        await measureCandidate(r, c, round, d, root, samples.get(c.name)!, opts.quietWaitMs);
      }
    }
    if (opts.profile && !interrupted) {
      if (!skipped.includes('xswitch-tap') && xswitchdAvailable(root)) {
        try {
          profile = await profileXswitch(r, root, d, opts.quietWaitMs);
        } catch (err) {
          log(`profile failed: ${errText(err)}`);
        }
      } else log('profile: xswitchd not available');
    }
  } finally {
    if (!interrupted) await r.cleanup();
  }
  if (interrupted) return 130;

  const results: CandidateResult[] = candidates.map((c) => summarise(c.name, c.label, samples.get(c.name)!));
  const byName = new Map(results.map((x) => [x.name, x]));
  const targets = targetRatios(byName);
  const bridge = bridgeRatios(results);
  process.stdout.write(
    `\nxswitch forwarding benchmark: ${opts.rounds} round(s), median; kernel ${kernel}, ` +
      `node ${process.version}; A -> B between two namespaces\n\n`,
  );
  process.stdout.write(`${formatTable(results)}\n\n${formatRatios(targets, bridge)}\n`);
  process.stdout.write(`\n${formatPpsDiagnostics(results)}\n`);
  const loads = results.flatMap((x) => x.samples.loadAvg);
  const busy = results.flatMap((x) => x.samples.busyBefore);
  if (loads.length > 0) {
    process.stdout.write(`machine: ${availableParallelism()} CPUs; load average (1 min) at each measurement ` +
      `${Math.min(...loads).toFixed(2)} .. ${Math.max(...loads).toFixed(2)}` +
      (busy.length > 0 ? `; busy just before ${(Math.min(...busy) * 100).toFixed(0)}% .. ${(Math.max(...busy) * 100).toFixed(0)}%` : '') +
      ' (other work on the machine skews every figure)\n');
  }
  if (skipped.length > 0) process.stdout.write(`skipped (xswitchd not built): ${skipped.join(', ')}\n`);
  for (const x of results) {
    for (const e of x.samples.errors) process.stdout.write(`error ${x.name}: ${e}\n`);
  }
  if (profile !== null) {
    process.stdout.write(`\nxswitchd (TAP) under --cpu-prof during a 64-byte flood: ${profile.kpps.toFixed(0)} kpps\n`);
    if (profile.cpuProfile !== null) process.stdout.write(`${formatProfile(profile.cpuProfile)}\n`);
    if (profile.perf !== null) process.stdout.write(`${profile.perf}\n`);
  }
  if (opts.json !== null) {
    const doc = {
      date: new Date().toISOString(),
      kernel,
      node: process.version,
      rounds: opts.rounds,
      quick: opts.quick,
      durations: d,
      candidates: results,
      targets,
      bridgeRatios: bridge,
      skipped,
      profile,
    };
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`results written to ${opts.json}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
