// virtualization/layer.test.ts: the virtualization layer alone, on real Batch/FrameMeta slabs: policy ARP, tenant
// isolation, distributed routing, tenant MTU, NVGRE / VXLAN / IP rewrite both ways between two layers, PA ARP,
// announcements and live migration, status. Ports and host services are the api.ts interfaces, kept in the test.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import type { DropReason } from '../dataplane/drop.js';
import { Batch, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_UDP_TUNNEL_IPV4, type FrameMeta } from '../dataplane/frame.js';
import { formatIpv4Address, parseIpv4Address } from '../wire/addresses.js';
import { parseArp } from '../wire/arp.js';
import { readU16, readU32 } from '../wire/byte-order.js';
import { checksumValid, pseudoSumIpv4 } from '../wire/checksum.js';
import { readMac } from '../wire/ethernet.js';
import { parseUdp } from '../wire/udp.js';
import type { LookupRule, NetworkSpec } from './model.js';
import {
  BLUE,
  dests,
  EXT,
  fwd,
  hostInput,
  load,
  MAC5,
  MAC6,
  MAC7,
  MAC8,
  MAC_NOREC,
  RED,
  rig,
  ROUTER_MAC,
  spec,
  type Rig,
  UPLINK_A,
  UPLINK_B,
} from './virtualization.test-kit.js';

const ip = (s: string): number => parseIpv4Address(s)!;

function bytesOf(b: Batch, m: FrameMeta): Uint8Array {
  return b.slab.slice(m.off, m.off + m.len);
}

function udp(o: { src: number; dst: number; sip: string; dip: string; ttl?: number; df?: boolean; payload?: number }): Uint8Array {
  return frame()
    .eth({ src: o.src, dst: o.dst })
    .ipv4({ src: o.sip, dst: o.dip, ttl: o.ttl ?? 64, df: o.df ?? true })
    .udp({ sport: 4000, dport: 5000 })
    .payload(o.payload ?? 32)
    .bytes();
}

function arpReq(sha: number, spa: string, tpa: string, dst = 0xffff_ffff_ffff): Uint8Array {
  return frame().eth({ src: sha, dst }).arp({ op: 1, sha, spa, tpa }).bytes();
}

/** Let A's pending ARP requests reach B (answered in place there) and the replies come back to A. */
function resolve(a: Rig, b: Rig): void {
  const reqs = a.host.uplink.splice(0);
  for (const q of reqs) {
    const arp = parseArp(q, 14, q.length - 14);
    if (!arp.ok || arp.value.op !== 1) continue;
    const m = load(b.b, 0, q, EXT, 0);
    b.v.uplinkIngress(b.b, 0, b.clock.now());
    if (m.dest.count !== 1) continue; // not B's PA
    const rep = bytesOf(b.b, m);
    load(a.b, 0, rep, EXT, 0);
    a.v.uplinkIngress(a.b, 0, a.clock.now());
  }
}

/** Two layers (A and B) with next hops resolved both ways. */
function pair(s: NetworkSpec = spec(), mtu = 1500): { a: Rig; b: Rig } {
  const a = rig('host-a', s, mtu);
  const b = rig('host-b', s, mtu);
  resolve(a, b);
  resolve(b, a);
  return { a, b };
}

/** VM frame on `from` (forward + encapsulate), carried over the underlay, received by `to` (uplinkIngress + forward). */
function cross(from: Rig, to: Rig, bytes: Uint8Array, inPort: number, vsid: number): { sent: FrameMeta; wire: Uint8Array; got: FrameMeta } {
  const sent = fwd(from, bytes, inPort, vsid);
  assert.equal(sent.drop, null, `sender dropped: ${String(sent.drop)}`);
  assert.deepEqual(dests(sent), [EXT]);
  const r = from.v.encapsulate(from.b, 0, from.clock.now());
  assert.equal(r, null);
  const wire = bytesOf(from.b, sent);
  const got = load(to.b, 1, wire, EXT, 0);
  to.v.uplinkIngress(to.b, 1, to.clock.now());
  assert.equal(got.drop, null, `receiver dropped: ${String(got.drop)}`);
  got.etherType = readU16(to.b.slab, got.off + 12); // the switch re-classifies the inner frame
  got.l3Off = 14;
  to.v.forward(to.b, 1, to.ports, to.clock.now());
  return { sent, wire, got };
}

