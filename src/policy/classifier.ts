// policy/classifier.ts: tuple-space search (Srinivasan et al.; Open vSwitch's classifier) over fixed-width keys of
// uint32 words. Every rule is a (value, mask) pair over the key plus a priority; rules with the same mask form one
// tuple, an open-addressing hash table from masked key to the highest-priority rule with that masked key (a
// lower-priority rule with the same masked key in the same tuple can never win, so it is not stored). A lookup probes
// each tuple once, in order of the tuple's best priority, and stops as soon as no remaining tuple can beat the best
// hit: the cost grows with the number of distinct masks, not with the number of rules. Built on the control path
// (setRules); lookup allocates nothing.

/** One rule entry: key words and mask words (same width as the classifier), its priority and what it returns. */
export interface ClassifierEntry {
  readonly value: ArrayLike<number>;
  readonly mask: ArrayLike<number>;
  readonly priority: number;
  /** Returned by lookup (a rule index). */
  readonly id: number;
}

export const NO_MATCH = -1;

class Tuple {
  /** The key words this tuple's mask looks at (others are wildcards), and their masks: a probe hashes and
   * compares only these (a /32-remote + port rule touches 4 of 12 words). */
  readonly idx: Int32Array;
  readonly mask: Uint32Array;
  readonly width: number;
  maxPriority = -Infinity;
  /** slots: rule id + 1 (0 = empty); keys: masked key words per slot (width each); prio per slot. */
  slots: Int32Array;
  keys: Uint32Array;
  prio: Float64Array;
  size = 0;
  constructor(fullMask: ArrayLike<number>, keyWidth: number, capacity: number) {
    const idx: number[] = [];
    for (let i = 0; i < keyWidth; i++) if (((fullMask[i] ?? 0) >>> 0) !== 0) idx.push(i);
    this.idx = Int32Array.from(idx);
    this.mask = Uint32Array.from(idx.map((i) => (fullMask[i] ?? 0) >>> 0));
    this.width = idx.length;
    this.slots = new Int32Array(capacity);
    this.keys = new Uint32Array(capacity * Math.max(1, this.width));
    this.prio = new Float64Array(capacity);
  }
}

/** Hash of the first n words of k (30 bits: a small integer even when not inlined, never a heap number). */
function hashWords(k: Uint32Array, n: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < n; i++) {
    h = Math.imul(h ^ k[i]!, 0x01000193);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  return h & 0x3fffffff;
}

function pow2AtLeast(n: number): number {
  let c = 8;
  while (c < n) c *= 2;
  return c;
}

export class TupleClassifier {
  private tuples: Tuple[] = [];
  private readonly scratch: Uint32Array;
  /** Probes of the last lookup (tuples visited), for tests and the bench. */
  lastProbes = 0;

  constructor(readonly width: number) {
    this.scratch = new Uint32Array(width);
  }

  get tupleCount(): number {
    return this.tuples.length;
  }

  /** Replace every rule (control path). */
  setRules(entries: readonly ClassifierEntry[]): void {
    const w = this.width;
    const groups = new Map<string, ClassifierEntry[]>();
    for (const e of entries) {
      let sig = '';
      for (let i = 0; i < w; i++) sig += `${(e.mask[i] ?? 0) >>> 0},`;
      let g = groups.get(sig);
      if (g === undefined) groups.set(sig, (g = []));
      g.push(e);
    }
    const tuples: Tuple[] = [];
    for (const g of groups.values()) {
      const t = new Tuple(g[0]!.mask, w, pow2AtLeast(g.length * 2));
      for (const e of g) this.insert(t, e);
      tuples.push(t);
    }
    tuples.sort((a, b) => b.maxPriority - a.maxPriority);
    this.tuples = tuples;
  }

  private insert(t: Tuple, e: ClassifierEntry): void {
    const w = t.width;
    const k = this.scratch;
    for (let j = 0; j < w; j++) k[j] = ((e.value[t.idx[j]!] ?? 0) & t.mask[j]!) >>> 0;
    const capMask = t.slots.length - 1;
    let s = hashWords(k, w) & capMask;
    for (;;) {
      const cur = t.slots[s]!;
      if (cur === 0) {
        t.slots[s] = e.id + 1;
        t.prio[s] = e.priority;
        for (let j = 0; j < w; j++) t.keys[s * w + j] = k[j]!;
        t.size++;
        break;
      }
      if (this.sameKey(t, s, k)) {
        if (e.priority > t.prio[s]!) {
          t.slots[s] = e.id + 1;
          t.prio[s] = e.priority;
        }
        break;
      }
      s = (s + 1) & capMask;
    }
    if (e.priority > t.maxPriority) t.maxPriority = e.priority;
  }

  private sameKey(t: Tuple, s: number, k: Uint32Array): boolean {
    const w = t.width;
    const base = s * w;
    for (let i = 0; i < w; i++) if (t.keys[base + i] !== k[i]) return false;
    return true;
  }

  /** The id of the highest-priority rule matching `key`, or NO_MATCH. `key` is read, never kept. */
  lookup(key: Uint32Array): number {
    const k = this.scratch;
    const ts = this.tuples;
    let best = NO_MATCH;
    let bestPrio = -Infinity;
    let probes = 0;
    for (let ti = 0; ti < ts.length; ti++) {
      const t = ts[ti]!;
      if (t.maxPriority <= bestPrio) break;
      probes++;
      const m = t.mask;
      const idx = t.idx;
      const w = t.width;
      for (let j = 0; j < w; j++) k[j] = key[idx[j]!]! & m[j]!;
      const capMask = t.slots.length - 1;
      let s = hashWords(k, w) & capMask;
      for (;;) {
        const cur = t.slots[s]!;
        if (cur === 0) break;
        if (this.sameKey(t, s, k)) {
          const p = t.prio[s]!;
          if (p > bestPrio) {
            bestPrio = p;
            best = cur - 1;
          }
          break;
        }
        s = (s + 1) & capMask;
      }
    }
    this.lastProbes = probes;
    return best;
  }
}

/** Reference: the highest-priority matching entry by a linear scan (tests compare the classifier against it). */
export function linearLookup(entries: readonly ClassifierEntry[], key: ArrayLike<number>): number {
  let best = NO_MATCH;
  let bestPrio = -Infinity;
  for (const e of entries) {
    let ok = true;
    for (let i = 0; i < key.length; i++) {
      const m = e.mask[i] ?? 0;
      if (((key[i]! & m) >>> 0) !== (((e.value[i] ?? 0) & m) >>> 0)) {
        ok = false;
        break;
      }
    }
    if (ok && e.priority > bestPrio) {
      bestPrio = e.priority;
      best = e.id;
    }
  }
  return best;
}

/**
 * Split the inclusive port range [lo, hi] into (value, mask) blocks aligned on powers of two (at most 30 for 16
 * bits), so a range becomes a handful of masked keys.
 */
export function rangeToMasks(lo: number, hi: number, bits = 16): { value: number; mask: number }[] {
  const out: { value: number; mask: number }[] = [];
  const full = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  let a = lo;
  while (a <= hi) {
    let size = 1;
    // grow the block while a stays aligned and the block stays inside the range
    while (size < 2 ** bits && a % (size * 2) === 0 && a + size * 2 - 1 <= hi) size *= 2;
    out.push({ value: a, mask: (full & ~(size - 1)) >>> 0 });
    a += size;
  }
  return out;
}
