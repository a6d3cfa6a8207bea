// policy/expiring-table.ts: the hash table the connection table (conntrack.ts) and the fragment verdicts
// (fragments.ts) are made of. Keys of `width` uint32 words, preallocated open addressing with linear probing and
// backward-shift deletion (no tombstones), at most `limit` entries in at least 2*limit slots (a power of two), so a
// probe always ends and the table never grows. Every entry has an expiry time: an expired entry goes lazily when a
// lookup meets it, and by a bounded sweep. A subclass keeps its own per-slot arrays and moves them in moveSlot.
// Nothing is allocated per lookup, insert or removal.

import type { Millis } from '../dataplane/types.js';

/** What the table counts in its owner's stats object. */
export interface ExpiringStats {
  size: number;
  expired: number;
}

export abstract class ExpiringTable {
  readonly limit: number;
  protected readonly cap: number;
  protected readonly width: number;
  protected readonly keys: Uint32Array;
  protected readonly hashes: Uint32Array;
  protected readonly used: Uint8Array;
  protected readonly expires: Float64Array;
  private readonly seed: number;
  private sweepAt = 0;
  private readonly sweepMin: number;
  abstract readonly stats: ExpiringStats;

  /** `seed` varies the hash per table kind; a sweep visits at least `sweepMin` slots by default. */
  constructor(limit: number, width: number, seed: number, sweepMin: number) {
    this.limit = Math.max(1, limit);
    let cap = 16;
    while (cap < this.limit * 2) cap *= 2;
    this.cap = cap;
    this.width = width;
    this.seed = seed | 0;
    this.sweepMin = sweepMin;
    this.keys = new Uint32Array(cap * width);
    this.hashes = new Uint32Array(cap);
    this.used = new Uint8Array(cap);
    this.expires = new Float64Array(cap);
  }

  get size(): number {
    return this.stats.size;
  }

  /** Copy the subclass's per-slot values of slot `from` to slot `to` (backward-shift deletion). */
  protected abstract moveSlot(from: number, to: number): void;

  protected hashKey(k: Uint32Array): number {
    let h = this.seed;
    for (let i = 0; i < this.width; i++) {
      h = Math.imul(h ^ k[i]!, 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & 0x3fffffff; // a Smi: never a heap number, even when not inlined
  }

  private same(s: number, k: Uint32Array): boolean {
    const w = this.width;
    const base = s * w;
    const ks = this.keys;
    for (let i = 0; i < w; i++) if (ks[base + i] !== k[i]) return false;
    return true;
  }

  /** Slot of the live entry for key k, or -1 (an expired entry found is removed and counted). */
  find(k: Uint32Array, now: Millis): number {
    const h = this.hashKey(k);
    const m = this.cap - 1;
    let s = h & m;
    for (let n = 0; n < this.cap; n++) {
      if (this.used[s] === 0) return -1;
      if (this.hashes[s] === h && this.same(s, k)) {
        if (now >= this.expires[s]!) {
          this.remove(s);
          this.stats.expired++;
          return -1;
        }
        return s;
      }
      s = (s + 1) & m;
    }
    return -1;
  }

  /**
   * A new slot for key k (not in the table: find() said so) expiring at `expires`, or -1 when the table is full
   * even after a bounded sweep for expired entries. The caller fills its own per-slot values.
   */
  protected insert(k: Uint32Array, expires: number, now: Millis): number {
    if (this.stats.size >= this.limit) this.expire(now, 256); // make room from expired entries nearby (bounded)
    if (this.stats.size >= this.limit) return -1;
    const h = this.hashKey(k);
    const m = this.cap - 1;
    let s = h & m;
    while (this.used[s] === 1) s = (s + 1) & m; // never full: cap >= 2 * limit
    this.used[s] = 1;
    this.hashes[s] = h;
    this.keys.set(k, s * this.width);
    this.expires[s] = expires;
    this.stats.size++;
    return s;
  }

  /** Remove the entry at slot s; shift later entries of the probe run back (no tombstones). */
  protected remove(s: number): void {
    const m = this.cap - 1;
    const w = this.width;
    this.used[s] = 0;
    this.stats.size--;
    let hole = s;
    let j = (s + 1) & m;
    for (let n = 0; n < this.cap && this.used[j] === 1; n++) {
      const home = this.hashes[j]! & m;
      // move j into the hole when its home is not in (hole, j] cyclically
      if (((j - home) & m) >= ((j - hole) & m)) {
        this.used[hole] = 1;
        this.used[j] = 0;
        this.hashes[hole] = this.hashes[j]!;
        this.keys.copyWithin(hole * w, j * w, (j + 1) * w);
        this.expires[hole] = this.expires[j]!;
        this.moveSlot(j, hole);
        hole = j;
      }
      j = (j + 1) & m;
    }
  }

  /**
   * Sweep part of the table for expired entries: `slots` slots, by default a quarter of the table (at least
   * sweepMin), so called once a second the whole table is swept every 4 s with bounded work per call.
   */
  expire(now: Millis, slots = Math.max(this.sweepMin, this.cap >> 2)): number {
    let removed = 0;
    const m = this.cap - 1;
    let s = this.sweepAt;
    for (let n = 0; n < slots && n < this.cap; n++) {
      // a removal may shift a later entry into s: look at s again before moving on
      while (this.used[s] === 1 && now >= this.expires[s]!) {
        this.remove(s);
        this.stats.expired++;
        removed++;
      }
      s = (s + 1) & m;
    }
    this.sweepAt = s;
    return removed;
  }

  clear(): void {
    this.used.fill(0);
    this.stats.size = 0;
  }
}
