// dataplane/pipeline.ts: the extension chain (capture* -> filter* -> forwarding?) and its hooks over a batch
// range: ingress in configured order, egress in reverse, fault isolation and disabling, the context
// extensions see. The switch drives it; it sends nothing itself.

import type {
  CaptureContext,
  CaptureExtension,
  Direction,
  Extension,
  ExtensionContext,
  ExtensionKind,
  FilterBatch,
  FilterContext,
  ForwardingExtension,
  Logger,
  OriginateOptions,
  PortEvent,
  PortId,
  PortInfo,
  Tracer,
} from '../extensions/api.js';
import type { DropReason } from './drop.js';
import { ReadonlyFrames, FilterFrames, ForwardingFrames, bindReadonlyFrames } from './extension-batch.js';
import type { Batch } from './frame.js';
import type { PortTable } from './port-table.js';
import type { ExtensionBinding, ExtensionStatus } from './switch-api.js';
import type { Clock, Millis } from './types.js';

/** Faults within FAULT_WINDOW_MS that disable an extension. */
export const FAULT_LIMIT = 5;
export const FAULT_WINDOW_MS = 10_000;

/** Where originated and cloned frames go (the switch's injection queue). */
export interface Injector {
  originate(bytes: Uint8Array, opts: OriginateOptions, startPos: number): boolean;
  clone(batch: FilterBatch, i: number, opts: Partial<OriginateOptions> | undefined, startPos: number): boolean;
}

type FilterHook = (this: Extension, frames: FilterBatch, ctx: FilterContext) => void;

const KIND_RANK: Record<ExtensionKind, number> = { capture: 0, filter: 1, forwarding: 2 };

export class BindingState {
  name: string;
  enabled: boolean;
  disabledReason: string | null = null;
  position = 0;
  faults = 0;
  /** Frames this extension dropped. */
  drops = 0;
  readonly faultTimes = new Float64Array(FAULT_LIMIT);
  faultHead = 0;
  recentFaults = 0;
  /**
   * The hooks, read once when the extension is bound: the data path then loads them from this object, whose
   * shape is always the same, instead of from each extension object (one shape per extension). V8 then keeps
   * one compiled data path for any set of extensions, and a newly bound extension does not throw that code away.
   */
  readonly capture: CaptureExtension | null;
  readonly observeHook: CaptureExtension['observe'] | null;
  readonly ingressHook: FilterHook | null;
  readonly egressHook: FilterHook | null;
  readonly forwardHook: ForwardingExtension['forward'] | null;
  constructor(
    readonly ext: Extension,
    b: ExtensionBinding,
  ) {
    this.name = b.name;
    this.enabled = b.enabled;
    const capture = ext.kind === 'capture' ? ext : null;
    this.capture = capture;
    this.observeHook = capture === null ? null : capture.observe;
    this.ingressHook = ext.kind === 'capture' ? null : ext.ingress ?? null;
    this.egressHook = ext.kind === 'capture' ? null : ext.egress ?? null;
    this.forwardHook = ext.kind === 'forwarding' ? ext.forward : null;
  }
  get active(): boolean {
    return this.enabled && this.disabledReason === null;
  }
}

/** The context every hook gets; one object per switch, re-pointed (now, position) before each call. */
export class HookContext implements FilterContext {
  now: Millis = 0;
  trace: Tracer | null = null;
  /** Chain position of the extension being called: its originated frames start at pos + 1. */
  pos = 0;
  constructor(
    readonly switchName: string,
    readonly log: Logger,
    private readonly portTable: PortTable,
    private readonly injector: Injector,
  ) {}
  ports(): readonly PortInfo[] {
    return this.portTable.infos;
  }
  port(id: PortId): PortInfo | undefined {
    return this.portTable.get(id)?.info;
  }
  originate(bytes: Uint8Array, opts: OriginateOptions): boolean {
    return this.injector.originate(bytes, opts, this.pos + 1);
  }
  clone(batch: FilterBatch, i: number, opts?: Partial<OriginateOptions>): boolean {
    return this.injector.clone(batch, i, opts, this.pos + 1);
  }
}

