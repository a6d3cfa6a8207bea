// policy/acl-alloc.test.ts: ACL evaluation allocates nothing per frame: 200k frames through a port with 1,000 port
// ACLs, 1,000 extended ACLs and a tracked connection (both directions) leave the heap flat, no scavenge runs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, rig } from '../dataplane/switch.test-kit.js';
import type { AclSpec } from './acl.js';
import type { ExtendedAclSpec } from './extended-acl.js';

function getGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('ACLs: no allocation per frame', () => {
  it('200,000 frames through 1,000 ACLs + 1,000 extended ACLs + conntrack leave the heap flat', async () => {
    const gc = getGc();
    const acls: AclSpec[] = [];
    const ext: ExtendedAclSpec[] = [];
    for (let i = 0; i < 1000; i++) {
      acls.push({ direction: 'both', action: i % 2 === 0 ? 'deny' : 'meter', remote: `172.${16 + (i >> 8)}.${i & 255}.0/24` });
      ext.push({ direction: 'in', action: 'deny', weight: 10 + i, protocol: 'udp', remoteAddress: `192.168.${i >> 8}.${i & 255}/32`, remotePort: 1000 + i });
    }
    ext.push({ direction: 'out', action: 'allow', weight: 5, stateful: true, idleTimeoutSec: 60 });
    ext.push({ direction: 'in', action: 'deny', weight: 1 });
    const { sw, port, id } = rig({ a: { mem: { keepSent: false }, acls, extendedAcls: ext }, b: { mem: { keepSent: false } } });
    const ab = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 4000, dport: 53 }).payload(new Uint8Array(60)).bytes();
    const ba = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }).udp({ sport: 53, dport: 4000 }).payload(new Uint8Array(60)).bytes();
    const run = (frames: number): void => {
      for (let n = 0; n < frames; n += 128) {
        for (let k = 0; k < 64; k++) {
          port.a!.inject(ab);
          port.b!.inject(ba);
        }
        sw.poll();
      }
    };
    run(40_000);
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
    assert.equal(sw.frameTotals().forwarded - fwd0, 200_064, 'both directions forwarded (the return traffic by the connection)');
    const st = sw.portAcl(id.a!)!;
    assert.equal(st.connections!.size, 1);
    assert.ok(st.connections!.hits > 100_000);
    const growth = after - before;
    console.log(JSON.stringify({ growthBytes: growth, perFrame: growth / 200_000, minorGcs: minor }));
    assert.ok(growth < 1_500_000, `heap grew ${growth} bytes over 200k frames`);
    assert.ok(minor <= 1, `${minor} scavenges during the run`);
  });
});