describe('layer: tenant ARP from the policy table', () => {
  it('answers a CA of the same VSID with the record MAC, in place, back to the asking port', () => {
    const r = rig('host-a');
    const m = fwd(r, arpReq(MAC5, '10.0.0.5', '10.0.0.6'), 1, 5001);
    assert.equal(m.drop, null);
    assert.equal(m.consumed, true);
    assert.equal(m.trusted, true);
    assert.deepEqual(dests(m), [1]);
    const out = bytesOf(r.b, m);
    const a = parseArp(out, 14, 28);
    assert.ok(a.ok);
    assert.equal(a.value.op, 2);
    assert.equal(a.value.sha, MAC6);
    assert.equal(a.value.spa, ip('10.0.0.6'));
    assert.equal(a.value.tha, MAC5);
    assert.equal(a.value.tpa, ip('10.0.0.5'));
    assert.equal(readMac(out, 0), MAC5);
    assert.equal(m.dstMac, MAC5);
    assert.equal(r.v.counters.arpAnswered, 1);
  });

  it('answers the subnet gateway and CAs of other subnets of the routing domain with the router MAC', () => {
    const r = rig('host-a');
    for (const target of ['10.0.0.1', '10.0.1.7', '10.0.1.1']) {
      const m = fwd(r, arpReq(MAC5, '10.0.0.5', target), 1, 5001);
      assert.equal(m.consumed, true, target);
      assert.equal(parseArp(bytesOf(r.b, m), 14, 28).ok && readMac(bytesOf(r.b, m), 6), ROUTER_MAC, target);
    }
  });

  it('an unknown CA is dropped (never flooded across hosts); a CA of another routing domain is unknown', () => {
    const extra = [{ ca: '10.0.0.30', vsid: 5001, mac: '02:00:00:00:00:30', pa: '192.0.2.2', rule: 'encap' as const, vm: null }];
    const r = rig('host-a', spec({ extraRecords: extra }));
    assert.equal(fwd(r, arpReq(MAC5, '10.0.0.5', '10.0.0.99'), 1, 5001).drop, 'no-lookup-record');
    assert.equal(fwd(r, arpReq(MAC5, '10.0.0.5', '10.0.0.30'), 3, 6001).drop, 'no-lookup-record');
    assert.equal(fwd(r, arpReq(MAC5, '10.0.0.5', '10.0.0.30'), 1, 5001).consumed, true);
  });

  it('gratuitous ARP and probes for the own address stay in the VSID on this host', () => {
    const r = rig('host-a');
    const g = fwd(r, arpReq(MAC5, '10.0.0.5', '10.0.0.5'), 1, 5001);
    assert.equal(g.consumed, false);
    assert.deepEqual(dests(g), [5]);
    const probe = fwd(r, arpReq(MAC5, '0.0.0.0', '10.0.0.5'), 1, 5001);
    assert.equal(probe.consumed, false);
    assert.deepEqual(dests(probe), [5]);
  });

  it('an ARP reply from a VM is forwarded as an ordinary frame', () => {
    const r = rig('host-a');
    const rep = frame().eth({ src: MAC5, dst: MAC_NOREC }).arp({ op: 2, sha: MAC5, spa: '10.0.0.5', tha: MAC_NOREC, tpa: '10.0.0.40' }).bytes();
    const m = fwd(r, rep, 1, 5001);
    assert.equal(m.consumed, false);
    assert.deepEqual(dests(m), [5]);
  });
});

describe('layer: forwarding inside a VSID', () => {
  it('broadcast and multicast go to the local ports of the VSID only, never the uplink', () => {
    const r = rig('host-a');
    const m = fwd(r, frame().eth({ src: MAC5, dst: 0x01_00_5e_00_00_01 }).ipv4({ src: '10.0.0.5', dst: '224.0.0.1' }).udp().bytes(), 1, 5001);
    assert.deepEqual(dests(m), [5]);
    const bc = fwd(r, frame().eth({ src: MAC5, dst: 0xffff_ffff_ffff }).ipv4({ src: '10.0.0.5', dst: '10.0.0.255' }).udp().bytes(), 3, 6001);
    assert.deepEqual(dests(bc), []);
  });

  it('unicast: remote record -> uplink, local record -> its port, record-less MAC -> local port or local flood', () => {
    const r = rig('host-a');
    assert.deepEqual(dests(fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001)), [EXT]);
    assert.deepEqual(dests(fwd(r, udp({ src: MAC_NOREC, dst: MAC5, sip: '10.0.0.40', dip: '10.0.0.5' }), 5, 5001)), [1]);
    assert.deepEqual(dests(fwd(r, udp({ src: MAC5, dst: MAC_NOREC, sip: '10.0.0.5', dip: '10.0.0.40' }), 1, 5001)), [5]);
    const unknown = fwd(r, udp({ src: MAC5, dst: 0x02_00_00_00_00_99, sip: '10.0.0.5', dip: '10.0.0.41' }), 1, 5001);
    assert.deepEqual(dests(unknown), [5]);
    assert.equal(unknown.drop, null);
  });

  it('a frame in a VSID without a subnet here is dropped unknown-vsid', () => {
    const r = rig('host-a');
    assert.equal(fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 7777).drop, 'unknown-vsid');
  });

  it('a decapsulated frame for a remote record is not reflected onto the underlay', () => {
    const r = rig('host-a');
    assert.equal(fwd(r, udp({ src: MAC7, dst: MAC6, sip: '10.0.1.7', dip: '10.0.0.6' }), EXT, 5001).drop, 'hairpin');
  });
});

