// policy/fragments.ts: the verdicts of first IP fragments, so that the later fragments of the same datagram get the
// same verdict. A non-first fragment has no L4 header: neither port rules nor the connection table can judge it
// (Flow.frag, flow.ts). Keyed by direction, family, protocol, source, destination and identification (IPv4 IP ID,
// IPv6 fragment header identification), as the receiver reassembles. Preallocated open addressing with linear
// probing and backward-shift deletion, at most `limit` entries in 2*limit slots: a full table refuses (counted),
// never grows, nothing is allocated per frame. An entry counts the payload bytes of the fragments that used it;
// once the last fragment (no more-fragments flag) told the datagram's length and every byte was seen, the entry is
// removed at once (a full-rate fragmented stream holds only the datagrams in flight). Otherwise it lives
// FRAG_TIMEOUT_MS (Linux ipfrag_time: a receiver gives up on a datagram after 30 s), and LAST_GRACE_MS after the
// last fragment for fragments reordered behind it. Expired entries go lazily on lookup and by a bounded sweep.
// Duplicated fragments count twice and may end an entry early: a later copy is then judged as unknown.

import type { Millis } from '../dataplane/types.js';
import type { Flow } from './flow.js';

/** [dir << 16 | family << 8 | protocol, source x4, destination x4, identification] */
export const FRAG_KEY_WIDTH = 10;
export const DEFAULT_FRAG_LIMIT = 2048;
export const FRAG_TIMEOUT_MS = 30_000;
export const LAST_GRACE_MS = 1_000;
const SWEEP_SLOTS = 2048;

export interface FragStats {
  size: number;
  limit: number;
  /** First fragments whose verdict was stored. */
  stored: number;
  /** Later fragments that got their first fragment's verdict. */
  hits: number;
  /** Datagrams whose every byte was seen (entry removed then). */
  completed: number;
  /** First fragments not stored because the table was full (their later fragments then count as unknown). */
  full: number;
  expired: number;
  /** Later fragments with no stored first fragment (never seen, expired, refused, or not arrived yet). */
  unknown: number;
  /** Unknown later fragments the rules could not judge without ports: dropped 'acl-fragment-unknown'. */
  unknownDropped: number;
}

/** Fill a fragment key for flow f (a fragment) crossing in direction dir. */
export function fragKey(f: Flow, dir: number, k: Uint32Array): void {
  k[0] = (dir << 16) | (f.family << 8) | f.proto;
  const s = f.src;
  const d = f.dst;
  k[1] = s[0]!;
  k[2] = s[1]!;
  k[3] = s[2]!;
  k[4] = s[3]!;
  k[5] = d[0]!;
  k[6] = d[1]!;
  k[7] = d[2]!;
  k[8] = d[3]!;
  k[9] = f.fragId[0]!;
}

