// policy/qos.ts: port QoS (Hyper-V Set-VMNetworkAdapter -MaximumBandwidth / -MinimumBandwidthWeight /
// -MinimumBandwidthAbsolute): token buckets on the switch clock, and the weighted egress scheduler (deficit round
// robin over per-source queues, paced at the egress port's link rate).
//
// Maximum bandwidth (maxMbps) is enforced in both directions of a port, as Hyper-V does on a vNIC:
// - from the VM (ingress): a shaper by back-pressure. The switch reads a capped port only while its bucket has
//   tokens, and at most about the tokens' worth of frames per read; when the bucket is empty the port's readiness
//   poll is stopped and a timer restarts it once the bucket is positive again. The frames wait in the port's own
//   kernel queue (TAP / socket) and the VM's TCP is slowed by its own queueing (TSQ) instead of by losses: no
//   copies, no drops by the switch, iperf3 reaches the cap. The bound on a burst is the bucket plus one frame.
// - to the VM (egress): the port's egress scheduler (below) paced at maxMbps (or linkMbps if lower): frames to
//   it wait in per-source queues and the sources are read no faster (a policer dropped 64 KB super-frames and
//   left TCP at a tenth of the cap). The external port as a source is never paused (one capped VM must not stall
//   the uplink for all): its frames over the queue are dropped ('qos-queue-full').
// Minimum bandwidth (minWeight, or minMbps used as the weight: reservations share the link in proportion) is
// enforced on a port that declares its capacity (linkMbps): frames to it are copied into bounded per-source
// queues (preallocated slots, a ring each) and drained by deficit round robin, paced by a link token bucket. A source
// whose queue is full is not read (back-pressure again, so TCP is not cut by tail drops); without contention one
// source gets the whole link (DRR is work-conserving).
// 802.1p classes (pcpWeights) key the queues by source and PCP; a class's quantum is its weight split among its
// backlogged sources by their weights, so classes share the link as DCB ETS does whatever their source counts.
// The external port takes the same scheduler (`uplink: { policy: { linkMbps, pcpWeights } }`).
// Frames the switch originates (trusted, no input port) bypass the scheduler.
// GSO super-frames count by their bytes on the wire: payload plus headers of every segment.

import { Batch, GSO_NONE, HEADROOM, slotSizeFor, type FrameMeta } from '../dataplane/frame.js';
import type { Millis } from '../dataplane/types.js';

/** The QoS keys of a port's `policy:` object (normalized: absent = off). */
export interface QosSpec {
  /** Maximum bandwidth in both directions, Mbit/s. */
  readonly maxMbps?: number;
  /** Bucket depth of maxMbps, KiB (default max(64 KiB, 10 ms at the rate)). */
  readonly maxBurstKB?: number;
  /** Relative minimum bandwidth on a contended egress, 1..100 (default 1). */
  readonly minWeight?: number;
  /** Absolute minimum bandwidth, Mbit/s (scheduled as a weight proportional to it). */
  readonly minMbps?: number;
  /** Capacity of this port as an egress, Mbit/s: frames to it are scheduled by the sources' weights. */
  readonly linkMbps?: number;
  /**
   * 802.1p classes at this port's scheduler (needs linkMbps or maxMbps): weight 1..100 of each PCP 0..7, as DCB
   * ETS: backlogged classes share the link by these weights, the sources inside a class by their own weights.
   */
  readonly pcpWeights?: readonly number[];
}

export const QOS_KEYS = ['maxMbps', 'maxBurstKB', 'minWeight', 'minMbps', 'linkMbps', 'pcpWeights'] as const;

/** Frames one source may have queued at one scheduled egress. */
export const QOS_QUEUE_FRAMES = 32;
/** DRR quantum per weight unit, bytes. */
export const QOS_QUANTUM = 4096;
/** With 802.1p classes: quantum per unit of class weight, split among the class's backlogged sources. */
export const QOS_CLASS_QUANTUM = 16384;
/** Largest frame a queue slot holds (a GSO super-frame with its headers). */
const QUEUE_FRAME_BYTES = 65550;

