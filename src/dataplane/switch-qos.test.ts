// dataplane/switch-qos.test.ts: QoS in the switch on memory ports with a ManualClock: a capped port is read at
// its rate with a bounded burst, GSO frames count their wire bytes, frames to a capped or linkMbps port are
// scheduled by weight (exact shares over a long run, work-conserving), sources are paused rather than dropped,
// the uplink as a source is dropped rather than paused. (No allocation per frame: switch-qos-alloc.test.ts.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GSO_TCPV4 } from './frame.js';
import { MAC_A, MAC_B, MAC_C, eth, rig } from './switch.test-kit.js';
import type { Switch } from './switch.js';
import type { MemoryPort } from '../io/memory.js';
import type { ManualClock } from './types.js';

const FRAME = 1000;

/** Learn MACs so later frames are unicast: each port says hello once. */
function learn(sw: Switch, port: Record<string, MemoryPort>, macs: Record<string, number>): void {
  for (const [n, mac] of Object.entries(macs)) port[n]!.inject(eth(0xffff_ffff_ffff, mac, { len: 60 }));
  sw.poll();
  for (const p of Object.values(port)) p.takeSent();
}

function bytesOf(frames: Uint8Array[]): number {
  return frames.reduce((a, f) => a + f.length, 0);
}

describe('switch QoS: maximum bandwidth from a port (ingress shaper)', () => {
  it('reads a capped port at its rate; the burst is bounded by the bucket plus one frame', () => {
    // 8 Mbit/s = 1000 bytes/ms; burst 16 KiB
    const { sw, clock, port } = rig({ a: { qos: { maxMbps: 8, maxBurstKB: 16 } }, b: {} });
    learn(sw, port, { a: MAC_A, b: MAC_B });
    clock.advance(1000); // bucket full again
    const f = eth(MAC_B, MAC_A, { len: FRAME });
    for (let k = 0; k < 3000; k++) port.a!.inject(f);
    sw.poll();
    const burst = bytesOf(port.b!.takeSent());
    assert.ok(burst >= 16 * 1024 - FRAME && burst <= 16 * 1024 + 1522, `first burst ${burst} bytes`);
    let total = 0;
    for (let ms = 0; ms < 2000; ms++) {
      clock.advance(1);
      sw.poll();
      total += bytesOf(port.b!.takeSent());
    }
    // 2 s at 1000 bytes/ms, give or take one frame of debt
    assert.ok(Math.abs(total - 2_000_000) <= 2 * FRAME, `sent ${total} bytes in 2 s at 1000 bytes/ms`);
    assert.ok(port.a!.pending > 0, 'the rest waits in the port, not dropped');
  });

  it('a GSO super-frame is charged its bytes on the wire (headers per segment)', () => {
    const { sw, clock, port } = rig({ a: { qos: { maxMbps: 8, maxBurstKB: 64 }, mem: { offload: true } }, b: { mem: { offload: true } } });
    learn(sw, port, { a: MAC_A, b: MAC_B });
    clock.advance(1000);
    // 66-byte headers + 40 segments of 1448: 57,986 bytes as a frame, 40 x 1514 = 60,560 on the wire
    const f = eth(MAC_B, MAC_A, { len: 66 + 40 * 1448 });
    const meta = { gsoType: GSO_TCPV4, gsoSize: 1448, hdrLen: 66 };
    for (let k = 0; k < 4; k++) port.a!.inject(f, meta);
    sw.poll(); // 65,536 tokens: one frame read (a frame per read: one could be 64 KiB), 4,976 left, one more
    assert.equal(port.b!.takeSent().length, 2);
    // the bucket is at 4976 - 60560 = -55584: positive again after 55.585 ms (50.437 if only frame bytes counted)
    clock.advance(55);
    sw.poll();
    assert.equal(port.b!.takeSent().length, 0, 'still in debt for the repeated headers');
    clock.advance(1);
    sw.poll();
    assert.equal(port.b!.takeSent().length, 1);
  });
});

function weightedRun(clock: ManualClock, sw: Switch, port: Record<string, MemoryPort>, ms: number, senders: string[]): Map<number, number> {
  const byMark = new Map<number, number>();
  const frames: Record<string, Uint8Array> = {
    a: eth(MAC_C, MAC_A, { len: FRAME, mark: 1 }),
    b: eth(MAC_C, MAC_B, { len: FRAME, mark: 2 }),
  };
  for (let t = 0; t < ms; t++) {
    for (const s of senders) while (port[s]!.pending < 40) port[s]!.inject(frames[s]!);
    clock.advance(1);
    sw.poll();
    for (const f of port.c!.takeSent()) byMark.set(f[14]!, (byMark.get(f[14]!) ?? 0) + f.length);
  }
  return byMark;
}

