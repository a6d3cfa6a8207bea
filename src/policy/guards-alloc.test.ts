// policy/guards-alloc.test.ts: the guards and private VLANs allocate nothing per frame. 200k frames (IPv4 unicast,
// IPv6 multicast walked for router/DHCP guard, DHCP client broadcasts through storm control, private VLAN
// community ports) leave the heap flat with no scavenge.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { BROADCAST, MAC_A, MAC_B, assertFlatHeap, measureHeapGrowth, pump, rig } from '../dataplane/switch.test-kit.js';
import { DEFAULT_POLICY } from './policy.js';

describe('guards: no allocation per frame', () => {
  it('200,000 frames through every guard leave the heap flat', async () => {
    const policy = { ...DEFAULT_POLICY, dhcpGuard: true, routerGuard: true, macSpoofing: false, trustPriority: false, stormLimit: 100_000_000 };
    const vlan = { mode: 'private' as const, primary: 10, type: 'community' as const, secondary: [12] };
    const r = rig({
      a: { mac: MAC_A, policy, vlan, mem: { keepSent: false } },
      b: { mac: MAC_B, policy, vlan, mem: { keepSent: false } },
    });
    const ab = frame().eth({ src: MAC_A, dst: MAC_B }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1000, dport: 2000 }).pad(128).bytes();
    const ns = frame().eth({ src: MAC_B, dst: 0x33_33_ff_00_00_01 }).ipv6({ src: 'fe80::2', dst: 'ff02::1:ff00:1', hopLimit: 255, ext: [{ type: 0 }] })
      .icmpv6({ type: 135, code: 0, target: 'fe80::1' }).bytes();
    const disc = frame().eth({ src: MAC_B, dst: BROADCAST }).ipv4({ src: '0.0.0.0', dst: '255.255.255.255' }).udp({ sport: 68, dport: 67 }).dhcp({ op: 1, messageType: 1 }).bytes();
    const h = await measureHeapGrowth(r.sw, pump(r, ab, [ns, disc], () => r.clock.advance(1)));
    assert.equal(h.forwarded, 200_064, 'every frame forwarded (no guard fired)');
    assertFlatHeap(h);
  });
});
