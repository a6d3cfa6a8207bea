// dataplane/extension-batch.ts: the batch views extensions get. A capture gets ReadonlyFrames, whose batch sits
// in #private fields: no cast or property access reaches the slab, bytes leave only as numbers or copies.
// Filters and the forwarder get FilterFrames / ForwardingFrames over a range [lo, lo + count) of a Batch.

import type { FilterBatch, ForwardingBatch, PortId, ReadonlyBatch } from '../extensions/api.js';
import { Batch, DEST_PRESERVE_PRIORITY, DEST_PRESERVE_VLAN, TAILROOM } from './frame.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import { NO_PORT } from './types.js';

// Captured at module load, before any extension runs: a capture that later patches Uint8Array (its prototype
// methods, Symbol.species, the global binding) cannot see the slab through copyTo. copyTo never calls a method
// on the slab; it builds a view with the captured constructor and copies with the captured set().
const U8 = Uint8Array;
const typedSet = Uint8Array.prototype.set;
const apply = Reflect.apply;
const typedProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
const bufferOf = Object.getOwnPropertyDescriptor(typedProto, 'buffer')!.get!;
const byteOffsetOf = Object.getOwnPropertyDescriptor(typedProto, 'byteOffset')!.get!;

/** Set by ReadonlyFrames' static block; the only way to point a view at a batch (module-private). */
let bindReadonly: (v: ReadonlyFrames, b: Batch, lo: number, count: number) => void;

/** The batch of a view not bound yet: no frames. */
const UNBOUND = new Batch(0, 0);

export class ReadonlyFrames implements ReadonlyBatch {
  // Never null: the compiled bind compares batches, and a null here (a new switch's first frame) would throw that
  // code away once for every switch created.
  #b: Batch = UNBOUND;
  #buf: ArrayBufferLike | null = null;
  #base = 0;
  #lo = 0;
  #count = 0;

  static {
    bindReadonly = (v, b, lo, count) => {
      if (v.#b !== b) {
        v.#buf = apply(bufferOf, b.slab, []) as ArrayBufferLike;
        v.#base = apply(byteOffsetOf, b.slab, []) as number;
      }
      v.#b = b;
      v.#lo = lo;
      v.#count = count;
    };
  }

