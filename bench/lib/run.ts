// bench/lib/run.ts: what one benchmark run owns (prefix, temp dir, the live topology) and its cleanup, for the
// normal exit, errors and Ctrl-C: teardown, this run's children by PID, its OVS daemons, its namespaces, its dir.
// Also the shape every benchmark's rounds share: interleaved rounds, the quiet-machine wait before each candidate,
// and one candidate's round (set up, warm up, measure step by step, tear down) with its errors recorded.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText, log } from './cli.js';
import { waitQuiet } from './machine.js';
import { warmUp } from './measure.js';
import { delNs, listNs, runPrefix } from './netns.js';
import { killOvsUnder } from './ovs.js';
import { killAll } from './proc.js';
import type { Samples } from './report.js';
import type { Topology } from './topology.js';

export class BenchRun {
  readonly prefix = runPrefix();
  readonly dir: string;
  active: { teardown(): Promise<void> } | null = null;
  /** Set by SIGINT/SIGTERM (after trapSignals): the run stops at the next candidate. */
  interrupted = false;
  private cleaned = false;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  }

  /** On SIGINT/SIGTERM: clean up once, then exit with code 130. */
  trapSignals(): this {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (this.interrupted) return;
      this.interrupted = true;
      log(`${sig}: cleaning up`);
      void this.cleanup().finally(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return this;
  }

  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const t = this.active;
    this.active = null;
    if (t !== null) await t.teardown().catch((err: unknown) => log(`teardown: ${String(err)}`));
    await killAll();
    await killOvsUnder(this.dir);
    for (const ns of await listNs()) if (ns.startsWith(`${this.prefix}-`)) await delNs(ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** 1-minute load average (NaN if unreadable). */
export function loadAvg1(): number {
  try {
    return Number.parseFloat(readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? 'NaN');
  } catch {
    return Number.NaN;
  }
}

/**
 * `rounds` rounds over `items`, the order rotated each round so no item always runs first (or right after the
 * same neighbour). `each` gets the item, the round and the item's index in `items`; `stop` ends the run early.
 */
export async function interleaved<T>(
  rounds: number, items: readonly T[], each: (item: T, round: number, index: number) => Promise<void> | void,
  stop: () => boolean = () => false,
): Promise<void> {
  for (let round = 0; round < rounds && !stop(); round++) {
    for (let j = 0; j < items.length; j++) {
      if (stop()) return;
      const i = (j + round) % items.length;
      await each(items[i]!, round, i);
    }
  }
}

/** Wait, up to quietWaitMs (0: not at all), for the machine to be < 15% busy; the share is kept in busyBefore. */
export async function quietBefore(s: Pick<Samples, 'busyBefore'> | null, quietWaitMs: number): Promise<void> {
  if (quietWaitMs <= 0) return;
  const q = await waitQuiet(0.15, quietWaitMs);
  if (s === null) return;
  s.busyBefore.push(q.busy);
  if (q.busy >= 0.15) log(`machine still ${(q.busy * 100).toFixed(0)}% busy after ${q.waitedMs} ms; measuring anyway`);
}

/** A failure in one round: kept in the candidate's errors (printed under the table) and logged. */
export function roundError(s: Pick<Samples, 'errors'>, name: string, round: number, what: string | null, err: unknown): void {
  if (what === null) {
    s.errors.push(`round ${round}: ${errText(err)}`);
    log(`${name} round ${round}: ${errText(err)}`);
  } else {
    s.errors.push(`round ${round} ${what}: ${errText(err)}`);
    log(`${name} round ${round}: ${what} failed: ${errText(err)}`);
  }
}

export type Step = readonly [what: string, run: () => Promise<void>];

export interface RoundSpec<T extends Topology> {
  readonly name: string;
  readonly round: number;
  readonly samples: Samples;
  readonly quietWaitMs: number;
  setup(): Promise<T>;
  /** After a failed setup (already recorded). */
  onSetupError?(err: unknown): void;
  /** After the warm-up: checks that must pass for the round to be measured (throw otherwise). */
  check(t: T): Promise<void>;
  /** The measurements: a failed step is recorded and the next one still runs. */
  steps(t: T): readonly Step[];
  /** After a failed warm-up or check, before the teardown. */
  onError?(t: T): Promise<void>;
  /** The figures of this round for the log line. */
  summary(): string;
}

/**
 * One candidate's round: quiet wait, load average, setup (the topology is the run's active one until it is torn
 * down), warm-up, checks, the steps, teardown, and a log line with the figures and the time taken.
 */
export async function measureRound<T extends Topology>(r: BenchRun, spec: RoundSpec<T>): Promise<void> {
  const s = spec.samples;
  await quietBefore(s, spec.quietWaitMs);
  const started = performance.now();
  s.loadAvg.push(loadAvg1());
  let t: T;
  try {
    t = await spec.setup();
  } catch (err) {
    roundError(s, spec.name, spec.round, 'setup', err);
    spec.onSetupError?.(err);
    return;
  }
  r.active = t;
  try {
    await warmUp(t);
    await spec.check(t);
    for (const [what, step] of spec.steps(t)) {
      try {
        await step();
      } catch (err) {
        roundError(s, spec.name, spec.round, what, err);
      }
    }
  } catch (err) {
    roundError(s, spec.name, spec.round, null, err);
    await spec.onError?.(t);
  } finally {
    r.active = null;
    await t.teardown();
  }
  log(`${spec.name} round ${spec.round}: ${spec.summary()} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

/** The last sample of xs with `digits` decimals, '-' when there is none. */
export function lastFigure(xs: readonly number[], digits = 2): string {
  return xs.length === 0 ? '-' : xs[xs.length - 1]!.toFixed(digits);
}
