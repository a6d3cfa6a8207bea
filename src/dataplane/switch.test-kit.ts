// dataplane/switch.test-kit.ts: small fixtures shared by the dataplane tests (port configs, a switch with memory
// ports, L2 test frames through test/helpers/frame-builder, a recording logger). Not used by the product.

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