/** 1 Mbit/s in bytes per millisecond. */
const MBPS = 125;

export function defaultBurstBytes(mbps: number): number {
  return Math.max(65536, Math.round(mbps * MBPS * 10));
}

/** Bytes a frame takes on the wire: a GSO super-frame's headers are repeated on every segment. */
export function wireBytes(m: FrameMeta): number {
  if (m.gsoType === GSO_NONE || m.gsoSize <= 0) return m.len;
  const hdr = m.hdrLen > 0 && m.hdrLen < m.len ? m.hdrLen : 54;
  const segs = Math.ceil((m.len - hdr) / m.gsoSize);
  return segs > 1 ? m.len + (segs - 1) * hdr : m.len;
}

/** Weight a source port's spec gives it on a contended egress. */
export function weightOf(s: QosSpec | undefined): number {
  if (s === undefined) return 1;
  if (s.minWeight !== undefined) return s.minWeight;
  if (s.minMbps !== undefined) return Math.max(1, s.minMbps);
  return 1;
}

/** Token bucket in bytes on the switch clock; tokens may go negative (a frame larger than what was left). */
export class TokenBucket {
  /** Bytes per ms. */
  rate = 0;
  burst = 0;
  tokens = 0;
  last: Millis = 0;

  configure(mbps: number, burstBytes: number, now: Millis): void {
    const fresh = this.rate === 0;
    this.rate = mbps * MBPS;
    this.burst = burstBytes;
    if (fresh) {
      this.tokens = burstBytes;
      this.last = now;
    } else if (this.tokens > burstBytes) {
      this.tokens = burstBytes;
    }
  }

  refill(now: Millis): number {
    const dt = now - this.last;
    if (dt > 0) {
      const t = this.tokens + dt * this.rate;
      this.tokens = t > this.burst ? this.burst : t;
      this.last = now;
    }
    return this.tokens;
  }

  /** Milliseconds until the bucket is positive again (0 if it is). */
  msUntilPositive(): number {
    return this.tokens > 0 ? 0 : (1 - this.tokens) / this.rate;
  }
}

/** One source's frames waiting for a scheduled egress: a ring of slots in its own slab. */
export class SourceQueue {
  readonly batch: Batch;
  readonly flags: Uint8Array;
  readonly wire: Float64Array;
  head = 0;
  count = 0;
  /** 802.1p class (0 without classes). */
  cls = 0;
  deficit = 0;
  credited = false;
  weight = 1;
  /** In the scheduler's active list. */
  active = false;
  next: SourceQueue | null = null;
  queued = 0;
  dequeued = 0;

  constructor(
    readonly source: number,
    readonly capacity: number,
  ) {
    this.batch = new Batch(capacity, slotSizeFor(QUEUE_FRAME_BYTES));
    this.batch.count = capacity; // every slot addressable by index
    this.flags = new Uint8Array(capacity);
    this.wire = new Float64Array(capacity);
  }

  get free(): number {
    return this.capacity - this.count;
  }
}

/** Copy len bytes between slabs without a view per call (subarray would allocate one per frame). */
function copyBytes(src: Uint8Array, from: number, dst: Uint8Array, to: number, len: number): void {
  for (let k = 0; k < len; k++) dst[to + k] = src[from + k]!;
}

/**
 * The weighted scheduler of one egress port. Frames are enqueued per source port; pick() chooses the next run
 * of frames by deficit round robin within the link's tokens, the caller sends them and reports with done().
 * Written for any egress (a VM port or, later, the uplink).
 */