  get count(): number {
    return this.#count;
  }
  #m(i: number) {
    if (!(i >= 0 && i < this.#count)) return undefined;
    return this.#b.meta[this.#lo + i];
  }
  length(i: number): number {
    return this.#m(i)?.len ?? -1;
  }
  isDropped(i: number): boolean {
    const m = this.#m(i);
    return m === undefined || m.drop !== null;
  }
  inPort(i: number): PortId {
    return this.#m(i)?.inPort ?? NO_PORT;
  }
  vlan(i: number): number {
    return this.#m(i)?.vlan ?? -1;
  }
  pcp(i: number): number {
    return this.#m(i)?.pcp ?? -1;
  }
  vsid(i: number): number {
    return this.#m(i)?.vsid ?? -1;
  }
  dstMac(i: number): number {
    return this.#m(i)?.dstMac ?? -1;
  }
  srcMac(i: number): number {
    return this.#m(i)?.srcMac ?? -1;
  }
  etherType(i: number): number {
    return this.#m(i)?.etherType ?? -1;
  }
  l3Offset(i: number): number {
    return this.#m(i)?.l3Off ?? -1;
  }
  originated(i: number): boolean {
    return this.#m(i)?.originated ?? false;
  }
  cloned(i: number): boolean {
    return this.#m(i)?.cloned ?? false;
  }
  byte(i: number, at: number): number {
    const m = this.#m(i);
    if (m === undefined || !(at >= 0 && at < m.len)) return -1;
    return this.#b.slab[m.off + at]!;
  }
  u16(i: number, at: number): number {
    const m = this.#m(i);
    if (m === undefined || !(at >= 0 && at + 2 <= m.len)) return -1;
    const s = this.#b.slab;
    const o = m.off + at;
    return (s[o]! << 8) | s[o + 1]!;
  }
  u32(i: number, at: number): number {
    const m = this.#m(i);
    if (m === undefined || !(at >= 0 && at + 4 <= m.len)) return -1;
    const s = this.#b.slab;
    const o = m.off + at;
    return s[o]! * 0x100_0000 + ((s[o + 1]! << 16) | (s[o + 2]! << 8) | s[o + 3]!);
  }
  copyTo(i: number, dst: Uint8Array, dstOff = 0, from = 0, maxBytes = Infinity): number {
    const m = this.#m(i);
    if (m === undefined || !(dst instanceof U8)) return 0;
    const start = Math.max(0, Math.floor(from));
    const d = Math.max(0, Math.floor(dstOff));
    const n = Math.min(m.len - start, dst.length - d, Math.max(0, Math.floor(maxBytes)));
    if (!(n > 0)) return 0;
    const at = m.off + start;
    if (n <= 128) {
      // short copies byte by byte: values only ever leave, never a view
      const slab = this.#b.slab;
      for (let k = 0; k < n; k++) dst[d + k] = slab[at + k]!;
      return n;
    }
    apply(typedSet, dst, [new U8(this.#buf!, this.#base + at, n), d]);
    return n;
  }
  destinationCount(i: number): number {
    return this.#m(i)?.dest.count ?? 0;
  }
  destination(i: number, k: number): PortId {
    const m = this.#m(i);
    if (m === undefined || !(k >= 0 && k < m.dest.count)) return NO_PORT;
    return m.dest.port(k);
  }
  destinationExcluded(i: number, k: number): boolean {
    const m = this.#m(i);
    if (m === undefined || !(k >= 0 && k < m.dest.count)) return true;
    return m.dest.excluded(k);
  }
}

/** Point a capture view at frames [lo, lo + count) of b (pipeline only). */
export function bindReadonlyFrames(v: ReadonlyFrames, b: Batch, lo: number, count: number): void {
  bindReadonly(v, b, lo, count);
}

/** A filter's view: writable bytes, drop, length and VLAN changes, destination exclusion. */
export class FilterFrames implements FilterBatch {
  batch: Batch | null = null;
  lo = 0;
  count = 0;
  /** Frames dropped through this view since the pipeline last reset it (counted against the extension). */
  drops = 0;
  /** Name recorded as dropBy. */
  extName = '';

  bind(b: Batch, lo: number, count: number, extName: string): this {
    this.batch = b;
    this.lo = lo;
    this.count = count;
    this.extName = extName;
    this.drops = 0;
    return this;
  }

  protected m(i: number) {
    if (this.batch === null || !(i >= 0 && i < this.count)) return undefined;
    return this.batch.meta[this.lo + i];
  }
  get slab(): Uint8Array {
    return this.batch!.slab;
  }
  get view(): DataView {
    return this.batch!.dv;
  }
  offset(i: number): number {
    return this.m(i)?.off ?? -1;
  }
  length(i: number): number {
    return this.m(i)?.len ?? -1;
  }
  isDropped(i: number): boolean {
    const m = this.m(i);
    return m === undefined || m.drop !== null;
  }
  inPort(i: number): PortId {
    return this.m(i)?.inPort ?? NO_PORT;
  }
  vlan(i: number): number {
    return this.m(i)?.vlan ?? -1;
  }
  pcp(i: number): number {
    return this.m(i)?.pcp ?? -1;
  }
  vsid(i: number): number {
    return this.m(i)?.vsid ?? -1;
  }
  dstMac(i: number): number {
    return this.m(i)?.dstMac ?? -1;
  }
  srcMac(i: number): number {
    return this.m(i)?.srcMac ?? -1;
  }
  etherType(i: number): number {
    return this.m(i)?.etherType ?? -1;
  }
  l3Offset(i: number): number {
    return this.m(i)?.l3Off ?? -1;
  }
  originated(i: number): boolean {
    return this.m(i)?.originated ?? false;
  }
  cloned(i: number): boolean {
    return this.m(i)?.cloned ?? false;
  }
  byte(i: number, at: number): number {
    const m = this.m(i);
    if (m === undefined || !(at >= 0 && at < m.len)) return -1;
    return this.batch!.slab[m.off + at]!;
  }
  u16(i: number, at: number): number {
    const m = this.m(i);
    if (m === undefined || !(at >= 0 && at + 2 <= m.len)) return -1;
    const s = this.batch!.slab;
    return (s[m.off + at]! << 8) | s[m.off + at + 1]!;
  }
  u32(i: number, at: number): number {
    const m = this.m(i);
    if (m === undefined || !(at >= 0 && at + 4 <= m.len)) return -1;
    return this.batch!.dv.getUint32(m.off + at);
  }
  copyTo(i: number, dst: Uint8Array, dstOff = 0, from = 0, maxBytes = Infinity): number {
    const m = this.m(i);
    if (m === undefined) return 0;
    const start = Math.max(0, from);
    const n = Math.min(m.len - start, dst.length - dstOff, maxBytes);
    if (!(n > 0)) return 0;
    dst.set(this.batch!.slab.subarray(m.off + start, m.off + start + n), dstOff);
    return n;
  }
  destinationCount(i: number): number {
    return this.m(i)?.dest.count ?? 0;
  }
  destination(i: number, k: number): PortId {
    const m = this.m(i);
    if (m === undefined || !(k >= 0 && k < m.dest.count)) return NO_PORT;
    return m.dest.port(k);
  }
  destinationExcluded(i: number, k: number): boolean {
    const m = this.m(i);
    if (m === undefined || !(k >= 0 && k < m.dest.count)) return true;
    return m.dest.excluded(k);
  }
  drop(i: number): void {
    const m = this.m(i);
    if (m === undefined || m.drop !== null) return;
    m.drop = 'extension-drop';
    m.dropBy = this.extName;
    this.drops++;
  }
  setLength(i: number, len: number): boolean {
    const m = this.m(i);
    if (m === undefined || !Number.isInteger(len) || len < ETH_HLEN) return false;
    const idx = this.lo + i;
    const b = this.batch!;
    const slotEnd = b.slotStart(idx) + b.slotSize - TAILROOM;
    if (m.off + len > slotEnd) return false;
    m.len = len;
    return true;
  }
  setVlan(i: number, vlan: number, pcp: number): void {
    const m = this.m(i);
    if (m === undefined) return;
    m.vlan = vlan & 0xfff;
    m.pcp = pcp & 7;
  }
  excludeDestination(i: number, k: number): void {
    const m = this.m(i);
    if (m === undefined || !(k >= 0 && k < m.dest.count)) return;
    m.dest.exclude(k);
  }
  excludePort(i: number, port: PortId): boolean {
    const m = this.m(i);
    return m !== undefined && m.dest.excludePort(port);
  }
}

/** The forwarding extension's view: it also sets destinations. */
export class ForwardingFrames extends FilterFrames implements ForwardingBatch {
  clearDestinations(i: number): void {
    this.m(i)?.dest.clear();
  }
  addDestination(i: number, port: PortId, flags?: { preserveVlan?: boolean; preservePriority?: boolean }): void {
    const m = this.m(i);
    if (m === undefined || !Number.isInteger(port) || port < 0) return;
    let f = 0;
    if (flags?.preserveVlan === true) f |= DEST_PRESERVE_VLAN;
    if (flags?.preservePriority === true) f |= DEST_PRESERVE_PRIORITY;
    m.dest.add(port, f);
  }
}