describe('switch QoS: weighted scheduling on a contended egress (linkMbps)', () => {
  it('weights 1:3 get exactly 25/75 of the link over a long run; one alone gets all of it', () => {
    const { sw, clock, port } = rig({ a: { qos: { minWeight: 1 } }, b: { qos: { minWeight: 3 } }, c: { qos: { linkMbps: 8 } } });
    learn(sw, port, { a: MAC_A, b: MAC_B, c: MAC_C });
    weightedRun(clock, sw, port, 200, ['a', 'b']); // fill the queues
    const both = weightedRun(clock, sw, port, 10_000, ['a', 'b']);
    const a = both.get(1) ?? 0;
    const b = both.get(2) ?? 0;
    assert.ok(Math.abs(a / (a + b) - 0.25) < 0.005, `shares ${a} : ${b}`);
    assert.ok(Math.abs(a + b - 10_000_000) < 50_000, `the link carried ${a + b} bytes in 10 s at 1000 bytes/ms`);
    const alone = weightedRun(clock, sw, port, 5000, ['a']);
    const aa = alone.get(1) ?? 0;
    assert.ok(aa > 5_000_000 - 100_000, `weight 1 alone got ${aa} of 5,000,000 bytes (b's queue drained first)`);
    // back-pressure, not loss: nothing dropped, the senders' frames waited in their ports
    const c = sw.portCounters(sw.portId('c')!);
    assert.equal(c.drops['qos-queue-full'], undefined);
    assert.ok(c.qos !== undefined && c.qos.waiting <= 64 && c.qos.sources.length === 2, JSON.stringify(c.qos));
    assert.ok(port.a!.pending > 0);
  });

  it('the uplink as a source is dropped at a full queue, never paused', () => {
    const { sw, port } = rig({ up: { kind: 'external' }, c: { qos: { linkMbps: 8 } } });
    learn(sw, port, { up: MAC_A, c: MAC_C });
    const f = eth(MAC_C, MAC_A, { len: FRAME });
    for (let k = 0; k < 200; k++) port.up!.inject(f);
    sw.poll();
    assert.equal(port.up!.pending, 0, 'the uplink is read');
    const c = sw.portCounters(sw.portId('c')!);
    const sent = port.c!.takeSent().length;
    assert.equal(sent + (c.qos?.waiting ?? 0) + (c.drops['qos-queue-full'] ?? 0), 200);
    assert.ok((c.drops['qos-queue-full'] ?? 0) > 0);
  });

  it('removing linkMbps flushes what waited (counted) and frees the senders', () => {
    const { sw, clock, port, id } = rig({ a: {}, c: { qos: { linkMbps: 8 } } });
    learn(sw, port, { a: MAC_A, c: MAC_C });
    weightedRun(clock, sw, port, 5, ['a']);
    const waiting = sw.portCounters(id.c!).qos!.waiting;
    assert.ok(waiting > 0);
    sw.updatePort(id.c!, { name: 'c', kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0 });
    assert.equal(sw.portCounters(id.c!).drops['qos-flushed'], waiting);
    sw.poll();
    assert.equal(port.a!.pending, 0, 'a is read freely again');
  });
});

describe('switch QoS: 802.1p classes at a scheduled egress', () => {
  it('tagged frames of PCP 0 and PCP 5 share a linkMbps port by pcpWeights 1:3', () => {
    const trunk = { mode: 'trunk', allowed: [10] } as const;
    const { sw, clock, port } = rig({
      a: { vlan: trunk },
      b: { vlan: trunk },
      c: { vlan: trunk, qos: { linkMbps: 8, pcpWeights: [1, 1, 1, 1, 1, 3, 1, 1] } },
    });
    for (const [n, mac] of [['a', MAC_A], ['b', MAC_B], ['c', MAC_C]] as const) port[n]!.inject(eth(0xffff_ffff_ffff, mac, { vid: 10, len: 64 }));
    sw.poll();
    for (const p of Object.values(port)) p.takeSent();
    const fa = eth(MAC_C, MAC_A, { vid: 10, pcp: 0, len: FRAME, mark: 1 });
    const fb = eth(MAC_C, MAC_B, { vid: 10, pcp: 5, len: FRAME, mark: 2 });
    const by = new Map<number, number>();
    for (let t = 0; t < 10_000; t++) {
      while (port.a!.pending < 40) port.a!.inject(fa);
      while (port.b!.pending < 40) port.b!.inject(fb);
      clock.advance(1);
      sw.poll();
      for (const f of port.c!.takeSent()) by.set(f[18]!, (by.get(f[18]!) ?? 0) + f.length);
    }
    const a = by.get(1) ?? 0;
    const b = by.get(2) ?? 0;
    assert.ok(Math.abs(a / (a + b) - 0.25) < 0.01, `PCP 0 : PCP 5 = ${a} : ${b}`);
    const q = sw.portCounters(sw.portId('c')!).qos!;
    // a's PCP 0, b's PCP 5, and b's untagged-priority hello (PCP 0) at the start
    assert.deepEqual([...new Set(q.sources.map((s) => `${s.port}/${s.pcp}`))].sort(), ['0/0', '1/0', '1/5']);
  });
});

describe('switch QoS: the uplink as a scheduled egress', () => {
  it('VMs with weights 1:3 share an external port with linkMbps 25/75', () => {
    const { sw, clock, port } = rig({ a: { qos: { minWeight: 1 } }, b: { qos: { minWeight: 3 } }, c: { kind: 'external', qos: { linkMbps: 8 } } });
    learn(sw, port, { a: MAC_A, b: MAC_B, c: MAC_C });
    weightedRun(clock, sw, port, 200, ['a', 'b']);
    const both = weightedRun(clock, sw, port, 5000, ['a', 'b']);
    const a = both.get(1) ?? 0;
    const b = both.get(2) ?? 0;
    assert.ok(Math.abs(a / (a + b) - 0.25) < 0.01, `shares ${a} : ${b}`);
  });
});
