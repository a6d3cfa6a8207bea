// virtualization/layer-alloc.test.ts: the layer's data path allocates nothing per frame. 200k frames per rule go
// VM -> forward -> encapsulate on host A, across, uplinkIngress -> forward on host B; the young generation must
// not grow (measured per chunk, median: JIT code lives elsewhere, scavenges are skipped).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import { frame } from '../../test/helpers/frame-builder.js';
import { Batch, HEADROOM, slotSizeFor, type FrameMeta } from '../dataplane/frame.js';
import { RecordingLogger } from '../dataplane/switch.test-kit.js';
import { ManualClock, NO_PORT, type PortId } from '../dataplane/types.js';
import { readU16 } from '../wire/byte-order.js';
import { readMac } from '../wire/ethernet.js';
import type { LocalPorts, VirtualizationHost } from './api.js';
import { Virtualization } from './layer.js';
import type { LookupRule } from './model.js';
import { hostInput, MAC5, MAC6, ROUTER_MAC, spec } from './virtualization.test-kit.js';

/** Bytes in V8's young generation now (every new object starts there; JIT code does not). */
function newSpaceUsed(): number {
  return getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_used_size;
}

const EXT = 100 as PortId;
const PORT5 = 1 as PortId;
const PORT6 = 1 as PortId;

/** One VM port per host, numeric compare only (the switch's own lookups are not under test). */
class OnePort implements LocalPorts {
  readonly external = EXT;
  constructor(
    private readonly vsid: number,
    private readonly mac: number,
    private readonly port: PortId,
  ) {}
  find(vsid: number, mac: number): PortId {
    return vsid === this.vsid && mac === this.mac ? this.port : NO_PORT;
  }
  floodLocal(m: FrameMeta): void {
    if (m.vsid === this.vsid && m.inPort !== this.port) m.dest.add(this.port);
  }
  sourceAcl(): null {
    return null;
  }
}

class Uplink implements VirtualizationHost {
  readonly sent: Uint8Array[] = [];
  countDrop(): void {}
  sendUplink(bytes: Uint8Array): boolean {
    this.sent.push(bytes.slice());
    return true;
  }
  originate(): boolean {
    return true;
  }
}

function load(b: Batch, bytes: Uint8Array, srcOff: number, len: number, inPort: PortId, vsid: number): FrameMeta {
  const m = b.meta[0]!;
  m.reset();
  m.off = HEADROOM;
  const s = b.slab;
  for (let k = 0; k < len; k++) s[HEADROOM + k] = bytes[srcOff + k]!;
  m.len = len;
  m.inPort = inPort;
  m.vsid = vsid;
  m.dstMac = readMac(s, HEADROOM);
  m.srcMac = readMac(s, HEADROOM + 6);
  m.etherType = readU16(s, HEADROOM + 12);
  m.l3Off = 14;
  b.count = 1;
  return m;
}

function run(rule: LookupRule, routed: boolean): void {
  const s = spec({ rule });
  const clockA = new ManualClock(1000);
  const clockB = new ManualClock(1000);
  const upA = new Uplink();
  const upB = new Uplink();
  const a = new Virtualization({ clock: clockA, log: new RecordingLogger(), host: upA });
  const b = new Virtualization({ clock: clockB, log: new RecordingLogger(), host: upB });
  a.setPolicy(hostInput('host-a', s));
  b.setPolicy(hostInput('host-b', s));
  const ba = new Batch(1, slotSizeFor(2000));
  const bb = new Batch(1, slotSizeFor(2000));
  // ARP handshakes: A asks, B answers its own PAs in place, A learns
  for (const req of upA.sent) {
    load(bb, req, 0, req.length, EXT, 0);
    b.uplinkIngress(bb, 0, 1000);
    if (bb.meta[0]!.dest.count !== 1) continue;
    const rep = bb.slab.slice(HEADROOM, HEADROOM + bb.meta[0]!.len);
    load(ba, rep, 0, rep.length, EXT, 0);
    a.uplinkIngress(ba, 0, 1000);
  }

  const dst = routed ? ROUTER_MAC : MAC6;
  const dip = routed ? '10.0.1.7' : '10.0.0.6';
  const portsA = new OnePort(5001, MAC5, PORT5);
  const portsB = new OnePort(routed ? 5002 : 5001, routed ? 0x02_00_00_00_00_07 : MAC6, PORT6);
  const inner = frame().eth({ src: MAC5, dst }).ipv4({ src: '10.0.0.5', dst: dip, ttl: 64, df: true }).tcp({ sport: 40000, dport: 5201 }).payload(64).bytes();
  let delivered = 0;
  const loop = (n: number): void => {
    for (let k = 0; k < n; k++) {
      const m = load(ba, inner, 0, inner.length, PORT5, 5001);
      a.forward(ba, 0, portsA, 1000);
      if (m.dest.count !== 1 || m.dest.port(0) !== EXT) continue;
      if (a.encapsulate(ba, 0, 1000) !== null) continue;
      const got = load(bb, ba.slab, m.off, m.len, EXT, 0);
      b.uplinkIngress(bb, 0, 1000);
      if (got.drop !== null) continue;
      got.etherType = readU16(bb.slab, got.off + 12);
      b.forward(bb, 0, portsB, 1000);
      if (got.dest.count === 1 && got.dest.port(0) === PORT6) delivered++;
    }
  };
  loop(100_000); // warm up: JIT tiers, ARP entries
  // young-generation growth per chunk of frames; a chunk with a scavenge in it shrinks and says nothing, so the
  // median over many chunks is the steady-state figure
  const CHUNK = 5000;
  const perChunk: number[] = [];
  delivered = 0;
  for (let c = 0; c < 60; c++) {
    const before = newSpaceUsed();
    loop(CHUNK);
    const d = newSpaceUsed() - before;
    if (d >= 0) perChunk.push(d);
  }
  perChunk.sort((x, y) => x - y);
  const median = perChunk[perChunk.length >> 1] ?? 0;
  console.log(JSON.stringify({ rule, routed, bytesPerFrame: median / CHUNK, chunks: perChunk.length, delivered }));
  assert.equal(delivered, 60 * CHUNK);
  // one 12-byte heap number per frame would read 12 (the measurement itself allocates nothing per frame)
  assert.ok(median / CHUNK < 1, `the data path allocates about ${median / CHUNK} bytes per frame`);
}

describe('layer: no allocation per frame', () => {
  for (const rule of ['encap', 'vxlan'] as const) {
    it(`${rule}: 300,000 frames A -> B allocate nothing`, () => run(rule, false));
  }
  it('rewrite: 300,000 frames A -> B allocate nothing', () => run('rewrite', false));
  it('encap, routed between subnets: allocates nothing', () => run('encap', true));
});