describe('layer: distributed routing', () => {
  it('routes to a remote record of another subnet: TTL - 1, router MAC as source, destination VSID and MAC', () => {
    const r = rig('host-a');
    const m = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.7', ttl: 9 }), 1, 5001);
    assert.equal(m.drop, null);
    assert.deepEqual(dests(m), [EXT]);
    assert.equal(m.vsid, 5002);
    assert.equal(m.dstMac, MAC7);
    assert.equal(m.srcMac, ROUTER_MAC);
    const out = bytesOf(r.b, m);
    assert.equal(readMac(out, 0), MAC7);
    assert.equal(readMac(out, 6), ROUTER_MAC);
    assert.equal(out[14 + 8], 8);
    assert.ok(checksumValid(out, 14, 20));
    assert.equal(r.v.counters.routed, 1);
  });

  it('routes to a local record of another subnet; the blue tenant reaches only blue records', () => {
    const r = rig('host-a');
    const red = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.8' }), 1, 5001);
    assert.deepEqual(dests(red), [2]);
    assert.equal(red.vsid, 5002);
    const blue = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.8' }), 3, 6001);
    assert.deepEqual(dests(blue), [4]);
    assert.equal(blue.vsid, 6002);
  });

  it('no record and no customer route -> no-route; a customer route leads to its next-hop record', () => {
    const extra = [{ ca: '10.0.1.30', vsid: 5002, mac: '02:00:00:00:00:30', pa: '192.0.2.2', rule: 'encap' as const, vm: null }];
    const routes = [{ rdid: RED, vsid: 5002, prefix: '172.16.0.0/16', nextHop: '10.0.1.7' }];
    const r = rig('host-a', spec({ extraRecords: extra, customerRoutes: routes }));
    assert.equal(fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.30' }), 3, 6001).drop, 'no-route');
    assert.equal(fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.9.9.9' }), 1, 5001).drop, 'no-route');
    const viaRoute = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '172.16.3.4' }), 1, 5001);
    assert.equal(viaRoute.dstMac, MAC7);
    assert.equal(viaRoute.vsid, 5002);
    assert.deepEqual(dests(viaRoute), [EXT]);
    assert.equal(fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '172.17.3.4' }), 3, 6001).drop, 'no-route');
  });

  it('TTL 1 becomes ICMP time exceeded from the gateway back to the sender; the original counted ttl-exceeded', () => {
    const r = rig('host-a');
    const m = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.7', ttl: 1 }), 1, 5001);
    assert.equal(m.drop, null);
    assert.deepEqual(dests(m), [1]);
    assert.equal(m.vsid, 5001);
    const out = bytesOf(r.b, m);
    assert.equal(readMac(out, 0), MAC5);
    assert.equal(readMac(out, 6), ROUTER_MAC);
    assert.equal(out[14 + 9], 1);
    assert.equal(readU32(out, 14 + 12), ip('10.0.0.1'));
    assert.equal(readU32(out, 14 + 16), ip('10.0.0.5'));
    assert.equal(out[34], 11);
    assert.deepEqual(r.host.drops, [{ port: 1, reason: 'ttl-exceeded' }]);
  });
});

describe('layer: tenant MTU', () => {
  const cases: [LookupRule, number][] = [
    ['encap', 1458],
    ['vxlan', 1450],
    ['rewrite', 1500],
  ];
  for (const [rule, mtu] of cases) {
    it(`${rule}: an IPv4 DF packet of ${mtu} passes, ${mtu + 1} becomes fragmentation needed with MTU ${mtu}`, () => {
      const r = rig('host-a', spec({ rule }));
      const ok = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: mtu - 28 }), 1, 5001);
      assert.deepEqual(dests(ok), [EXT]);
      const big = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: mtu - 27 }), 1, 5001);
      assert.equal(big.drop, null);
      assert.deepEqual(dests(big), [1]);
      const out = bytesOf(r.b, big);
      assert.equal(out[34], 3);
      assert.equal(out[35], 4);
      assert.equal(readU16(out, 34 + 6), mtu);
      assert.equal(readU32(out, 14 + 12), ip('10.0.0.1'));
      assert.equal(readMac(out, 0), MAC5);
      assert.deepEqual(r.host.drops, [{ port: 1, reason: 'tenant-mtu-exceeded' }]);
      assert.equal(r.v.counters.fragNeeded, 1);
    });
  }

  it('without DF: dropped tenant-mtu-exceeded (never fragmented on the outside)', () => {
    const r = rig('host-a');
    const m = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: 1500 - 28, df: false }), 1, 5001);
    assert.equal(m.drop, 'tenant-mtu-exceeded');
  });

  it('GSO: each segment (headers + gsoSize) is measured, not the super-frame', () => {
    const r = rig('host-a');
    const seg = frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).tcp().payload(8000).bytes();
    const m = load(r.b, 0, seg, 1, 5001);
    m.gsoType = GSO_TCPV4;
    m.hdrLen = 54;
    m.gsoSize = 1458 - 40;
    r.v.forward(r.b, 0, r.ports, r.clock.now());
    assert.deepEqual(dests(m), [EXT]);
    const m2 = load(r.b, 0, seg, 1, 5001);
    m2.gsoType = GSO_TCPV4;
    m2.hdrLen = 54;
    m2.gsoSize = 1458 - 39;
    r.v.forward(r.b, 0, r.ports, r.clock.now());
    assert.deepEqual(dests(m2), [1]);
    assert.equal(m2.gsoType, 0);
  });

  it('a routed frame too big is answered to its sender (original MACs), from the sender subnet gateway', () => {
    const r = rig('host-a');
    const m = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.7', payload: 1460 }), 1, 5001);
    assert.deepEqual(dests(m), [1]);
    assert.equal(m.vsid, 5001);
    const out = bytesOf(r.b, m);
    assert.equal(readMac(out, 0), MAC5);
    assert.equal(readU32(out, 26), ip('10.0.0.1'));
    assert.equal(readU16(out, 40), 1458);
  });
});

