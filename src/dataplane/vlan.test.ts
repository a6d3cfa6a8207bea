// dataplane/vlan.test.ts: ingress classification of single frames (tag moved out of band in place, per VLAN mode)
// and the egress tag decision, without a switch around them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batch, DEST_PRESERVE_PRIORITY, DEST_PRESERVE_VLAN, HEADROOM, slotSizeFor } from './frame.js';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, eth } from './switch.test-kit.js';
import { PortVlan, classifyIngress, egressTci, popTag, pushTag } from './vlan.js';
import type { VlanConfig } from './switch-api.js';

function load(bytes: Uint8Array): { b: Batch; i: number } {
  const b = new Batch(1, slotSizeFor(2000));
  const m = b.meta[0]!;
  m.reset();
  m.off = HEADROOM;
  m.len = bytes.length;
  b.slab.set(bytes, m.off);
  return { b, i: 0 };
}
const port = (vlan: VlanConfig, up = true, vsid = 3) => ({ vlan: PortVlan.from(vlan), vsid, up, maxFrameLen: 1514 });

describe('classifyIngress', () => {
  it('strips an 802.1Q tag in place: the frame then equals the untagged one', () => {
    const { b } = load(eth(MAC_B, MAC_A, { vid: 20, pcp: 5, len: 64 }));
    const m = b.meta[0]!;
    assert.equal(classifyIngress(b.slab, m, port({ mode: 'trunk', allowed: [20] })), null);
    assert.equal(m.off, HEADROOM + 4);
    assert.equal(m.len, 60);
    assert.deepEqual(b.slab.slice(m.off, m.off + m.len), eth(MAC_B, MAC_A, { len: 60 }));
    assert.equal(m.vlan, 20);
    assert.equal(m.pcp, 5);
    assert.equal(m.vsid, 3);
    assert.equal(m.dstMac, MAC_B);
    assert.equal(m.srcMac, MAC_A);
    assert.equal(m.etherType, 0x88b5);
  });

  it('applies each VLAN mode', () => {
    const cases: [VlanConfig, Uint8Array, string | number][] = [
      [{ mode: 'access', id: 7 }, eth(MAC_B, MAC_A), 7],
      [{ mode: 'access', id: 7 }, eth(MAC_B, MAC_A, { vid: 0, pcp: 3 }), 7],
      [{ mode: 'access', id: 7 }, eth(MAC_B, MAC_A, { vid: 7 }), 'vlan-tagged-on-access'],
      [{ mode: 'trunk', allowed: [5], native: 9 }, eth(MAC_B, MAC_A), 9],
      [{ mode: 'trunk', allowed: [5], native: 9 }, eth(MAC_B, MAC_A, { vid: 9 }), 9],
      [{ mode: 'trunk', allowed: [5] }, eth(MAC_B, MAC_A), 'vlan-not-allowed'],
      [{ mode: 'trunk', allowed: [5] }, eth(MAC_B, MAC_A, { vid: 6 }), 'vlan-not-allowed'],
      [{ mode: 'none' }, eth(MAC_B, MAC_A, { vid: 6 }), 'vlan-tagged-on-vsid-port'],
      [{ mode: 'none' }, eth(MAC_B, MAC_A, { vid: 0, pcp: 3 }), 0],
      [{ mode: 'none' }, eth(MAC_B, MAC_A, { vid: 6, tpid: 0x9100 }), 'qinq-not-allowed'],
      [{ mode: 'none' }, eth(MAC_B, MAC_A, { len: 1515 }), 'oversize'],
      [{ mode: 'trunk', allowed: [1] }, eth(MAC_B, MAC_A, { len: 1518, vid: 1 }), 1],
      [{ mode: 'none' }, new Uint8Array(13), 'runt'],
    ];
    for (const [cfg, bytes, want] of cases) {
      const { b } = load(bytes);
      const r = classifyIngress(b.slab, b.meta[0]!, port(cfg));
      if (typeof want === 'string') assert.equal(r, want, JSON.stringify(cfg));
      else {
        assert.equal(r, null, JSON.stringify(cfg));
        assert.equal(b.meta[0]!.vlan, want);
      }
    }
    // without a VSID, mode 'none' is VLAN-unaware: a tag keeps its VID (4095 is reserved)
    for (const [vid, want] of [[6, 6], [4095, 'vlan-not-allowed']] as const) {
      const { b } = load(eth(MAC_B, MAC_A, { vid }));
      const r = classifyIngress(b.slab, b.meta[0]!, port({ mode: 'none' }, true, 0));
      if (typeof want === 'string') assert.equal(r, want);
      else assert.equal(b.meta[0]!.vlan, want);
    }
    const { b } = load(eth(MAC_B, MAC_A));
    assert.equal(classifyIngress(b.slab, b.meta[0]!, port({ mode: 'none' }, false)), 'port-down-rx');
  });

  it('refuses ARP/IPv4/IPv6 headers inconsistent with their EtherType, and passes good ones', () => {
    const ok = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ dport: 9 }).payload(8).bytes();
    const v6 = frame().eth({ dst: MAC_B, src: MAC_A }).ipv6({ src: 'fd00::1', dst: 'fd00::2' }).udp({ dport: 9 }).bytes();
    const arp = frame().eth({ dst: MAC_B, src: MAC_A }).arp({ op: 1, spa: '10.0.0.1', tpa: '10.0.0.2' }).bytes();
    const badIhl = ok.slice();
    badIhl[14] = 0x43;
    const longTotal = ok.slice();
    longTotal[16] = 0x05; // total length 1280+ in a 50-byte frame
    const cases: [Uint8Array, string | null][] = [
      [ok, null],
      [v6, null],
      [arp, null],
      [ok.slice(0, 14 + 19), 'truncated'],
      [badIhl, 'bad-l3-header'],
      [longTotal, 'truncated'],
      [v6.slice(0, 14 + 39), 'truncated'],
      [arp.slice(0, 14 + 20), 'truncated'],
      [ok.slice(0, 14), 'truncated'], // EtherType IPv4 and no header at all
    ];
    for (const [bytes, want] of cases) {
      const { b } = load(bytes);
      assert.equal(classifyIngress(b.slab, b.meta[0]!, port({ mode: 'none' })), want, `${bytes.length} bytes`);
    }
  });
});

