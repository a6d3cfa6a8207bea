// virtualization/arp-cache.test.ts: the PA neighbour cache on a manual clock (retry, stale, expiry, eviction) and
// the underlay ARP frames (request, gratuitous, reply in place), also as tshark reads them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame, ip4, mac } from '../../test/helpers/frame-builder.js';
import { bytesOf, load, tsharkFields } from '../../test/fixtures/virtualization/kit.js';
import { ManualClock } from '../dataplane/types.js';
import { parseArp } from '../wire/arp.js';
import { MAC_BROADCAST, parseEthernet } from '../wire/ethernet.js';
import { ArpCache, arpReplyInPlace, writeArpRequest, writeGratuitousArp } from './arp-cache.js';

const PA1 = ip4('192.0.2.1');
const PA2 = ip4('192.0.2.2');
const GW = ip4('192.0.2.254');
const UPLINK = mac('02:aa:00:00:00:01');
const PEER = mac('02:bb:00:00:00:02');

describe('ArpCache', () => {
  it('resolves: unknown, request once per retry interval, learn, lookup', () => {
    const c = new ArpCache({ retryMs: 1000 });
    const clk = new ManualClock(0);
    assert.equal(c.lookup(PA2, clk.now()), -1);
    assert.equal(c.wantRequest(PA2, clk.now()), true);
    assert.equal(c.wantRequest(PA2, clk.now()), false);
    assert.equal(c.lookup(PA2, clk.now()), -1, 'incomplete entries do not answer');
    assert.deepEqual(c.entries(clk.now()), [{ address: '192.0.2.2', mac: null, state: 'incomplete', ageMs: 0 }]);
    clk.advance(999);
    assert.equal(c.wantRequest(PA2, clk.now()), false);
    clk.advance(1);
    assert.equal(c.wantRequest(PA2, clk.now()), true);
    c.learn(PA2, PEER, clk.now());
    assert.equal(c.lookup(PA2, clk.now()), PEER);
    assert.equal(c.wantRequest(PA2, clk.now()), false, 'reachable: no request');
    assert.deepEqual(c.entries(clk.now() + 5), [{ address: '192.0.2.2', mac: '02:bb:00:00:00:02', state: 'reachable', ageMs: 5 }]);
  });

  it('stale after reachableMs: still answers, asks again once per retry, a reply makes it reachable', () => {
    const c = new ArpCache({ reachableMs: 10_000, retryMs: 1000 });
    c.learn(GW, PEER, 0);
    assert.equal(c.lookup(GW, 10_000), PEER);
    assert.equal(c.entries(10_000)[0]!.state, 'reachable');
    assert.equal(c.entries(10_001)[0]!.state, 'stale');
    assert.equal(c.lookup(GW, 10_001), PEER, 'stale entries keep answering');
    assert.equal(c.wantRequest(GW, 10_001), true);
    assert.equal(c.wantRequest(GW, 10_500), false);
    assert.equal(c.lookup(GW, 10_500), PEER);
    assert.equal(c.wantRequest(GW, 11_001), true);
    c.learn(GW, PEER + 1, 11_100);
    assert.equal(c.lookup(GW, 11_100), PEER + 1);
    assert.equal(c.entries(11_100)[0]!.state, 'reachable');
    assert.equal(c.wantRequest(GW, 11_200), false);
  });

  it('expire: reachable -> stale; unanswered incomplete entries and long-stale ones go away', () => {
    const c = new ArpCache({ reachableMs: 1000, retryMs: 100 });
    c.learn(PA1, PEER, 0);
    c.wantRequest(PA2, 0);
    c.expire(1000);
    assert.deepEqual(
      c.entries(1000).map((e) => [e.address, e.state]),
      [
        ['192.0.2.1', 'reachable'],
        ['192.0.2.2', 'incomplete'],
      ],
    );
    c.expire(1001);
    assert.deepEqual(c.entries(1001).map((e) => [e.address, e.state]), [['192.0.2.1', 'stale']]);
    c.expire(3000);
    assert.equal(c.size, 1);
    c.expire(3001);
    assert.equal(c.size, 0);
  });

  it('keeps at most `capacity` entries, evicting the least recently updated', () => {
    const c = new ArpCache({ capacity: 2 });
    c.learn(ip4('10.0.0.1'), 1, 10);
    c.learn(ip4('10.0.0.2'), 2, 5);
    c.learn(ip4('10.0.0.3'), 3, 20);
    assert.equal(c.size, 2);
    assert.equal(c.lookup(ip4('10.0.0.2'), 20), -1);
    assert.equal(c.lookup(ip4('10.0.0.1'), 20), 1);
    assert.equal(c.lookup(ip4('10.0.0.3'), 20), 3);
    c.learn(ip4('10.0.0.3'), 4, 21); // an update does not evict
    assert.equal(c.size, 2);
    c.clear();
    assert.equal(c.size, 0);
    assert.deepEqual(c.entries(0), []);
  });

  it('addresses above 2^31 work as keys', () => {
    const c = new ArpCache();
    c.learn(ip4('203.0.113.9'), PEER, 0);
    assert.equal(c.lookup(ip4('203.0.113.9'), 0), PEER);
    assert.equal(c.entries(0)[0]!.address, '203.0.113.9');
  });
});

