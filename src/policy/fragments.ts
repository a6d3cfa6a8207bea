// policy/fragments.ts: the verdicts of first IP fragments, so that the later fragments of the same datagram get the
// same verdict. A non-first fragment has no L4 header: neither port rules nor the connection table can judge it
// (Flow.frag, flow.ts). Keyed by direction, family, protocol, source, destination and identification (IPv4 IP ID,
// IPv6 fragment header identification), as the receiver reassembles. An ExpiringTable (expiring-table.ts): at
// most `limit` entries, a full table refuses (counted), never grows, nothing is allocated per frame. An entry counts the payload bytes of the fragments that used it;
// once the last fragment (no more-fragments flag) told the datagram's length and every byte was seen, the entry is
// removed at once (a full-rate fragmented stream holds only the datagrams in flight). Otherwise it lives
// FRAG_TIMEOUT_MS (Linux ipfrag_time: a receiver gives up on a datagram after 30 s), and LAST_GRACE_MS after the
// last fragment for fragments reordered behind it. Expired entries go lazily on lookup and by a bounded sweep.
// Duplicated fragments count twice and may end an entry early: a later copy is then judged as unknown.

import type { Millis } from '../dataplane/types.js';
import { ExpiringTable } from './expiring-table.js';
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


export class FragTable extends ExpiringTable {
  private readonly verdict: Uint8Array;
  /** Payload bytes seen of each datagram, and its length once the last fragment told it (-1 before). */
  private readonly seen: Int32Array;
  private readonly total: Int32Array;
  readonly stats: FragStats;

  constructor(limit = DEFAULT_FRAG_LIMIT) {
    super(limit, FRAG_KEY_WIDTH, 0x7f4a7c15, SWEEP_SLOTS);
    const cap = this.cap;
    this.verdict = new Uint8Array(cap);
    this.seen = new Int32Array(cap);
    this.total = new Int32Array(cap);
    this.stats = { size: 0, limit: this.limit, stored: 0, hits: 0, completed: 0, full: 0, expired: 0, unknown: 0, unknownDropped: 0 };
  }

  protected moveSlot(from: number, to: number): void {
    this.verdict[to] = this.verdict[from]!;
    this.seen[to] = this.seen[from]!;
    this.total[to] = this.total[from]!;
  }

  /**
   * Remember verdict v of the first fragment (len payload bytes) with key k (a repeated one overwrites the verdict);
   * false when full (counted).
   */
  store(k: Uint32Array, v: number, len: number, now: Millis): boolean {
    let s = this.find(k, now);
    if (s < 0) {
      s = this.insert(k, now + FRAG_TIMEOUT_MS, now);
      if (s < 0) {
        this.stats.full++;
        return false;
      }
      this.seen[s] = len;
      this.total[s] = -1;
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
}