describe('egress tags', () => {
  it('decides the tag per port mode and destination flags', () => {
    const trunk = PortVlan.from({ mode: 'trunk', allowed: [10, 20], native: 10 });
    const access = PortVlan.from({ mode: 'access', id: 10 });
    const none = PortVlan.from({ mode: 'none' });
    assert.equal(egressTci(trunk, 10, 5, 0), -1, 'native: untagged');
    assert.equal(egressTci(trunk, 20, 5, 0), (5 << 13) | 20);
    assert.equal(egressTci(trunk, 10, 5, DEST_PRESERVE_PRIORITY), 5 << 13, 'priority tag');
    assert.equal(egressTci(access, 10, 5, 0), -1);
    assert.equal(egressTci(access, 10, 5, DEST_PRESERVE_VLAN), (5 << 13) | 10);
    assert.equal(egressTci(none, 0, 0, 0), -1);
    assert.equal(egressTci(none, 33, 1, 0), (1 << 13) | 33);
  });

  it('push then pop restores the frame exactly (so the next destination sees the original)', () => {
    const orig = eth(MAC_B, MAC_A, { len: 80, mark: 9 });
    const { b } = load(orig);
    const m = b.meta[0]!;
    pushTag(b, m, (3 << 13) | 44);
    assert.deepEqual(b.slab.slice(m.off, m.off + m.len), eth(MAC_B, MAC_A, { len: 84, vid: 44, pcp: 3, mark: 9 }));
    popTag(b, m);
    assert.deepEqual(b.slab.slice(m.off, m.off + m.len), orig);
  });
});
