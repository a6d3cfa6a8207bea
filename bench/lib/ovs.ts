// bench/lib/ovs.ts: a private userspace Open vSwitch (ovsdb-server + ovs-vswitchd) in one namespace, with its
// database, sockets, pid files and logs in the run's temp dir (TESTING.md §4.3). Never touches a system OVS.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { must, pidAlive, run, sleep } from './proc.js';

export interface PrivateOvs {
  readonly dir: string;
  readonly netns: string;
  readonly env: NodeJS.ProcessEnv;
  /** ovs-vsctl with this instance's database; bounded by --timeout. */
  vsctl(...args: string[]): Promise<string>;
  /** ovs-vswitchd's PID (for profiling or checks). */
  vswitchdPid(): number | null;
  stop(): Promise<void>;
}

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

function readPid(dir: string, daemon: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(join(dir, `${daemon}.pid`), 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Start ovsdb-server and ovs-vswitchd inside `netns`, state in `dir` (created fresh).
 * `userspaceTso` sets other_config:userspace-tso-enable=true before vswitchd starts (it reads it only then).
 */
export async function startOvs(dir: string, netns: string, userspaceTso: boolean): Promise<PrivateOvs> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OVS_RUNDIR: dir,
    OVS_DBDIR: dir,
    OVS_LOGDIR: dir,
    OVS_SYSCONFDIR: dir,
  };
  const vsctl = (...args: string[]): Promise<string> =>
    must('ovs-vsctl', ['--timeout=10', ...args], { env, timeoutMs: 15_000 });
  const ovs: PrivateOvs = {
    dir,
    netns,
    env,
    vsctl,
    vswitchdPid: () => readPid(dir, 'ovs-vswitchd'),
    stop: () => stopOvs(dir, netns, env),
  };
  try {
    await must('ovsdb-tool', ['create', join(dir, 'conf.db'), SCHEMA], { env });
    await must(
      'ip',
      [
        'netns', 'exec', netns, 'ovsdb-server', join(dir, 'conf.db'), '-vconsole:off',
        `--remote=punix:${join(dir, 'db.sock')}`, '--remote=db:Open_vSwitch,Open_vSwitch,manager_options',
        `--pidfile=${join(dir, 'ovsdb-server.pid')}`, `--log-file=${join(dir, 'ovsdb-server.log')}`, '--detach',
      ],
      { env, timeoutMs: 15_000 },
    );
    await vsctl('--no-wait', 'init');
    if (userspaceTso) await vsctl('--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=true');
    await must(
      'ip',
      [
        'netns', 'exec', netns, 'ovs-vswitchd', `unix:${join(dir, 'db.sock')}`, '-vconsole:off',
        `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`, `--log-file=${join(dir, 'ovs-vswitchd.log')}`, '--detach',
      ],
      { env, timeoutMs: 20_000 },
    );
  } catch (err) {
    await ovs.stop();
    throw err;
  }
  return ovs;
}

/** del-br every bridge (netdev internal ports are persistent TAPs), then end both daemons by their pid files. */
async function stopOvs(dir: string, netns: string, env: NodeJS.ProcessEnv): Promise<void> {
  const vswitchd = readPid(dir, 'ovs-vswitchd');
  const dbAlive = (readPid(dir, 'ovsdb-server') ?? 0) > 0 && pidAlive(readPid(dir, 'ovsdb-server') ?? 0);
  let bridges: string[] = [];
  if (dbAlive) {
    const r = await run('ovs-vsctl', ['--timeout=5', 'list-br'], { env, timeoutMs: 8000 });
    bridges = r.stdout.split('\n').filter((b) => b !== '');
    const wait = vswitchd !== null && pidAlive(vswitchd) ? [] : ['--no-wait'];
    for (const b of bridges) await run('ovs-vsctl', ['--timeout=5', ...wait, 'del-br', b], { env, timeoutMs: 8000 });
  }
  for (const daemon of ['ovs-vswitchd', 'ovsdb-server']) {
    const pid = readPid(dir, daemon);
    if (pid === null || !pidAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // Leftovers only if vswitchd died first; "ovs-netdev" is per namespace.
  for (const b of [...bridges, 'ovs-netdev']) await run('ip', ['-n', netns, 'link', 'del', b], { timeoutMs: 5000 });
  rmSync(dir, { recursive: true, force: true });
}

/** Last-resort sweep: end every OVS daemon whose pid file lies under `runDir` (this run's temp dir). */
export async function killOvsUnder(runDir: string): Promise<void> {
  let entries: string[] = [];
  try {
    entries = readdirSync(runDir).filter((e) => e.endsWith('-ovs'));
  } catch {
    return;
  }
  for (const e of entries) {
    for (const daemon of ['ovs-vswitchd', 'ovsdb-server']) {
      const pid = readPid(join(runDir, e), daemon);
      if (pid === null || !pidAlive(pid)) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        continue;
      }
      for (let i = 0; i < 30 && pidAlive(pid); i++) await sleep(100);
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
}