/** Throws a plain Error listing what is wrong with a chain (control path). */
export function validateChain(chain: readonly ExtensionBinding[]): void {
  const errors: string[] = [];
  const names = new Set<string>();
  const objects = new Set<Extension>();
  let rank = 0;
  let forwarding = 0;
  chain.forEach((b, i) => {
    const kind = (b.extension as { kind?: unknown }).kind;
    if (kind !== 'capture' && kind !== 'filter' && kind !== 'forwarding') {
      errors.push(`extensions[${i}] (${b.name}): unknown kind ${String(kind)}`);
      return;
    }
    if (names.has(b.name)) errors.push(`extensions[${i}]: duplicate name '${b.name}'`);
    names.add(b.name);
    if (objects.has(b.extension)) errors.push(`extensions[${i}] (${b.name}): the same extension object is bound twice`);
    objects.add(b.extension);
    const r = KIND_RANK[kind];
    if (r < rank) {
      errors.push(`extensions[${i}] (${b.name}): a ${kind} extension after a later class (order is capture*, filter*, forwarding?)`);
    }
    rank = Math.max(rank, r);
    if (kind === 'forwarding' && ++forwarding > 1) errors.push(`extensions[${i}] (${b.name}): more than one forwarding extension`);
  });
  if (errors.length > 0) throw new Error(`invalid extension chain: ${errors.join('; ')}`);
}

export class Pipeline {
  /** Configured order; chain[p] sits at position p. */
  chain: BindingState[] = [];
  forwarder: BindingState | null = null;
  readonly ctx: HookContext;
  private readonly ro = new ReadonlyFrames();
  private readonly fb = new FilterFrames();
  private readonly fwd = new ForwardingFrames();

  constructor(
    readonly switchName: string,
    private readonly clock: Clock,
    readonly log: Logger,
    ports: PortTable,
    injector: Injector,
  ) {
    this.ctx = new HookContext(switchName, log, ports, injector);
  }

  get forwarderActive(): boolean {
    return this.forwarder !== null && this.forwarder.active;
  }

  /** Replace the chain (already validated). Returns true if anything changed. */
  apply(bindings: readonly ExtensionBinding[]): void {
    const old = new Map<Extension, BindingState>();
    for (const s of this.chain) old.set(s.ext, s);
    const next: BindingState[] = [];
    for (const b of bindings) {
      let s = old.get(b.extension);
      if (s !== undefined) {
        old.delete(b.extension);
        // an explicit re-enable (false -> true) clears a fault-disable
        if (!s.enabled && b.enabled) {
          s.disabledReason = null;
          s.recentFaults = 0;
        }
        s.enabled = b.enabled;
        s.name = b.name;
      } else {
        s = new BindingState(b.extension, b);
        try {
          b.extension.attach?.(this.ctx);
        } catch (err) {
          s.disabledReason = `attach threw: ${errorText(err)}`;
          this.log.warn(`extension ${s.name} disabled`, { extension: s.name, reason: s.disabledReason });
        }
      }
      next.push(s);
    }
    for (const s of old.values()) {
      try {
        s.ext.detach?.();
      } catch (err) {
        this.log.warn(`extension ${s.name} threw in detach`, { extension: s.name, error: errorText(err) });
      }
    }
    next.forEach((s, i) => (s.position = i));
    this.chain = next;
    this.forwarder = next.find((s) => s.ext.kind === 'forwarding') ?? null;
  }

  detachAll(): void {
    this.apply([]);
  }

  status(): ExtensionStatus[] {
    return this.chain.map((s) => {
      let stats: Record<string, number> = {};
      try {
        stats = { ...(s.ext.stats?.() ?? {}) };
      } catch (err) {
        this.fault(s, err);
      }
      stats['switch.dropped'] = s.drops;
      return {
        name: s.name,
        kind: s.ext.kind,
        enabled: s.active,
        position: s.position,
        faults: s.faults,
        disabledReason: s.disabledReason,
        stats,
      };
    });
  }

  /** Count a fault; the FAULT_LIMIT-th within FAULT_WINDOW_MS disables the extension. */
  fault(s: BindingState, err: unknown): void {
    const now = this.clock.now();
    s.faults++;
    s.faultTimes[s.faultHead] = now;
    s.faultHead = (s.faultHead + 1) % FAULT_LIMIT;
    if (s.recentFaults < FAULT_LIMIT) s.recentFaults++;
    if (s.faults === 1) this.log.warn(`extension ${s.name} threw`, { extension: s.name, error: errorText(err) });
    // faultTimes[faultHead] is now the oldest of the last FAULT_LIMIT faults
    if (s.recentFaults === FAULT_LIMIT && now - s.faultTimes[s.faultHead]! <= FAULT_WINDOW_MS && s.disabledReason === null) {
      s.disabledReason = `${FAULT_LIMIT} faults in ${FAULT_WINDOW_MS / 1000} s; last: ${errorText(err)}`;
      this.log.warn(`extension ${s.name} disabled`, { extension: s.name, reason: s.disabledReason });
    }
  }

