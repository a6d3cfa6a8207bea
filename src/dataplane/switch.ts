// dataplane/switch.ts: the Switch: per-port batched rx, ingress classification, the extension pipeline, built-in
// forwarding and port policy, egress, batched tx per destination; plus the control surface (SwitchApi).

import type { FilterBatch, Logger, OriginateOptions, PortEvent, Tracer } from '../extensions/api.js';
import type { PortBackend } from '../io/backend.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import { CounterBlock, FrameTotals } from './counters.js';
import type { DropReason } from './drop.js';
import { FilterFrames } from './extension-batch.js';
import { forwardBuiltIn } from './forwarding.js';
import { Batch, DEST_EXCLUDED, GSO_NONE, GSO_UDP_TUNNEL, HEADROOM, slotSizeFor, type FrameMeta } from './frame.js';
import { SwitchLocalPorts } from './local-ports.js';
import { MacTable, VSID_DOMAIN } from './mac-table.js';
import { completeChecksum, segmentFrame } from './offload.js';
import { Pipeline, validateChain } from './pipeline.js';
import { applyPortPolicy } from './port-policy.js';
import { applyIngressGuards } from '../policy/guards.js';
import { applyPrivateVlans, applyPvlanIngress } from '../policy/pvlan.js';
import { PortState, PortTable } from './port-table.js';
import type {
  ExtensionBinding,
  ExtensionStatus,
  MacEntry,
  PortConfig,
  PortCounters,
  QosCounters,
  SwitchApi,
  SwitchOptions,
} from './switch-api.js';
import { NO_PORT, SystemClock, type Clock, type Millis, type PortId } from './types.js';
import type { LocalPorts, VirtualizationHost, VirtualizationLayer, VirtualizationStatus } from '../virtualization/api.js';
import { Gro } from '../virtualization/gro.js';
import { Virtualization } from '../virtualization/layer.js';
import type { HostNetworkInput } from '../virtualization/model.js';
import type { PortAclStatus } from '../policy/port-acl.js';
import { MIRROR_DESTINATION, MIRROR_SOURCE, collectMirror, isMirrored, takesCopy } from '../policy/mirror.js';
import { EgressScheduler, PortQos, wireBytes } from '../policy/qos.js';
import { PortVlan, classifyIngress, egressTci, popTag, pushTag, type IngressPort } from './vlan.js';

/** Batches one port may run per wake-up before the others get a turn. */
export const RX_BUDGET = 16;
/** Longest a busy-poll round may keep the event loop (API, timers) waiting, ms. */
export const BUSY_POLL_MAX_MS = 1;
/** Injection rounds (frames originated by frames originated by ...) per batch before the rest waits. */
export const MAX_INJECT_ROUNDS = 8;
/** Largest frame an extension may originate or clone (a GSO super-frame fits). */
export const MAX_INJECT_FRAME = 65550;
/** Largest software GSO segment (header + MSS). */
const SEGMENT_SLOT_BYTES = 16384;
const SEGMENT_CAPACITY = 64;

const consoleLogger: Logger = {
  info: (msg, fields) => console.log(JSON.stringify({ level: 'info', msg, ...fields })),
  warn: (msg, fields) => console.warn(JSON.stringify({ level: 'warn', msg, ...fields })),
};

/** Frames originated or cloned by extensions, waiting for their round; start = chain position to enter at. */
class InjectBuffer {
  readonly batch: Batch;
  readonly start: Uint16Array;
  readonly preset: Uint8Array;
  constructor(capacity: number) {
    this.batch = new Batch(capacity, slotSizeFor(MAX_INJECT_FRAME));
    this.start = new Uint16Array(capacity);
    this.preset = new Uint8Array(capacity);
  }
}

/** Classification of frames originated "as the switch": any VLAN, no MTU (trusted). */
const SWITCH_INGRESS: IngressPort = { vlan: PortVlan.from({ mode: 'none' }), vsid: 0, up: true, maxFrameLen: MAX_INJECT_FRAME };

export class Switch implements SwitchApi {
  readonly name: string;
  private gen = 0;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly batchSize: number;
  private readonly ports = new PortTable();
  private readonly macs: MacTable;
  private readonly pipe: Pipeline;
  private readonly counters = new CounterBlock();
  private readonly totals = new FrameTotals();
  private readonly injectCapacity: number;
  private fill: InjectBuffer | null = null;
  private work: InjectBuffer | null = null;
  private segments: Batch | null = null;
  private traceBatch: Batch | null = null;
  private readonly segIdx = new Uint16Array(SEGMENT_CAPACITY);
  private readonly delivered: Uint8Array;
  /** Per txIdx entry of the current send: taken by the back end. */
  private readonly sentMark: Uint8Array;
  /** Ports sent to during the current service() call (each once: PortState.probeGen), read again at its end. Ids,
   *  not PortStates: a removed port's state (and its slab) must not stay referenced from here. */
  private readonly probe: PortId[] = [];
  private probeCount = 0;
  private probeGen = 0;
  private readonly touched: PortState[] = [];
  private touchedCount = 0;
  private busy = 0;
  private pendingChain: readonly ExtensionBinding[] | null = null;
  private running = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastExpire: Millis;
  private closed = false;
  private readonly busyPollMs: number;
  private polling = false;
  /** Network virtualization at the external port (null: none bound). */
  private net: VirtualizationLayer | null = null;
  private readonly local: SwitchLocalPorts;
  /** Per txIdx entry of a send to the external port: what encapsulate changed, restored after the send. */
  private readonly saveOff: Int32Array;
  private readonly saveLen: Int32Array;
  private readonly saveVlan: Int32Array;
  private readonly saveCsum: Int32Array;
  private readonly saveHdr: Int32Array;
  private readonly saveGso: Int32Array;
  /** Per txIdx entry of a send to the external port: 1 = UDP-tunnel GSO, for the uplink's tunnelTx. */
  private readonly viaTunnel: Uint8Array;
  /** One run of a send to the external port, in the order frames came (tunnel frames interleave with others). */
  private readonly runIdx: Uint16Array;
  private readonly runFlags: Uint8Array;
  /** Pseudo-port a decapsulated inner frame is classified against: untagged only, the frame's VSID. */
  private readonly innerPort = { vlan: PortVlan.from({ mode: 'access', id: 0 }), vsid: 0, up: true, maxFrameLen: MAX_INJECT_FRAME };
  private uplinkBatch: Batch | null = null;
  private readonly uplinkIdx = new Uint16Array(1);
  /** Coalescing of decapsulated TCP segments at the external port (its counters are the switch's). */
  private readonly gro = new Gro();
  /** Port mirroring: destination ports, whether any source and destination exist, copies sent, and whether the
   *  sends under way are copies (then they count as mirrored, never as the frame's delivery). */
  private mirrorDests: PortState[] = [];
  private mirrorActive = false;
  private mirrored = 0;
  private mirroring = false;
  /** QoS state by port id (src/policy/qos.ts); qosOn: any port has some; the ports with a scheduler. */
  private readonly qos: (PortQos | undefined)[] = [];
  private qosOn = false;
  private qosScheds: PortState[] = [];

