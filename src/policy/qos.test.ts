// policy/qos.test.ts: token bucket refill and bound, wire bytes of GSO super-frames, DRR shares and work
// conservation of the egress scheduler (pure units, no switch).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batch, GSO_TCPV4, HEADROOM, slotSizeFor } from '../dataplane/frame.js';
import { EgressScheduler, TokenBucket, defaultBurstBytes, wireBytes } from './qos.js';

describe('qos: token bucket', () => {
  it('refills at the rate and never above the burst', () => {
    const b = new TokenBucket();
    b.configure(8, 10_000, 0); // 8 Mbit/s = 1000 bytes/ms
    assert.equal(b.tokens, 10_000);
    b.tokens -= 15_000;
    assert.equal(b.refill(2), -3000);
    assert.equal(b.msUntilPositive(), 3.001);
    assert.equal(b.refill(1000), 10_000); // capped
  });
  it('default burst lets TCP reach the cap: 64 KiB at least, 10 ms at high rates', () => {
    assert.equal(defaultBurstBytes(50), 65536);
    assert.equal(defaultBurstBytes(1000), 1_250_000);
  });
});

describe('qos: wire bytes', () => {
  it('a GSO super-frame counts its headers once per segment', () => {
    const b = new Batch(1, slotSizeFor(65550));
    const m = b.meta[0]!;
    m.len = 66 + 1448 * 10;
    m.hdrLen = 66;
    m.gsoType = GSO_TCPV4;
    m.gsoSize = 1448;
    assert.equal(wireBytes(m), 10 * (66 + 1448));
    m.gsoType = 0;
    assert.equal(wireBytes(m), 66 + 14480);
  });
});

function fill(s: EgressScheduler, src: Batch, source: number, weight: number, n: number, len: number): number {
  let k = 0;
  for (; k < n; k++) {
    src.meta[0]!.reset();
    src.meta[0]!.off = HEADROOM;
    src.meta[0]!.len = len;
    src.slab[HEADROOM] = source;
    if (!s.enqueue(src, 0, 0, source, weight)) break;
  }
  return k;
}

describe('qos: DRR egress scheduler', () => {
  it('1:3 weights share the link 25/75 exactly over a long run, frames in order per source', () => {
    const s = new EgressScheduler(8, 0, 32); // 1000 bytes/ms
    const src = new Batch(1, slotSizeFor(2000));
    const bytes = [0, 0];
    let t = 0;
    for (let step = 0; step < 20_000; step++) {
      fill(s, src, 0, 1, 32, 1000);
      fill(s, src, 1, 3, 32, 1000);
      t += 1;
      for (;;) {
        const q = s.pick(t, 64);
        if (q === null) break;
        assert.equal(q.batch.slab[q.batch.meta[q.head]!.off], q.source);
        bytes[q.source]! += s.runLen * 1000;
        s.done(q, s.runLen);
      }
    }
    const share = bytes[0]! / (bytes[0]! + bytes[1]!);
    assert.ok(Math.abs(share - 0.25) < 0.005, `share ${share}`);
    // the link's pace: 20 s at 1000 bytes/ms, plus the bucket
    assert.ok(Math.abs(bytes[0]! + bytes[1]! - 20_000_000) <= 2 * 140_000 + 1000);
  });

  it('is work-conserving: one source alone gets the whole link', () => {
    const s = new EgressScheduler(8, 0, 32);
    const src = new Batch(1, slotSizeFor(2000));
    let sent = 0;
    let t = 0;
    fill(s, src, 0, 1, 32, 1000);
    fill(s, src, 1, 100, 32, 1000);
    for (let step = 0; step < 10_000; step++) {
      fill(s, src, 0, 1, 32, 1000); // source 1 stopped: its 32 frames drain, then only 0 is left
      t += 1;
      for (let q = s.pick(t, 64); q !== null; q = s.pick(t, 64)) {
        if (q.source === 0) sent += s.runLen * 1000;
        s.done(q, s.runLen);
      }
    }
    assert.ok(sent >= 10_000_000 - 32_000 - 2000, `weight-1 source alone sent ${sent}`);
  });

  it('queues are bounded per source; a full one refuses and counts', () => {
    const s = new EgressScheduler(8, 0, 4);
    const src = new Batch(1, slotSizeFor(2000));
    assert.equal(fill(s, src, 7, 1, 10, 500), 4);
    assert.equal(s.queueDrops, 1);
    assert.equal(s.free(7), 0);
    assert.equal(s.free(8), 4);
    assert.equal(s.dropSource(7), 4);
    assert.equal(s.backlog, 0);
  });
});

describe('qos: 802.1p classes (ETS) at the scheduler', () => {
  it('classes share the link by class weight whatever the number of sources in each; sources split their class', () => {
    const w = [1, 1, 1, 1, 1, 3, 1, 1];
    const s = new EgressScheduler(8, 0, 32, w);
    const src = new Batch(1, slotSizeFor(2000));
    const put = (source: number, pcp: number, weight: number): void => {
      for (let k = 0; k < 32; k++) {
        const m = src.meta[0]!;
        m.reset();
        m.off = HEADROOM;
        m.len = 1000;
        m.pcp = pcp;
        if (!s.enqueue(src, 0, 0, source, weight)) break;
      }
    };
    const bytes = new Map<string, number>();
    for (let t = 1; t <= 20_000; t++) {
      put(0, 0, 1); // class 0: one source
      put(1, 5, 1); // class 5: two sources, weights 1 and 3
      put(2, 5, 3);
      for (let q = s.pick(t, 64); q !== null; q = s.pick(t, 64)) {
        const k = `${q.source}/${q.cls}`;
        bytes.set(k, (bytes.get(k) ?? 0) + s.runLen * 1000);
        s.done(q, s.runLen);
      }
    }
    const total = [...bytes.values()].reduce((a, b) => a + b, 0);
    const share = (k: string): number => (bytes.get(k) ?? 0) / total;
    assert.ok(Math.abs(share('0/0') - 0.25) < 0.01, `class 0: ${share('0/0')}`);
    assert.ok(Math.abs(share('1/5') + share('2/5') - 0.75) < 0.01, `class 5: ${share('1/5') + share('2/5')}`);
    assert.ok(Math.abs(share('2/5') / (share('1/5') + share('2/5')) - 0.75) < 0.02, `inside class 5: ${JSON.stringify([...bytes])}`);
    assert.equal(s.free(1), 32 - (s.sources().find((x) => x.source === 1)?.waiting ?? 0));
    assert.deepEqual(s.sourceIds().sort(), [0, 1, 2]);
  });
});
