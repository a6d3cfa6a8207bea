// test/helpers/netns.ts: one e2e run's network namespaces, links and processes under a per-run prefix, with a
// cleanup that kills what the run started (by PID), deletes its namespaces and removes its temp dir.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BgOptions, BgProcess, run, runOk, waitFor, type RunResult } from './proc.js';

export interface ExecOptions {
  /** ms, default 30 s. */
  readonly timeout?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface VmAddressing {
  /** e.g. "02:00:00:00:00:01" */
  readonly mac?: string;
  /** e.g. "10.0.0.1/24" */
  readonly cidr?: string;
  readonly mtu?: number;
}

/** Interface names the kernel accepts: at most 15 characters. */
export function checkIfName(name: string): string {
  if (name.length === 0 || name.length > 15) throw new Error(`interface name '${name}' must have 1..15 characters`);
  return name;
}

/** Strip the prefix length from "10.0.0.1/24". */
export function ipOf(cidr: string): string {
  return cidr.split('/')[0] ?? cidr;
}

/**
 * A run: `Topology.create()` in a `before` hook, `cleanup()` in an `after` hook (it runs on failure too).
 * Namespace names are `${prefix}-${name}`; interface names the test makes should start with `prefix` too.
 */
export class Topology {
  readonly prefix: string;
  readonly dir: string;
  private readonly namespaces: string[] = [];
  private readonly procs: BgProcess[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private cleaned = false;

  private constructor(prefix: string, dir: string) {
    this.prefix = prefix;
    this.dir = dir;
  }

  static create(): Topology {
    if (process.getuid?.() !== 0) throw new Error('e2e tests need root (network namespaces)');
    const prefix = 'xs' + randomBytes(2).toString('hex');
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    return new Topology(prefix, dir);
  }

  /** Full namespace name of a short one. */
  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }

  /** A prefixed interface name (`${prefix}${suffix}`), checked for length. */
  ifname(suffix: string): string {
    return checkIfName(`${this.prefix}${suffix}`);
  }

  /** Create namespace `${prefix}-${name}` with lo up; returns its full name. */
  async addNs(name: string): Promise<string> {
    const ns = this.ns(name);
    await runOk(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    await runOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Run argv inside namespace ns (null: the current namespace). Never rejects on exit code. */
  exec(ns: string | null, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    const full = ns === null ? argv : ['ip', 'netns', 'exec', ns, ...argv];
    return run(full, opts);
  }

  /** exec, throwing with the output if the exit code is not 0. */
  async execOk(ns: string | null, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    const full = ns === null ? argv : ['ip', 'netns', 'exec', ns, ...argv];
    return runOk(full, opts);
  }

  /** `ip [-n ns] ARGS...` that must succeed. */
  async ip(ns: string | null, ...args: string[]): Promise<RunResult> {
    return runOk(ns === null ? ['ip', ...args] : ['ip', '-n', ns, ...args]);
  }

  /**
   * Background process inside ns (`ip netns exec` execs in place, so the PID is the tool's). Killed by PID in
   * cleanup(); bounded by `timeout` ms (default 5 min) regardless.
   */
  spawn(ns: string | null, argv: readonly string[], opts: BgOptions = {}): BgProcess {
    const full = ns === null ? argv : ['ip', 'netns', 'exec', ns, ...argv];
    const p = new BgProcess(full, opts);
    this.procs.push(p);
    return p;
  }

  /** A veth pair: end a (name, namespace) and end b; both ends come up. */
  async veth(a: { ns: string; name: string }, b: { ns: string; name: string }, opts: { mtu?: number } = {}): Promise<void> {
    checkIfName(a.name);
    checkIfName(b.name);
    const mtu = opts.mtu !== undefined ? ['mtu', String(opts.mtu)] : [];
    await runOk(['ip', 'link', 'add', a.name, 'netns', a.ns, ...mtu, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns, ...mtu]);
    await this.ip(a.ns, 'link', 'set', a.name, 'up');
    await this.ip(b.ns, 'link', 'set', b.name, 'up');
  }

  /** Move interface ifname from namespace `from` (null: current) into `to`. */
  async moveLink(ifname: string, from: string | null, to: string): Promise<void> {
    await this.ip(from, 'link', 'set', ifname, 'netns', to);
  }

  /** Wait until interface ifname exists in ns. */
  async waitLink(ns: string | null, ifname: string, timeout = 10_000): Promise<void> {
    await waitFor(async () => (await run(ns === null ? ['ip', 'link', 'show', ifname] : ['ip', '-n', ns, 'link', 'show', ifname])).code === 0,
      { timeout, what: `interface ${ifname} in ${ns ?? 'current namespace'}` });
  }

  async sysctl(ns: string | null, key: string, value: string | number): Promise<void> {
    await this.execOk(ns, ['sysctl', '-qw', `${key}=${value}`]);
  }

  async addAddr(ns: string, ifname: string, cidr: string): Promise<void> {
    await this.ip(ns, 'addr', 'add', cidr, 'dev', ifname);
  }

  /**
   * Make ifname in ns behave as a quiet VM NIC: IPv6 off (no RS/MLD noise), MAC, MTU, up, IPv4 address.
   */
  async configureVmLink(ns: string, ifname: string, a: VmAddressing = {}): Promise<void> {
    await this.sysctl(ns, `net.ipv6.conf.${ifname}.disable_ipv6`, 1);
    if (a.mac !== undefined) await this.ip(ns, 'link', 'set', ifname, 'address', a.mac);
    if (a.mtu !== undefined) await this.ip(ns, 'link', 'set', ifname, 'mtu', String(a.mtu));
    await this.ip(ns, 'link', 'set', ifname, 'up');
    if (a.cidr !== undefined) await this.ip(ns, 'addr', 'replace', a.cidr, 'dev', ifname);
  }

  /** Read /sys/class/net/IF/statistics/NAME inside ns. */
  async linkStat(ns: string, ifname: string, stat: string): Promise<number> {
    const r = await this.execOk(ns, ['cat', `/sys/class/net/${ifname}/statistics/${stat}`]);
    return Number(r.stdout.trim());
  }

  /** Register extra cleanup work (run in reverse order, before namespaces are deleted). */
  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /** Namespaces this run created and that still exist. */
  async liveNamespaces(): Promise<string[]> {
    const r = await run(['ip', 'netns', 'list']);
    const names = r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
    return names.filter((n) => n.startsWith(`${this.prefix}-`));
  }

  /** Kill started processes by PID, run registered cleanups, delete the run's namespaces and temp dir. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const errors: string[] = [];
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e));
      }
    }
    await Promise.all(this.procs.map((p) => p.stop(2000)));
    for (const ns of [...this.namespaces].reverse()) {
      const r = await run(['ip', 'netns', 'del', ns]);
      if (r.code !== 0 && !/No such file/.test(r.stderr)) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    if (process.env.XS_KEEP_DIR === undefined) rmSync(this.dir, { recursive: true, force: true });
    const left = await this.liveNamespaces();
    if (left.length > 0) errors.push(`namespaces left: ${left.join(' ')}`);
    if (errors.length > 0) throw new Error(`cleanup: ${errors.join('; ')}`);
  }
}