  constructor(opts: SwitchOptions) {
    this.name = opts.name;
    this.busyPollMs = Math.max(0, opts.busyPollUs ?? 0) / 1000;
    this.clock = opts.clock ?? new SystemClock();
    this.log = opts.log ?? consoleLogger;
    this.batchSize = Math.max(1, Math.min(opts.batchSize ?? 64, 1024));
    this.injectCapacity = Math.max(64, this.batchSize);
    this.macs = new MacTable({
      limit: opts.macLimit ?? 8192,
      limitPerPort: opts.macLimitPerPort ?? 1024,
      agingMs: opts.macAgingMs ?? 300_000,
    });
    this.delivered = new Uint8Array(Math.max(this.batchSize, this.injectCapacity));
    this.sentMark = new Uint8Array(Math.max(this.batchSize, this.injectCapacity, SEGMENT_CAPACITY));
    this.lastExpire = this.clock.now();
    const txCap = Math.max(this.batchSize, this.injectCapacity);
    this.saveOff = new Int32Array(txCap);
    this.saveLen = new Int32Array(txCap);
    this.saveVlan = new Int32Array(txCap);
    this.saveCsum = new Int32Array(txCap);
    this.saveHdr = new Int32Array(txCap);
    this.saveGso = new Int32Array(txCap);
    this.viaTunnel = new Uint8Array(txCap);
    this.runIdx = new Uint16Array(txCap);
    this.runFlags = new Uint8Array(txCap);
    this.local = new SwitchLocalPorts(this.ports, this.macs);
    this.pipe = new Pipeline(this.name, this.clock, this.log, this.ports, {
      originate: (bytes, o, start) => this.originate(bytes, o, start),
      clone: (b, i, o, start) => this.clone(b, i, o, start),
    });
  }

  // ---- control surface ----------------------------------------------------------------------------------

  /** Bumped on every configuration change (ports, extension chain). */
  get generation(): number {
    return this.gen;
  }

  addPort(backend: PortBackend, cfg: PortConfig): PortId {
    if (this.closed) throw new Error(`switch ${this.name} is closed`);
    if (this.ports.byName(cfg.name) !== undefined) throw new Error(`port name '${cfg.name}' already exists on ${this.name}`);
    const id = this.ports.allocId();
    const txCap = Math.max(this.batchSize, this.injectCapacity);
    const p = new PortState(id, backend, cfg, this.batchSize, txCap, (q) => this.service(q));
    this.ports.add(p);
    this.qosConfigure(p);
    this.local.refresh();
    this.refreshMirror();
    this.macs.setPortLimit(id, cfg.macLimit);
    this.gen++;
    if (this.running) backend.start(p.service);
    this.portEvent('created', p);
    if (cfg.up) this.portEvent('connected', p);
    return id;
  }

  updatePort(id: PortId, cfg: PortConfig): void {
    const p = this.mustPort(id);
    const wasUp = p.up;
    const was = p.cfg;
    // learned MACs stay valid unless where the port sits changed (VLAN, VSID, MAC, state, limit): a rule or
    // policy change must not make the switch flood the port's traffic until it is relearned
    const relearn = was.up !== cfg.up || was.vsid !== cfg.vsid || was.mac !== cfg.mac || was.macLimit !== cfg.macLimit ||
      JSON.stringify(was.vlan) !== JSON.stringify(cfg.vlan);
    p.reconfigure(cfg);
    this.ports.rebuild();
    this.qosConfigure(p);
    this.local.refresh();
    this.refreshMirror();
    this.macs.setPortLimit(id, cfg.macLimit);
    if (relearn) this.macs.flushPort(id);
    this.gen++;
    this.portEvent('updated', p);
    if (wasUp !== cfg.up) this.portEvent(cfg.up ? 'connected' : 'disconnected', p);
  }

  /** Remove a port: its MACs are flushed, its back end stopped and closed (the switch owns it since addPort). */
  removePort(id: PortId): void {
    const p = this.mustPort(id);
    this.ports.remove(id);
    // the last batch's destination list may still point at it (and through it at its back end and slab); outside
    // a batch the list is dead until the next transmit() refills it from 0
    if (this.busy === 0) {
      this.touched.length = 0;
      this.touchedCount = 0;
    }
    this.qosRemove(id);
    this.local.refresh();
    this.refreshMirror();
    this.macs.flushPort(id);
    this.gen++;
    p.backend.stop();
    p.backend.close();
    this.portEvent('disconnected', p);
    this.portEvent('deleted', p);
  }

  portId(name: string): PortId | undefined {
    return this.ports.byName(name)?.id;
  }

  setExtensions(chain: readonly ExtensionBinding[]): void {
    validateChain(chain);
    const copy = chain.slice();
    if (this.busy > 0) {
      this.pendingChain = copy; // called from inside a hook: applied when the current batch is done
      return;
    }
    this.pipe.apply(copy);
    this.gen++;
  }

  extensions(): ExtensionStatus[] {
    return this.pipe.status();
  }

  macTable(): MacEntry[] {
    return this.macs.entries(this.clock.now()).map((e) => ({
      mac: e.mac,
      vlan: e.domain < VSID_DOMAIN ? e.domain : 0,
      vsid: e.domain >= VSID_DOMAIN ? e.domain - VSID_DOMAIN : 0,
      port: e.port,
      ageMs: e.ageMs,
    }));
  }

  portCounters(id: PortId): PortCounters {
    const c = this.mustPort(id).counters.snapshot();
    const q = this.qosCounters(id);
    if (q !== null) c.qos = q;
    return c;
  }

  switchCounters(): PortCounters {
    const c = this.counters.snapshot();
    c.gro = { segments: this.gro.segments, superFrames: this.gro.superFrames };
    c.mirrored = this.mirrored;
    return c;
  }

  portAcl(id: PortId, withConnections = false): PortAclStatus | null {
    const a = this.mustPort(id).acl;
    return a === null ? null : a.status(this.clock.now(), withConnections);
  }

  /** Frame accounting and MAC learning counters (received = forwarded + dropped + undelivered, after a poll). */
  frameTotals(): Readonly<FrameTotals> {
    return { ...this.totals };
  }

  /** MAC table occupancy. */
  macStats(): { size: number; limit: number; refused: number; moves: number } {
    return { size: this.macs.size, limit: this.macs.limit, refused: this.totals.macLearnRefused, moves: this.totals.macMoves };
  }

  setVirtualization(input: HostNetworkInput | null): void {
    if (input === null) {
      if (this.net !== null) this.net.setPolicy(null);
      this.net = null;
    } else {
      const net = this.net ?? new Virtualization({ clock: this.clock, log: this.log, host: this.virtHost() });
      this.net = net;
      net.setPolicy(input);
    }
    this.gen++;
    this.drainInjected(); // announcements the new policy originated
  }

  virtualization(): VirtualizationStatus | null {
    return this.net === null ? null : this.net.status(this.clock.now());
  }

