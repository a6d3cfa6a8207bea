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

  it('200,000 frames of RELATED ICMP errors and IP fragments (IPv4 and IPv6) leave the heap flat', async () => {
    const ext: ExtendedAclSpec[] = [
      { direction: 'out', action: 'allow', weight: 100, protocol: 'udp', stateful: true },
      { direction: 'in', action: 'allow', weight: 50, protocol: 'udp', localPort: 9 },
      { direction: 'in', action: 'deny', weight: 1 },
    ];
    const r = rig({ a: { mem: { keepSent: false }, extendedAcls: ext }, b: { mem: { keepSent: false } } });
    const ab = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 4000, dport: 53 }).payload(new Uint8Array(60)).bytes();
    const ab6 = frame().eth({ dst: MAC_B, src: MAC_A }).ipv6({ src: 'fd00::1', dst: 'fd00::2' }).udp({ sport: 4000, dport: 53 }).payload(new Uint8Array(60)).bytes();
    const err = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }).icmp({ type: 3, code: 4, mtu: 1400 }).payload(ab.subarray(14, 14 + 28)).bytes();
    const err6 = frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: 'fd00::2', dst: 'fd00::1' }).icmpv6({ type: 2, mtu: 1280 }).payload(ab6.subarray(14, 14 + 48)).bytes();
    const unrelated = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1' }).icmp({ type: 3, code: 4, mtu: 1400 }).payload(ab.subarray(14, 14 + 24)).bytes();
    const first = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1', id: 7, mf: true }).udp({ sport: 53, dport: 4000, length: 1000, checksum: 0 }).payload(new Uint8Array(800)).bytes();
    const later = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1', id: 7, fragmentOffset: 101, protocol: 17 }).payload(new Uint8Array(192)).bytes();
    const unknown = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: '10.0.0.2', dst: '10.0.0.1', id: 8, fragmentOffset: 101, protocol: 17 }).payload(new Uint8Array(192)).bytes();
    const later6 = frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: 'fd00::2', dst: 'fd00::1', nextHeader: 17, ext: [{ type: 44, fragmentOffset: 50, id: 0x9000_0000 }] }).payload(new Uint8Array(100)).bytes();
    let out6 = true;
    const run = pump(r, ab, [err, err6, unrelated, first, later, unknown, later6, first], () => {
      // the IPv6 connection too, every poll (a's frames are all ab otherwise)
      if (out6) r.port['a']!.inject(ab6);
      out6 = !out6;
    });
    const h = await measureHeapGrowth(r.sw, run);
    const st = r.sw.portAcl(r.id.a!)!;
    assert.ok(st.connections!.related > 20_000, JSON.stringify(st.connections));
    assert.ok(st.fragments!.hits > 10_000 && st.fragments!.unknownDropped > 20_000, JSON.stringify(st.fragments));
    assertFlatHeap(h, 200_000, { related: st.connections!.related, fragments: st.fragments });
  });
});
