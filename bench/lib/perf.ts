// bench/lib/perf.ts: optional `perf record` of given PIDs over a window (when perf is installed), summarised as
// the share per object (kernel vs node vs addon) and the top symbols. Bounded by `timeout`.
import { run } from './proc.js';

export async function hasPerf(): Promise<boolean> {
  return (await run('perf', ['--version'], { timeoutMs: 5000 })).code === 0;
}

/** Sample pids at 499 Hz for seconds into file; resolves when perf is done (true if it wrote the file). */
export async function perfRecord(pids: readonly number[], seconds: number, file: string): Promise<boolean> {
  const r = await run(
    'timeout', [String(Math.ceil(seconds) + 15), 'perf', 'record', '-q', '-F', '499', '-p', pids.join(','), '-o', file,
      '--', 'sleep', String(seconds)],
    { timeoutMs: (seconds + 20) * 1000 },
  );
  return r.code === 0;
}

/** Share by object and the top symbols of a perf.data, as text. */
export async function perfSummary(file: string, title: string, topSymbols = 20): Promise<string> {
  const report = async (sort: string): Promise<string[]> => {
    const r = await run('perf', ['report', '-i', file, '--no-children', '--sort', sort, '--stdio', '-g', 'none'], {
      timeoutMs: 30_000,
    });
    return r.stdout.split('\n').filter((l) => /^\s+\d+\.\d+%/.test(l)).map((l) => `  ${l.trim()}`);
  };
  return [`perf (${title}), by object:`, ...(await report('dso')).slice(0, 6),
    'top symbols:', ...(await report('sym')).slice(0, topSymbols)].join('\n');
}
