// bench/lib/cpuprofile.ts: summarise a V8 .cpuprofile (node --cpu-prof): self time per function and per file,
// so a missed benchmark target comes with where the daemon spent its time.
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  readonly name: string;
  readonly ms: number;
  /** Share of the busy (non-idle) time, percent. */
  readonly pct: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  readonly busyMs: number;
  readonly functions: readonly SelfTime[];
  readonly files: readonly SelfTime[];
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const i = url.indexOf('/dist/');
  if (i >= 0) return url.slice(i + 1);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + 1);
  return url.replace(/^file:\/\//, '');
}

/** Self time by function (name file:line) and by file, sorted, top `top` of each. */
export function summariseProfile(path: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; charge it to the sample it precedes (i - 1).
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] ?? -1;
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const n = byId.get(id);
    if (n === undefined) continue;
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    if (cf.functionName === '(garbage collector)') gc += us;
    const url = shortUrl(cf.url);
    const key = url === '' ? cf.functionName || '(anonymous)' : `${cf.functionName || '(anonymous)'} ${url}:${cf.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fkey = url === '' ? `(${cf.functionName || 'native'})` : url;
    file.set(fkey, (file.get(fkey) ?? 0) + us);
  }
  const busy = total - idle;
  const rank = (m: Map<string, number>): SelfTime[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, pct: busy > 0 ? (100 * us) / busy : 0 }));
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    gcMs: gc / 1000,
    busyMs: busy / 1000,
    functions: rank(fn),
    files: rank(file),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [
    `profile: ${s.totalMs.toFixed(0)} ms sampled, busy ${s.busyMs.toFixed(0)} ms ` +
      `(idle ${s.idleMs.toFixed(0)} ms, GC ${s.gcMs.toFixed(0)} ms)`,
    'top self time by function (% of busy):',
    ...s.functions.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}`),
    'by file:',
    ...s.files.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}`),
  ];
  return lines.join('\n');
}
