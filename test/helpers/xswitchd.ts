// test/helpers/xswitchd.ts: start xswitchd inside a test namespace on a private SQLite store and socket, talk to
// it with xsctl, apply documents, kill/restart it by PID, and plug TAP ports into VM namespaces.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as yamlStringify } from 'yaml';
import type { Topology, VmAddressing } from './netns.js';
import { type BgProcess, run, type RunResult, waitFor } from './proc.js';

/** Repository root (this file is dist/test/helpers/xswitchd.js once compiled). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const XSWITCHD = join(REPO_ROOT, 'bin', 'xswitchd');
export const XSCTL = join(REPO_ROOT, 'bin', 'xsctl');
/** Compiled test extensions, loaded by path. */
export const EXTENSIONS_DIR = join(REPO_ROOT, 'dist', 'test', 'fixtures', 'extensions');
export function extensionPath(name: string): string {
  return join(EXTENSIONS_DIR, `${name}.js`);
}

export interface XsctlResult extends RunResult {
  /** stdout parsed as JSON (throws with the output if it is not JSON). */
  json<T = unknown>(): T;
}

export interface PortCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  drops: Record<string, number>;
  /** Switch totals only: receive coalescing at the external port. */
  gro?: { segments: number; superFrames: number };
  /** Switch totals only: copies sent to mirror destination ports. */
  mirrored?: number;
}
export interface Counters {
  switch: PortCounters;
  ports: Record<string, PortCounters>;
}
export interface MacEntry {
  mac: string;
  vlan: number;
  vsid: number;
  port: string;
  ageMs: number;
}
export interface ExtInfo {
  name: string;
  kind: string;
  enabled: boolean;
  position: number;
  faults: number;
  disabledReason: string | null;
  stats: Record<string, number> | null;
  path: string;
}
export interface PortInfoJson {
  name: string;
  interface: { tap?: string; veth?: string; internal?: unknown };
  mac: string | null;
  vsid: number | null;
  vlan: { mode: string; id?: number; allowed?: number[]; native?: number } | null;
  up: boolean;
  offload: boolean;
  id: number;
  /** A stored port that is not running (a restart could not open it): why. */
  error?: string;
}

function withJson(r: RunResult): XsctlResult {
  return {
    ...r,
    json<T>(): T {
      try {
        return JSON.parse(r.stdout) as T;
      } catch {
        throw new Error(`xsctl output is not JSON (exit ${r.code}): ${r.stdout.slice(0, 2000)} ${r.stderr.slice(0, 2000)}`);
      }
    },
  };
}

/** Sum of a drop reason (or all reasons) in a counters record. */
export function dropCount(c: PortCounters | undefined, reason?: string): number {
  if (c === undefined) return 0;
  if (reason !== undefined) return c.drops[reason] ?? 0;
  return Object.values(c.drops).reduce((a, b) => a + b, 0);
}

export interface XswitchdOptions {
  /** --host, default h1 */
  readonly host?: string;
  /** Store file, default $D/xs.db (kept across restart()). */
  readonly dbPath?: string;
  readonly socket?: string;
  readonly logLevel?: 'info' | 'debug' | 'warn';
  /** A command the daemon runs under, which must exec its arguments (same PID), e.g. test/helpers/py/no-io-uring.py. */
  readonly wrap?: readonly string[];
}

export class Xswitchd {
  readonly topo: Topology;
  readonly ns: string;
  readonly dbPath: string;
  readonly socket: string;
  readonly host: string;
  readonly logLevel: string;
  readonly wrap: readonly string[];
  proc: BgProcess | null = null;
  private applyCount = 0;

  constructor(topo: Topology, ns: string, opts: XswitchdOptions = {}) {
    this.topo = topo;
    this.ns = ns;
    this.dbPath = opts.dbPath ?? join(topo.dir, 'xs.db');
    this.socket = opts.socket ?? join(topo.dir, 'xs.sock');
    this.host = opts.host ?? 'h1';
    this.logLevel = opts.logLevel ?? 'info';
    this.wrap = opts.wrap ?? [];
  }