describe('underlay ARP frames', () => {
  it('writeArpRequest: broadcast who-has target tell src, 42 bytes; 0 when it does not fit', () => {
    const out = new Uint8Array(60);
    assert.equal(writeArpRequest(out, 3, UPLINK, PA1, GW), 42);
    const e = parseEthernet(out, 3, 42);
    assert.ok(e.ok);
    assert.equal(e.value.dst, MAC_BROADCAST);
    assert.equal(e.value.src, UPLINK);
    assert.equal(e.value.etherType, 0x0806);
    const a = parseArp(out, 17, 28);
    assert.ok(a.ok);
    assert.deepEqual(a.value, { op: 1, sha: UPLINK, spa: PA1, tha: 0, tpa: GW });
    assert.equal(writeArpRequest(out, 19, UPLINK, PA1, GW), 0);
    assert.equal(writeArpRequest(out, -1, UPLINK, PA1, GW), 0);
  });

  it('writeGratuitousArp: request with sender = target', () => {
    const out = new Uint8Array(42);
    assert.equal(writeGratuitousArp(out, 0, UPLINK, PA1), 42);
    const a = parseArp(out, 14, 28);
    assert.ok(a.ok);
    assert.deepEqual(a.value, { op: 1, sha: UPLINK, spa: PA1, tha: 0, tpa: PA1 });
  });

  it('arpReplyInPlace: "target is at mac" back to the requester, length unchanged', () => {
    const req = frame().eth({ src: PEER, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 1, sha: PEER, spa: PA2, tpa: PA1 }).pad().bytes();
    const { b, m } = load(req);
    assert.equal(arpReplyInPlace(b.slab, m, UPLINK), true);
    assert.equal(m.len, 60);
    assert.equal(m.dstMac, PEER);
    assert.equal(m.srcMac, UPLINK);
    const e = parseEthernet(b.slab, m.off, m.len);
    assert.ok(e.ok);
    assert.equal(e.value.dst, PEER);
    assert.equal(e.value.src, UPLINK);
    const a = parseArp(b.slab, m.off + 14, 28);
    assert.ok(a.ok);
    assert.deepEqual(a.value, { op: 2, sha: UPLINK, spa: PA1, tha: PEER, tpa: PA2 });
    assert.deepEqual(bytesOf(b, m).slice(42), req.slice(42), 'padding untouched');
  });

  it('arpReplyInPlace refuses replies, other protocols and short frames, frame untouched', () => {
    for (const f of [
      frame().eth({ src: PEER }).arp({ op: 2 }).bytes(),
      frame().eth({ src: PEER }).arp({ ptype: 0x86dd }).bytes(),
      frame().eth({ src: PEER }).arp({ hlen: 8 }).bytes(),
      frame().eth({ src: PEER }).ipv4().bytes(),
    ]) {
      const { b, m } = load(f);
      const before = b.slab.slice();
      assert.equal(arpReplyInPlace(b.slab, m, UPLINK), false);
      assert.deepEqual(b.slab, before);
    }
    const req = frame().eth({ src: PEER }).arp({ op: 1 }).bytes();
    for (let len = 0; len < req.length; len++) {
      const { b, m } = load(req);
      m.len = len;
      const before = b.slab.slice();
      assert.equal(arpReplyInPlace(b.slab, m, UPLINK), false);
      assert.deepEqual(b.slab, before);
    }
  });

  it('tshark reads the request, the gratuitous ARP and the reply', () => {
    const r1 = new Uint8Array(42);
    writeArpRequest(r1, 0, UPLINK, PA1, GW);
    const r2 = new Uint8Array(42);
    writeGratuitousArp(r2, 0, UPLINK, PA1);
    const { b, m } = load(frame().eth({ src: PEER, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 1, sha: PEER, spa: PA2, tpa: PA1 }).pad().bytes());
    arpReplyInPlace(b.slab, m, UPLINK);
    const t = tsharkFields([r1, r2, bytesOf(b, m)], ['eth.dst', 'arp.opcode', 'arp.src.hw_mac', 'arp.src.proto_ipv4', 'arp.dst.proto_ipv4', 'arp.isgratuitous', '_ws.malformed']);
    assert.deepEqual(t[0], {
      'eth.dst': ['ff:ff:ff:ff:ff:ff'],
      'arp.opcode': ['1'],
      'arp.src.hw_mac': ['02:aa:00:00:00:01'],
      'arp.src.proto_ipv4': ['192.0.2.1'],
      'arp.dst.proto_ipv4': ['192.0.2.254'],
      'arp.isgratuitous': [],
      '_ws.malformed': [],
    });
    assert.deepEqual(t[1]!['arp.isgratuitous'], ['1']);
    assert.deepEqual(t[2], {
      'eth.dst': ['02:bb:00:00:00:02'],
      'arp.opcode': ['2'],
      'arp.src.hw_mac': ['02:aa:00:00:00:01'],
      'arp.src.proto_ipv4': ['192.0.2.1'],
      'arp.dst.proto_ipv4': ['192.0.2.2'],
      'arp.isgratuitous': [],
      '_ws.malformed': [],
    });
  });
});
