// test/helpers/peers.ts: independent peers and probes for e2e tests: a private userspace Open vSwitch, tshark
// captures with field extraction, scapy senders (test/helpers/py), bounded iperf3 and ping with parsed results.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Topology } from './netns.js';
import { type BgProcess, run, runOk, type RunResult, sleep, waitFor } from './proc.js';
import { REPO_ROOT } from './xswitchd.js';

/** Debian's scapy runs only under this interpreter (TESTING.md §2). */
export const PYTHON = '/usr/bin/python3';
export const PY_DIR = join(REPO_ROOT, 'test', 'helpers', 'py');
export function pyScript(name: string): string {
  return join(PY_DIR, name);
}

// ---------------------------------------------------------------------------------------------------------------
// Open vSwitch (userspace, datapath_type=netdev), private db/run dir, daemons inside one namespace.

export class OvsPeer {
  readonly topo: Topology;
  readonly ns: string;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  private db: BgProcess | null = null;
  private vswitchd: BgProcess | null = null;
  private stopped = false;

  private constructor(topo: Topology, ns: string, dir: string) {
    this.topo = topo;
    this.ns = ns;
    this.dir = dir;
    this.env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
  }

  /**
   * Fresh database and both daemons inside namespace ns (run in the foreground as children, so they are ours
   * by PID). Stopped by stop() or, at the latest, by the topology's cleanup.
   */
  static async start(topo: Topology, ns: string, name = 'ovs'): Promise<OvsPeer> {
    const dir = join(topo.dir, `${name}-ovs`);
    mkdirSync(dir, { recursive: true });
    const o = new OvsPeer(topo, ns, dir);
    topo.onCleanup(() => o.stop());
    await runOk(['ovsdb-tool', 'create', join(dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema'], { env: o.env });
    o.db = topo.spawn(ns, ['ovsdb-server', join(dir, 'conf.db'), '-vconsole:off', `--remote=punix:${join(dir, 'db.sock')}`,
      '--remote=db:Open_vSwitch,Open_vSwitch,manager_options', `--pidfile=${join(dir, 'ovsdb-server.pid')}`,
      `--log-file=${join(dir, 'ovsdb-server.log')}`], { env: o.env, timeout: 30 * 60_000 });
    await waitFor(() => existsSync(join(dir, 'db.sock')) || !o.db?.running, { timeout: 15_000, what: 'ovsdb-server socket' });
    await o.vsctl('--no-wait', 'init');
    o.vswitchd = topo.spawn(ns, ['ovs-vswitchd', `unix:${join(dir, 'db.sock')}`, '-vconsole:off',
      `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`, `--log-file=${join(dir, 'ovs-vswitchd.log')}`], { env: o.env, timeout: 30 * 60_000 });
    const vswitchd = o.vswitchd;
    await waitFor(async () => {
      if (!vswitchd.running) throw new Error(`ovs-vswitchd exited: ${vswitchd.stderr.slice(-1000)}`);
      return existsSync(join(dir, 'ovs-vswitchd.pid')) && (await o.appctlRaw('-t', 'ovs-vswitchd', 'version')).code === 0;
    }, { timeout: 20_000, interval: 200, what: 'ovs-vswitchd control socket' });
    return o;
  }

  private appctlRaw(...args: string[]): Promise<RunResult> {
    return run(['ovs-appctl', ...args], { env: this.env, timeout: 10_000 });
  }

  vsctl(...args: string[]): Promise<RunResult> {
    return runOk(['ovs-vsctl', '--timeout=10', ...args], { env: this.env, timeout: 20_000 });
  }

  appctl(...args: string[]): Promise<RunResult> {
    return runOk(['ovs-appctl', ...args], { env: this.env, timeout: 20_000 });
  }

  ofctl(...args: string[]): Promise<RunResult> {
    return runOk(['ovs-ofctl', ...args], { env: this.env, timeout: 20_000 });
  }

  /** A standalone (MAC-learning) userspace bridge. */
  async addBridge(br: string): Promise<void> {
    await this.vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev', '--', 'set-fail-mode', br, 'standalone');
  }

  /** Add an existing interface of the OVS namespace as a port; extra e.g. 'tag=10' or 'trunks=10,20'. */
  async addPort(br: string, ifname: string, ...extra: string[]): Promise<void> {
    await this.vsctl('add-port', br, ifname, ...extra);
  }

  /** del-br every bridge, then stop ovs-vswitchd and ovsdb-server by PID. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.vswitchd?.running === true && this.db?.running === true) {
      const brs = await run(['ovs-vsctl', '--timeout=5', 'list-br'], { env: this.env, timeout: 10_000 });
      for (const b of brs.stdout.split('\n').filter((l) => l !== '')) {
        await run(['ovs-vsctl', '--timeout=5', 'del-br', b], { env: this.env, timeout: 10_000 });
      }
    }
    await this.vswitchd?.stop(3000);
    await this.db?.stop(3000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// tshark

export class Capture {
  readonly file: string;
  readonly proc: BgProcess;
  private constructor(file: string, proc: BgProcess) {
    this.file = file;
    this.proc = proc;
  }

  /**
   * `tshark -i IF -a duration:S [-s SNAPLEN] -w -` into FILE inside ns; resolves once the capture runs. An
   * optional capture filter (BPF) keeps the file small.
   */
  static async start(topo: Topology, ns: string, ifname: string, opts: { seconds?: number; bpf?: string; name?: string; snaplen?: number } = {}): Promise<Capture> {
    const file = join(topo.dir, `${opts.name ?? `${ns}-${ifname}`}-${Date.now()}.pcapng`);
    const seconds = opts.seconds ?? 30;
    // `-w -` into a file descriptor: dumpcap then flushes every packet, so the file can be read while live
    // (with `-w FILE` it buffers and a few small frames may not be in the file yet).
    // snaplen: bytes kept per frame (tshark -s), for captures under bulk TCP
    const argv = ['tshark', '-n', '-i', ifname, '-a', `duration:${seconds}`,
      ...(opts.snaplen === undefined ? [] : ['-s', String(opts.snaplen)]), '-w', '-'];
    if (opts.bpf !== undefined) argv.push('-f', opts.bpf);
    const fd = openSync(file, 'w');
    let proc: BgProcess;
    try {
      proc = topo.spawn(ns, argv, { timeout: (seconds + 15) * 1000, stdoutFd: fd });
    } finally {
      closeSync(fd);
    }
    // tshark prints "Capturing on" BEFORE its dumpcap child has opened the interface (frames sent right after it
    // can be missed on a loaded machine); "Capture started." comes once dumpcap reports its output file, i.e.
    // after the interface is open.
    await proc.waitForOutput(/Capture started/, { stream: 'stderr', timeout: 20_000 });
    return new Capture(file, proc);
  }

  /** Stop (SIGINT: tshark finishes the file) and wait for it to exit. */
  async stop(): Promise<void> {
    if (this.proc.running) {
      this.proc.kill('SIGINT');
      if (!(await this.proc.waitExit(10_000))) await this.proc.stop(1000);
    }
  }

  /** Fields of packets matching displayFilter, one row per packet (works on the live file too). */
  async fields(displayFilter: string, fields: readonly string[], occurrence: 'f' | 'l' | 'a' = 'a'): Promise<string[][]> {
    return decodeFields(this.file, displayFilter, fields, occurrence);
  }

  /** Number of packets matching displayFilter. */
  async count(displayFilter: string): Promise<number> {
    return (await this.fields(displayFilter, ['frame.number'])).length;
  }

  /** Poll the (live) file until at least n packets match displayFilter. */
  async waitCount(displayFilter: string, n: number, timeout = 15_000): Promise<number> {
    return waitFor<number>(async () => {
      const c = await this.count(displayFilter);
      return c >= n ? c : 0;
    }, { timeout, interval: 300, what: `${n} packets matching '${displayFilter}' in ${this.file}` });
  }
}

/** tshark -r FILE -Y FILTER -T fields -e F...; rows split on tabs. */
export async function decodeFields(file: string, displayFilter: string, fields: readonly string[], occurrence: 'f' | 'l' | 'a' = 'a'): Promise<string[][]> {
  if (!existsSync(file)) return [];
  return tsharkRows(file, [], displayFilter, fields, occurrence, 30_000);
}

/** tshark -r FILE [OPTIONS] -T fields: the rows of the fields asked for, tolerating a live file cut short. */
export async function tsharkRows(
  file: string, options: readonly string[], displayFilter: string, fields: readonly string[], occurrence: 'f' | 'l' | 'a', timeout: number,
): Promise<string[][]> {
  const argv = ['tshark', '-n', '-r', file, ...options, '-T', 'fields', '-E', `occurrence=${occurrence}`];
  if (displayFilter !== '') argv.push('-Y', displayFilter);
  for (const f of fields) argv.push('-e', f);
  const r = await run(argv, { timeout });
  // A live file may end mid-packet: tshark then exits 2 with "cut short"; the rows it printed are good.
  if (r.code !== 0 && !/cut short|appears to have been cut|truncated/i.test(r.stderr)) {
    throw new Error(`tshark -r ${file} -Y '${displayFilter}' failed (${r.code}): ${r.stderr.slice(-1000)}`);
  }
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// ---------------------------------------------------------------------------------------------------------------
// scapy / raw frames (scripts in test/helpers/py)

export interface SendResult {
  readonly sent: Record<string, number>;
  readonly failed: Record<string, string>;
  readonly raw: RunResult;
}

/**
 * Send named frames (frames.py) out of ifname inside ns. env sets addresses: SRC_MAC, DST_MAC, SRC_IP, DST_IP,
 * VLAN, VLAN2, COUNT. The kernel refuses frames shorter than 14 bytes on an Ethernet device (EINVAL): such
 * names end up in `failed`.
 */
export async function sendFrames(topo: Topology, ns: string, ifname: string, names: readonly string[], env: Record<string, string> = {}): Promise<SendResult> {
  const r = await topo.exec(ns, [PYTHON, pyScript('frames.py'), 'send', ifname, ...names], { env: { ...process.env, ...env }, timeout: 60_000 });
  if (r.code !== 0) throw new Error(`frames.py failed (${r.code}): ${r.stdout} ${r.stderr}`);
  const sent: Record<string, number> = {};
  const failed: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^sent (\S+) (\d+)$/.exec(line);
    if (m !== null) sent[m[1] as string] = (sent[m[1] as string] ?? 0) + 1;
    const f = /^failed (\S+) (.*)$/.exec(line);
    if (f !== null) failed[f[1] as string] = f[2] as string;
  }
  return { sent, failed, raw: r };
}

// ---------------------------------------------------------------------------------------------------------------
// ping / iperf3

export interface PingResult {
  readonly transmitted: number;
  readonly received: number;
  readonly lossPct: number;
  readonly rttAvgMs: number | null;
  readonly raw: RunResult;
}

export function parsePing(r: RunResult): PingResult {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  const loss = /([\d.]+)% packet loss/.exec(r.stdout);
  const rtt = /rtt min\/avg\/max\/mdev = [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return {
    transmitted: m !== null ? Number(m[1]) : 0,
    received: m !== null ? Number(m[2]) : 0,
    lossPct: loss !== null ? Number(loss[1]) : 100,
    rttAvgMs: rtt !== null ? Number(rtt[1]) : null,
    raw: r,
  };
}

/** ping -c COUNT -W 1 [-i INTERVAL] DST inside ns, bounded. */
export async function ping(topo: Topology, ns: string, dst: string, opts: { count?: number; interval?: number; extra?: string[] } = {}): Promise<PingResult> {
  const count = opts.count ?? 3;
  const interval = opts.interval ?? 0.2;
  const bound = Math.ceil(count * interval + 10);
  const argv = ['timeout', String(bound), 'ping', '-n', '-c', String(count), '-i', String(interval), '-W', '1', ...(opts.extra ?? []), dst];
  return parsePing(await topo.exec(ns, argv, { timeout: (bound + 5) * 1000 }));
}

/**
 * Ping until one reply arrives (ARP and MAC learning settle), up to `timeout` ms; returns true if it did.
 * Use before assertions that need a warm path; assert on a later, counted ping.
 */
export async function pingUntilReply(topo: Topology, ns: string, dst: string, timeout = 15_000): Promise<boolean> {
  try {
    await waitFor(async () => (await ping(topo, ns, dst, { count: 1, interval: 0.2 })).received === 1, { timeout, interval: 200, what: `reply from ${dst}` });
    return true;
  } catch {
    return false;
  }
}

export interface IperfResult {
  readonly ok: boolean;
  readonly bitsPerSecond: number;
  readonly bytes: number;
  readonly error: string | null;
  readonly client: RunResult;
  readonly server: { stdout: string; stderr: string; exitCode: number | null };
}

/** Bounded TCP (or UDP) iperf3 between two namespaces: one-shot server bound to serverIp, 2 s client. */
export async function iperf3(topo: Topology, serverNs: string, serverIp: string, clientNs: string, opts: { udp?: boolean; seconds?: number } = {}): Promise<IperfResult> {
  const port = String(5201 + Math.floor(Math.random() * 1000));
  const server = topo.spawn(serverNs, ['timeout', '20', 'iperf3', '-s', '-1', '--forceflush', '-B', serverIp, '-p', port], { timeout: 25_000 });
  // Ready once the socket listens (iperf3's own banner is block-buffered on a pipe).
  await waitFor(async () => {
    if (!server.running) throw new Error(`iperf3 server exited: ${server.stdout} ${server.stderr}`);
    return (await topo.exec(serverNs, ['ss', '-Hltn', `sport = :${port}`])).stdout.includes(port);
  }, { timeout: 10_000, interval: 100, what: `iperf3 server on ${serverIp}:${port}` });
  const seconds = opts.seconds ?? 2;
  const argv = ['timeout', String(seconds + 10), 'iperf3', '-c', serverIp, '-p', port, '-t', String(seconds), '--connect-timeout', '2000', '-J'];
  if (opts.udp === true) argv.push('-u', '-b', '50M', '-l', '1200');
  const client = await topo.exec(clientNs, argv, { timeout: (seconds + 15) * 1000 });
  await server.waitExit(5000);
  await server.stop(1000);
  let bitsPerSecond = 0;
  let bytes = 0;
  let error: string | null = null;
  try {
    const j = JSON.parse(client.stdout) as { error?: string; end?: { sum_received?: { bits_per_second?: number; bytes?: number }; sum?: { bits_per_second?: number; bytes?: number } } };
    if (j.error !== undefined) error = j.error;
    const sum = j.end?.sum_received ?? j.end?.sum;
    bitsPerSecond = sum?.bits_per_second ?? 0;
    bytes = sum?.bytes ?? 0;
  } catch {
    error = `not JSON: ${client.stdout.slice(0, 500)} ${client.stderr.slice(0, 500)}`;
  }
  return { ok: client.code === 0 && error === null && bytes > 0, bitsPerSecond, bytes, error, client,
    server: { stdout: server.stdout, stderr: server.stderr, exitCode: server.exitCode } };
}

export { sleep };
