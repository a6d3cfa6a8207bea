// policy/storm.ts: storm control (Hyper-V's StormLimit): a token bucket per port, refilled on the switch clock,
// spent by each broadcast, multicast or unknown-unicast frame received from the port. No allocation per frame:
// the state lives in one Float64Array.

import type { Millis } from '../dataplane/types.js';

/** Most frames a full bucket lets through at once: 100 ms of the rate, but at least min(rate, 8) frames. */
export function stormBurst(rate: number): number {
  return Math.max(Math.min(rate, 8), Math.ceil(rate / 10));
}

export class StormBucket {
  /** [tokens, last refill time]. */
  private readonly s = new Float64Array(2);
  readonly burst: number;

  constructor(
    /** Frames per second. */
    readonly rate: number,
  ) {
    this.burst = stormBurst(rate);
    this.s[0] = this.burst;
    this.s[1] = NaN; // starts full at the first frame, on the switch's clock (which the control path does not have)
  }

  /** Spend one token if there is one. A clock that goes backwards refills nothing (never a negative refill). */
  take(now: Millis): boolean {
    const s = this.s;
    if (s[1] !== s[1]) s[1] = now; // NaN: first frame
    const dt = now - s[1]!;
    let t = s[0]!;
    if (dt > 0) {
      t += (dt * this.rate) / 1000;
      if (t > this.burst) t = this.burst;
      s[1] = now;
    }
    if (t >= 1) {
      s[0] = t - 1;
      return true;
    }
    s[0] = t;
    return false;
  }

  /** Tokens now (tests, status). */
  tokens(): number {
    return this.s[0]!;
  }
}
