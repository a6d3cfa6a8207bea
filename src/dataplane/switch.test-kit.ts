// dataplane/switch.test-kit.ts: small fixtures shared by the dataplane tests (port configs, a switch with memory
// ports, L2 test frames through test/helpers/frame-builder, a recording logger). Not used by the product.

import assert from 'node:assert/strict';
import { GCProfiler, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../extensions/api.js';
import { memoryPort, type MemoryPort, type MemoryPortOptions } from '../io/memory.js';
import { frame } from '../../test/helpers/frame-builder.js';
import { ETHERTYPE_VLAN } from '../wire/ethernet.js';
import type { PortConfig, SwitchOptions } from './switch-api.js';
import { Switch } from './switch.js';
import { ManualClock, type PortId } from './types.js';

export const MAC_A = 0x02_00_00_00_00_0a;
export const MAC_B = 0x02_00_00_00_00_0b;
export const MAC_C = 0x02_00_00_00_00_0c;
export const MAC_D = 0x02_00_00_00_00_0d;
export const BROADCAST = 0xffff_ffff_ffff;

export function portCfg(name: string, over: Partial<PortConfig> = {}): PortConfig {
  return { name, kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0, ...over };
}

export interface EthOptions {
  vid?: number;
  pcp?: number;
  tpid?: number;
  /** A second (inner) 802.1Q tag. */
  innerVid?: number;
  type?: number;
  /** Total length (default 60); the payload after the header is a counting pattern. */
  len?: number;
  /** First payload byte (to tell frames apart). */
  mark?: number;
}

/** An Ethernet frame of o.len bytes (default 60, truncated if shorter than its header) via the frame builder. */
export function eth(dst: number, src: number, o: EthOptions = {}): Uint8Array {
  // default EtherType: IEEE 802 local experimental (0x88b5), so the counting-pattern payload is not taken for an L3 header
  const b = frame().eth({ dst, src, type: o.type ?? 0x88b5 });
  let hdr = 14;
  if (o.vid !== undefined) {
    b.vlan({ vid: o.vid, pcp: o.pcp ?? 0, tpid: o.tpid ?? ETHERTYPE_VLAN });
    hdr += 4;
  }
  if (o.innerVid !== undefined) {
    b.vlan({ vid: o.innerVid });
    hdr += 4;
  }
  const len = o.len ?? 60;
  const payload = new Uint8Array(Math.max(0, len - hdr));
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  if (o.mark !== undefined && payload.length > 0) payload[0] = o.mark;
  const out = b.payload(payload).bytes();
  return out.length > len ? out.slice(0, len) : out;
}

/** The 802.1Q tag of a sent frame, or null when untagged. */
export function tagOf(f: Uint8Array): { vid: number; pcp: number } | null {
  if (f.length < 18 || ((f[12]! << 8) | f[13]!) !== ETHERTYPE_VLAN) return null;
  const tci = (f[14]! << 8) | f[15]!;
  return { vid: tci & 0xfff, pcp: tci >>> 13 };
}

/** Payload mark of a frame built by eth() (after any tag). */
export function markOf(f: Uint8Array): number {
  return tagOf(f) === null ? f[14]! : f[18]!;
}

export class RecordingLogger implements Logger {
  readonly lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  info(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push(fields === undefined ? { level: 'info', msg } : { level: 'info', msg, fields });
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push(fields === undefined ? { level: 'warn', msg } : { level: 'warn', msg, fields });
  }
}

export interface Rig {
  sw: Switch;
  clock: ManualClock;
  log: RecordingLogger;
  port: Record<string, MemoryPort>;
  id: Record<string, PortId>;
}

/** A switch with memory ports named by `ports` (name -> config overrides). */
export function rig(
  ports: Record<string, Partial<PortConfig> & { mem?: MemoryPortOptions }>,
  opts: Partial<SwitchOptions> = {},
): Rig {
  const clock = new ManualClock(1_000_000);
  const log = new RecordingLogger();
  const sw = new Switch({ name: 'sw0', clock, log, ...opts });
  const port: Record<string, MemoryPort> = {};
  const id: Record<string, PortId> = {};
  for (const [name, o] of Object.entries(ports)) {
    const { mem, ...cfg } = o;
    port[name] = memoryPort(name, mem ?? {});
    id[name] = sw.addPort(port[name], portCfg(name, cfg));
  }
  return { sw, clock, log, port, id };
}

/** global gc() without a command-line flag (a test file cannot pass --expose-gc to itself). */
export function getGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * A traffic pump for the allocation tests: `frames` frames in batches of 64 per port (port a sends `ab`, port b
 * cycles through `ba`), one sw.poll() per batch, then `afterPoll` (e.g. advance the clock).
 */
export function pump(
  r: Pick<Rig, 'sw' | 'port'>, ab: Uint8Array, ba: readonly Uint8Array[], afterPoll?: () => void,
): (frames: number) => void {
  const a = r.port['a']!;
  const b = r.port['b']!;
  return (frames) => {
    for (let n = 0; n < frames; n += 128) {
      for (let k = 0; k < 64; k++) {
        a.inject(ab);
        b.inject(ba[k % ba.length]!);
      }
      r.sw.poll();
      afterPoll?.();
    }
  };
}

export interface HeapGrowth {
  /** Retained heap growth over the measured frames (after two full GCs before them). */
  readonly growthBytes: number;
  /** Young-generation GCs (scavenges) during the measured frames (V8's GCProfiler: exact). */
  readonly minorGcs: number;
  /** Frames the switch forwarded during the measured frames. */
  readonly forwarded: number;
}

/** `run(warmUp)` (JIT, rings, MAC entries), garbage collected, then `run(frames)` measured. */
export async function measureHeapGrowth(
  sw: Switch, run: (frames: number) => void, frames = 200_000, warmUp = 40_000,
): Promise<HeapGrowth> {
  const gc = getGc();
  run(warmUp);
  gc();
  gc();
  // GCProfiler reports synchronously; a PerformanceObserver's gc entries arrive later (after this returns), so
  // counting with one saw no scavenge even when every frame allocated.
  const profiler = new GCProfiler();
  const before = process.memoryUsage().heapUsed;
  profiler.start();
  const fwd0 = sw.frameTotals().forwarded;
  run(frames);
  const stats = profiler.stop();
  const after = process.memoryUsage().heapUsed;
  const minor = stats.statistics.filter((x) => x.gcType === 'Scavenge').length;
  return { growthBytes: after - before, minorGcs: minor, forwarded: sw.frameTotals().forwarded - fwd0 };
}

/**
 * The heap stayed flat: growth under 1.5 MB (about 0.3 MB is seen; one 16-byte heap number per frame would be
 * 3.2 MB over 200k frames) and at most one scavenge. Logs the figures (and `extra`) first.
 */
export function assertFlatHeap(h: HeapGrowth, frames = 200_000, extra: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ growthBytes: h.growthBytes, perFrame: h.growthBytes / frames, minorGcs: h.minorGcs, ...extra }));
  assert.ok(h.growthBytes < 1_500_000, `heap grew ${h.growthBytes} bytes over ${frames / 1000}k frames`);
  assert.ok(h.minorGcs <= 1, `${h.minorGcs} scavenges during the run`);
}
