// io/memory.ts: an in-process port back end (the netdev-dummy of xswitch). Tests and simulations inject frames
// and take what the switch sent; the same Switch code runs on it as on TAP / AF_PACKET.

import { GSO_NONE, HEADROOM, type Batch } from '../dataplane/frame.js';
import { newBackendStats, type BackendStats, type PortBackend } from './backend.js';

/** The offload fields a virtio-net header would carry (see FrameMeta). */
export interface OffloadFields {
  gsoType: number;
  gsoSize: number;
  hdrLen: number;
  needsCsum: boolean;
  csumStart: number;
  csumOffset: number;
  dataValid: boolean;
}

export interface SentFrame {
  readonly bytes: Uint8Array;
  readonly meta: OffloadFields;
}

export interface MemoryPortOptions {
  /** Behave like a back end with a virtio-net header (GSO frames and partial checksums pass). Default false. */
  readonly offload?: boolean;
  /** Largest frame this port receives or sends. Default 1522 (1500 + Ethernet + tag + 4), 65550 with offload. */
  readonly maxFrameBytes?: number;
  /** Frames held for takeSent() before send() refuses more (counted txFull). Default 1 << 20. */
  readonly txCapacity?: number;
  /** Frames queued by inject() before it refuses more. Default 1 << 20. */
  readonly rxCapacity?: number;
  /** Keep copies of sent frames for takeSent() (default true). false: only count them (benchmarks). */
  readonly keepSent?: boolean;
}

export interface MemoryPort extends PortBackend {
  readonly kind: 'memory';
  /** Queue a copy of `bytes` to be received by the switch. False if refused (too long, or queue full). */
  inject(bytes: Uint8Array, meta?: Partial<OffloadFields>): boolean;
  /** Copies of the frames the switch sent since the last call (VLAN tag inline if one was pushed). */
  takeSent(): Uint8Array[];
  /** As takeSent, with the offload fields the switch passed with each frame. */
  takeSentWithMeta(): SentFrame[];
  /** Frames waiting to be received. */
  readonly pending: number;
  /** Totals since creation (also counted when keepSent is false). */
  readonly sentFrames: number;
  readonly sentBytes: number;
  /** Let the next `n` sends succeed, then refuse (simulate a full queue); -1 (default) = no limit. */
  refuseAfter(n: number): void;
}

const F_NEEDS_CSUM = 1;
const F_DATA_VALID = 2;

class MemoryPortImpl implements MemoryPort {
  readonly kind = 'memory' as const;
  readonly offload: boolean;
  readonly maxFrameBytes: number;
  readonly stats: BackendStats = newBackendStats();
  sentFrames = 0;
  sentBytes = 0;

  // rx ring: buffers are kept and reused (grown only when a longer frame arrives), so steady-state injection
  // allocates nothing.
  private ring: Uint8Array[] = [];
  private ringLen: number[] = [];
  private gsoType: number[] = [];
  private gsoSize: number[] = [];
  private hdrLen: number[] = [];
  private csumStart: number[] = [];
  private csumOffset: number[] = [];
  private flags: number[] = [];
  private head = 0;
  private queued = 0;
  private readonly rxCapacity: number;
  private readonly txCapacity: number;
  private readonly keepSent: boolean;
  private sent: SentFrame[] = [];
  private budget = -1;
  private onReadable: (() => void) | null = null;
  private scheduled = false;
  private closed = false;

  constructor(
    readonly name: string,
    opts: MemoryPortOptions,
  ) {
    this.offload = opts.offload ?? false;
    this.maxFrameBytes = opts.maxFrameBytes ?? (this.offload ? 65550 : 1522);
    this.txCapacity = opts.txCapacity ?? 1 << 20;
    this.rxCapacity = opts.rxCapacity ?? 1 << 20;
    this.keepSent = opts.keepSent ?? true;
  }

  get pending(): number {
    return this.queued;
  }

  inject(bytes: Uint8Array, meta?: Partial<OffloadFields>): boolean {
    if (this.closed || bytes.length > this.maxFrameBytes || this.queued >= this.rxCapacity) {
      this.stats.rxErrors++;
      return false;
    }
    // ring grows in powers of two; slot k of the logical queue is (head + k) & (size - 1)
    if (this.queued === this.ring.length) this.growRing();
    const k = (this.head + this.queued) & (this.ring.length - 1);
    let buf = this.ring[k]!;
    if (buf.length < bytes.length) {
      buf = new Uint8Array(Math.max(bytes.length, 64));
      this.ring[k] = buf;
    }
    buf.set(bytes);
    this.ringLen[k] = bytes.length;
    this.gsoType[k] = meta?.gsoType ?? GSO_NONE;
    this.gsoSize[k] = meta?.gsoSize ?? 0;
    this.hdrLen[k] = meta?.hdrLen ?? 0;
    this.csumStart[k] = meta?.csumStart ?? 0;
    this.csumOffset[k] = meta?.csumOffset ?? 0;
    this.flags[k] = (meta?.needsCsum === true ? F_NEEDS_CSUM : 0) | (meta?.dataValid === true ? F_DATA_VALID : 0);
    this.queued++;
    this.schedule();
    return true;
  }

