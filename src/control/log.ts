// control/log.ts: structured JSON log lines (one object per line on stderr) with a minimum level.

import type { ControlLogger } from './controller.js';

export const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof LEVELS;

/** Structured JSON lines on stderr. */
export function jsonLogger(min: Level, out: (line: string) => void = (l) => process.stderr.write(l)): ControlLogger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[level] < LEVELS[min]) return;
    out(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

