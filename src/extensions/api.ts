// extensions/api.ts: the extension SDK, the only way into the data path. Shipped extensions use nothing else.
//
// Three kinds, as in the Hyper-V Extensible Switch:
//  - capture:    sees every frame on ingress and egress; cannot drop or modify (enforced: it gets a ReadonlyBatch
//                whose bytes sit in a #private field, reachable only through copies); may originate frames.
//  - filter:     may drop, modify, clone, inject; sees ingress frames and, on egress, may exclude destinations.
//  - forwarding: at most one per switch; sets destination ports (bypassing built-in forwarding) and may filter.
// Ingress order: capture* -> filter* -> forwarding, each class in configured order. Built-in port policy runs
// after the forwarding decision. Egress walks the extensions in reverse order (forwarding, filters reversed,
// captures reversed), each seeing every frame with its destination list.
//
// Contract for every hook: it runs synchronously inside the switch loop (never await), it must not keep a
// reference to a batch after returning (the slab is reused for the next batch), and a throw is a bug: the
// pipeline catches it, counts a fault for the extension, drops a filter's/forwarder's batch as
// 'extension-fault' (a capture fault leaves frames untouched), and after repeated faults disables the extension
// with a logged reason. The switch keeps forwarding.

import type { Millis, PortId } from '../dataplane/types.js';

export type { PortId, Millis } from '../dataplane/types.js';
export type Direction = 'ingress' | 'egress';
export type ExtensionKind = 'capture' | 'filter' | 'forwarding';

/** What an extension may know about a port. */
export interface PortInfo {
  readonly id: PortId;
  readonly name: string;
  readonly kind: 'vm' | 'external' | 'internal';
  readonly mac: number | null;
  readonly vsid: number;
  readonly vlanMode: 'none' | 'access' | 'trunk';
  readonly accessVlan: number;
  readonly up: boolean;
}

/**
 * Read-only view of a batch. Frame indices run 0..count-1; frames already dropped are still listed
 * (isDropped) so counts line up. Offsets `at` are relative to the start of the frame's Ethernet header.
 * Reads past a frame's length return -1 (byte/u16/u32) instead of throwing.
 */
export interface ReadonlyBatch {
  readonly count: number;
  length(i: number): number;
  isDropped(i: number): boolean;
  inPort(i: number): PortId;
  vlan(i: number): number;
  pcp(i: number): number;
  vsid(i: number): number;
  dstMac(i: number): number;
  srcMac(i: number): number;
  etherType(i: number): number;
  /** Offset of the L3 header from the frame start (after any VLAN tag, which the switch keeps out of band). */
  l3Offset(i: number): number;
  originated(i: number): boolean;
  cloned(i: number): boolean;
  byte(i: number, at: number): number;
  u16(i: number, at: number): number;
  u32(i: number, at: number): number;
  /** Copy up to `maxBytes` of frame i starting at `from` into dst at dstOff; returns bytes copied. */
  copyTo(i: number, dst: Uint8Array, dstOff?: number, from?: number, maxBytes?: number): number;
  destinationCount(i: number): number;
  destination(i: number, k: number): PortId;
  destinationExcluded(i: number, k: number): boolean;
}

/** A filtering extension's batch: the bytes are writable in place, frames can be dropped. */
export interface FilterBatch extends ReadonlyBatch {
  /** The slab holding every frame of this batch; frame i spans [offset(i), offset(i) + length(i)). */
  readonly slab: Uint8Array;
  readonly view: DataView;
  offset(i: number): number;
  /** Drop frame i; counted as 'extension-drop' against this extension and the frame's port. */
  drop(i: number): void;
  /** Shorten (or, within the slot, lengthen) frame i after modifying it. Returns false if it does not fit. */
  setLength(i: number, len: number): boolean;
  /** Change the frame's VLAN / priority metadata (the tag is kept out of band). */
  setVlan(i: number, vlan: number, pcp: number): void;
  /** Exclude destination k of frame i (egress: drop one copy of a flood). */
  excludeDestination(i: number, k: number): void;
  /** Exclude a destination port of frame i; false if it was not a destination. */
  excludePort(i: number, port: PortId): boolean;
}

