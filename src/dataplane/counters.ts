// dataplane/counters.ts: per-port and switch-wide frame, byte and drop counters in typed arrays (no per-frame
// allocation); turned into PortCounters records only when the control plane asks.

import { DROP_INDEX, DROP_REASON_COUNT, DROP_REASON_LIST, type DropReason } from './drop.js';
import type { PortCounters } from './switch-api.js';

export class CounterBlock {
  rxFrames = 0;
  rxBytes = 0;
  txFrames = 0;
  txBytes = 0;
  /** Indexed by DROP_INDEX. */
  readonly drops = new Float64Array(DROP_REASON_COUNT);

  drop(reason: DropReason, n = 1): void {
    const k = DROP_INDEX[reason];
    this.drops[k] = this.drops[k]! + n;
  }

  dropCount(reason: DropReason): number {
    return this.drops[DROP_INDEX[reason]]!;
  }

  totalDrops(): number {
    let t = 0;
    for (let i = 0; i < this.drops.length; i++) t += this.drops[i]!;
    return t;
  }

  snapshot(): PortCounters {
    const drops: Partial<Record<DropReason, number>> = {};
    for (let i = 0; i < DROP_REASON_COUNT; i++) {
      const v = this.drops[i]!;
      if (v !== 0) drops[DROP_REASON_LIST[i]!] = v;
    }
    return { rxFrames: this.rxFrames, rxBytes: this.rxBytes, txFrames: this.txFrames, txBytes: this.txBytes, drops };
  }
}

/**
 * Switch-wide frame accounting. Every frame that enters the pipeline (received on a port or injected by an
 * extension) ends exactly one way: forwarded (sent to at least one port), dropped (one reason), or undelivered
 * (it had destinations but every port refused it: those refusals are counted per destination as tx-full etc.).
 * Frames of the external port may also end before the pipeline: consumed, or merged into a super-frame.
 */
export class FrameTotals {
  received = 0;
  injected = 0;
  forwarded = 0;
  dropped = 0;
  undelivered = 0;
  /** Handled by the switch itself instead of forwarded (underlay ARP for our provider addresses). */
  consumed = 0;
  /** Decapsulated TCP segments merged into an earlier segment's super-frame (GRO): they end there. */
  merged = 0;
  /** New MACs not learned because a switch or port limit was reached (a counter, not a drop). */
  macLearnRefused = 0;
  /** MACs that moved from one port to another. */
  macMoves = 0;
}
