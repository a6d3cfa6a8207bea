// dataplane/switch-qos-alloc.test.ts: shaping and weighted scheduling allocate nothing per frame (the sampling
// heap profiler, objects already collected included, finds no allocation site in the switch or the QoS code).
// A file of its own, as switch-alloc.test.ts: a fresh process, not JIT feedback left by other tests.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Session } from 'node:inspector/promises';
import { MAC_A, MAC_B, MAC_C, eth, rig } from './switch.test-kit.js';

const FRAME = 1000;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

describe('switch QoS: no allocation per frame', () => {
  it('300,000 frames shaped and scheduled: nothing allocated by the switch or the QoS code', async () => {
    const { sw, clock, port } = rig({
      a: { qos: { minWeight: 1, maxMbps: 800 }, mem: { keepSent: false } },
      b: { qos: { minWeight: 3 }, mem: { keepSent: false } },
      c: { qos: { linkMbps: 240 }, mem: { keepSent: false } },
    });
    const fa = eth(MAC_C, MAC_A, { len: FRAME });
    const fb = eth(MAC_C, MAC_B, { len: FRAME });
    const run = (ms: number): void => {
      for (let t = 0; t < ms; t++) {
        while (port.a!.pending < 64) port.a!.inject(fa);
        while (port.b!.pending < 64) port.b!.inject(fb);
        clock.advance(1);
        sw.poll();
      }
    };
    port.c!.inject(eth(0xffff_ffff_ffff, MAC_C, { len: 60 }));
    run(12_000); // JIT tiers, feedback, queue slabs
    // The sampling heap profiler, counting objects already collected too: every allocation site with its stack.
    // (The memory back end itself allocates a view per received frame: a test fixture, not the data path.)
    const session = new Session();
    session.connect();
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    const sent0 = port.c!.sentFrames;
    run(10_000); // 30,000 bytes/ms: 300,000 frames
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
    session.disconnect();
    const frames = port.c!.sentFrames - sent0;
    assert.ok(frames > 295_000, `${frames} frames`);
    const ours = new Map<string, number>();
    const walk = (n: ProfileNode): void => {
      const u = n.callFrame.url;
      // MAC aging runs once a second (maybeExpire): per second, not per frame
      if (n.selfSize > 0 && (u.endsWith('/dataplane/switch.js') || u.endsWith('/policy/qos.js')) && n.callFrame.functionName !== 'maybeExpire') {
        const k = `${n.callFrame.functionName}@${u.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
        ours.set(k, (ours.get(k) ?? 0) + n.selfSize);
      }
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    const total = [...ours.values()].reduce((a, b) => a + b, 0);
    console.log(JSON.stringify({ frames, bytesBySwitchAndQos: total, sites: Object.fromEntries(ours) }));
    // one 16-byte number per frame would be 4.8 MB
    assert.ok(total < 100_000, `the switch / QoS code allocated ${total} bytes: ${JSON.stringify(Object.fromEntries(ours))}`);
  });
});
