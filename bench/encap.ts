// bench/encap.ts: the encapsulation benchmark. VM A on host 1 to VM B on host 2 (two simulated hosts joined by an
// underlay bridge): xswitch NVGRE / IP rewrite / VXLAN / plain L2, OVS userspace GRE, kernel vxlan, kernel bridge.
//   node dist/bench/encap.js [--rounds N] [--only NAME,...] [--quick] [--json PATH] [--profile [NAME]]
//                            [--quiet-wait S] [--list]
// Rounds are interleaved across candidates (each round rebuilds each topology); medians, then the ratios.
// Needs root. Everything is bounded and cleaned up, also on Ctrl-C.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { errText, isRoot, log, parseOrUsage, repoRoot, runMain } from './lib/cli.js';
import { formatProfile, summariseProfile, type ProfileSummary } from './lib/cpuprofile.js';
import {
  checkUnderlay, HOSTS_CANDIDATES, underlayStats, UNDERLAY_MTU, VSID, OVS_GRE_KEY,
  type HostsCandidate, type TwoHostTopology,
} from './lib/hosts.js';
import { FULL, QUICK, measurePps, measureTcp, warmUp, type Durations } from './lib/measure.js';
import { hasPerf, perfRecord, perfSummary } from './lib/perf.js';
import { run } from './lib/proc.js';
import {
  encapRatios, formatEncapRatios, formatEncapTable, formatMachine, formatPpsDiagnostics, jsonHead, newSamples, pushPps,
  summarise, writeJson, type CandidateResult, type Samples, type UnderlaySamples,
} from './lib/report.js';
import { BenchRun, interleaved, lastFigure, measureRound, quietBefore } from './lib/run.js';
import { newestProfile, xswitchdAvailable } from './lib/xswitchd.js';

const ENCAPS = ['xswitch-nvgre', 'xswitch-rewrite', 'xswitch-vxlan'] as const;

const USAGE = `usage: node dist/bench/encap.js [--rounds N] [--only NAME,...] [--quick] [--json PATH] [--profile [NAME]]
       [--quiet-wait S] [--list]
  --rounds N        interleaved rounds (default 3); the median is reported
  --only A,B        candidates: ${HOSTS_CANDIDATES.map((c) => c.name).join(', ')}
  --quick           1 round, short durations (development)
  --json PATH       also write the results as JSON
  --quiet-wait S    before each candidate, wait up to S seconds (default 30) for the machine to be < 15% busy
  --profile [NAME]  afterwards, profile host 1's xswitchd of NAME (default xswitch-nvgre) in the TCP and the
                    64-byte phase, and print the top self times
  --list            list the candidates and exit`;

/** --profile [NAME]: the candidate to profile (host 1's xswitchd under --cpu-prof). */
function profileOption(set: (name: string) => void): (a: string, argv: readonly string[], i: number) => number | string | null {
  return (a, argv, i) => {
    if (a !== '--profile') return null;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) {
      set('xswitch-nvgre');
      return i;
    }
    const c = HOSTS_CANDIDATES.find((x) => x.name === next);
    if (c === undefined || c.kind !== 'xswitch') return `--profile needs an xswitch candidate, got ${next}`;
    set(next);
    return i + 1;
  };
}

const TAGS: Readonly<Record<string, string>> = {
  'xswitch-nvgre': 'n',
  'xswitch-rewrite': 'r',
  'xswitch-vxlan': 'x',
  'xswitch-plain': 'p',
  'ovs-gre': 'o',
  'kernel-vxlan': 'k',
  'kernel-bridge': 'b',
};

interface CandidateState {
  readonly samples: Samples;
  readonly underlay: UnderlaySamples;
  /** Set when the daemon rejects the candidate's document (no virtualization data path yet): skip later rounds. */
  unsupported: string | null;
}

/** TCP A -> B, with host 1's underlay counters around it: bytes per frame on the wire. */
async function tcpWithUnderlay(t: TwoHostTopology, d: Durations, st: CandidateState): Promise<number> {
  const u0 = await underlayStats(t);
  const t0 = performance.now();
  const gbps = await measureTcp(t, d);
  const u1 = await underlayStats(t);
  const secs = (performance.now() - t0) / 1000;
  const frames = u1.rxPackets - u0.rxPackets;
  if (frames > 0) {
    st.underlay.bytesPerFrame.push((u1.rxBytes - u0.rxBytes) / frames);
    st.underlay.framesPerSec.push(frames / secs);
  }
  return gbps;
}

async function xswitchCounters(t: TwoHostTopology): Promise<unknown> {
  const out: unknown[] = [];
  for (const d of t.daemons) {
    const r = await d.xsctl('--json', 'counters', 'sw0').catch((err: unknown) => JSON.stringify({ error: errText(err) }));
    out.push(JSON.parse(r) as unknown);
  }
  return out;
}