  private growRing(): void {
    const n = Math.max(16, this.ring.length * 2);
    const order: number[] = [];
    for (let j = 0; j < this.queued; j++) order.push((this.head + j) & (this.ring.length - 1));
    const pick = <T>(a: T[], fill: T): T[] => {
      const out: T[] = [];
      for (const j of order) out.push(a[j]!);
      // carry spare buffers over so they are reused
      for (let j = 0; j < this.ring.length; j++) if (!order.includes(j)) out.push(a[j]!);
      while (out.length < n) out.push(fill);
      return out;
    };
    const empty = new Uint8Array(0);
    this.ring = pick(this.ring, empty);
    this.ringLen = pick(this.ringLen, 0);
    this.gsoType = pick(this.gsoType, 0);
    this.gsoSize = pick(this.gsoSize, 0);
    this.hdrLen = pick(this.hdrLen, 0);
    this.csumStart = pick(this.csumStart, 0);
    this.csumOffset = pick(this.csumOffset, 0);
    this.flags = pick(this.flags, 0);
    this.head = 0;
  }

  receive(batch: Batch, first: number, max: number): number {
    let n = 0;
    const mask = this.ring.length - 1;
    while (n < max && this.queued > 0 && first + n < batch.capacity) {
      const k = this.head;
      const len = this.ringLen[k]!;
      const i = first + n;
      const m = batch.meta[i]!;
      if (len > batch.maxFrame) {
        // cannot happen with a slot sized by slotSizeFor(maxFrameBytes); a real device would truncate
        this.stats.rxErrors++;
      } else {
        m.reset();
        const off = batch.slotStart(i) + HEADROOM;
        const src = this.ring[k]!;
        if (len <= 256) {
          // short frames byte by byte: a subarray view per frame would be the only allocation on this path
          const dst = batch.slab;
          for (let j = 0; j < len; j++) dst[off + j] = src[j]!;
        } else {
          // a slot buffer of exactly this length needs no subarray view (the allocation tests send such frames)
          batch.slab.set(src.length === len ? src : src.subarray(0, len), off);
        }
        m.off = off;
        m.len = len;
        batch.offs[i] = off;
        batch.lens[i] = len;
        m.gsoType = this.gsoType[k]!;
        m.gsoSize = this.gsoSize[k]!;
        m.hdrLen = this.hdrLen[k]!;
        m.csumStart = this.csumStart[k]!;
        m.csumOffset = this.csumOffset[k]!;
        const f = this.flags[k]!;
        m.needsCsum = (f & F_NEEDS_CSUM) !== 0;
        m.dataValid = (f & F_DATA_VALID) !== 0;
        n++;
      }
      this.head = (k + 1) & mask;
      this.queued--;
    }
    return n;
  }

  send(batch: Batch, idx: Uint16Array, count: number): number {
    let ok = 0;
    let full = false;
    for (let j = 0; j < count; j++) {
      const m = batch.meta[idx[j]!]!;
      if (this.closed || this.budget === 0 || (this.keepSent && this.sent.length >= this.txCapacity)) {
        full = true;
        break;
      }
      if (m.len > this.maxFrameBytes && m.gsoType === GSO_NONE) {
        // a real device refuses a frame over its MTU: EMSGSIZE
        this.stats.txErrors++;
        this.stats.lastErrno = 90;
        break;
      }
      if (!this.offload && (m.gsoType !== GSO_NONE || m.needsCsum)) {
        // no virtio-net header to carry these: the switch must have completed them
        this.stats.txErrors++;
        this.stats.lastErrno = 22;
        break;
      }
      if (this.budget > 0) this.budget--;
      if (this.keepSent) {
        this.sent.push({
          bytes: batch.slab.slice(m.off, m.off + m.len),
          meta: {
            gsoType: m.gsoType,
            gsoSize: m.gsoSize,
            hdrLen: m.hdrLen,
            needsCsum: m.needsCsum,
            csumStart: m.csumStart,
            csumOffset: m.csumOffset,
            dataValid: m.dataValid,
          },
        });
      }
      this.sentFrames++;
      this.sentBytes += m.len;
      ok++;
    }
    if (full) this.stats.txFull += count - ok;
    return ok;
  }

  takeSent(): Uint8Array[] {
    const out = this.sent.map((s) => s.bytes);
    this.sent = [];
    return out;
  }

  takeSentWithMeta(): SentFrame[] {
    const out = this.sent;
    this.sent = [];
    return out;
  }

  refuseAfter(n: number): void {
    this.budget = n;
  }

  start(onReadable: () => void): void {
    this.onReadable = onReadable;
    this.scheduled = false;
    this.schedule();
  }

  stop(): void {
    this.onReadable = null;
  }

  close(): void {
    this.closed = true;
    this.onReadable = null;
    this.queued = 0;
  }

  private schedule(): void {
    if (this.onReadable === null || this.scheduled || this.queued === 0) return;
    this.scheduled = true;
    setImmediate(this.fire);
  }

  private readonly fire = (): void => {
    this.scheduled = false;
    const cb = this.onReadable;
    if (cb !== null && this.queued > 0) cb();
  };
}

/** A memory port back end. */
export function memoryPort(name: string, opts: MemoryPortOptions = {}): MemoryPort {
  return new MemoryPortImpl(name, opts);
}