describe('layer: the sender\'s ACLs judge a frame before the layer answers it', () => {
  it('denied: an oversized DF frame is dropped with the ACL\'s reason, not answered, nothing counted by the layer', () => {
    const r = rig('host-a');
    r.ports.aclVerdict = 'acl-deny';
    const m = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: 1460 }), 1, 5001);
    assert.equal(m.drop, 'acl-deny');
    assert.equal(m.trusted, false);
    assert.equal(readU16(bytesOf(r.b, m), 12), 0x0800);
    assert.equal(bytesOf(r.b, m)[14 + 9], 17, 'the frame is still the original UDP packet');
    assert.deepEqual(r.host.drops, [], 'no tenant-mtu-exceeded');
    assert.equal(r.v.counters.fragNeeded, 0);
    assert.deepEqual(r.ports.aclAsked, [{ srcMac: MAC5, dstMac: MAC6 }], 'judged as sent (a bridged frame keeps its MACs)');
  });

  it('allowed: answered as before; a frame that fits is never shown to sourceAcl (port policy judges it)', () => {
    const r = rig('host-a');
    const ok = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: 100 }), 1, 5001);
    assert.deepEqual(dests(ok), [EXT]);
    assert.equal(r.ports.aclAsked.length, 0);
    const big = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: 1460 }), 1, 5001);
    assert.deepEqual(dests(big), [1]);
    assert.equal(bytesOf(r.b, big)[34], 3);
    assert.equal(r.ports.aclAsked.length, 1);
  });

  it('denied without DF: the ACL\'s reason, not tenant-mtu-exceeded', () => {
    const r = rig('host-a');
    r.ports.aclVerdict = 'extended-acl-deny';
    const m = fwd(r, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: 1460, df: false }), 1, 5001);
    assert.equal(m.drop, 'extended-acl-deny');
  });

  it('routed (oversized, TTL 1): judged as it left the VM (its own MACs, not the rewritten ones); denied = no ICMP, TTL untouched', () => {
    const r = rig('host-a');
    r.ports.aclVerdict = 'acl-deny';
    const big = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.7', payload: 1460 }), 1, 5001);
    assert.equal(big.drop, 'acl-deny');
    const ttl = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.8', ttl: 1 }), 1, 5001);
    assert.equal(ttl.drop, 'acl-deny');
    const out = bytesOf(r.b, ttl);
    assert.equal(out[14 + 8], 1, 'TTL as sent');
    assert.equal(readMac(out, 0), ROUTER_MAC, 'the frame keeps the sender\'s MACs');
    assert.equal(ttl.srcMac, MAC5);
    assert.equal(ttl.dstMac, ROUTER_MAC);
    assert.deepEqual(r.ports.aclAsked, [
      { srcMac: MAC5, dstMac: ROUTER_MAC },
      { srcMac: MAC5, dstMac: ROUTER_MAC },
    ]);
    assert.equal(r.v.counters.timeExceeded, 0);
    assert.equal(r.v.counters.fragNeeded, 0);
    assert.deepEqual(r.host.drops, []);
    r.ports.aclVerdict = null;
    const again = fwd(r, udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.8', ttl: 1 }), 1, 5001);
    assert.deepEqual(dests(again), [1]);
    assert.equal(bytesOf(r.b, again)[34], 11, 'time exceeded');
    assert.deepEqual(r.host.drops, [{ port: 1, reason: 'ttl-exceeded' }]);
  });
});