function measureCandidate(
  r: BenchRun, c: HostsCandidate, round: number, d: Durations, root: string, st: CandidateState, quietWaitMs: number,
): Promise<void> {
  const s = st.samples;
  const bpf = st.underlay.bytesPerFrame;
  return measureRound(r, {
    name: c.name, round, samples: s, quietWaitMs,
    setup: () => c.setup({ prefix: r.prefix, tag: `${TAGS[c.name] ?? 'z'}${round}`, dir: r.dir, root }),
    onSetupError: (err) => {
      if (c.needsVirtualization && /xsctl .*apply/.test(errText(err)) && /network/.test(errText(err))) {
        st.unsupported = 'xswitchd rejects the network: section (virtualization data path not built in yet)';
      }
    },
    check: async (t) => {
      const bad = await checkUnderlay(t);
      if (bad !== null) throw new Error(bad);
    },
    steps: (t) => [
      ['tcp', async () => void s.tcpGbps.push(await tcpWithUnderlay(t, d, st))],
      ['pps', async () => {
        pushPps(s, await measurePps(t, d, r.dir));
        if (t.daemons.length > 0) s.xswitch.push(await xswitchCounters(t));
      }],
    ],
    onError: async (t) => {
      for (const x of t.daemons) log(`xswitchd stderr: ${x.stderrTail()}`);
      if (t.daemons.length > 0) s.xswitch.push(await xswitchCounters(t).catch(() => null));
    },
    summary: () => `TCP ${lastFigure(s.tcpGbps)} Gbit/s (underlay ${lastFigure(bpf, 0)} B/frame), ` +
      `${((s.pps[s.pps.length - 1] ?? 0) / 1000).toFixed(0)} kpps`,
  });
}

interface PhaseProfile {
  readonly phase: 'tcp' | '64B';
  readonly figure: number;
  readonly summary: ProfileSummary | null;
  /** perf over both hosts' xswitchd in the same phase (kernel share, top symbols), when perf is installed. */
  readonly perf: string | null;
}

/** One more instance of `name` per phase, host 1's xswitchd under --cpu-prof; the profile is written on SIGTERM. */
async function profileCandidate(r: BenchRun, c: HostsCandidate, root: string, d: Durations): Promise<PhaseProfile[]> {
  const out: PhaseProfile[] = [];
  for (const phase of ['tcp', '64B'] as const) {
    const dir = join(r.dir, `cpuprof-${phase}`);
    mkdirSync(dir, { recursive: true });
    const t = await c.setup({ prefix: r.prefix, tag: `q${phase === 'tcp' ? 't' : 'p'}`, dir: r.dir, root, cpuProfileDir: dir });
    r.active = t;
    let figure = 0;
    let perfText: string | null = null;
    try {
      await warmUp(t);
      const pd = { ...d, tcpSeconds: Math.max(d.tcpSeconds, 3), ppsWindowMs: Math.max(d.ppsWindowMs, 3000) };
      const perfData = join(r.dir, `perf-${phase}.data`);
      const pids = t.switchPids ?? [];
      const secs = phase === 'tcp' ? pd.tcpSeconds : (pd.ppsWarmupMs + pd.ppsWindowMs) / 1000;
      const perf = pids.length === 0 || !(await hasPerf()) ? null : perfRecord(pids, secs, perfData);
      figure = phase === 'tcp' ? await measureTcp(t, pd) : (await measurePps(t, pd, r.dir)).pps / 1000;
      if (perf !== null && (await perf)) perfText = await perfSummary(perfData, `both hosts' xswitchd, ${phase} phase`);
    } finally {
      r.active = null;
      await t.teardown();
    }
    const file = newestProfile(dir);
    if (file === null) log(`profile ${phase}: no .cpuprofile written (did xswitchd exit cleanly on SIGTERM?)`);
    out.push({ phase, figure, summary: file === null ? null : summariseProfile(file, 20), perf: perfText });
  }
  return out;
}

function newState(): CandidateState {
  return {
    samples: newSamples(),
    underlay: { bytesPerFrame: [], framesPerSec: [] },
    unsupported: null,
  };
}