export class EgressScheduler {
  readonly link = new TokenBucket();
  private readonly queues: (SourceQueue | undefined)[] = [];
  private first: SourceQueue | null = null;
  private last: SourceQueue | null = null;
  /** Frames in the run pick() returned. */
  runLen = 0;
  backlog = 0;
  /** A wake-up timer is pending, and what it calls (both set by the switch). */
  timerPending = false;
  wake: () => void = () => {};
  /** Frames dropped because a source's queue was full, and frames thrown away by reconfiguration. */
  queueDrops = 0;
  /** 802.1p class weights (null: no classes; queues are keyed by source), and the weights of each class's
   *  backlogged sources summed. */
  readonly classWeights: Float64Array | null;
  private readonly classSum = new Float64Array(8);

  constructor(
    mbps: number,
    now: Millis,
    readonly queueFrames = QOS_QUEUE_FRAMES,
    pcpWeights: readonly number[] | null = null,
  ) {
    this.configure(mbps, now);
    this.classWeights = pcpWeights === null ? null : Float64Array.from(pcpWeights);
  }

  /** burst 0: the default, deep enough for two super-frames, so a late timer does not cost link time. */
  configure(mbps: number, now: Millis, burst = 0): void {
    this.link.configure(mbps, burst > 0 ? burst : Math.max(2 * 70_000, Math.round(mbps * MBPS * 10)), now);
  }

  /** Queues are keyed by source, or by source and class. */
  private get fan(): number {
    return this.classWeights === null ? 1 : 8;
  }

  hasSource(source: number): boolean {
    if (source < 0) return false;
    const f = this.fan;
    for (let c = 0; c < f; c++) if (this.queues[source * f + c] !== undefined) return true;
    return false;
  }

  /** Room for `source`: the least among its queues (a queue is made on first use: once, not per frame). */
  free(source: number): number {
    const f = this.fan;
    let n = this.queueFrames;
    for (let c = 0; c < f; c++) {
      const q = this.queues[source * f + c];
      if (q !== undefined && q.free < n) n = q.free;
    }
    return n;
  }

  /** Copy frame i of b (with its destination flags) into its source's (and class's) queue; false when full. */
  enqueue(b: Batch, i: number, flags: number, source: number, weight: number): boolean {
    const cls = this.classWeights === null ? 0 : b.meta[i]!.pcp & 7;
    const key = source * this.fan + cls;
    let q = this.queues[key];
    if (q === undefined) {
      q = new SourceQueue(source, this.queueFrames);
      q.cls = cls;
      this.queues[key] = q;
    }
    if (q.count >= q.capacity) {
      this.queueDrops++;
      return false;
    }
    const m = b.meta[i]!;
    let j = q.head + q.count;
    if (j >= q.capacity) j -= q.capacity;
    const qb = q.batch;
    const qm = qb.meta[j]!;
    const off = m.off;
    qm.copyFrom(m);
    qm.dest.clear();
    qm.off = qb.slotStart(j) + HEADROOM;
    copyBytes(b.slab, off, qb.slab, qm.off, m.len);
    q.flags[j] = flags;
    q.wire[j] = wireBytes(m);
    if (q.active && q.weight !== weight) this.classSum[cls] = this.classSum[cls]! + weight - q.weight;
    q.weight = weight;
    q.count++;
    q.queued++;
    this.backlog++;
    if (!q.active) {
      this.classSum[cls] = this.classSum[cls]! + weight;
      q.active = true;
      q.next = null;
      if (this.last === null) this.first = q;
      else this.last.next = q;
      this.last = q;
    }
    return true;
  }

