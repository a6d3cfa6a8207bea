// policy/acl-alloc.test.ts: ACL evaluation allocates nothing per frame: 200k frames through a port with 1,000 port
// ACLs, 1,000 extended ACLs and a tracked connection (both directions) leave the heap flat, no scavenge runs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, assertFlatHeap, measureHeapGrowth, pump, rig } from '../dataplane/switch.test-kit.js';
import type { AclSpec } from './acl.js';
import type { ExtendedAclSpec } from './extended-acl.js';

describe('ACLs: no allocation per frame', () => {
  it('200,000 frames through 1,000 ACLs + 1,000 extended ACLs + conntrack leave the heap flat', async () => {
    const acls: AclSpec[] = [];
    const ext: ExtendedAclSpec[] = [];
    for (let i = 0; i < 1000; i++) {
      acls.push({ direction: 'both', action: i % 2 === 0 ? 'deny' : 'meter', remote: `172.${16 + (i >> 8)}.${i & 255}.0/24` });
      ext.push({ direction: 'in', action: 'deny', weight: 10 + i, protocol: 'udp', remoteAddress: `192.168.${i >> 8}.${i & 255}/32`, remotePort: 1000 + i });
    }
    ext.push({ direction: 'out', action: 'allow', weight: 5, stateful: true, idleTimeoutSec: 60 });
    ext.push({ direction: 'in', action: 'deny', weight: 1 });
    const r = rig({ a: { mem: { keepSent: false }, acls, extendedAcls: ext }, b: { mem: { keepSent: false } } });
    const ab = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 4000, dport: 53 }).payload(new Uint8Array(60)).bytes();
    const ba = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }).udp({ sport: 53, dport: 4000 }).payload(new Uint8Array(60)).bytes();
    const h = await measureHeapGrowth(r.sw, pump(r, ab, [ba]));
    assert.equal(h.forwarded, 200_064, 'both directions forwarded (the return traffic by the connection)');
    const st = r.sw.portAcl(r.id.a!)!;
    assert.equal(st.connections!.size, 1);
    assert.ok(st.connections!.hits > 100_000);
    assertFlatHeap(h);
  });
});