function hashKey(k: Uint32Array): number {
  let h = 0x7f4a7c15 | 0;
  for (let i = 0; i < FRAG_KEY_WIDTH; i++) {
    h = Math.imul(h ^ k[i]!, 0x85ebca6b);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x3fffffff; // a Smi
}

export class FragTable {
  readonly limit: number;
  private readonly cap: number;
  private readonly keys: Uint32Array;
  private readonly hashes: Uint32Array;
  private readonly used: Uint8Array;
  private readonly verdict: Uint8Array;
  private readonly expires: Float64Array;
  /** Payload bytes seen of each datagram, and its length once the last fragment told it (-1 before). */
  private readonly seen: Int32Array;
  private readonly total: Int32Array;
  private sweepAt = 0;
  readonly stats: FragStats;

  constructor(limit = DEFAULT_FRAG_LIMIT) {
    this.limit = Math.max(1, limit);
    let cap = 16;
    while (cap < this.limit * 2) cap *= 2;
    this.cap = cap;
    this.keys = new Uint32Array(cap * FRAG_KEY_WIDTH);
    this.hashes = new Uint32Array(cap);
    this.used = new Uint8Array(cap);
    this.verdict = new Uint8Array(cap);
    this.expires = new Float64Array(cap);
    this.seen = new Int32Array(cap);
    this.total = new Int32Array(cap);
    this.stats = { size: 0, limit: this.limit, stored: 0, hits: 0, completed: 0, full: 0, expired: 0, unknown: 0, unknownDropped: 0 };
  }

  get size(): number {
    return this.stats.size;
  }

  private same(s: number, k: Uint32Array): boolean {
    const base = s * FRAG_KEY_WIDTH;
    const ks = this.keys;
    for (let i = 0; i < FRAG_KEY_WIDTH; i++) if (ks[base + i] !== k[i]) return false;
    return true;
  }

  /** Slot of the live entry for key k, or -1 (an expired entry found is removed). */
  find(k: Uint32Array, now: Millis): number {
    const h = hashKey(k);
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
   * Remember verdict v of the first fragment (len payload bytes) with key k (a repeated one overwrites the verdict);
   * false when full (counted).
   */
  store(k: Uint32Array, v: number, len: number, now: Millis): boolean {
    let s = this.find(k, now);
    if (s < 0) {
      if (this.stats.size >= this.limit) this.expire(now, 256); // room from expired entries nearby (bounded)
      if (this.stats.size >= this.limit) {
        this.stats.full++;
        return false;
      }
      const h = hashKey(k);
      const m = this.cap - 1;
      s = h & m;
      while (this.used[s] === 1) s = (s + 1) & m; // never full: cap >= 2 * limit
      this.used[s] = 1;
      this.hashes[s] = h;
      this.keys.set(k, s * FRAG_KEY_WIDTH);
      this.seen[s] = len;
      this.total[s] = -1;
      this.stats.size++;
    }
    this.verdict[s] = v;
    this.expires[s] = now + FRAG_TIMEOUT_MS;
    this.stats.stored++;
    return true;
  }

  /**
   * A later fragment (offset and len in payload bytes) found its entry at s: counted, returns the verdict. The last
   * one (more = false) tells the datagram's length and shortens the entry's life; the entry goes once every byte
   * was seen.
   */
  hit(s: number, more: boolean, offset: number, len: number, now: Millis): number {
    this.stats.hits++;
    const v = this.verdict[s]!;
    if (!more) {
      this.total[s] = offset + len;
      if (this.expires[s]! > now + LAST_GRACE_MS) this.expires[s] = now + LAST_GRACE_MS;
    }
    const seen = this.seen[s]! + len;
    this.seen[s] = seen;
    const total = this.total[s]!;
    if (total >= 0 && seen >= total) {
      this.remove(s);
      this.stats.completed++;
    }
    return v;
  }

  /** Remove the entry at slot s; shift later entries of the probe run back (no tombstones). */
  private remove(s: number): void {
    const m = this.cap - 1;
    this.used[s] = 0;
    this.stats.size--;
    let hole = s;
    let j = (s + 1) & m;
    for (let n = 0; n < this.cap && this.used[j] === 1; n++) {
      const home = this.hashes[j]! & m;
      if (((j - home) & m) >= ((j - hole) & m)) {
        this.used[hole] = 1;
        this.used[j] = 0;
        this.hashes[hole] = this.hashes[j]!;
        this.keys.copyWithin(hole * FRAG_KEY_WIDTH, j * FRAG_KEY_WIDTH, (j + 1) * FRAG_KEY_WIDTH);
        this.verdict[hole] = this.verdict[j]!;
        this.expires[hole] = this.expires[j]!;
        this.seen[hole] = this.seen[j]!;
        this.total[hole] = this.total[j]!;
        hole = j;
      }
      j = (j + 1) & m;
    }
  }

  /** Sweep `slots` slots (default: a quarter of the table, at least SWEEP_SLOTS) for expired entries. */
  expire(now: Millis, slots = Math.max(SWEEP_SLOTS, this.cap >> 2)): number {
    let removed = 0;
    const m = this.cap - 1;
    let s = this.sweepAt;
    for (let n = 0; n < slots && n < this.cap; n++) {
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
