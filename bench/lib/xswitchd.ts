// bench/lib/xswitchd.ts: the real xswitch daemon for the benchmark, started in a namespace with a private store
// and socket in the run's temp dir, configured through xsctl (notes/cli-contract.md). Ended by its PID only.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Background, must, run } from './proc.js';

export interface Xswitchd {
  readonly socket: string;
  readonly pid: number;
  /** Directory holding the .cpuprofile after stop() when started with cpuProfile. */
  readonly profileDir: string | null;
  xsctl(...args: string[]): Promise<string>;
  /** SIGTERM (clean shutdown, writes the CPU profile), SIGKILL after the grace time. */
  stop(): Promise<void>;
  stderrTail(): string;
  /** Everything the daemon wrote to stdout (V8 traces asked for with XSWITCHD_NODE_ARGS land here). */
  stdout(): string;
}

export interface XswitchdOptions {
  readonly root: string;
  readonly netns: string;
  readonly dir: string;
  readonly name: string;
  /** Start node with --cpu-prof, the profile written into this directory on exit. */
  readonly cpuProfileDir?: string;
  /** The daemon's --host (default 'bench'); a document with a `host` key must name it. */
  readonly host?: string;
  /** Extra environment for the daemon (over the inherited one), e.g. XSWITCH_IO_URING=0. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Is the daemon built? (bin/xswitchd and the compiled control plane.) */
export function xswitchdAvailable(root: string): boolean {
  return (
    existsSync(join(root, 'bin', 'xswitchd')) &&
    existsSync(join(root, 'bin', 'xsctl')) &&
    existsSync(join(root, 'dist', 'src', 'control', 'daemon.js')) &&
    existsSync(join(root, 'dist', 'src', 'cli', 'xsctl.js'))
  );
}

export async function startXswitchd(o: XswitchdOptions): Promise<Xswitchd> {
  const socket = join(o.dir, `${o.name}.sock`);
  const store = `sqlite:${join(o.dir, `${o.name}.db`)}`;
  const prof = o.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', o.cpuProfileDir];
  const proc = new Background('ip', [
    'netns', 'exec', o.netns, process.execPath, ...prof,
    // XSWITCHD_NODE_ARGS: node / V8 flags for the daemon, e.g. "--perf-basic-prof" or "--trace-deopt"
    ...(process.env['XSWITCHD_NODE_ARGS'] ?? '').split(' ').filter((w) => w !== ''),
    join(o.root, 'bin', 'xswitchd'),
    '--store', store, '--socket', socket, '--host', o.host ?? 'bench', '--log-level', 'warn',
    // XSWITCHD_EXTRA_ARGS: daemon flags to compare settings, e.g. "--busy-poll-us 0"
    ...(process.env['XSWITCHD_EXTRA_ARGS'] ?? '').split(' ').filter((w) => w !== ''),
  ], o.env === undefined ? undefined : { ...process.env, ...o.env });
  const xsctl = (...args: string[]): Promise<string> =>
    must(process.execPath, [join(o.root, 'bin', 'xsctl'), '--socket', socket, ...args], { timeoutMs: 15_000 });
  const d: Xswitchd = {
    socket,
    pid: proc.child.pid ?? -1,
    profileDir: o.cpuProfileDir ?? null,
    xsctl,
    stop: () => proc.stop('SIGTERM', 8000),
    stderrTail: () => proc.stderr.slice(-2000),
    stdout: () => proc.stdout,
  };
  try {
    await proc.waitFor((out) => out.includes('xswitchd: API on unix:'), 15_000, 'xswitchd start');
    // The banner may precede the listener by a tick: wait until xsctl gets an answer.
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = await run(process.execPath, [join(o.root, 'bin', 'xsctl'), '--socket', socket, 'status'], {
        timeoutMs: 5000,
      });
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new Error(`xsctl status: ${r.stderr.trim()}`);
    }
  } catch (err) {
    await d.stop();
    throw err;
  }
  return d;
}

/** The newest .cpuprofile in dir, or null. */
export function newestProfile(dir: string): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const last = files[files.length - 1];
  return last === undefined ? null : join(dir, last);
}

interface ExtRow {
  name?: unknown;
  kind?: unknown;
  enabled?: unknown;
  faults?: unknown;
  stats?: unknown;
}
interface MacRow {
  mac?: unknown;
}

/**
 * The configuration the benchmark claims: capture 'count' and filter 'pass' enabled without faults, and both VM
 * MACs learned. Returns the problems found (empty when all holds).
 */
export async function checkXswitch(d: Xswitchd, macs: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const exts = JSON.parse(await d.xsctl('--json', 'ext', 'list', 'sw0')) as ExtRow[];
  for (const [name, kind] of [['count', 'capture'], ['pass', 'filter']] as const) {
    const e = exts.find((x) => x.name === name);
    if (e === undefined) problems.push(`extension ${name} missing`);
    else if (e.kind !== kind || e.enabled !== true || e.faults !== 0) {
      problems.push(`extension ${name}: kind ${String(e.kind)} enabled ${String(e.enabled)} faults ${String(e.faults)}`);
    }
  }
  const table = JSON.parse(await d.xsctl('--json', 'mac', 'sw0')) as MacRow[];
  for (const m of macs) if (!table.some((r) => r.mac === m)) problems.push(`MAC ${m} not learned`);
  return problems;
}

/** Extension stats and switch counters, kept in the JSON for diagnosis. */
export async function xswitchSnapshot(d: Xswitchd): Promise<unknown> {
  const exts = JSON.parse(await d.xsctl('--json', 'ext', 'list', 'sw0')) as ExtRow[];
  const counters: unknown = JSON.parse(await d.xsctl('--json', 'counters', 'sw0'));
  return { extensions: exts.map((e) => ({ name: e.name, faults: e.faults, stats: e.stats })), counters };
}