  /** What the virtualization layer may ask of the switch (slow path only). */
  private virtHost(): VirtualizationHost {
    return {
      countDrop: (port, reason) => this.countDrop(port, reason),
      sendUplink: (bytes) => this.sendUplink(bytes),
      originate: (bytes, vsid) => this.originate(bytes, { as: 'switch', vsid }, 0),
    };
  }

  /** Send one underlay frame out of the external port, outside the pipeline (PA ARP, announcements). */
  private sendUplink(bytes: Uint8Array): boolean {
    const p = this.ports.get(this.local.external);
    if (p === undefined || !p.up || bytes.length < ETH_HLEN || bytes.length > 2048) return false;
    if (this.uplinkBatch === null) this.uplinkBatch = new Batch(1, slotSizeFor(2048));
    const b = this.uplinkBatch;
    const m = b.meta[0]!;
    m.reset();
    m.off = HEADROOM;
    m.len = bytes.length;
    b.slab.set(bytes, m.off);
    b.count = 1;
    this.uplinkIdx[0] = 0;
    const n = p.backend.send(b, this.uplinkIdx, 1);
    b.count = 0;
    if (n === 1) {
      p.counters.txFrames++;
      p.counters.txBytes += bytes.length;
      return true;
    }
    this.countDrop(p.id, 'tx-full');
    return false;
  }

  /** Tracing for `xsctl trace`: extensions see it as ctx.trace (null = off). */
  setTracer(t: Tracer | null): void {
    this.pipe.ctx.trace = t;
  }

  poll(maxBatches = Infinity): number {
    if (this.closed) return 0;
    let frames = 0;
    const now = this.clock.now();
    this.maybeExpire(now);
    frames += this.drainInjected();
    if (this.qosScheds.length > 0) this.qosDrainAll();
    let batches = 0;
    let any = true;
    while (any && batches < maxBatches) {
      any = false;
      const list = this.ports.list;
      for (let k = 0; k < list.length && batches < maxBatches; k++) {
        const n = this.rxBatch(list[k]!);
        if (n > 0) {
          any = true;
          frames += n;
          batches++;
        }
      }
    }
    return frames;
  }

