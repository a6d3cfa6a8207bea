// dataplane/switch-alloc.test.ts: steady-state forwarding allocates nothing per frame. 200k frames through two
// memory ports with learning, a capture and a filter: retained heap stays flat and no young-generation GC runs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CaptureExtension, FilterExtension } from '../extensions/api.js';
import { MAC_A, MAC_B, assertFlatHeap, eth, measureHeapGrowth, pump, rig } from './switch.test-kit.js';

describe('switch: no allocation per frame', () => {
  it('200,000 frames of steady-state forwarding leave the heap flat', async () => {
    const r = rig({ a: { mem: { keepSent: false } }, b: { mem: { keepSent: false } } });
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
    r.sw.setExtensions([
      { name: 'count', extension: cap, enabled: true },
      { name: 'ttl', extension: fil, enabled: true },
    ]);
    const ab = eth(MAC_B, MAC_A, { len: 128, mark: 1 });
    const ba = eth(MAC_A, MAC_B, { len: 128, mark: 1 });
    const h = await measureHeapGrowth(r.sw, pump(r, ab, [ba]));
    assert.equal(h.forwarded, 200_064);
    assertFlatHeap(h, 200_000, { seen });
  });
});
