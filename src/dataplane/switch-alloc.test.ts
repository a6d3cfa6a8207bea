// dataplane/switch-alloc.test.ts: steady-state forwarding allocates nothing per frame. 200k frames through two
// memory ports with learning, a capture and a filter: retained heap stays flat and no young-generation GC runs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CaptureExtension, FilterExtension } from '../extensions/api.js';
import { MAC_A, MAC_B, eth, rig } from './switch.test-kit.js';

/** global gc() without a command-line flag (a test file cannot pass --expose-gc to itself). */
function getGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('switch: no allocation per frame', () => {
  it('200,000 frames of steady-state forwarding leave the heap flat', async () => {
    const gc = getGc();
    const { sw, port } = rig({ a: { mem: { keepSent: false } }, b: { mem: { keepSent: false } } });
    let seen = 0;
    const cap = {
      kind: 'capture',
      name: 'count',
      observe(f) {
        for (let i = 0; i < f.count; i++) seen += f.byte(i, 12);
      },
    } satisfies CaptureExtension;
    const fil = {
      kind: 'filter',
      name: 'ttl',
      ingress(f) {
        for (let i = 0; i < f.count; i++) if (f.byte(i, 22) === 0) f.drop(i);
      },
    } satisfies FilterExtension;
    sw.setExtensions([
      { name: 'count', extension: cap, enabled: true },
      { name: 'ttl', extension: fil, enabled: true },
    ]);
    const ab = eth(MAC_B, MAC_A, { len: 128, mark: 1 });
    const ba = eth(MAC_A, MAC_B, { len: 128, mark: 1 });
    const run = (frames: number): void => {
      for (let n = 0; n < frames; n += 128) {
        for (let k = 0; k < 64; k++) {
          port.a!.inject(ab);
          port.b!.inject(ba);
        }
        sw.poll();
      }
    };
    run(40_000); // warm up: JIT, ring buffers, MAC entries
    let minor = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) minor++;
    });
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    obs.observe({ entryTypes: ['gc'] });
    const fwd0 = sw.frameTotals().forwarded;
    run(200_000);
    const after = process.memoryUsage().heapUsed;
    await new Promise((r) => setImmediate(r));
    obs.disconnect();
    assert.equal(sw.frameTotals().forwarded - fwd0, 200_064);
    const growth = after - before;
    console.log(JSON.stringify({ growthBytes: growth, perFrame: growth / 200_000, minorGcs: minor, seen }));
    // generous (about 0.3 MB seen): one 16-byte heap number per frame would be 3.2 MB, or scavenges
    assert.ok(growth < 1_500_000, `heap grew ${growth} bytes over 200k frames`);
    assert.ok(minor <= 1, `${minor} scavenges during the run`);
  });
});