describe('layer: underlay (NVGRE, VXLAN, IP rewrite)', () => {
  it('policy asks ARP for remote next hops; encapsulate waits (pa-unresolved, one request per retry) until resolved', () => {
    const a = rig('host-a');
    assert.equal(a.host.uplink.length, 1);
    const req = parseArp(a.host.uplink[0]!, 14, 28);
    assert.ok(req.ok);
    assert.equal(req.value.tpa, ip('192.0.2.2'));
    assert.equal(req.value.spa, ip('192.0.2.1'));
    assert.equal(req.value.sha, UPLINK_A);
    a.host.uplink.length = 0;
    fwd(a, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), 'pa-unresolved');
    assert.equal(a.host.uplink.length, 0); // the setPolicy request is less than retryMs old
    a.clock.advance(1500);
    fwd(a, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), 'pa-unresolved');
    assert.equal(a.host.uplink.length, 1);
    const b = rig('host-b');
    resolve(a, b);
    fwd(a, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), null);
    assert.equal(b.v.counters.paArpAnswered, 1);
  });

  it('NVGRE: outer headers PA to PA, GRE key VSID<<8|FlowID; received into the same tenant only', () => {
    const { a, b } = pair();
    for (const [vsid, port] of [
      [5001, 1],
      [6001, 3],
    ] as const) {
      const inner = udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' });
      const { wire, got } = cross(a, b, inner, port, vsid);
      assert.equal(wire.length, inner.length + 42);
      assert.equal(readMac(wire, 0), UPLINK_B);
      assert.equal(readMac(wire, 6), UPLINK_A);
      assert.equal(readU16(wire, 12), 0x0800);
      assert.equal(wire[14 + 9], 47);
      assert.equal(readU32(wire, 26), ip('192.0.2.1'));
      assert.equal(readU32(wire, 30), ip('192.0.2.2'));
      assert.equal(readU16(wire, 34), 0x2000);
      assert.equal(readU16(wire, 36), 0x6558);
      assert.equal(readU32(wire, 38) >>> 8, vsid);
      assert.deepEqual(wire.slice(42), inner);
      assert.equal(got.vsid, vsid);
      assert.deepEqual(dests(got), [port]);
      assert.deepEqual(bytesOf(b.b, got), inner);
    }
    assert.equal(a.v.counters.encapsulatedNvgre, 2);
    assert.equal(b.v.counters.decapsulatedNvgre, 2);
  });

  it('NVGRE FlowID: the flow hash by default, the fixed value of remotes[] for that PA', () => {
    const inner = udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' });
    const h = pair();
    const w1 = cross(h.a, h.b, inner, 1, 5001).wire;
    const w2 = cross(h.a, h.b, inner, 1, 5001).wire;
    assert.equal(w1[41], w2[41]); // deterministic per flow
    const f = pair(spec({ remotes: [{ pa: '192.0.2.2', flowId: 42 }] }));
    assert.equal(cross(f.a, f.b, inner, 1, 5001).wire[41], 42);
  });

  it('VXLAN: UDP 4789, VNI = VSID, checksum 0, source port from the flow hash', () => {
    const { a, b } = pair(spec({ rule: 'vxlan' }));
    const inner = udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' });
    const { wire, got } = cross(a, b, inner, 3, 6001);
    assert.equal(wire.length, inner.length + 50);
    assert.equal(wire[23], 17);
    assert.equal(readU16(wire, 36), 4789);
    assert.ok(readU16(wire, 34) >= 49152);
    assert.equal(readU16(wire, 40), 0);
    assert.equal(wire[42], 0x08);
    assert.equal(readU32(wire, 46) >>> 8, 6001);
    assert.equal(got.vsid, 6001);
    assert.deepEqual(dests(got), [3]);
    assert.deepEqual(bytesOf(b.b, got), inner);
  });

  it('VXLAN with tunnel GSO: a TCP super-frame crosses whole as UDP-tunnel GSO, lengths of the whole frame', () => {
    const { a, b } = pair(spec({ rule: 'vxlan' }));
    const payload = 8000;
    const mss = 1398;
    const inner = frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).tcp({ sport: 40000, dport: 5201 }).payload(payload).bytes();
    const gso = (r: Rig, i: number): FrameMeta => {
      const m = load(r.b, i, inner, 1, 5001);
      m.gsoType = GSO_TCPV4 | GSO_ECN;
      m.gsoSize = mss;
      m.hdrLen = 54;
      m.needsCsum = true;
      m.csumStart = 34;
      m.csumOffset = 16;
      return m;
    };
    const m = gso(a, 0);
    a.v.forward(a.b, 0, a.ports, a.clock.now());
    assert.deepEqual(dests(m), [EXT]);
    assert.equal(a.v.needsSegmentation(a.b, 0, false), true, 'AF_PACKET only: segment first');
    assert.equal(a.v.needsSegmentation(a.b, 0, true), false, 'tunnel TAP: whole');
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), null);
    const wire = bytesOf(a.b, m);
    assert.equal(m.gsoType, GSO_UDP_TUNNEL_IPV4 | GSO_TCPV4 | GSO_ECN);
    assert.equal(a.v.counters.encapsulatedVxlanGso, 1);
    assert.equal(m.gsoSize, mss);
    assert.deepEqual([m.outerThOff, m.innerNhOff, m.csumStart, m.csumOffset, m.hdrLen], [34, 64, 84, 16, 104]);
    assert.equal(m.needsCsum, true);
    assert.equal(wire.length, inner.length + 50);
    assert.equal(readU16(wire, 16), wire.length - 14, 'outer IPv4 total length: the whole super-frame');
    assert.ok(checksumValid(wire, 14, 20), 'outer IPv4 header checksum over that length');
    assert.equal(readU16(wire, 38), wire.length - 34, 'outer UDP length: the whole super-frame');
    assert.equal(readU16(wire, 40), 0, 'outer UDP checksum 0');
    assert.equal(readU16(wire, 84 + 16), readU16(inner, 34 + 16), 'inner TCP checksum field (the seed) untouched');
    // every segment the kernel cuts gets its own outer IP ID: the next frame's ID is past all of them
    const id0 = readU16(wire, 18);
    const n = load(a.b, 1, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 1, a.clock.now()), null);
    assert.equal(readU16(bytesOf(a.b, n), 18), (id0 + Math.ceil(payload / mss)) & 0xffff);
    // the receiver: AF_PACKET reports such a frame as plain TCPv4 GSO with offsets from the outer frame
    const got = load(b.b, 2, wire, EXT, 0);
    got.gsoType = GSO_TCPV4;
    got.gsoSize = mss;
    got.hdrLen = 104;
    got.needsCsum = true;
    got.csumStart = 84;
    got.csumOffset = 16;
    b.v.uplinkIngress(b.b, 2, b.clock.now());
    assert.equal(got.drop, null);
    assert.equal(got.vsid, 5001);
    assert.deepEqual([got.len, got.csumStart, got.hdrLen, got.gsoType, got.gsoSize], [inner.length, 34, 54, GSO_TCPV4, mss]);
    assert.deepEqual(bytesOf(b.b, got), inner);
  });

  it('VXLAN with tunnel GSO: segmented as before when the kernel could not take the frame whole', () => {
    const { a } = pair(spec({ rule: 'vxlan' }));
    const tcpFrame = (payload: number): Uint8Array =>
      frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).tcp().payload(payload).bytes();
    const set = (m: FrameMeta, csum: boolean): void => {
      m.gsoType = GSO_TCPV4;
      m.gsoSize = 1398;
      m.hdrLen = 54;
      m.needsCsum = csum;
      m.csumStart = 34;
      m.csumOffset = 16;
    };
    set(load(a.b, 0, tcpFrame(8000), 1, 5001), false);
    assert.equal(a.v.needsSegmentation(a.b, 0, true), true, 'no partial checksum');
    set(load(a.b, 0, tcpFrame(65535 - 50 - 40 + 1), 1, 5001), true);
    assert.equal(a.v.needsSegmentation(a.b, 0, true), true, 'outer IPv4 length over 64 KB');
    set(load(a.b, 0, tcpFrame(65535 - 50 - 40), 1, 5001), true);
    assert.equal(a.v.needsSegmentation(a.b, 0, true), false, 'the largest that fits');
    const u = load(a.b, 0, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6', payload: 3000 }), 1, 5001);
    u.gsoType = 5; // UDP L4
    u.gsoSize = 1400;
    u.needsCsum = true;
    u.csumStart = 34;
    u.csumOffset = 6;
    assert.equal(a.v.needsSegmentation(a.b, 0, true), true, 'not TCP');
    const e = rig('host-a', spec({ rule: 'encap' }));
    set(load(e.b, 0, tcpFrame(8000), 1, 5001), true);
    assert.equal(e.v.needsSegmentation(e.b, 0, true), true, 'NVGRE has no GSO path');
    // a non-GSO frame under tunnel offload is untouched by it
    const p = load(a.b, 1, tcpFrame(100), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 1, a.clock.now()), null);
    assert.deepEqual([p.gsoType, p.outerThOff, p.innerNhOff], [GSO_NONE, 0, 0]);
  });

  it('IP rewrite: plain IPv4 between per-CA PAs with valid checksums; mapped back to the CAs and MACs', () => {
    const { a, b } = pair(spec({ rule: 'rewrite' }));
    const inner = udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' });
    const { wire, got } = cross(a, b, inner, 1, 5001);
    assert.equal(wire.length, inner.length);
    assert.equal(readMac(wire, 0), UPLINK_B);
    assert.equal(readU32(wire, 26), ip('192.0.2.15'));
    assert.equal(readU32(wire, 30), ip('192.0.2.16'));
    assert.ok(checksumValid(wire, 14, 20));
    const u = parseUdp(wire, 34, wire.length - 34, pseudoSumIpv4(ip('192.0.2.15'), ip('192.0.2.16'), 17, wire.length - 34));
    assert.ok(u.ok && u.value.checksumOk === true);
    assert.equal(got.vsid, 5001);
    assert.deepEqual(dests(got), [1]);
    assert.deepEqual(bytesOf(b.b, got), inner);
    // the blue twin uses blue's PAs and lands in blue
    const blue = cross(a, b, inner, 3, 6001);
    assert.equal(readU32(blue.wire, 26), ip('192.0.2.25'));
    assert.equal(blue.got.vsid, 6001);
    assert.deepEqual(dests(blue.got), [3]);
  });

  it('IP rewrite routed across subnets: TTL - 1 once on the sender; the receiver sets the router MAC as source', () => {
    const { a, b } = pair(spec({ rule: 'rewrite' }));
    const inner = udp({ src: MAC5, dst: ROUTER_MAC, sip: '10.0.0.5', dip: '10.0.1.7', ttl: 30 });
    const { wire, got } = cross(a, b, inner, 1, 5001);
    assert.equal(readU32(wire, 30), ip('192.0.2.17'));
    assert.equal(wire[22], 29);
    const out = bytesOf(b.b, got);
    assert.equal(got.vsid, 5002);
    assert.equal(readMac(out, 0), MAC7);
    assert.equal(readMac(out, 6), ROUTER_MAC);
    assert.equal(out[22], 29);
    assert.equal(readU32(out, 26), ip('10.0.0.5'));
    assert.equal(readU32(out, 30), ip('10.0.1.7'));
    assert.deepEqual(dests(got), [2]);
  });

  it('rewrite in: a source PA of another routing domain is dropped; other IPv4 to our PA is left alone', () => {
    const b = rig('host-b', spec({ rule: 'rewrite' }));
    const forged = frame().eth({ src: UPLINK_A, dst: UPLINK_B }).ipv4({ src: '192.0.2.25', dst: '192.0.2.16' }).udp().payload(8).bytes();
    const m = load(b.b, 0, forged, EXT, 0);
    b.v.uplinkIngress(b.b, 0, b.clock.now());
    assert.equal(m.drop, 'no-lookup-record');
    const plain = frame().eth({ src: UPLINK_A, dst: UPLINK_B }).ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).udp({ dport: 53 }).bytes();
    const p = load(b.b, 0, plain, EXT, 0);
    b.v.uplinkIngress(b.b, 0, b.clock.now());
    assert.equal(p.drop, null);
    assert.equal(p.vsid, 0);
    assert.equal(p.consumed, false);
    assert.equal(p.len, plain.length);
  });

  it('tunnel packets: unknown VSID, PA not owned, malformed GRE are dropped by reason', () => {
    const b = rig('host-b');
    const cases: [Uint8Array, DropReason][] = [
      [frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).nvgre(7777, 1).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'unknown-vsid'],
      [frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).udp().vxlan({ vni: 7777 }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'unknown-vsid'],
      [frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.9' }).nvgre(5001, 1).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'pa-not-owned'],
      [frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.9' }).udp().vxlan({ vni: 5001 }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'pa-not-owned'],
      [frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).gre({ vsid: 5001, checksum: true }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'bad-encap'],
    ];
    for (const [bytes, reason] of cases) {
      const m = load(b.b, 0, bytes, EXT, 0);
      b.v.uplinkIngress(b.b, 0, b.clock.now());
      assert.equal(m.drop, reason);
    }
  });

  it('a forged NVGRE packet with the blue VSID for the red MAC reaches only the blue VM', () => {
    const b = rig('host-b');
    const bytes = frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).nvgre(6001, 0).eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).udp().bytes();
    const m = load(b.b, 0, bytes, EXT, 0);
    b.v.uplinkIngress(b.b, 0, b.clock.now());
    assert.equal(m.vsid, 6001);
    m.etherType = 0x0800;
    b.v.forward(b.b, 0, b.ports, b.clock.now());
    assert.deepEqual(dests(m), [3]);
  });

  it('PA ARP: requests for our PA answered with the uplink MAC; others consumed, not answered; next hops learned', () => {
    const a = rig('host-a');
    const q = frame().eth({ src: UPLINK_B, dst: 0xffff_ffff_ffff }).arp({ op: 1, sha: UPLINK_B, spa: '192.0.2.2', tpa: '192.0.2.1' }).bytes();
    const m = load(a.b, 0, q, EXT, 0);
    a.v.uplinkIngress(a.b, 0, a.clock.now());
    assert.equal(m.consumed, true);
    assert.equal(m.trusted, true);
    assert.deepEqual(dests(m), [EXT]);
    const rep = parseArp(bytesOf(a.b, m), 14, 28);
    assert.ok(rep.ok);
    assert.equal(rep.value.op, 2);
    assert.equal(rep.value.sha, UPLINK_A);
    assert.equal(rep.value.spa, ip('192.0.2.1'));
    assert.equal(readMac(bytesOf(a.b, m), 0), UPLINK_B);
    const other = frame().eth({ src: 0x02_cc_00_00_00_01, dst: 0xffff_ffff_ffff }).arp({ op: 1, sha: 0x02_cc_00_00_00_01, spa: '192.0.2.50', tpa: '192.0.2.51' }).bytes();
    const o = load(a.b, 0, other, EXT, 0);
    a.v.uplinkIngress(a.b, 0, a.clock.now());
    assert.equal(o.consumed, true);
    assert.deepEqual(dests(o), []);
    const st = a.v.status(a.clock.now());
    assert.deepEqual(st.arp.map((e) => [e.address, e.mac, e.state]), [['192.0.2.2', '02:bb:00:00:00:02', 'reachable']]);
  });

  it('outer VLAN of the PA: encapsulated frames carry it in m.vlan, ARP requests inline', () => {
    const s = spec({ paVlan: 30 });
    const a = rig('host-a', s);
    const req = a.host.uplink[0]!;
    assert.equal(req.length, 46);
    assert.equal(readU16(req, 12), 0x8100);
    assert.equal(readU16(req, 14) & 0xfff, 30);
    const b = rig('host-b', s);
    // B answers the (untagged after classification) request
    const untagged = new Uint8Array([...req.slice(0, 12), ...req.slice(16)]);
    a.host.uplink[0] = untagged;
    resolve(a, b);
    const m = fwd(a, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), null);
    assert.equal(m.vlan, 30);
  });

  it('needsSegmentation: true for NVGRE/VXLAN records, false for rewrite', () => {
    for (const [rule, want] of [
      ['encap', true],
      ['vxlan', true],
      ['rewrite', false],
    ] as const) {
      const r = rig('host-a', spec({ rule }));
      load(r.b, 0, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
      assert.equal(r.v.needsSegmentation(r.b, 0, false), want, rule);
    }
  });

  it('encapsulate refuses a frame whose MAC is no remote record of its VSID', () => {
    const { a } = pair();
    load(a.b, 0, udp({ src: MAC5, dst: MAC8, sip: '10.0.0.5', dip: '10.0.1.8' }), 1, 5002);
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), 'no-lookup-record');
    load(a.b, 0, udp({ src: MAC5, dst: 0x02_00_00_00_00_99, sip: '10.0.0.5', dip: '10.0.0.9' }), 1, 5001);
    assert.equal(a.v.encapsulate(a.b, 0, a.clock.now()), 'no-lookup-record');
  });
});