  /** Ingress hooks from chain position `start` on (capture observe, filter and forwarding ingress). */
  ingress(b: Batch, lo: number, hi: number, start: number): void {
    const chain = this.chain;
    const ctx = this.ctx;
    for (let p = start; p < chain.length; p++) {
      const s = chain[p]!;
      if (!s.active) continue;
      ctx.pos = p;
      const hook = s.ingressHook;
      if (s.observeHook !== null) {
        this.observe(s, b, lo, hi, 'ingress');
      } else if (hook !== null) {
        const v = this.fb.bind(b, lo, hi - lo, s.name);
        try {
          hook.call(s.ext, v, ctx);
        } catch (err) {
          this.fault(s, err);
          dropRange(b, lo, hi, 'extension-fault', s.name);
        }
        s.drops += v.drops;
        v.drops = 0;
      }
      if (ctx.trace !== null) traceHook(ctx.trace, s.name, 'ingress', b, lo, hi);
    }
  }

  /** The forwarding extension's decision. */
  forward(b: Batch, lo: number, hi: number): void {
    const s = this.forwarder!;
    const hook = s.forwardHook;
    if (hook === null) return;
    for (let i = lo; i < hi; i++) b.meta[i]!.dest.clear();
    this.ctx.pos = s.position;
    const v = this.fwd.bind(b, lo, hi - lo, s.name);
    try {
      hook.call(s.ext as ForwardingExtension, v, this.ctx);
    } catch (err) {
      this.fault(s, err);
      dropRange(b, lo, hi, 'extension-fault', s.name);
    }
    s.drops += v.drops;
    v.drops = 0;
  }

  /** Egress hooks in reverse order: forwarding, filters reversed, captures reversed. */
  egress(b: Batch, lo: number, hi: number): void {
    const chain = this.chain;
    const ctx = this.ctx;
    for (let p = chain.length - 1; p >= 0; p--) {
      const s = chain[p]!;
      if (!s.active) continue;
      ctx.pos = p;
      const hook = s.egressHook;
      if (s.observeHook !== null) {
        this.observe(s, b, lo, hi, 'egress');
      } else if (hook !== null) {
        const v = this.fb.bind(b, lo, hi - lo, s.name);
        try {
          hook.call(s.ext, v, ctx);
        } catch (err) {
          this.fault(s, err);
          dropRange(b, lo, hi, 'extension-fault', s.name);
        }
        s.drops += v.drops;
        v.drops = 0;
      }
      if (ctx.trace !== null) traceHook(ctx.trace, s.name, 'egress', b, lo, hi);
    }
  }

  private observe(s: BindingState, b: Batch, lo: number, hi: number, dir: Direction): void {
    const hook = s.observeHook;
    if (hook === null) return;
    // re-bound before every call: a capture cannot re-point the view another capture sees
    bindReadonlyFrames(this.ro, b, lo, hi - lo);
    try {
      hook.call(s.capture!, this.ro, dir, this.ctx);
    } catch (err) {
      this.fault(s, err); // a capture fault leaves frames untouched
    }
    bindReadonlyFrames(this.ro, b, 0, 0);
  }

  /** About once a second: tick() of every active extension. */
  tick(now: Millis): void {
    this.ctx.now = now;
    for (let p = 0; p < this.chain.length; p++) {
      const s = this.chain[p]!;
      if (!s.active || s.ext.tick === undefined) continue;
      this.ctx.pos = p;
      try {
        s.ext.tick(this.ctx as CaptureContext);
      } catch (err) {
        this.fault(s, err);
      }
    }
  }

  portEvent(e: PortEvent): void {
    for (const s of this.chain) {
      if (s.ext.portEvent === undefined) continue;
      try {
        s.ext.portEvent(e);
      } catch (err) {
        this.fault(s, err);
      }
    }
  }
}

/** Trace mode only: what each frame looks like after extension `name`'s hook. */
function traceHook(t: Tracer, name: string, dir: Direction, b: Batch, lo: number, hi: number): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    t.note(`${dir} ${name}`, m.drop !== null ? `dropped: ${m.drop}` : `pass (vlan ${m.vlan}, ${m.len} bytes, ${m.dest.live()} destinations)`);
  }
}

/** Drop every frame in [lo, hi) not already dropped. */
export function dropRange(b: Batch, lo: number, hi: number, reason: DropReason, by: string): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop === null) {
      m.drop = reason;
      m.dropBy = by;
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export type { ExtensionContext };