/** The forwarding extension's batch: it sets destinations. */
export interface ForwardingBatch extends FilterBatch {
  clearDestinations(i: number): void;
  addDestination(i: number, port: PortId, flags?: { preserveVlan?: boolean; preservePriority?: boolean }): void;
}

/** How an originated or injected frame enters the switch. */
export interface OriginateOptions {
  /** 'switch': trusted, bypasses built-in ACL/QoS. A PortId: the frame gets that port's policies as if sent by it. */
  readonly as: 'switch' | PortId;
  /** Deliver straight to these ports (skips forwarding); otherwise forwarding decides. */
  readonly to?: readonly PortId[];
  readonly vlan?: number;
  readonly vsid?: number;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** Records what a stage decided for `xsctl trace`; null when tracing is off, so `ctx.trace?.note(...)` is free. */
export interface Tracer {
  note(stage: string, verdict: string): void;
}

export interface ExtensionContext {
  readonly switchName: string;
  /** The injected clock's time at the start of this batch. */
  readonly now: Millis;
  readonly log: Logger;
  readonly trace: Tracer | null;
  ports(): readonly PortInfo[];
  port(id: PortId): PortInfo | undefined;
}

export interface CaptureContext extends ExtensionContext {
  /**
   * Originate a frame (copied now). It enters ingress after this extension, so extensions later in the chain
   * see it, then policy and forwarding as any frame. Returns false if the frame was refused (malformed or the
   * switch's injection queue is full; counted 'inject-invalid' / dropped).
   */
  originate(bytes: Uint8Array, opts: OriginateOptions): boolean;
}

export interface FilterContext extends CaptureContext {
  /** Clone frame i of the current batch and inject the copy (it enters ingress after this extension). */
  clone(batch: FilterBatch, i: number, opts?: Partial<OriginateOptions>): boolean;
}

export interface PortEvent {
  readonly type: 'created' | 'connected' | 'disconnected' | 'deleted' | 'updated';
  readonly port: PortInfo;
}

interface ExtensionBase {
  readonly name: string;
  /** Called once when bound to a switch (enabled or not), before any frame. */
  attach?(ctx: ExtensionContext): void;
  /** Called once when removed from the switch. */
  detach?(): void;
  /** Control-path events for ports. */
  portEvent?(e: PortEvent): void;
  /** About once a second, between batches (timers, export of counters). */
  tick?(ctx: CaptureContext): void;
  /** Extension counters for xsctl and metrics. */
  stats?(): Readonly<Record<string, number>>;
}

export interface CaptureExtension extends ExtensionBase {
  readonly kind: 'capture';
  /** Every frame, ingress and egress. Cannot drop or modify; may ctx.originate(). Never awaits. */
  observe(frames: ReadonlyBatch, dir: Direction, ctx: CaptureContext): void;
}

export interface FilterExtension extends ExtensionBase {
  readonly kind: 'filter';
  /** Ingress: frames from ports (and injected ones), before forwarding. May drop, modify, clone, inject. */
  ingress?(frames: FilterBatch, ctx: FilterContext): void;
  /** Egress: frames with their destination lists, after forwarding and policy. May exclude destinations. */
  egress?(frames: FilterBatch, ctx: FilterContext): void;
}

export interface ForwardingExtension extends ExtensionBase {
  readonly kind: 'forwarding';
  /** Ingress filtering before the forwarding decision (optional). */
  ingress?(frames: FilterBatch, ctx: FilterContext): void;
  /**
   * Choose destinations for each frame not yet dropped. A frame left with no destination is dropped as
   * 'no-destination'. Built-in forwarding does not run while a forwarding extension is bound and enabled.
   */
  forward(frames: ForwardingBatch, ctx: FilterContext): void;
  egress?(frames: FilterBatch, ctx: FilterContext): void;
}

export type Extension = CaptureExtension | FilterExtension | ForwardingExtension;

/**
 * What an extension module (loaded by path) exports as default: a factory from its config to an extension.
 * A factory that throws, or returns { error }, rejects the config with that message.
 */
export type ExtensionFactory = (config: Readonly<Record<string, unknown>>) => Extension | { error: string };