  /**
   * The next run to send: a queue whose frames head..head+runLen-1 (ring order) fit its deficit and the link's
   * tokens (the last may overdraw the tokens), or null when nothing may go now (empty, or tokens spent).
   */
  pick(now: Millis, maxRun: number): SourceQueue | null {
    this.link.refill(now);
    for (let guard = 0; guard < 16384 && this.first !== null && this.link.tokens > 0; guard++) {
      const q = this.first;
      if (!q.credited) {
        const cw = this.classWeights;
        q.deficit += cw === null ? QOS_QUANTUM * q.weight : (QOS_CLASS_QUANTUM * cw[q.cls]! * q.weight) / this.classSum[q.cls]!;
        q.credited = true;
      }
      let n = 0;
      let j = q.head;
      while (n < q.count && n < maxRun && this.link.tokens > 0) {
        const w = q.wire[j]!;
        if (w > q.deficit) break;
        q.deficit -= w;
        this.link.tokens -= w;
        n++;
        if (++j === q.capacity) j = 0;
      }
      if (n > 0) {
        this.runLen = n;
        return q;
      }
      if (this.link.tokens <= 0) break;
      // its head frame needs more credit than is left: to the back of the round
      q.credited = false;
      if (q.next !== null) {
        this.first = q.next;
        q.next = null;
        this.last!.next = q;
        this.last = q;
      }
    }
    this.runLen = 0;
    return null;
  }

  /** The run pick() returned has left (sent or refused by the port): free its slots. */
  done(q: SourceQueue, n: number): void {
    q.head = (q.head + n) % q.capacity;
    q.count -= n;
    q.dequeued += n;
    this.backlog -= n;
    if (q.count === 0) this.unlinkFirstOrAny(q);
  }

  private unlinkFirstOrAny(q: SourceQueue): void {
    q.deficit = 0;
    q.credited = false;
    if (q.active) this.classSum[q.cls] = this.classSum[q.cls]! - q.weight;
    q.active = false;
    let prev: SourceQueue | null = null;
    for (let x = this.first; x !== null; prev = x, x = x.next) {
      if (x !== q) continue;
      if (prev === null) this.first = x.next;
      else prev.next = x.next;
      if (this.last === x) this.last = prev;
      x.next = null;
      return;
    }
  }

  /** Throw away a source's queues (the port is gone); returns the frames discarded. */
  dropSource(source: number): number {
    const f = this.fan;
    let n = 0;
    for (let c = 0; c < f; c++) {
      const q = this.queues[source * f + c];
      if (q === undefined) continue;
      const k = q.count;
      if (k > 0) this.done(q, k);
      this.queues[source * f + c] = undefined;
      n += k;
    }
    this.queueDrops += n;
    return n;
  }

  /** Frames queued, sent on and waiting, per source (and class), for counters. */
  sources(): { source: number; pcp: number | null; queued: number; dequeued: number; waiting: number; weight: number }[] {
    const out: { source: number; pcp: number | null; queued: number; dequeued: number; waiting: number; weight: number }[] = [];
    for (const q of this.queues) {
      if (q !== undefined) out.push({ source: q.source, pcp: this.classWeights === null ? null : q.cls, queued: q.queued, dequeued: q.dequeued, waiting: q.count, weight: q.weight });
    }
    return out;
  }

  sourceIds(): number[] {
    const out: number[] = [];
    for (const q of this.queues) if (q !== undefined && !out.includes(q.source)) out.push(q.source);
    return out;
  }
}

/** Per-port QoS state kept by the switch (indexed by port id). */
export class PortQos {
  spec: QosSpec = {};
  /** Restarts the port's reading after a pause (bound once per port by the switch). */
  wake: () => void = () => {};
  /** maxMbps from the port (ingress shaper); rate 0 = off. Towards the port: its scheduler. */
  readonly rxBucket = new TokenBucket();
  rxCapped = false;
  /** Rate and bucket depth of the port's egress scheduler: min(linkMbps, maxMbps); 0 = none. */
  egressMbps = 0;
  egressBurst = 0;
  /** Scheduler of frames to this port (linkMbps), or null. */
  sched: EgressScheduler | null = null;
  /** Schedulers this port feeds as a source (read no more than the smallest room among them). */
  feeds: EgressScheduler[] = [];
  weight = 1;
  /** The port's readiness poll is stopped by QoS; why (1 = rate, 2 = queue full). */
  paused = 0;
  timerPending = false;
  // counters
  throttles = 0;