describe('layer: policy changes, announcements, migration', () => {
  it('announces every local record with a gratuitous ARP into its VSID (and rewrite PAs on the underlay), twice', () => {
    const a = rig('host-a', spec({ rule: 'rewrite' }));
    const garps = a.host.originated.map((o) => {
      const p = parseArp(o.bytes, 14, 28);
      assert.ok(p.ok);
      assert.equal(p.value.spa, p.value.tpa);
      return `${o.vsid} ${formatIpv4Address(p.value.spa)}`;
    });
    assert.deepEqual(garps.sort(), ['5001 10.0.0.5', '5002 10.0.1.8', '6001 10.0.0.5', '6002 10.0.1.8']);
    const paGarps = a.host.uplink
      .map((f) => parseArp(f, 14, 28))
      .filter((p) => p.ok && p.value.spa === p.value.tpa)
      .map((p) => (p.ok ? formatIpv4Address(p.value.spa) : ''));
    assert.deepEqual(paGarps.sort(), ['192.0.2.15', '192.0.2.18', '192.0.2.25', '192.0.2.28']);
    a.host.originated.length = 0;
    a.v.tick(a.clock.now() + 500);
    assert.equal(a.host.originated.length, 0);
    a.clock.advance(1000);
    a.v.tick(a.clock.now());
    assert.equal(a.host.originated.length, 4);
    a.clock.advance(1000);
    a.v.tick(a.clock.now());
    assert.equal(a.host.originated.length, 4);
    assert.equal(a.v.counters.garpSent, 8);
  });

  it('live migration: only the moved VM is announced; both hosts follow the new PA; the ARP cache survives', () => {
    const { a, b } = pair();
    a.host.originated.length = 0;
    a.host.uplink.length = 0;
    // vm6 (red and blue) moves from B to A
    const moved = spec({ hostOf: { vm6: 'host-a' } });
    a.v.setPolicy(hostInput('host-a', moved));
    b.v.setPolicy(hostInput('host-b', moved));
    assert.deepEqual(a.host.originated.map((o) => o.vsid).sort(), [5001, 6001]);
    assert.equal(a.host.uplink.length, 0); // B's PA stays resolved: no new ARP
    a.ports.add(6, 5001, MAC6);
    // A now delivers vm5 -> vm6 locally
    assert.deepEqual(dests(fwd(a, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001)), [6]);
    // B sends to vm6 over the underlay now (B's vm7 routes to it)
    const { got } = cross(b, a, udp({ src: MAC7, dst: ROUTER_MAC, sip: '10.0.1.7', dip: '10.0.0.6' }), 2, 5002);
    assert.deepEqual(dests(got), [6]);
    assert.equal(got.vsid, 5001);
  });

  it('rewrite migration: the PA moves with the VM; the new host announces it on the underlay', () => {
    const { a, b } = pair(spec({ rule: 'rewrite' }));
    a.host.uplink.length = 0;
    const moved = spec({ rule: 'rewrite', hostOf: { vm6: 'host-a' } });
    a.v.setPolicy(hostInput('host-a', moved));
    b.v.setPolicy(hostInput('host-b', moved));
    const paGarps = a.host.uplink.map((f) => parseArp(f, 14, 28)).filter((p) => p.ok && p.value.spa === p.value.tpa);
    assert.deepEqual(paGarps.map((p) => (p.ok ? formatIpv4Address(p.value.spa) : '')).sort(), ['192.0.2.16', '192.0.2.26']);
    // B learns the moved PA from the gratuitous ARP (it is a next hop of B now)
    for (const f of a.host.uplink) {
      load(b.b, 0, f, EXT, 0);
      b.v.uplinkIngress(b.b, 0, b.clock.now());
    }
    const arpB = b.v.status(b.clock.now()).arp.find((e) => e.address === '192.0.2.16');
    assert.equal(arpB?.mac, '02:aa:00:00:00:01');
    a.ports.add(6, 5001, MAC6);
    const { wire, got } = cross(b, a, udp({ src: MAC7, dst: ROUTER_MAC, sip: '10.0.1.7', dip: '10.0.0.6' }), 2, 5002);
    assert.equal(readU32(wire, 30), ip('192.0.2.16'));
    assert.deepEqual(dests(got), [6]);
  });

  it('tick re-requests unresolved next hops once per retry interval', () => {
    const a = rig('host-a');
    a.host.uplink.length = 0;
    a.v.tick(a.clock.now() + 200);
    assert.equal(a.host.uplink.length, 0);
    a.clock.advance(1001);
    a.v.tick(a.clock.now());
    assert.equal(a.host.uplink.length, 1);
    a.v.tick(a.clock.now());
    assert.equal(a.host.uplink.length, 1);
    assert.equal(a.v.counters.arpRequestsSent, 2);
  });

  it('null policy: every hook leaves frames alone', () => {
    const a = rig('host-a');
    a.v.setPolicy(null);
    const bytes = frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).nvgre(5001, 0).eth().ipv4().udp().bytes();
    const m = load(a.b, 0, bytes, EXT, 0);
    a.v.uplinkIngress(a.b, 0, a.clock.now());
    assert.equal(m.drop, null);
    assert.equal(m.len, bytes.length);
    assert.equal(m.vsid, 0);
    assert.equal(a.v.status(a.clock.now()).vsids.length, 0);
    const f = fwd(a, udp({ src: MAC5, dst: MAC6, sip: '10.0.0.5', dip: '10.0.0.6' }), 1, 5001);
    assert.equal(f.drop, null);
    assert.deepEqual(dests(f), [5]);
  });
});