  /** Start xswitchd in ns and wait until `xsctl status` answers. */
  static async start(topo: Topology, ns: string, opts: XswitchdOptions = {}): Promise<Xswitchd> {
    const d = new Xswitchd(topo, ns, opts);
    await d.start();
    return d;
  }

  get pid(): number {
    if (this.proc === null) throw new Error('xswitchd not started');
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.running;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('xswitchd already running');
    this.proc = this.topo.spawn(this.ns, [
      ...this.wrap, process.execPath, XSWITCHD,
      '--store', `sqlite:${this.dbPath}`, '--socket', this.socket, '--host', this.host, '--log-level', this.logLevel,
    ], { timeout: 30 * 60_000, cwd: this.topo.dir });
    const proc = this.proc;
    await waitFor(async () => {
      if (!proc.running) throw new Error(`xswitchd exited ${proc.exitCode}: ${proc.stderr.slice(-3000)}`);
      return (await this.xsctl(['status'], { timeout: 5000 })).code === 0;
    }, { timeout: 30_000, interval: 200, what: 'xsctl status to answer' }).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\nxswitchd stdout: ${proc.stdout.slice(-2000)}\nstderr: ${proc.stderr.slice(-3000)}`);
    });
  }

  /** Signal the daemon by PID and wait until it is gone (SIGKILL: no clean shutdown). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (p === null || !p.running) return;
    p.kill(signal);
    if (!(await p.waitExit(10_000))) {
      p.kill('SIGKILL');
      await p.waitExit(5000);
    }
  }

  /** Clean shutdown (SIGTERM, then SIGKILL after a grace period). */
  async stop(): Promise<void> {
    await this.proc?.stop(5000);
  }

  /** Kill (default SIGKILL) and start again on the same store and socket. */
  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.kill(signal);
    await this.start();
  }

  /** Run `xsctl --socket S [--json] ARGS...` (from the current namespace: the socket is a file). */
  async xsctl(args: readonly string[], opts: { json?: boolean; timeout?: number } = {}): Promise<XsctlResult> {
    const argv = [process.execPath, XSCTL, '--socket', this.socket, ...(opts.json === true ? ['--json'] : []), ...args];
    return withJson(await run(argv, { timeout: opts.timeout ?? 20_000, cwd: this.topo.dir }));
  }

  /** xsctl that must exit 0; returns its result. */
  async xsctlOk(args: readonly string[], opts: { json?: boolean; timeout?: number } = {}): Promise<XsctlResult> {
    const r = await this.xsctl(args, opts);
    if (r.code !== 0) {
      throw new Error(`xsctl ${args.join(' ')} failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}` +
        `\nxswitchd stderr: ${this.proc?.stderr.slice(-2000) ?? ''}`);
    }
    return r;
  }

  /** `xsctl --json ARGS` that must succeed, parsed. */
  async json<T>(args: readonly string[]): Promise<T> {
    return (await this.xsctlOk(args, { json: true })).json<T>();
  }

  /** Write doc (YAML by default, or JSON, or raw text) into the run's dir and `xsctl apply -f` it. */
  async apply(doc: object | string, opts: { format?: 'yaml' | 'json'; dryRun?: boolean; json?: boolean } = {}): Promise<XsctlResult> {
    const format = opts.format ?? 'yaml';
    const file = join(this.topo.dir, `doc-${++this.applyCount}.${format === 'json' ? 'json' : 'yaml'}`);
    const text = typeof doc === 'string' ? doc : format === 'json' ? JSON.stringify(doc, null, 2) : yamlStringify(doc);
    writeFileSync(file, text);
    return this.xsctl(['apply', '-f', file, ...(opts.dryRun === true ? ['--dry-run'] : [])], { json: opts.json ?? false, timeout: 30_000 });
  }

  async applyOk(doc: object | string, opts: { format?: 'yaml' | 'json' } = {}): Promise<XsctlResult> {
    const r = await this.apply(doc, opts);
    if (r.code !== 0) throw new Error(`apply failed (exit ${r.code}): ${r.stdout} ${r.stderr}`);
    return r;
  }

  counters(sw: string): Promise<Counters> {
    return this.json<Counters>(['counters', sw]);
  }

  macTable(sw: string): Promise<MacEntry[]> {
    return this.json<MacEntry[]>(['mac', sw]);
  }

  extList(sw: string): Promise<ExtInfo[]> {
    return this.json<ExtInfo[]>(['ext', 'list', sw]);
  }

  portList(sw: string): Promise<PortInfoJson[]> {
    return this.json<PortInfoJson[]>(['port', 'list', sw]);
  }

  /** The desired-state document as JSON text (for "unchanged" comparisons). */
  async exportJson(): Promise<string> {
    return (await this.xsctlOk(['export'], { json: true })).stdout;
  }

  /**
   * A VM on a TAP port (TESTING.md §3): the daemon opened TAP `tap` in its namespace; move it into vmNs (the
   * fd stays attached), silence IPv6, set MAC/MTU/address, bring it up. A TAP already in vmNs (xswitchd's TAPs are
   * persistent: they stay there across a daemon restart, which re-attaches to them) is only configured again.
   */
  async plugTap(tap: string, vmNs: string, a: VmAddressing): Promise<void> {
    if ((await run(['ip', '-n', vmNs, 'link', 'show', tap])).code !== 0) {
      await this.topo.waitLink(this.ns, tap, 15_000);
      await this.topo.moveLink(tap, this.ns, vmNs);
    }
    await this.topo.configureVmLink(vmNs, tap, a);
  }

  /** Last lines of the daemon's logs, for assertion messages. */
  logTail(chars = 3000): string {
    return this.proc === null ? '' : `stdout: ${this.proc.stdout.slice(-chars)}\nstderr: ${this.proc.stderr.slice(-chars)}`;
  }
}

/** A VM namespace whose NIC is a TAP port of xswitch. */
export interface TapVm {
  /** Port name on the switch, e.g. vm1. */
  readonly name: string;
  readonly ns: string;
  readonly tap: string;
  readonly mac: string;
  readonly ip: string;
  readonly cidr: string;
}

/**
 * Namespaces vm<first>..vm<first+count-1> with their planned TAP name (`${prefix}t<i>`), MAC 02:00:00:00:00:<i>
 * and address 10.0.0.<i>/24 (or `${subnet}.<i>/24`). The TAPs themselves are created by xswitchd.
 */
export async function makeTapVms(topo: Topology, count: number, opts: { first?: number; subnet?: string } = {}): Promise<TapVm[]> {
  const first = opts.first ?? 1;
  const subnet = opts.subnet ?? '10.0.0';
  const vms: TapVm[] = [];
  for (let i = first; i < first + count; i++) {
    const hex = i.toString(16).padStart(2, '0');
    vms.push({
      name: `vm${i}`, ns: await topo.addNs(`vm${i}`), tap: topo.ifname(`t${i}`),
      mac: `02:00:00:00:00:${hex}`, ip: `${subnet}.${i}`, cidr: `${subnet}.${i}/24`,
    });
  }
  return vms;
}

/** The document entry of a TAP VM's port (extra: vlan, vsid, mac override ...). */
export function tapPortDoc(vm: TapVm, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: vm.name, interface: { tap: vm.tap }, mac: vm.mac, ...extra };
}

/** Move every VM's TAP from the daemon's namespace into the VM's and configure it (see Xswitchd.plugTap). */
export async function plugTapVms(d: Xswitchd, vms: readonly TapVm[]): Promise<void> {
  for (const vm of vms) await d.plugTap(vm.tap, vm.ns, { mac: vm.mac, cidr: vm.cidr });
}

/**
 * The common start of a TAP test: xswitchd in namespace h1 (opts as Xswitchd.start), `count` VM namespaces, one
 * switch sw0 with a TAP port per VM (tapPortDoc), every TAP plugged into its VM.
 */
export async function startTapSwitch(topo: Topology, count: number, opts: XswitchdOptions = {}): Promise<{ d: Xswitchd; vms: TapVm[] }> {
  const h1 = await topo.addNs('h1');
  const d = await Xswitchd.start(topo, h1, opts);
  const vms = await makeTapVms(topo, count);
  await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports: vms.map((vm) => tapPortDoc(vm)) }] });
  await plugTapVms(d, vms);
  return { d, vms };
}
