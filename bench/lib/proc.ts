// bench/lib/proc.ts: bounded child processes for the benchmark. Every command has a deadline; every long-lived
// child is registered so cleanup (also on Ctrl-C) ends exactly the PIDs this run started, never by name.
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  /** Kill (SIGKILL) after this long; default 15 s. */
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
}

const live = new Set<ChildProcess>();

/** Run a command to completion, bounded by timeoutMs; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 15_000);
    child.on('error', (err) => {
      stderr += String(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but a non-zero exit (or a timeout) becomes an error carrying the command and its stderr. */
export async function must(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`;
    throw new Error(`${cmd} ${args.join(' ')}: ${why}: ${(r.stderr || r.stdout).trim().slice(0, 600)}`);
  }
  return r.stdout;
}

/** A background child whose output is collected; ended by PID through stop() or killAll(). */
export class Background {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private done = false;

  constructor(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(cmd, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.stderr += String(err);
      });
      this.child.on('close', (code, signal) => {
        this.done = true;
        live.delete(this.child);
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /** Resolves when `pred(stdout, stderr)` holds; rejects at the deadline or if the process exits first. */
  async waitFor(pred: (out: string, err: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.stdout, this.stderr)) {
      if (!this.running) throw new Error(`${what}: process exited: ${this.stderr.trim().slice(-600)}`);
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms: ${this.stderr.trim().slice(-600)}`);
      await sleep(20);
    }
  }

  /** SIGTERM (or sig), then SIGKILL if still alive after graceMs. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill(sig);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll an async condition until it holds or the deadline passes. */
export async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}

/**
 * End every child this process started that is still running (last-resort cleanup): SIGTERM so `timeout`
 * forwards it to its command, then SIGKILL what is left after graceMs.
 */
export async function killAll(graceMs = 3000): Promise<void> {
  const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
  for (const c of live) if (alive(c)) c.kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while ([...live].some(alive) && Date.now() < deadline) await sleep(50);
  for (const c of live) if (alive(c)) c.kill('SIGKILL');
}

/** Is PID alive (signal 0)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