describe('layer: status', () => {
  it('PAs, VSIDs with tenant MTU, records local/remote, counters', () => {
    const { a } = pair(spec({ rule: { red: 'vxlan', blue: 'encap' } }));
    const st = a.v.status(a.clock.now());
    assert.equal(st.host, 'host-a');
    assert.equal(st.switchName, 'sw0');
    assert.deepEqual(st.providerAddresses, ['192.0.2.1/24']);
    assert.equal(st.routerMac, '02:58:53:00:00:01');
    assert.equal(st.underlayMtu, 1500);
    assert.deepEqual(
      st.vsids.map((v) => [v.vsid, v.rdid, v.rdName, v.prefix, v.gateway, v.tenantMtu, v.records, v.localRecords]),
      [
        [5001, RED, 'red', '10.0.0.0/24', '10.0.0.1', 1450, 2, 1],
        [5002, RED, 'red', '10.0.1.0/24', '10.0.1.1', 1450, 2, 1],
        [6001, BLUE, 'blue', '10.0.0.0/24', '10.0.0.1', 1458, 2, 1],
        [6002, BLUE, 'blue', '10.0.1.0/24', '10.0.1.1', 1458, 2, 1],
      ],
    );
    assert.equal(st.records.length, 8);
    assert.deepEqual(st.records.find((r) => r.vsid === 5001 && r.ca === '10.0.0.6'), {
      ca: '10.0.0.6',
      vsid: 5001,
      mac: '02:00:00:00:00:06',
      pa: '192.0.2.2',
      rule: 'vxlan',
      local: false,
    });
    assert.equal(st.counters['arpRequestsSent'], 1);
    assert.equal(st.counters['garpSent'], 4);
    assert.equal(typeof st.counters['encapsulatedNvgre'], 'number');
  });
});

