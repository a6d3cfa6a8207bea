// bench/lib/run.ts: what one benchmark run owns (prefix, temp dir, the live topology) and its cleanup, for the
// normal exit, errors and Ctrl-C: teardown, this run's children by PID, its OVS daemons, its namespaces, its dir.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delNs, listNs, runPrefix } from './netns.js';
import { killOvsUnder } from './ovs.js';
import { killAll } from './proc.js';

export class BenchRun {
  readonly prefix = runPrefix();
  readonly dir: string;
  active: { teardown(): Promise<void> } | null = null;
  private cleaned = false;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  }

  async cleanup(log: (msg: string) => void): Promise<void> {
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
