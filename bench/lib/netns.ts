// bench/lib/netns.ts: network-namespace plumbing for the benchmark topologies (TESTING.md §3): namespaces with
// the run's prefix, veth pairs, VM-side addressing, interface counters read from inside a namespace.
import { must, run } from './proc.js';

/** 'xs' + 4 random hex digits: on every namespace and host-side interface this run creates. */
export function runPrefix(): string {
  return 'xs' + Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0');
}

export function ip(...args: string[]): Promise<string> {
  return must('ip', args, { timeoutMs: 10_000 });
}

export function nsExec(ns: string, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return must('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs });
}

export async function addNs(ns: string): Promise<void> {
  await ip('netns', 'add', ns);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
}

/** Delete a namespace; tolerant (it may already be gone). Processes inside must be ended by PID first. */
export async function delNs(ns: string): Promise<void> {
  await run('ip', ['netns', 'del', ns], { timeoutMs: 10_000 });
}

export async function listNs(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { timeoutMs: 5000 });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

export async function disableIpv6(ns: string, ifname: string): Promise<void> {
  await nsExec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
}

/** A VM namespace's interface: no IPv6 noise, fixed MAC, an address, up. */
export async function configureVmIf(ns: string, ifname: string, mac: string, cidr: string): Promise<void> {
  await disableIpv6(ns, ifname);
  await ip('-n', ns, 'link', 'set', ifname, 'address', mac, 'up');
  await ip('-n', ns, 'addr', 'add', cidr, 'dev', ifname);
}

/** veth pair: `hostIf` in hostNs, `vmIf` in vmNs. */
export async function addVeth(hostNs: string, hostIf: string, vmNs: string, vmIf: string): Promise<void> {
  await ip('link', 'add', hostIf, 'netns', hostNs, 'type', 'veth', 'peer', 'name', vmIf, 'netns', vmNs);
  await disableIpv6(hostNs, hostIf);
}

export async function ifExists(ns: string, ifname: string): Promise<boolean> {
  const r = await run('ip', ['-n', ns, 'link', 'show', ifname], { timeoutMs: 5000 });
  return r.code === 0;
}

export interface IfStats {
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly rxDropped: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly txDropped: number;
}

/** Interface counters (netlink stats64) of ifname in ns. */
export async function ifStats(ns: string, ifname: string): Promise<IfStats> {
  const out = await must('ip', ['-n', ns, '-s', '-j', 'link', 'show', ifname], { timeoutMs: 5000 });
  const parsed: unknown = JSON.parse(out);
  const first = Array.isArray(parsed) ? (parsed[0] as unknown) : undefined;
  const s = (first as { stats64?: { rx?: Record<string, number>; tx?: Record<string, number> } } | undefined)
    ?.stats64;
  if (s?.rx === undefined || s.tx === undefined) throw new Error(`no stats64 for ${ns}/${ifname}`);
  return {
    rxPackets: s.rx['packets'] ?? 0,
    rxBytes: s.rx['bytes'] ?? 0,
    rxDropped: s.rx['dropped'] ?? 0,
    txPackets: s.tx['packets'] ?? 0,
    txBytes: s.tx['bytes'] ?? 0,
    txDropped: s.tx['dropped'] ?? 0,
  };
}

/** `ethtool -K IF tx off`: no checksum offload, hence no TSO/GSO, on a veth sending into an AF_PACKET reader. */
export async function txOff(ns: string, ifname: string): Promise<void> {
  await nsExec(ns, 'ethtool', ['-K', ifname, 'tx', 'off']);
}