  /** Extension timers and MAC aging; start() calls it about once a second, poll-driven tests call it directly. */
  tick(): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.maybeExpire(now);
    this.busy++;
    try {
      this.pipe.tick(now);
      if (this.net !== null) this.net.tick(now);
    } finally {
      this.busy--;
    }
    this.applyPending();
    this.drainInjected();
  }

  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    for (const p of this.ports.list) p.backend.start(p.service);
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    for (const p of this.ports.list) p.backend.stop();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    if (this.closed) return;
    this.stop();
    this.pipe.detachAll();
    for (const p of this.ports.list) p.backend.close();
    this.closed = true;
  }

  private mustPort(id: PortId): PortState {
    const p = this.ports.get(id);
    if (p === undefined) throw new Error(`no port ${id} on switch ${this.name}`);
    return p;
  }

  private portEvent(type: PortEvent['type'], p: PortState): void {
    this.pipe.portEvent({ type, port: p.info });
  }

  private applyPending(): void {
    if (this.busy > 0 || this.pendingChain === null) return;
    const c = this.pendingChain;
    this.pendingChain = null;
    this.pipe.apply(c);
    this.gen++;
  }

  private maybeExpire(now: Millis): void {
    if (now - this.lastExpire < 1000) return;
    this.lastExpire = now;
    this.macs.expire(now);
    for (const p of this.ports.list) if (p.acl !== null) p.acl.expire(now);
  }

  /** Event-loop wake-up for one port: batches until empty or the budget is spent (then yield to other ports). */
  private service(p: PortState): void {
    p.serviceScheduled = false;
    if (!this.running || this.ports.get(p.id) !== p) return;
    this.probeGen++;
    this.probeCount = 0;
    let batches = 0;
    while (batches < RX_BUDGET && this.rxBatch(p) > 0) batches++;
    // A VM's kernel answers a frame written to its TAP (an echo reply, an ACK) before the write returns: read each
    // VM port just sent to once more now, not after another trip through the event loop and the addon's callback.
    // Costs one read that finds nothing when there is no answer.
    const n = this.probeCount;
    for (let k = 0; k < n; k++) {
      const q = this.ports.get(this.probe[k]!);
      if (q !== undefined && q !== p && !q.external && this.running) this.rxBatch(q);
    }
    this.probeCount = 0;
    if (batches === RX_BUDGET) {
      if (!p.serviceScheduled) {
        p.serviceScheduled = true;
        setImmediate(p.service);
      }
    } else if (batches > 0 && this.busyPollMs > 0 && !this.polling) {
      this.busyPoll();
    }
  }

  /**
   * Read every port without sleeping until busyPollMs passes with nothing new, or BUSY_POLL_MAX_MS in all: the
   * reply to a frame just delivered (a ping, a TCP ACK) is often queued within microseconds, and catching it here
   * saves an event-loop wake-up per hop. performance.now() allocates nothing.
   */
  private busyPoll(): void {
    this.polling = true;
    try {
      let last = performance.now();
      const limit = last + BUSY_POLL_MAX_MS;
      for (;;) {
        const now = performance.now();
        if (now - last > this.busyPollMs || now > limit || !this.running) break;
        const list = this.ports.list;
        let got = 0;
        for (let k = 0; k < list.length; k++) got += this.rxBatch(list[k]!);
        if (got > 0) last = performance.now();
      }
    } finally {
      this.polling = false;
    }
  }

  // ---- data path ----------------------------------------------------------------------------------------

  /** Receive one batch on port p and run it to completion (no await between rx and tx). Returns frames read. */
  private rxBatch(p: PortState): number {
    const b = p.rx;
    const pq = this.qosOn ? this.qos[p.id] : undefined;
    const max = pq === undefined ? this.batchSize : this.qosRxLimit(p, pq);
    if (max === 0) return 0;
    const n = p.backend.receive(b, 0, max);
    if (n <= 0) return 0;
    b.count = n;
    if (pq !== undefined && pq.rxCapped) this.qosChargeRx(pq, b, n);
    const now = this.clock.now();
    this.pipe.ctx.now = now;
    const c = p.counters;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const m = b.meta[i]!;
      m.inPort = p.id;
      bytes += m.len;
      const r = classifyIngress(b.slab, m, p);
      if (r !== null) m.drop = r;
    }
    c.rxFrames += n;
    c.rxBytes += bytes;
    this.counters.rxFrames += n;
    this.counters.rxBytes += bytes;
    this.totals.received += n;
    const net = this.net;
    const hi = net !== null && p.external ? this.uplinkIngress(net, b, p, n, now) : n;
    this.busy++;
    try {
      if (hi > 0) this.process(b, 0, hi, 0, false, now);
    } finally {
      this.busy--;
      b.count = 0;
    }
    this.applyPending();
    this.drainInjected();
    if (this.qosScheds.length > 0) this.qosDrainAll();
    return n;
  }

  /**
   * The virtualization layer's view of a batch from the external port: tunnel packets are decapsulated (and
   * their inner frame classified as if received in that VSID), underlay ARP is consumed. Consumed frames are
   * moved to the end of the batch and handled here, never shown to extensions. Returns how many remain.
   */
  private uplinkIngress(net: VirtualizationLayer, b: Batch, p: PortState, n: number, now: Millis): number {
    const inner = this.innerPort;
    let tunneled = false;
    for (let i = 0; i < n; i++) {
      const m = b.meta[i]!;
      if (m.drop !== null) continue;
      net.uplinkIngress(b, i, now);
      if (m.drop === null && m.vsid !== 0 && !m.consumed) {
        inner.vsid = m.vsid;
        const r = classifyIngress(b.slab, m, inner);
        if (r !== null) m.drop = r;
        else tunneled = true;
      }
    }
    // segments of one TCP flow become one super-frame: one write and one trip through the VM's stack
    const merged = tunneled ? this.gro.run(b, 0, n) : 0;
    this.totals.merged += merged;
    // consumed frames (and merged-away segments) to the end, the others keeping their order (meta objects move
    // with their frames: offsets are absolute)
    let keep = 0;
    for (let i = 0; i < n; i++) {
      const m = b.meta[i]!;
      if (m.consumed) continue;
      if (i !== keep) {
        b.meta[i] = b.meta[keep]!;
        b.meta[keep] = m;
      }
      keep++;
    }
    for (let i = keep; i < n; i++) {
      const m = b.meta[i]!;
      if (m.vsid !== 0) continue; // merged into an earlier segment (counted above)
      this.totals.consumed++;
      if (m.dest.count === 0) continue;
      // an answer for the underlay (ARP reply for our PA): straight back out of the external port
      p.txIdx[0] = i;
      const tci = m.vlan !== 0 ? m.vlan | (m.pcp << 13) : -1;
      if (tci >= 0) pushTag(b, m, tci);
      const sent = p.backend.send(b, p.txIdx, 1);
      if (sent === 1) {
        p.counters.txFrames++;
        p.counters.txBytes += m.len;
        this.counters.txFrames++;
        this.counters.txBytes += m.len;
      } else {
        this.countDrop(p.id, 'tx-full');
      }
    }
    return keep;
  }

  /** Run frames [lo, hi) of b through the pipeline from chain position `start`, transmit, account. */
  private process(b: Batch, lo: number, hi: number, start: number, preset: boolean, now: Millis): void {
    const pipe = this.pipe;
    const trace = pipe.ctx.trace;
    pipe.ingress(b, lo, hi, start);
    // port guards (src/policy/guards.ts): after the ingress extensions, before forwarding learns a source
    applyIngressGuards(b, lo, hi, this.ports, this.macs, !pipe.forwarderActive, now);
    applyPvlanIngress(b, lo, hi, this.ports);
    if (!preset) {
      this.local.now = now;
      if (pipe.forwarderActive) pipe.forward(b, lo, hi);
      else forwardBuiltIn(b, lo, hi, null, this.macs, this.ports, now, this.totals, this.net, this.local);
      if (trace !== null) this.traceDest(trace, pipe.forwarderActive ? `forward ${pipe.forwarder!.name}` : 'forward built-in', b, lo, hi);
    }
    applyPortPolicy(b, lo, hi, this.ports, now);
    applyPrivateVlans(b, lo, hi, this.ports);
    if (trace !== null) this.traceDest(trace, 'port policy', b, lo, hi);
    let live = false;
    for (let i = lo; i < hi; i++) {
      if (b.meta[i]!.drop === null) {
        live = true;
        break;
      }
    }
    if (live) {
      pipe.egress(b, lo, hi);
      this.transmit(b, lo, hi);
      if (trace !== null) {
        for (let i = lo; i < hi; i++) {
          const m = b.meta[i]!;
          trace.note('tx', m.drop !== null ? `dropped: ${m.drop}` : this.delivered[i] === 1 ? `sent to ${this.destNames(m.dest)}` : 'refused by every destination');
          if (this.mirrorActive && m.drop === null && isMirrored(m, this.ports)) {
            const to = this.mirrorDests.filter((q) => takesCopy(m, q, this.net !== null)).map((q) => q.cfg.name);
            trace.note('mirror', to.length === 0 ? 'no destination takes a copy' : `copied to ${to.join(', ')}`);
          }
        }
      }
    }
    this.account(b, lo, hi, live);
  }

  private destNames(d: FrameMeta['dest']): string {
    const out: string[] = [];
    for (let k = 0; k < d.count; k++) {
      const name = this.ports.get(d.ports[k]!)?.cfg.name ?? `#${d.ports[k]}`;
      out.push(d.excluded(k) ? `(${name} excluded)` : name);
    }
    return out.length === 0 ? 'no destinations' : out.join(', ');
  }

  private traceDest(t: Tracer, stage: string, b: Batch, lo: number, hi: number): void {
    for (let i = lo; i < hi; i++) {
      const m = b.meta[i]!;
      t.note(stage, m.drop !== null ? `dropped: ${m.drop}` : this.destNames(m.dest));
    }
  }

  /**
   * `xsctl trace`: run one frame, as if received on port `id`, through the real pipeline (it is counted and
   * sent like any other) and return each stage's verdict, extensions' own ctx.trace notes included.
   */
  traceFrame(id: PortId, bytes: Uint8Array): { stage: string; verdict: string }[] {
    const p = this.mustPort(id);
    const notes: { stage: string; verdict: string }[] = [];
    if (bytes.length > MAX_INJECT_FRAME) return [{ stage: 'rx', verdict: `refused: ${bytes.length} bytes` }];
    const tracer: Tracer = { note: (stage, verdict) => void notes.push({ stage, verdict }) };
    const prev = this.pipe.ctx.trace;
    this.pipe.ctx.trace = tracer;
    try {
      if (this.traceBatch === null) this.traceBatch = new Batch(1, slotSizeFor(MAX_INJECT_FRAME));
      const b = this.traceBatch;
      const m = b.meta[0]!;
      m.reset();
      m.off = HEADROOM;
      m.len = bytes.length;
      b.slab.set(bytes, m.off);
      m.inPort = id;
      b.count = 1;
      p.counters.rxFrames++;
      p.counters.rxBytes += bytes.length;
      this.counters.rxFrames++;
      this.counters.rxBytes += bytes.length;
      this.totals.received++;
      tracer.note('rx', `port ${p.cfg.name}, ${bytes.length} bytes`);
      const r = classifyIngress(b.slab, m, p);
      if (r !== null) m.drop = r;
      tracer.note('classify', r !== null ? `dropped: ${r}` : `vlan ${m.vlan} pcp ${m.pcp} vsid ${m.vsid}`);
      const now = this.clock.now();
      this.pipe.ctx.now = now;
      this.busy++;
      try {
        this.process(b, 0, 1, 0, false, now);
      } finally {
        this.busy--;
        b.count = 0;
      }
      this.applyPending();
      this.drainInjected();
    } finally {
      this.pipe.ctx.trace = prev;
    }
    return notes;
  }

  /** Every frame ends one way: dropped (counted by reason against its port), forwarded, or undelivered. */
  private account(b: Batch, lo: number, hi: number, sent: boolean): void {
    const t = this.totals;
    for (let i = lo; i < hi; i++) {
      const m = b.meta[i]!;
      if (m.drop !== null) {
        this.countDrop(m.inPort, m.drop);
        t.dropped++;
      } else if (sent && this.delivered[i] === 1) {
        t.forwarded++;
      } else {
        t.undelivered++;
      }
    }
  }

  private countDrop(port: number, reason: DropReason, n = 1): void {
    this.counters.drop(reason, n);
    const p = this.ports.get(port);
    if (p !== undefined) p.counters.drop(reason, n);
  }

  /** Collect per-destination index lists, then send to each port (tag pushed and undone around the send). */
  private transmit(b: Batch, lo: number, hi: number): void {
    const delivered = this.delivered;
    this.touchedCount = 0;
    for (let i = lo; i < hi; i++) {
      delivered[i] = 0;
      const m = b.meta[i]!;
      if (m.drop !== null) continue;
      const d = m.dest;
      for (let k = 0; k < d.count; k++) {
        const f = d.flags[k]!;
        if ((f & DEST_EXCLUDED) !== 0) continue;
        const p = this.ports.get(d.ports[k]!);
        if (p === undefined || !p.up) {
          this.countDrop(d.ports[k]!, 'port-down');
          continue;
        }
        const c = p.txCount;
        if (c > 0 && p.txIdx[c - 1] === i) continue; // listed twice
        // a jumbo frame from a port with a larger MTU; a super-frame is not checked (its segments' size is its
        // sender's MSS, as for the ingress check)
        if (m.len > p.maxFrameLen && m.gsoType === GSO_NONE) {
          this.countDrop(p.id, 'egress-oversize');
          continue;
        }
        if (this.qosOn && this.qosEgress(p, b, i, f)) continue;
        if (c === 0) this.touched[this.touchedCount++] = p;
        p.txIdx[c] = i;
        p.txFlags[c] = f;
        p.txCount = c + 1;
      }
    }
    // ports with offload first: a frame needing checksum completion for another port is completed in place;
    // with virtualization the external port goes last (IP rewrite changes the frame's bytes in place)
    const net = this.net;
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < this.touchedCount; k++) {
        const p = this.touched[k]!;
        if (net !== null && p.external) continue;
        if (p.backend.offload === (pass === 0)) this.sendTo(b, p);
      }
    }
    // copies after every normal send (a destination's own traffic first), before IP rewrite touches the bytes
    if (this.mirrorActive) this.sendMirror(b, lo, hi);
    if (net !== null) {
      for (let k = 0; k < this.touchedCount; k++) {
        const p = this.touched[k]!;
        if (p.external) this.sendToUplink(net, b, p);
      }
    }
    const gen = this.probeGen;
    for (let k = 0; k < this.touchedCount; k++) {
      const p = this.touched[k]!;
      p.txCount = 0;
      if (p.probeGen !== gen) {
        p.probeGen = gen;
        this.probe[this.probeCount++] = p.id;
      }
    }
  }

  private sendTo(b: Batch, p: PortState): void {
    this.sendList(b, p, p.txIdx, p.txFlags, p.txCount, p.backend);
  }

  /** Send frames idx[0..count) with destination flags `flags` to port p through back end `be` (p's own, or its
   *  tunnelTx), tags pushed and popped around the send, counted against p. */
  private sendList(b: Batch, p: PortState, idx: Uint16Array, flags: Uint8Array, count: number, be: PortBackend): void {
    if (!be.offload) count = this.softwareOffload(b, p, count); // idx is p.txIdx here (see sendToUplink)
    if (count === 0) return;
    const pv = p.vlan;
    for (let j = 0; j < count; j++) {
      const m = b.meta[idx[j]!]!;
      const tci = egressTci(pv, m.vlan, m.pcp, flags[j]!);
      if (tci >= 0) {
        pushTag(b, m, tci);
        p.txTagged[j] = 1;
      } else {
        p.txTagged[j] = 0;
      }
    }
    const sent = this.sendAll(b, p, idx, count, be);
    const c = p.counters;
    let bytes = 0;
    for (let j = 0; j < count; j++) {
      const i = idx[j]!;
      const m = b.meta[i]!;
      if (this.sentMark[j] === 1) {
        bytes += m.len;
        if (!this.mirroring) this.delivered[i] = 1;
      }
      if (p.txTagged[j] === 1) popTag(b, m);
    }
    c.txFrames += sent;
    c.txBytes += bytes;
    this.counters.txFrames += sent;
    this.counters.txBytes += bytes;
    if (this.mirroring) this.mirrored += sent;
  }

  /** Port mirroring (src/policy/mirror.ts): queue copies of [lo, hi) on each destination port, send them. */
  private sendMirror(b: Batch, lo: number, hi: number): void {
    const dests = this.mirrorDests;
    const skipExternal = this.net !== null;
    for (let k = 0; k < dests.length; k++) {
      const q = dests[k]!;
      if (!(skipExternal && q.external)) q.txCount = 0; // its normal send is done; txIdx is free again
    }
    if (collectMirror(b, lo, hi, this.ports, dests, skipExternal) === 0) return;
    this.mirroring = true;
    for (let k = 0; k < dests.length; k++) {
      const q = dests[k]!;
      if (skipExternal && q.external) continue;
      if (q.txCount > 0) this.sendTo(b, q);
      q.txCount = 0;
    }
    this.mirroring = false;
  }

  private refreshMirror(): void {
    const dests: PortState[] = [];
    let sources = 0;
    for (const p of this.ports.list) {
      if (p.mirror === MIRROR_DESTINATION) dests.push(p);
      else if (p.mirror === MIRROR_SOURCE) sources++;
    }
    this.mirrorDests = dests;
    this.mirrorActive = sources > 0 && dests.length > 0;
  }

  /**
   * Send to the external port through the virtualization layer: frames of a virtual subnet are encapsulated (or
   * rewritten) in place, GSO super-frames that cannot cross encapsulated are segmented first; afterwards each
   * frame's offsets are restored for accounting. Frames without a VSID pass as plain underlay traffic.
   */
  private sendToUplink(net: VirtualizationLayer, b: Batch, p: PortState): void {
    const idx = p.txIdx;
    const count = p.txCount;
    const now = this.clock.now();
    // runs of a list (below) need no software offload: a tunnel TAP serves an uplink with offload only
    const tx = p.backend.offload ? p.backend.tunnelTx : undefined;
    const tunnelGso = tx !== undefined;
    let keep = 0;
    let tunnels = 0;
    for (let j = 0; j < count; j++) {
      const i = idx[j]!;
      const m = b.meta[i]!;
      this.viaTunnel[keep] = 0;
      if (m.vsid !== 0) {
        if (m.gsoType !== GSO_NONE && net.needsSegmentation(b, i, tunnelGso)) {
          this.sendSegmentsEncap(net, b, i, p, now);
          continue;
        }
        this.saveOff[keep] = m.off;
        this.saveLen[keep] = m.len;
        this.saveVlan[keep] = m.vlan;
        this.saveCsum[keep] = m.csumStart;
        this.saveHdr[keep] = m.hdrLen;
        this.saveGso[keep] = m.gsoType;
        const r = net.encapsulate(b, i, now);
        if (r !== null) {
          m.gsoType = this.saveGso[keep]!;
          this.countDrop(m.inPort, r);
          continue;
        }
        if ((m.gsoType & GSO_UDP_TUNNEL) !== 0) {
          this.viaTunnel[keep] = 1;
          tunnels++;
        }
      } else {
        this.saveOff[keep] = -1;
      }
      idx[keep] = i;
      p.txFlags[keep] = p.txFlags[j]!;
      keep++;
    }
    p.txCount = keep;
    if (tunnels === 0 || tx === undefined) {
      if (keep > 0) this.sendTo(b, p);
    } else {
      // In runs, in order: a tunnel frame and an ordinary one of the same flow must not overtake each other.
      const ri = this.runIdx;
      const rf = this.runFlags;
      for (let from = 0; from < keep; ) {
        const t = this.viaTunnel[from]!;
        let n = 0;
        for (; from < keep && this.viaTunnel[from] === t; from++, n++) {
          ri[n] = idx[from]!;
          rf[n] = p.txFlags[from]!;
        }
        this.sendList(b, p, ri, rf, n, t === 1 ? tx : p.backend);
      }
    }
    for (let j = 0; j < keep; j++) {
      if (this.saveOff[j] === -1) continue;
      const m = b.meta[idx[j]!]!;
      m.off = this.saveOff[j]!;
      m.len = this.saveLen[j]!;
      m.vlan = this.saveVlan[j]!;
      m.csumStart = this.saveCsum[j]!;
      m.hdrLen = this.saveHdr[j]!;
      m.gsoType = this.saveGso[j]!;
    }
  }

  /** Segment a GSO frame of a virtual subnet to its MSS, encapsulate every segment, send them to the uplink. */
  private sendSegmentsEncap(net: VirtualizationLayer, b: Batch, i: number, p: PortState, now: Millis): void {
    if (this.segments === null) this.segments = new Batch(SEGMENT_CAPACITY, slotSizeFor(SEGMENT_SLOT_BYTES));
    const out = this.segments;
    const src = b.meta[i]!;
    const n = segmentFrame(b, i, out, 0, SEGMENT_CAPACITY);
    if (n <= 0) {
      this.countDrop(src.inPort, 'gso-unsupported');
      return;
    }
    out.count = n;
    let k = 0;
    for (let s = 0; s < n; s++) {
      const m = out.meta[s]!;
      m.inPort = src.inPort;
      m.vsid = src.vsid;
      m.vlan = 0;
      m.pcp = src.pcp;
      m.dstMac = src.dstMac;
      m.srcMac = src.srcMac;
      m.etherType = src.etherType;
      m.l3Off = src.l3Off;
      m.gsoType = GSO_NONE;
      if (!p.backend.offload && m.needsCsum) completeChecksum(out.slab, m);
      const r = net.encapsulate(out, s, now);
      if (r !== null) {
        this.countDrop(src.inPort, r);
        continue;
      }
      const tci = m.vlan !== 0 ? m.vlan | (m.pcp << 13) : -1;
      if (tci >= 0) pushTag(out, m, tci);
      this.segIdx[k++] = s;
    }
    if (k > 0) {
      const sent = this.sendAll(out, p, this.segIdx, k);
      let bytes = 0;
      for (let s = 0; s < k; s++) if (this.sentMark[s] === 1) bytes += out.meta[this.segIdx[s]!]!.len;
      p.counters.txFrames += sent;
      p.counters.txBytes += bytes;
      this.counters.txFrames += sent;
      this.counters.txBytes += bytes;
      if (sent > 0) this.delivered[i] = 1;
    }
    out.count = 0;
  }

  /**
   * backend.send, continued past a frame the back end failed on (counted tx-error; sendmmsg stops at the first
   * error); a back end that stops without an error is full: the rest is counted tx-full. Marks sentMark[j].
   */
  private sendAll(b: Batch, p: PortState, idx: Uint16Array, count: number, be: PortBackend = p.backend): number {
    const st = be.stats;
    const mark = this.sentMark;
    let done = 0;
    let sent = 0;
    while (done < count) {
      const errs = st.txErrors;
      // subarray only after an error (rare): the common path allocates nothing
      const n = be.send(b, done === 0 ? idx : idx.subarray(done, count), count - done);
      for (let j = done; j < done + n; j++) mark[j] = 1;
      sent += n;
      done += n;
      if (done >= count) break;
      if (st.txErrors > errs) {
        mark[done] = 0;
        this.countDrop(p.id, 'tx-error');
        done++;
        continue;
      }
      for (let j = done; j < count; j++) mark[j] = 0;
      this.countDrop(p.id, this.mirroring ? 'mirror-tx-full' : 'tx-full', count - done);
      break;
    }
    return sent;
  }

  /**
   * For a port without offload: complete partial checksums in place, and segment GSO frames through the
   * scratch batch (sent here, one frame at a time). Returns the remaining count of idx (GSO frames removed).
   */
  private softwareOffload(b: Batch, p: PortState, count: number): number {
    const idx = p.txIdx;
    let keep = 0;
    for (let j = 0; j < count; j++) {
      const i = idx[j]!;
      const m = b.meta[i]!;
      if (m.gsoType !== GSO_NONE) {
        this.sendSegments(b, i, p, p.txFlags[j]!);
        continue;
      }
      if (m.needsCsum) completeChecksum(b.slab, m);
      idx[keep] = i;
      p.txFlags[keep] = p.txFlags[j]!;
      keep++;
    }
    return keep;
  }

  private sendSegments(b: Batch, i: number, p: PortState, flags: number): void {
    if (this.segments === null) this.segments = new Batch(SEGMENT_CAPACITY, slotSizeFor(SEGMENT_SLOT_BYTES));
    const out = this.segments;
    const n = segmentFrame(b, i, out, 0, SEGMENT_CAPACITY);
    if (n <= 0) {
      this.countDrop(p.id, 'gso-unsupported');
      return;
    }
    out.count = n;
    const src = b.meta[i]!;
    for (let s = 0; s < n; s++) {
      const m = out.meta[s]!;
      m.vlan = src.vlan;
      m.pcp = src.pcp;
      m.gsoType = GSO_NONE;
      if (m.needsCsum) completeChecksum(out.slab, m);
      const tci = egressTci(p.vlan, m.vlan, m.pcp, flags);
      if (tci >= 0) pushTag(out, m, tci);
      this.segIdx[s] = s;
    }
    const sent = this.sendAll(out, p, this.segIdx, n);
    let bytes = 0;
    for (let s = 0; s < n; s++) if (this.sentMark[s] === 1) bytes += out.meta[s]!.len;
    p.counters.txFrames += sent;
    p.counters.txBytes += bytes;
    this.counters.txFrames += sent;
    this.counters.txBytes += bytes;
    if (this.mirroring) this.mirrored += sent;
    else if (sent > 0) this.delivered[i] = 1;
    out.count = 0;
  }

  // ---- QoS (src/policy/qos.ts): maximum bandwidth, weighted egress scheduling ---------------------------

  /** Apply a port's QoS spec (addPort / updatePort): buckets, its scheduler as an egress, paused reading. */
  private qosConfigure(p: PortState): void {
    const spec = p.cfg.qos ?? {};
    const now = this.clock.now();
    let pq = this.qos[p.id];
    const has = Object.keys(spec).length > 0;
    if (pq === undefined && !has) return;
    if (pq === undefined) {
      pq = new PortQos(p.id);
      const q = pq;
      pq.wake = () => {
        q.timerPending = false;
        this.qosResume(q);
      };
      this.qos[p.id] = pq;
    }
    pq.configure(spec, now);
    const link = pq.egressMbps;
    const classes = spec.pcpWeights ?? null;
    if (pq.sched !== null && !sameWeights(pq.sched.classWeights, classes)) {
      // classes on, off or reweighted: queues are keyed differently; what waits is dropped (counted)
      this.qosFlush(p.id, pq.sched);
      pq.sched = null;
    }
    if (link > 0) {
      if (pq.sched === null) {
        const s = new EgressScheduler(link, now, undefined, classes);
        s.configure(link, now, pq.egressBurst);
        s.wake = () => {
          s.timerPending = false;
          if (!this.closed && this.ports.get(p.id) === p && pq.sched === s) this.qosDrain(p, s);
        };
        pq.sched = s;
      } else {
        pq.sched.configure(link, now, pq.egressBurst);
      }
    } else if (pq.sched !== null) {
      this.qosFlush(p.id, pq.sched);
      pq.sched = null;
    }
    this.qosRefresh();
  }

  private qosRemove(id: PortId): void {
    const pq = this.qos[id];
    if (pq === undefined) return;
    if (pq.sched !== null) this.qosFlush(id, pq.sched);
    pq.sched = null;
    pq.paused = 0;
    this.qos[id] = undefined;
    // its frames waiting at other ports' schedulers go too
    for (const x of this.qos) {
      if (x === undefined || x.sched === null) continue;
      const n = x.sched.dropSource(id);
      if (n > 0) this.countDrop(x.id, 'qos-flushed', n);
    }
    this.qosRefresh();
  }

  /** Frames waiting at a scheduler that goes away are dropped and counted against its port. */
  private qosFlush(id: number, s: EgressScheduler): void {
    for (const src of s.sourceIds()) {
      const n = s.dropSource(src);
      if (n > 0) this.countDrop(id, 'qos-flushed', n);
    }
  }

  /** Recompute which ports have schedulers and which schedulers each port feeds; resume paused ports. */
  private qosRefresh(): void {
    const scheds: PortState[] = [];
    let any = false;
    for (const pq of this.qos) {
      if (pq === undefined) continue;
      any = true;
      pq.feeds = [];
    }
    for (const pq of this.qos) {
      if (pq === undefined || pq.sched === null) continue;
      const p = this.ports.get(pq.id);
      if (p !== undefined) scheds.push(p);
      for (const src of pq.sched.sourceIds()) {
        const sq = this.qos[src];
        if (sq !== undefined && this.ports.get(src)?.external !== true) sq.feeds.push(pq.sched);
      }
    }
    this.qosScheds = scheds;
    this.qosOn = any;
    for (const pq of this.qos) if (pq !== undefined && pq.paused !== 0) this.qosResume(pq);
  }

  /** Frames port p may read now; 0 = none (its reading is paused until tokens or queue room come back). */
  private qosRxLimit(p: PortState, pq: PortQos): number {
    const n = pq.rxLimit(this.clock.now(), this.batchSize, p.backend.maxFrameBytes);
    if (n > 0) return n;
    if (this.running) {
      // the readiness poll is level-triggered: stop it, or the event loop spins on frames we will not read
      p.backend.stop();
      if (pq.paused === 0) pq.throttles++;
      const byRate = pq.rxCapped && pq.rxBucket.tokens <= 0;
      pq.paused = byRate ? 1 : 2;
      if (byRate && !pq.timerPending) {
        pq.timerPending = true;
        setTimeout(pq.wake, Math.max(1, Math.ceil(pq.rxBucket.msUntilPositive())));
      }
    }
    return 0;
  }

  private qosResume(pq: PortQos): void {
    if (pq.paused === 0) return;
    pq.paused = 0;
    const p = this.ports.get(pq.id);
    if (p !== undefined && this.running) p.backend.start(p.service);
  }

  private qosChargeRx(pq: PortQos, b: Batch, n: number): void {
    let w = 0;
    for (let i = 0; i < n; i++) w += wireBytes(b.meta[i]!);
    pq.rxBucket.tokens -= w;
  }

  /**
   * Frame i of b towards port p, in transmit: queued at p's scheduler (maxMbps / linkMbps), taken (delivered
   * from the switch's view), or dropped when its source's queue is full. Returns true when it does not go out now.
   */
  private qosEgress(p: PortState, b: Batch, i: number, flags: number): boolean {
    const pq = this.qos[p.id];
    if (pq === undefined) return false;
    const m = b.meta[i]!;
    const s = pq.sched;
    if (s === null || m.trusted || m.inPort < 0) return false;
    const src = m.inPort;
    const sq = this.qos[src];
    const fresh = !s.hasSource(src);
    if (!s.enqueue(b, i, flags, src, sq?.weight ?? 1)) {
      this.countDrop(p.id, 'qos-queue-full');
      return true;
    }
    if (fresh && this.ports.get(src)?.external !== true) {
      // a new source of this egress: its reads are bounded by its room here from now on
      let q = sq;
      if (q === undefined) {
        q = new PortQos(src);
        const qq = q;
        q.wake = () => {
          qq.timerPending = false;
          this.qosResume(qq);
        };
        this.qos[src] = q;
      }
      q.feeds.push(s);
    }
    this.delivered[i] = 1;
    return true;
  }

  private qosDrainAll(): void {
    const list = this.qosScheds;
    for (let k = 0; k < list.length; k++) {
      const p = list[k]!;
      const s = this.qos[p.id]?.sched;
      if (s !== null && s !== undefined && s.backlog > 0) this.qosDrain(p, s);
    }
  }

  /** Send what the scheduler of port p allows now, in DRR runs; wake again when the link has tokens. */
  private qosDrain(p: PortState, s: EgressScheduler): void {
    if (this.busy > 0) return; // inside a batch: p.txIdx may be in use; drained after it
    const now = this.clock.now();
    const cap = p.txIdx.length;
    for (let guard = 0; guard < 1024 && s.backlog > 0; guard++) {
      const q = s.pick(now, cap);
      if (q === null) break;
      const n = s.runLen;
      if (p.up) {
        let j = q.head;
        for (let k = 0; k < n; k++) {
          p.txIdx[k] = j;
          p.txFlags[k] = q.flags[j]!;
          if (++j === q.capacity) j = 0;
        }
        p.txCount = n;
        this.busy++;
        try {
          if (this.net !== null && p.external) this.sendToUplink(this.net, q.batch, p);
          else this.sendTo(q.batch, p);
        } finally {
          this.busy--;
          p.txCount = 0;
        }
      } else {
        this.countDrop(p.id, 'port-down', n);
      }
      s.done(q, n);
      const src = this.qos[q.source];
      if (src !== undefined && src.paused === 2 && q.free >= q.capacity >> 1) this.qosResume(src);
    }
    if (s.backlog > 0 && !s.timerPending && this.running) {
      s.timerPending = true;
      setTimeout(s.wake, Math.max(1, Math.ceil(s.link.msUntilPositive())));
    }
  }

  private qosCounters(id: PortId): QosCounters | null {
    const pq = this.qos[id];
    if (pq === undefined) return null;
    const out: QosCounters = {
      throttles: pq.throttles,
      queued: 0,
      dequeued: 0,
      waiting: 0,
      queueDrops: 0,
      sources: [],
    };
    const s = pq.sched;
    if (s !== null) {
      out.queueDrops = s.queueDrops;
      for (const x of s.sources()) {
        out.queued += x.queued;
        out.dequeued += x.dequeued;
        out.waiting += x.waiting;
        out.sources.push({ port: x.source, pcp: x.pcp, weight: x.weight, queued: x.queued, dequeued: x.dequeued, waiting: x.waiting });
      }
    }
    return out;
  }

  // ---- frames from extensions ---------------------------------------------------------------------------

  private buffers(): InjectBuffer {
    if (this.fill === null) {
      this.fill = new InjectBuffer(this.injectCapacity);
      this.work = new InjectBuffer(this.injectCapacity);
    }
    return this.fill;
  }

  /** A slot in the fill buffer, or -1 (counted inject-queue-full). */
  private slot(): number {
    const f = this.buffers();
    if (f.batch.count >= f.batch.capacity) {
      this.counters.drop('inject-queue-full');
      return -1;
    }
    return f.batch.count;
  }

  private refuse(reason: DropReason, port: number = NO_PORT): false {
    this.countDrop(port, reason);
    return false;
  }

  private originate(bytes: Uint8Array, o: OriginateOptions, start: number): boolean {
    if (this.closed) return false;
    if (!(bytes instanceof Uint8Array) || bytes.length < ETH_HLEN || bytes.length > MAX_INJECT_FRAME) {
      return this.refuse('inject-invalid');
    }
    const as = o?.as;
    let port: PortState | undefined;
    if (as !== 'switch') {
      port = typeof as === 'number' ? this.ports.get(as) : undefined;
      if (port === undefined) return this.refuse('inject-invalid');
    }
    const j = this.slot();
    if (j < 0) return false;
    const f = this.fill!;
    const m = f.batch.meta[j]!;
    m.reset();
    m.off = f.batch.slotStart(j) + HEADROOM;
    m.len = bytes.length;
    f.batch.slab.set(bytes, m.off);
    m.originated = true;
    const r = classifyIngress(f.batch.slab, m, port ?? SWITCH_INGRESS);
    if (port === undefined) {
      if (r !== null) return this.refuse('inject-invalid');
      m.trusted = true;
      m.inPort = NO_PORT;
    } else {
      if (r === 'runt' || r === 'truncated') return this.refuse('inject-invalid', port.id);
      m.inPort = port.id;
      m.onBehalfOf = port.id;
      m.drop = r; // a policy drop of that port's ingress, counted against it when the frame's round runs
    }
    if (o.vlan !== undefined) m.vlan = o.vlan & 0xfff;
    if (o.vsid !== undefined) m.vsid = o.vsid >>> 0;
    return this.commit(j, start, o.to);
  }

  private clone(fb: FilterBatch, i: number, o: Partial<OriginateOptions> | undefined, start: number): boolean {
    if (this.closed) return false;
    if (!(fb instanceof FilterFrames) || fb.batch === null || !(i >= 0 && i < fb.count)) return this.refuse('inject-invalid');
    const sb = fb.batch;
    const src = sb.meta[fb.lo + i]!;
    if (src.len > MAX_INJECT_FRAME || src.len < ETH_HLEN) return this.refuse('inject-invalid', src.inPort);
    const j = this.slot();
    if (j < 0) return false;
    const f = this.fill!;
    const m = f.batch.meta[j]!;
    m.copyFrom(src);
    m.off = f.batch.slotStart(j) + HEADROOM;
    f.batch.slab.set(sb.slab.subarray(src.off, src.off + src.len), m.off);
    m.cloned = true;
    m.drop = null;
    m.dropBy = '';
    m.dest.clear();
    const as = o?.as;
    if (as === 'switch') {
      m.trusted = true;
      m.inPort = NO_PORT;
      m.onBehalfOf = NO_PORT;
    } else if (typeof as === 'number') {
      if (this.ports.get(as) === undefined) return this.refuse('inject-invalid');
      m.trusted = false;
      m.inPort = as;
      m.onBehalfOf = as;
    }
    if (o?.vlan !== undefined) m.vlan = o.vlan & 0xfff;
    if (o?.vsid !== undefined) m.vsid = o.vsid >>> 0;
    return this.commit(j, start, o?.to);
  }

  private commit(j: number, start: number, to: readonly PortId[] | undefined): boolean {
    const f = this.fill!;
    const m = f.batch.meta[j]!;
    f.start[j] = Math.min(start, 0xffff);
    f.preset[j] = 0;
    if (to !== undefined) {
      m.dest.clear();
      for (const id of to) if (Number.isInteger(id) && id >= 0) m.dest.add(id);
      f.preset[j] = 1;
    }
    f.batch.count = j + 1;
    this.totals.injected++;
    return true;
  }

  /** Run queued originated/cloned frames, in rounds, in runs of the same start position. Returns frames run. */
  private drainInjected(): number {
    if (this.fill === null) return 0;
    let frames = 0;
    for (let round = 0; round < MAX_INJECT_ROUNDS && this.fill.batch.count > 0; round++) {
      const w = this.fill;
      this.fill = this.work!;
      this.work = w;
      const b = w.batch;
      const n = b.count;
      const now = this.clock.now();
      this.pipe.ctx.now = now;
      let lo = 0;
      this.busy++;
      try {
        while (lo < n) {
          const s = w.start[lo]!;
          const pr = w.preset[lo]!;
          let hi = lo + 1;
          while (hi < n && w.start[hi] === s && w.preset[hi] === pr) hi++;
          this.process(b, lo, hi, s, pr === 1, now);
          lo = hi;
        }
      } finally {
        this.busy--;
        b.count = 0;
      }
      this.applyPending();
      frames += n;
    }
    return frames;
  }
}

function sameWeights(a: Float64Array | null, b: readonly number[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, k) => x === b[k]);
}