  constructor(readonly id: number) {}

  configure(spec: QosSpec, now: Millis): void {
    this.spec = spec;
    this.weight = weightOf(spec);
    const max = spec.maxMbps ?? 0;
    const link = spec.linkMbps ?? 0;
    const burst = spec.maxBurstKB !== undefined ? spec.maxBurstKB * 1024 : defaultBurstBytes(max);
    if (max > 0) {
      this.rxBucket.configure(max, burst, now);
      this.rxCapped = true;
    } else {
      this.rxBucket.rate = 0;
      this.rxCapped = false;
    }
    this.egressMbps = max > 0 && (link === 0 || max < link) ? max : link;
    this.egressBurst = max > 0 && this.egressMbps === max ? Math.max(2 * 70_000, burst) : 0;
  }

  /** Frames the port may read now (0: wait), given the per-read maximum and the largest frame it can deliver. */
  rxLimit(now: Millis, max: number, frameMax: number): number {
    let n = max;
    if (this.rxCapped) {
      const t = this.rxBucket.refill(now);
      if (t <= 0) return 0;
      const k = Math.ceil(t / frameMax);
      if (k < n) n = k;
    }
    const f = this.feeds;
    for (let k = 0; k < f.length; k++) {
      const room = f[k]!.free(this.id);
      if (room < n) n = room;
    }
    return n;
  }
}

/** Checks the QoS keys of a port's `policy:` object (the caller rejects keys nobody knows). */
export function checkQos(v: Record<string, unknown>, path: string): { value: QosSpec; errors: { path: string; message: string }[] } {
  const errors: { path: string; message: string }[] = [];
  const out: Record<string, number> = {};
  const num = (k: Exclude<(typeof QOS_KEYS)[number], 'pcpWeights'>, lo: number, hi: number, what: string): void => {
    const x = v[k];
    if (x === undefined || x === null) return;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < lo || x > hi) {
      errors.push({ path: `${path}.${k}`, message: `must be ${what}, an integer ${lo}..${hi}, got ${JSON.stringify(x)}` });
      return;
    }
    out[k] = x;
  };
  num('maxMbps', 1, 400_000, 'a maximum bandwidth in Mbit/s');
  num('maxBurstKB', 2, 1_048_576, 'a burst in KiB');
  num('minWeight', 1, 100, 'a relative minimum bandwidth weight');
  num('minMbps', 1, 400_000, 'an absolute minimum bandwidth in Mbit/s');
  num('linkMbps', 1, 400_000, "the port's egress capacity in Mbit/s");
  const pw = v['pcpWeights'];
  let pcpWeights: number[] | undefined;
  if (pw !== undefined && pw !== null) {
    if (!Array.isArray(pw) || pw.length !== 8 || !pw.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 100)) {
      errors.push({ path: `${path}.pcpWeights`, message: `must be 8 weights 1..100, one per 802.1p priority 0..7, got ${JSON.stringify(pw)}` });
    } else if (out['linkMbps'] === undefined && out['maxMbps'] === undefined) {
      errors.push({ path: `${path}.pcpWeights`, message: 'needs linkMbps or maxMbps (the classes share a known egress rate)' });
    } else {
      pcpWeights = pw.slice() as number[];
    }
  }
  if (out['minWeight'] !== undefined && out['minMbps'] !== undefined) {
    errors.push({ path: `${path}.minMbps`, message: 'set minWeight or minMbps, not both (Hyper-V: one minimum bandwidth mode)' });
  }
  if (out['maxBurstKB'] !== undefined && out['maxMbps'] === undefined) {
    errors.push({ path: `${path}.maxBurstKB`, message: 'needs maxMbps' });
  }
  return { value: (pcpWeights === undefined ? out : { ...out, pcpWeights }) as QosSpec, errors };
}
