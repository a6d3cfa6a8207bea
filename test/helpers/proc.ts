// test/helpers/proc.ts: bounded child processes for e2e tests: run with a timeout, background processes whose
// output is kept, polling for a condition with a deadline, and killing by PID only (never by name).
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult {
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  /** Kill (SIGKILL) after this many ms; default 30 s. */
  readonly timeout?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Run argv to completion (never through a shell) and collect its output. Never rejects on exit code. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('run: empty argv');
  const timeout = opts.timeout ?? 30_000;
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, signal: null, stdout, stderr: stderr + String(e), timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal !== null ? 128 : 1), signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Like run, but throws with the command's output when it fails (exit code != 0). */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new Error(`command failed (${r.timedOut ? 'timeout' : `exit ${r.code}`}): ${argv.join(' ')}\n` +
      `stdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  }
  return r;
}

export interface BgOptions {
  /** Hard bound: SIGKILL after this many ms (default 5 minutes). */
  readonly timeout?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Send stdout to this file descriptor instead of keeping it (the caller closes its copy). */
  readonly stdoutFd?: number;
}

/** A background process; its output is kept so tests can wait for a line and read it afterwards. */
export class BgProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly argv: readonly string[];
  stdout = '';
  stderr = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly timer: NodeJS.Timeout | null;

  constructor(argv: readonly string[], opts: BgOptions = {}) {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('spawn: empty argv');
    this.argv = argv;
    this.child = spawn(cmd, args, {
      stdio: ['ignore', opts.stdoutFd ?? 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    if (this.child.pid === undefined) throw new Error(`spawn failed: ${argv.join(' ')}`);
    this.pid = this.child.pid;
    // Output kept for assertions and failure messages, capped so a chatty daemon cannot grow without bound.
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout = capText(this.stdout + d)));
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr = capText(this.stderr + d)));
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exitCode = code ?? 128;
        this.exitSignal = signal;
        if (this.timer !== null) clearTimeout(this.timer);
        resolve();
      });
      this.child.on('error', (e) => {
        this.stderr += String(e);
        this.exitCode = 127;
        resolve();
      });
    });
    // A hard bound even if the test forgets it: SIGKILL after `timeout` (default 5 minutes).
    this.timer = setTimeout(() => this.kill('SIGKILL'), opts.timeout ?? 300_000);
    this.timer.unref();
  }

  get running(): boolean {
    return this.exitCode === null;
  }

  /** Signal this process by its PID (no-op once it exited). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM, wait up to graceMs, then SIGKILL; resolves once the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.kill('SIGTERM');
    if (await this.waitExit(graceMs)) return;
    this.kill('SIGKILL');
    await this.waitExit(5000);
  }

  /** True if the process exited within ms. */
  async waitExit(ms: number): Promise<boolean> {
    if (!this.running) return true;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (t = setTimeout(() => r(false), ms)));
    const done = this.exited.then(() => true);
    const res = await Promise.race([done, timeout]);
    clearTimeout(t);
    return res;
  }

  /** Wait until stdout or stderr (as chosen) matches re; throws with the output on deadline or exit. */
  async waitForOutput(re: RegExp, opts: { timeout?: number; stream?: 'stdout' | 'stderr' | 'both' } = {}): Promise<string> {
    const stream = opts.stream ?? 'both';
    const text = (): string => (stream === 'stdout' ? this.stdout : stream === 'stderr' ? this.stderr : this.stdout + '\n' + this.stderr);
    await waitFor(() => re.test(text()) || !this.running, { timeout: opts.timeout ?? 15_000, what: `output ${re} from ${this.argv.join(' ')}` });
    const m = re.exec(text());
    if (m === null) {
      throw new Error(`${this.argv.join(' ')} exited (${this.exitCode}) before printing ${re}\n` +
        `stdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`);
    }
    return m[0];
  }
}

const OUTPUT_CAP = 4 * 1024 * 1024;
function capText(s: string): string {
  return s.length > OUTPUT_CAP ? s.slice(s.length - OUTPUT_CAP / 2) : s;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface WaitOptions {
  /** Deadline in ms (default 10 s). */
  readonly timeout?: number;
  /** Poll interval in ms (default 100). */
  readonly interval?: number;
  /** What is awaited, for the error message. */
  readonly what?: string;
}

/**
 * Poll `cond` until it returns a truthy value (returned) or the deadline passes (throws). `cond` may be async;
 * a throw inside it counts as "not yet" and its last message goes into the timeout error.
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeout ?? 10_000);
  let last = '';
  for (;;) {
    try {
      const v = await cond();
      if (v !== undefined && v !== null && v !== false && v !== 0 && v !== '') return v as NonNullable<T>;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${opts.timeout ?? 10_000} ms waiting for ${opts.what ?? 'condition'}` +
        (last !== '' ? `; last error: ${last}` : ''));
    }
    await sleep(opts.interval ?? 100);
  }
}

/** Signal a PID we started; ignores ESRCH. */
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