async function main(): Promise<number> {
  let profileName: string | null = null;
  const parsed = parseOrUsage(process.argv.slice(2), {
    candidates: HOSTS_CANDIDATES.map((c) => c.name),
    extra: profileOption((name) => { profileName = name; }),
  }, USAGE);
  if (typeof parsed === 'number') return parsed;
  const opts = { ...parsed, profile: profileName as string | null };
  if (opts.list) {
    for (const c of HOSTS_CANDIDATES) process.stdout.write(`${c.name.padEnd(18)} ${c.label}\n`);
    return 0;
  }
  if (!isRoot()) return 2;
  const root = repoRoot();
  const d = opts.quick ? QUICK : FULL;
  let candidates = HOSTS_CANDIDATES.filter((c) => opts.only === null || opts.only.includes(c.name));
  const skipped: string[] = [];
  if (!xswitchdAvailable(root)) {
    for (const c of candidates) if (c.kind === 'xswitch') skipped.push(`${c.name} (xswitchd not built)`);
    candidates = candidates.filter((c) => c.kind !== 'xswitch');
  }
  for (const tool of ['tshark', 'iperf3', 'trafgen', 'ovs-vswitchd']) {
    if ((await run('sh', ['-c', `command -v ${tool}`], { timeoutMs: 5000 })).code !== 0) {
      log(`${tool} not found (scripts/install.sh installs the benchmark's tools)`);
      return 2;
    }
  }
  if (skipped.length > 0) log(`skipping ${skipped.join(', ')}`);

  const r = new BenchRun().trapSignals();
  const state = new Map<string, CandidateState>(candidates.map((c) => [c.name, newState()]));
  let profile: { candidate: string; phases: PhaseProfile[] } | null = null;
  const kernel = (await run('uname', ['-r'])).stdout.trim();
  try {
    log(`run ${r.prefix}: ${candidates.map((c) => c.name).join(', ')}; ${opts.rounds} round(s)${opts.quick ? ', quick' : ''}`);
    await interleaved(opts.rounds, candidates, async (c, round) => {
      const st = state.get(c.name)!;
      if (st.unsupported === null) await measureCandidate(r, c, round, d, root, st, opts.quietWaitMs);
    }, () => r.interrupted);
    if (opts.profile !== null && !r.interrupted) {
      const c = HOSTS_CANDIDATES.find((x) => x.name === opts.profile)!;
      if (!xswitchdAvailable(root)) log('profile: xswitchd not built');
      else if (state.get(c.name)?.unsupported != null) log(`profile: ${c.name} not supported by this xswitchd`);
      else {
        try {
          await quietBefore(null, opts.quietWaitMs);
          profile = { candidate: c.name, phases: await profileCandidate(r, c, root, d) };
        } catch (err) {
          log(`profile failed: ${errText(err)}`);
        }
      }
    }
  } finally {
    if (!r.interrupted) await r.cleanup();
  }
  if (r.interrupted) return 130;

  const results: CandidateResult[] = candidates.map((c) => summarise(c.name, c.label, state.get(c.name)!.samples));
  const byName = new Map(results.map((x) => [x.name, x]));
  const underlay = new Map(candidates.map((c) => [c.name, state.get(c.name)!.underlay]));
  const ratios = encapRatios(byName, ENCAPS);
  process.stdout.write(
    `\nxswitch encapsulation benchmark: ${opts.rounds} round(s), median; kernel ${kernel}, node ${process.version}\n` +
      `VM A (host 1) -> VM B (host 2); underlay bridge, up0 MTU ${UNDERLAY_MTU}, VSID/VNI ${VSID}, OVS GRE key 0x${OVS_GRE_KEY.toString(16)}\n\n`,
  );
  process.stdout.write(`${formatEncapTable(results, underlay, UNDERLAY_MTU + 14)}\n\n${formatEncapRatios(ratios)}\n`);
  process.stdout.write(
    `\nunderlay B/frame: rx bytes / rx packets at host 1's underlay port over the TCP phase (a GSO super-frame\n` +
      `counts as one frame there); above ${UNDERLAY_MTU + 14} means super-frames crossed the underlay, about 1500 + encap means MTU-size segments.\n`,
  );
  process.stdout.write(`\n${formatPpsDiagnostics(results)}\n(switch CPU summed over both hosts' switch processes)\n`);
  process.stdout.write(formatMachine(results));
  for (const s of skipped) process.stdout.write(`skipped: ${s}\n`);
  for (const c of candidates) {
    const st = state.get(c.name)!;
    if (st.unsupported !== null) process.stdout.write(`skipped ${c.name}: ${st.unsupported}\n`);
  }
  for (const x of results) for (const e of x.samples.errors) process.stdout.write(`error ${x.name}: ${e}\n`);
  if (profile !== null) {
    for (const p of profile.phases) {
      const fig = p.phase === 'tcp' ? `${p.figure.toFixed(2)} Gbit/s` : `${p.figure.toFixed(0)} kpps`;
      process.stdout.write(`\n${profile.candidate}, host 1's xswitchd under --cpu-prof, ${p.phase} phase: ${fig}\n`);
      if (p.summary !== null) process.stdout.write(`${formatProfile(p.summary)}\n`);
      if (p.perf !== null) process.stdout.write(`${p.perf}\n`);
    }
  }
  if (opts.json !== null) {
    writeJson(opts.json, {
      ...jsonHead(kernel, opts.rounds, opts.quick, d),
      candidates: results.map((x) => ({ ...x, underlay: underlay.get(x.name) })),
      targets: ratios.targets,
      otherRatios: ratios.info,
      skipped: [...skipped, ...candidates.filter((c) => state.get(c.name)!.unsupported !== null).map((c) => c.name)],
      profile,
    });
  }
  return 0;
}

runMain(main);
