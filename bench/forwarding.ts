// bench/forwarding.ts: xswitch's forwarding benchmark. The same two-VM namespace topology through each candidate
// (Linux bridge, OVS netdev with/without userspace TSO, xswitchd on TAP/veth); TCP, 64-byte rate, idle RTT.
//   node dist/bench/forwarding.js [--rounds N] [--only NAME,...] [--quick] [--json PATH] [--profile]
//                                 [--quiet-wait S] [--list]
// Rounds are interleaved across candidates (each round rebuilds each topology); medians are reported, with the
// ratios behind the targets. Needs root. Everything is bounded and cleaned up, also on Ctrl-C.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { benchExtensionsBuilt, errText, isRoot, log, parseOrUsage, repoRoot, runMain } from './lib/cli.js';
import { formatProfile, summariseProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { FULL, QUICK, measurePps, measureRtt, measureTcp, warmUp, type Durations } from './lib/measure.js';
import { hasPerf, perfRecord, perfSummary } from './lib/perf.js';
import { run } from './lib/proc.js';
import {
  bridgeRatios, formatMachine, formatPpsDiagnostics, formatRatios, formatTable, jsonHead, newSamples, pushPps, summarise,
  targetRatios, writeJson, type CandidateResult, type Samples,
} from './lib/report.js';
import { BenchRun, interleaved, lastFigure, measureRound, quietBefore } from './lib/run.js';
import { ALL_CANDIDATES, xswitchTapCandidate, type Candidate } from './lib/topology.js';
import { checkXswitch, newestProfile, xswitchdAvailable, xswitchSnapshot } from './lib/xswitchd.js';

const USAGE = `usage: node dist/bench/forwarding.js [--rounds N] [--only NAME,...] [--quick] [--json PATH] [--profile]
       [--quiet-wait S] [--list]
  --rounds N      interleaved rounds (default 3); the median is reported
  --only A,B      candidates: ${ALL_CANDIDATES.map((c) => c.name).join(', ')}
  --quick         1 round, short durations (development)
  --json PATH     also write the results as JSON
  --quiet-wait S  before each candidate, wait up to S seconds (default 30) for the machine to be < 15% busy
  --profile       afterwards, profile xswitchd (TAP) under the 64-byte flood and print the top self times
  --list          list the candidates and exit`;

const TAGS: Readonly<Record<string, string>> = {
  bridge: 'k',
  ovs: 'o',
  'ovs-tso': 's',
  'xswitch-tap': 't',
  'xswitch-tap-no-offload': 'n',
  'xswitch-tap-syscalls': 'r',
  'xswitch-veth': 'v',
  'xswitch-veth-no-offload': 'p',
};

function measureCandidate(
  r: BenchRun, c: Candidate, round: number, d: Durations, root: string, s: Samples, quietWaitMs: number,
): Promise<void> {
  return measureRound(r, {
    name: c.name, round, samples: s, quietWaitMs,
    setup: () => c.setup({ prefix: r.prefix, tag: `${TAGS[c.name] ?? 'x'}${round}`, dir: r.dir, root }),
    check: async (t) => {
      if (t.xswitchd === null) return;
      const problems = await checkXswitch(t.xswitchd, [t.a.mac, t.b.mac]);
      if (problems.length > 0) throw new Error(`xswitch configuration: ${problems.join('; ')}`);
    },
    steps: (t) => [
      ['rtt', async () => void s.rttUs.push(await measureRtt(t, d))],
      ['tcp', async () => void s.tcpGbps.push(await measureTcp(t, d))],
      ['pps', async () => {
        pushPps(s, await measurePps(t, d, r.dir));
        if (t.xswitchd !== null) s.xswitch.push(await xswitchSnapshot(t.xswitchd));
      }],
    ],
    onError: async (t) => {
      if (t.xswitchd !== null) log(`xswitchd stderr: ${t.xswitchd.stderrTail()}`);
    },
    summary: () => `TCP ${lastFigure(s.tcpGbps)} Gbit/s, ${((s.pps[s.pps.length - 1] ?? 0) / 1000).toFixed(0)} kpps, ` +
      `RTT ${lastFigure(s.rttUs)} us`,
  });
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
async function profileXswitch(r: BenchRun, root: string, d: Durations, quietWaitMs: number): Promise<ProfileResult> {
  await quietBefore(null, quietWaitMs);
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
    const perf = t.switchPid === null || !(await hasPerf()) ? null
      : perfRecord([t.switchPid], (pd.ppsWarmupMs + pd.ppsWindowMs) / 1000, perfData);
    pps = (await measurePps(t, pd, r.dir)).pps;
    if (perf !== null && (await perf)) perfText = await perfSummary(perfData, 'same daemon, same window');
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
  let profileWanted = false;
  const parsed = parseOrUsage(process.argv.slice(2), {
    candidates: ALL_CANDIDATES.map((c) => c.name),
    extra: (a, _argv, i) => {
      if (a !== '--profile') return null;
      profileWanted = true;
      return i;
    },
  }, USAGE);
  if (typeof parsed === 'number') return parsed;
  const opts = { ...parsed, profile: profileWanted };
  if (opts.list) {
    for (const c of ALL_CANDIDATES) process.stdout.write(`${c.name.padEnd(24)} ${c.label}\n`);
    return 0;
  }
  if (!isRoot()) return 2;
  const root = repoRoot();
  const d = opts.quick ? QUICK : FULL;
  let candidates = ALL_CANDIDATES.filter((c) => opts.only === null || opts.only.includes(c.name));
  const skipped: string[] = [];
  if (!xswitchdAvailable(root) || !benchExtensionsBuilt(root)) {
    for (const c of candidates) if (c.kind === 'xswitch') skipped.push(c.name);
    candidates = candidates.filter((c) => c.kind !== 'xswitch');
    if (skipped.length > 0) log(`xswitchd not built (bin/xswitchd, dist/src/control/daemon.js): skipping ${skipped.join(', ')}`);
  }

  const r = new BenchRun().trapSignals();
  const samples = new Map<string, Samples>(candidates.map((c) => [c.name, newSamples()]));
  let profile: ProfileResult | null = null;
  const kernel = (await run('uname', ['-r'])).stdout.trim();
  try {
    log(`run ${r.prefix}: ${candidates.map((c) => c.name).join(', ')}; ${opts.rounds} round(s)${opts.quick ? ', quick' : ''}`);
    await interleaved(opts.rounds, candidates, (c, round) =>
      measureCandidate(r, c, round, d, root, samples.get(c.name)!, opts.quietWaitMs), () => r.interrupted);
    if (opts.profile && !r.interrupted) {
      if (!skipped.includes('xswitch-tap') && xswitchdAvailable(root)) {
        try {
          profile = await profileXswitch(r, root, d, opts.quietWaitMs);
        } catch (err) {
          log(`profile failed: ${errText(err)}`);
        }
      } else log('profile: xswitchd not available');
    }
  } finally {
    if (!r.interrupted) await r.cleanup();
  }
  if (r.interrupted) return 130;

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
  process.stdout.write(formatMachine(results));
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
    writeJson(opts.json, {
      ...jsonHead(kernel, opts.rounds, opts.quick, d),
      candidates: results,
      targets,
      bridgeRatios: bridge,
      skipped,
      profile,
    });
  }
  return 0;
}

runMain(main);
