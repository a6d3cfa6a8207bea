// io/memory.test.ts: the memory back end on its own: inject/receive into a batch, send/takeSent, refusals, and
// event-loop wake-ups.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batch, HEADROOM, slotSizeFor } from '../dataplane/frame.js';
import { memoryPort } from './memory.js';

describe('memoryPort', () => {
  it('receives injected copies into batch slots with their offload fields, in order', () => {
    const p = memoryPort('m', { offload: true, maxFrameBytes: 2000 });
    const b = new Batch(4, slotSizeFor(p.maxFrameBytes));
    const f = new Uint8Array(100).fill(7);
    for (let i = 0; i < 6; i++) {
      f[0] = i;
      assert.equal(p.inject(f, i === 1 ? { gsoType: 1, gsoSize: 1400, needsCsum: true, csumStart: 34, csumOffset: 16 } : {}), true);
    }
    f[0] = 99; // inject copied
    assert.equal(p.receive(b, 0, 4), 4);
    assert.equal(b.meta[0]!.off, HEADROOM);
    assert.equal(b.slab[b.meta[0]!.off], 0);
    assert.equal(b.slab[b.meta[3]!.off], 3);
    assert.equal(b.meta[1]!.gsoType, 1);
    assert.equal(b.meta[1]!.needsCsum, true);
    assert.equal(b.meta[2]!.needsCsum, false);
    assert.equal(p.pending, 2);
    assert.equal(p.receive(b, 0, 4), 2);
    assert.equal(p.receive(b, 0, 4), 0);
  });

  it('refuses frames over maxFrameBytes and a full rx queue; send respects txCapacity', () => {
    const p = memoryPort('m', { maxFrameBytes: 100, txCapacity: 2, rxCapacity: 3 });
    assert.equal(p.inject(new Uint8Array(101)), false);
    for (let i = 0; i < 3; i++) assert.equal(p.inject(new Uint8Array(60)), true);
    assert.equal(p.inject(new Uint8Array(60)), false);
    const b = new Batch(8, slotSizeFor(p.maxFrameBytes));
    assert.equal(p.receive(b, 0, 8), 3);
    const idx = Uint16Array.of(0, 1, 2);
    assert.equal(p.send(b, idx, 3), 2);
    assert.equal(p.stats.txFull, 1);
    assert.equal(p.takeSent().length, 2);
    assert.equal(p.send(b, idx, 3), 2);
  });

  it('keeps reusing its rx buffers across many injections', () => {
    const p = memoryPort('m');
    const b = new Batch(64, slotSizeFor(p.maxFrameBytes));
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 50; i++) p.inject(new Uint8Array(60 + i));
      let n = 0;
      while (p.receive(b, 0, 64) > 0) n++;
      assert.ok(n >= 1);
    }
    assert.equal(p.pending, 0);
  });

  it('start(cb) calls back from the event loop after inject; stop() ends it', async () => {
    const p = memoryPort('m');
    let calls = 0;
    p.start(() => calls++);
    p.inject(new Uint8Array(60));
    assert.equal(calls, 0, 'never re-entrantly');
    const deadline = Date.now() + 2000;
    while (calls === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1);
    p.stop();
    p.inject(new Uint8Array(60));
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1);
    p.close();
    assert.equal(p.inject(new Uint8Array(60)), false);
  });
});
