// bench/lib/machine.ts: how busy the machine is (all CPUs, from /proc/stat). The benchmark waits, bounded, for a
// quiet machine before each measurement, since other work on 2 cores skews every figure.
import { readFileSync } from 'node:fs';
import { sleep } from './proc.js';

/** Cumulative busy and total jiffies over all CPUs. */
export function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guests are already in user/nice
  const total = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Share of all CPUs busy over the next `ms` (0..1). */
export async function machineBusy(ms: number): Promise<number> {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : 0;
}

/**
 * Wait until the machine is below `threshold` busy over a 500 ms probe, at most `maxWaitMs`.
 * Returns the last probe's busy share and how long it waited.
 */
export async function waitQuiet(threshold: number, maxWaitMs: number): Promise<{ busy: number; waitedMs: number }> {
  const start = Date.now();
  for (;;) {
    const busy = await machineBusy(500);
    const waitedMs = Date.now() - start;
    if (busy < threshold || waitedMs >= maxWaitMs) return { busy, waitedMs };
  }
}
