// test/helpers/ns-basic.ts: the few namespace chores the io back-end tests need (per-run prefix, bounded commands,
// polling for a condition). The shared topology helper is test/helpers/netns.ts; keep this one minimal.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** 'xs' + 4 random hex: on every namespace and interface a test run creates. */
export function runPrefix(): string {
  return 'xs' + randomBytes(2).toString('hex');
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Run a command to completion (10 s bound); returns stdout, throws with stderr on failure. */
export function sh(cmd: string, args: string[], timeoutMs = 10_000): string {
  return execFileSync(cmd, args, { timeout: timeoutMs, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Like sh, in namespace ns. */
export function nsSh(ns: string, cmd: string, args: string[], timeoutMs = 10_000): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

/** Best effort (cleanup): true if the command succeeded. */
export function tryRun(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/** Create namespace ns with lo up. */
export function addNs(ns: string): void {
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** Start `timeout SECS cmd args` in namespace ns (ip netns exec execs in place: the PID is timeout's). */
export function nsSpawn(ns: string, secs: number, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn('timeout', ['-k', '2', String(secs), 'ip', 'netns', 'exec', ns, cmd, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
}

/** Kill a child we started (by PID) if still running. */
export function killChild(c: ChildProcess | null | undefined): void {
  if (c && c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
    try {
      process.kill(c.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** Resolve when the child exits: its exit code (null if killed) and everything it printed. */
export function collect(c: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => c.on('close', (code) => resolve({ code, out, err })));
}

/** Poll cond every few ms (the event loop keeps running) until true or the deadline; returns cond's last value. */
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return cond();
}

/** Wait until a TCP listener on `port` shows up in namespace ns. */
export async function waitListening(ns: string, port: number, ms = 5000): Promise<boolean> {
  return waitFor(() => {
    try {
      return nsSh(ns, 'ss', ['-Hltn', `sport = :${port}`]).trim().length > 0;
    } catch {
      return false;
    }
  }, ms);
}
