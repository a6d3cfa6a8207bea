// bench/lib/cli.ts: what every benchmark's command line has in common: the shared options (--rounds, --only,
// --quick, --json, --quiet-wait, --list, --help), the root and build checks, logging and the main() wrapper.
// Each benchmark adds only its own options (through `extra`) and its usage text.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type CommonFlag = 'rounds' | 'only' | 'quick' | 'json' | 'quiet-wait' | 'list';

export interface CommonOptions {
  rounds: number;
  only: string[] | null;
  quick: boolean;
  json: string | null;
  list: boolean;
  /** Before each candidate, wait up to this long for the machine to be < 15% busy (0: never wait). */
  quietWaitMs: number;
}

/**
 * A benchmark's own option at argv[i]: the index of its last argument (i when it takes none), an error message,
 * or null when the option is not its own.
 */
export type ExtraOption = (arg: string, argv: readonly string[], i: number) => number | string | null;

export interface ArgSpec {
  /** The common options this benchmark takes (default: all). */
  readonly flags?: readonly CommonFlag[];
  /** Candidate names that --only accepts. */
  readonly candidates?: readonly string[];
  /** Default rounds (3) and the accepted range (0..50). */
  readonly rounds?: { readonly default: number; readonly min: number; readonly max: number };
  /** --quick also means 1 round (unless --rounds is given) and a 5 s quiet wait (default true). */
  readonly quickShortens?: boolean;
  readonly extra?: ExtraOption;
}

const ALL_FLAGS: readonly CommonFlag[] = ['rounds', 'only', 'quick', 'json', 'quiet-wait', 'list'];

/** Parse argv: the options, '' for --help, or an error message. */
export function parseCommonArgs(argv: readonly string[], spec: ArgSpec = {}): CommonOptions | string {
  const flags = new Set(spec.flags ?? ALL_FLAGS);
  const range = spec.rounds ?? { default: 3, min: 0, max: 50 };
  const o: CommonOptions = { rounds: range.default, only: null, quick: false, json: null, list: false, quietWaitMs: 30_000 };
  let roundsGiven = false;
  let quietGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const own = spec.extra?.(a, argv, i) ?? null;
    if (typeof own === 'string') return own;
    if (typeof own === 'number') {
      i = own;
      continue;
    }
    const value = (): string | undefined => argv[++i];
    const flag = ALL_FLAGS.find((f) => a === `--${f}`);
    if (flag !== undefined && !flags.has(flag)) return `unknown option ${a}`;
    switch (a) {
      case '--rounds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < range.min || n > range.max) return `--rounds needs an integer ${range.min}..${range.max}`;
        o.rounds = n;
        roundsGiven = true;
        break;
      }
      case '--only': {
        const v = value();
        if (v === undefined) return '--only needs a list';
        o.only = v.split(',').filter((s) => s !== '');
        const unknown = o.only.filter((n) => !(spec.candidates ?? []).includes(n));
        if (unknown.length > 0) return `unknown candidate(s): ${unknown.join(', ')}`;
        break;
      }
      case '--quick':
        o.quick = true;
        break;
      case '--json': {
        const v = value();
        if (v === undefined) return '--json needs a path';
        o.json = v;
        break;
      }
      case '--quiet-wait': {
        const n = Number(value());
        if (!Number.isFinite(n) || n < 0 || n > 600) return '--quiet-wait needs seconds 0..600';
        o.quietWaitMs = n * 1000;
        quietGiven = true;
        break;
      }
      case '--list':
        o.list = true;
        break;
      case '-h':
      case '--help':
        return '';
      default:
        return `unknown option ${a}`;
    }
  }
  if (spec.quickShortens ?? true) {
    if (o.quick && !roundsGiven) o.rounds = 1;
    if (o.quick && !quietGiven) o.quietWaitMs = 5000;
  }
  return o;
}

/** parseCommonArgs, with the usage printed on --help (exit code 0) or an error (exit code 2). */
export function parseOrUsage(argv: readonly string[], spec: ArgSpec, usage: string): CommonOptions | number {
  const parsed = parseCommonArgs(argv, spec);
  if (typeof parsed !== 'string') return parsed;
  if (parsed !== '') process.stderr.write(`${parsed}\n`);
  process.stderr.write(`${usage}\n`);
  return parsed === '' ? 0 : 2;
}

export function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The repository root (dist/bench/lib/cli.js is three levels below it). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** True when running as root; otherwise says so (the benchmarks need network namespaces). */
export function isRoot(what = 'bench: needs root (network namespaces)'): boolean {
  if (process.getuid?.() === 0) return true;
  process.stderr.write(`${what}\n`);
  return false;
}

/** xswitchd and the benchmark's extensions are built (`npm run build`). */
export function benchExtensionsBuilt(root: string): boolean {
  return existsSync(join(root, 'dist', 'bench', 'extensions', 'capture-count.js'));
}

/** Run a benchmark's main(): exit with its code; an unexpected error is printed with its stack (exit code 1). */
export function runMain(main: () => Promise<number | void>): void {
  main().then(
    (code) => process.exit(code ?? 0),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
