// dataplane/types.ts: the small value types every layer above wire/ shares: port ids, time, the clock.

/** Integer id of a port inside one Switch; stable while the port exists. */
export type PortId = number & { readonly __brand: 'PortId' };
export const NO_PORT = -1 as PortId;
export const asPortId = (n: number): PortId => n as PortId;

/** Milliseconds on the injected clock (monotonic). */
export type Millis = number;

/** Time is a parameter: aging, timers and rate limiters read this, never Date.now(). */
export interface Clock {
  now(): Millis;
}

export class SystemClock implements Clock {
  now(): Millis {
    return performance.now();
  }
}

export class ManualClock implements Clock {
  constructor(private t: Millis = 0) {}
  now(): Millis {
    return this.t;
  }
  advance(ms: Millis): void {
    this.t += ms;
  }
}

export const seconds = (s: number): Millis => s * 1000;
export const minutes = (m: number): Millis => m * 60_000;

export function assertNever(x: never): never {
  throw new Error(`unexpected value ${String(x)}`);
}
