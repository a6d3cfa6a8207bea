// virtualization/ipv6.test.ts: IPv6 CAs in the virtualization layer: neighbor solicitations answered from the
// policy table (bytes decoded by tshark), DAD, isolation, IPv6 unicast across the underlay, packet too big at the
// tenant MTU, distributed routing for IPv6, and no allocation per frame.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { measureAllocation, tsharkFields } from '../../test/fixtures/virtualization/kit.js';
import { HEADROOM, type FrameMeta } from '../dataplane/frame.js';
import type { PortId } from '../dataplane/types.js';
import { formatIpv6Address } from '../wire/addresses.js';
import { readU16, readU32 } from '../wire/byte-order.js';
import { checksumValid, pseudoSumIpv6 } from '../wire/checksum.js';
import { readMac } from '../wire/ethernet.js';
import type { NetworkSpec } from './model.js';
import { Ipv6Map } from './policy-table.js';
import {
  dests,
  EXT,
  fwd,
  rig as hostRig,
  MAC5,
  MAC6,
  MAC7,
  MAC_NOREC,
  ROUTER_MAC,
  spec,
  type Rig,
} from './virtualization.test-kit.js';
import { parseIpv6Address } from '../wire/addresses.js';

/** Host A (see rig in the kit) with IPv6 CAs; slots big enough for jumbo frames. */
function rig(s: NetworkSpec = spec({ ipv6: true }), mtu = 1500): Rig {
  return hostRig('host-a', s, mtu, 2, 9000);
}

const out = (r: Rig, m: FrameMeta): Uint8Array => r.b.slab.slice(m.off, m.off + m.len);

/** Solicited-node multicast MAC of an IPv6 address (33:33:ff + its last 3 bytes). */
function snMac(last3: number): number {
  return 0x33_33_ff_00_00_00 + last3;
}

function ns(o: { src: number; sip: string; target: string; dst?: number; dip?: string; sll?: boolean }): Uint8Array {
  const tail = Number.parseInt(o.target.split(':').pop()!, 16);
  return frame()
    .eth({ src: o.src, dst: o.dst ?? snMac(tail) })
    .ipv6({ src: o.sip, dst: o.dip ?? `ff02::1:ff00:${tail.toString(16)}`, hopLimit: 255 })
    .icmpv6({ type: 135, target: o.target, ...(o.sll === false ? {} : { sll: o.src }) })
    .bytes();
}

function ping6(o: { src: number; dst: number; sip: string; dip: string; size: number; hopLimit?: number }): Uint8Array {
  return frame()
    .eth({ src: o.src, dst: o.dst })
    .ipv6({ src: o.sip, dst: o.dip, hopLimit: o.hopLimit ?? 64 })
    .icmpv6({ type: 128, id: 7, seq: 1 })
    .payload(o.size)
    .bytes();
}

/** ICMPv6 checksum of the frame's IPv6 packet (untagged, no extension headers) is right. */
function icmpv6ChecksumOk(f: Uint8Array): boolean {
  const len = readU16(f, 18);
  return checksumValid(f, 54, len, pseudoSumIpv6(f, 22, 38, 58, len));
}

const NA_FIELDS = [
  'eth.dst', 'eth.src', 'ipv6.src', 'ipv6.dst', 'ipv6.hlim', 'icmpv6.type', 'icmpv6.checksum.status',
  'icmpv6.nd.na.flag.r', 'icmpv6.nd.na.flag.s', 'icmpv6.nd.na.flag.o', 'icmpv6.nd.na.target_address', 'icmpv6.opt.type', 'icmpv6.opt.linkaddr',
];

function decodeOne(f: Uint8Array, fields: readonly string[]): Record<string, string> {
  const [rec] = tsharkFields([f], fields);
  const o: Record<string, string> = {};
  for (const k of fields) o[k] = (rec?.[k] ?? []).join(';');
  return o;
}

describe('Ipv6Map', () => {
  it('finds every address straight from frame bytes after growing, and nothing else', () => {
    const map = new Ipv6Map<number>();
    for (let i = 0; i < 300; i++) map.set(parseIpv6Address(`fd00:${i.toString(16)}::${((i * 7919) % 65536).toString(16)}`)!, i);
    assert.equal(map.size, 300);
    const buf = new Uint8Array(40);
    for (let i = 0; i < 300; i++) {
      buf.set(parseIpv6Address(`fd00:${i.toString(16)}::${((i * 7919) % 65536).toString(16)}`)!, 24);
      assert.equal(map.at(buf, 24), i);
    }
    assert.equal(map.get(parseIpv6Address('fd00:1::1')!), undefined);
    map.set(parseIpv6Address('fd00:0::0')!, 999);
    assert.equal(map.get(parseIpv6Address('fd00::')!), 999);
  });
});

describe('IPv6 neighbor discovery from the policy table', () => {
  it('an NS for a CA of the VSID is answered in place with a solicited, override NA carrying the target MAC', () => {
    const r = rig();
    const m = fwd(r, ns({ src: MAC5, sip: 'fd00:1::5', target: 'fd00:1::6' }), 1, 5001);
    assert.equal(m.drop, null);
    assert.ok(m.consumed);
    assert.deepEqual(dests(m), [1]);
    const f = out(r, m);
    assert.equal(f.length, 86);
    assert.ok(icmpv6ChecksumOk(f));
    assert.deepEqual(decodeOne(f, NA_FIELDS), {
      'eth.dst': '02:00:00:00:00:05', 'eth.src': '02:00:00:00:00:06', 'ipv6.src': 'fd00:1::6', 'ipv6.dst': 'fd00:1::5', 'ipv6.hlim': '255',
      'icmpv6.type': '136', 'icmpv6.checksum.status': '1', 'icmpv6.nd.na.flag.r': '0', 'icmpv6.nd.na.flag.s': '1', 'icmpv6.nd.na.flag.o': '1',
      'icmpv6.nd.na.target_address': 'fd00:1::6', 'icmpv6.opt.type': '2', 'icmpv6.opt.linkaddr': '02:00:00:00:00:06',
    });
    assert.equal(r.v.counters.ndAnswered, 1);
  });

  it('the IPv6 gateway and a CA of another subnet are answered with the router MAC, router flag set', () => {
    const r = rig();
    for (const target of ['fd00:1::1', 'fd00:2::7']) {
      const m = fwd(r, ns({ src: MAC5, sip: 'fd00:1::5', target }), 1, 5001);
      const f = out(r, m);
      assert.deepEqual(dests(m), [1], target);
      assert.equal(readMac(f, 6), ROUTER_MAC);
      assert.equal(f[54], 136);
      assert.equal(f[58]! & 0xe0, 0xe0, 'R, S and O');
      assert.equal(readMac(f, 80), ROUTER_MAC);
      assert.equal(formatIpv6Address(f, 22), target);
      assert.ok(icmpv6ChecksumOk(f));
    }
  });

  it('a unicast NUD probe and an NS without a source link-layer option are answered too (never sent across)', () => {
    const r = rig();
    const m = fwd(r, ns({ src: MAC5, sip: 'fd00:1::5', target: 'fd00:1::6', dst: MAC6, dip: 'fd00:1::6', sll: false }), 1, 5001);
    assert.deepEqual(dests(m), [1]);
    const f = out(r, m);
    assert.equal(f.length, 86);
    assert.equal(readMac(f, 0), MAC5);
    assert.equal(readMac(f, 80), MAC6);
    assert.ok(icmpv6ChecksumOk(f));
  });

  it('DAD for another VM\'s address is defended (unsolicited NA to all-nodes); DAD for its own address is not answered', () => {
    const r = rig();
    const m = fwd(r, ns({ src: MAC_NOREC, sip: '::', target: 'fd00:1::6', sll: false }), 5, 5001);
    assert.deepEqual(dests(m), [5]);
    const f = out(r, m);
    assert.equal(readMac(f, 0), 0x33_33_00_00_00_01);
    assert.equal(formatIpv6Address(f, 38), 'ff02::1');
    assert.equal(f[58]! & 0xe0, 0x20, 'override only: not solicited');
    assert.ok(icmpv6ChecksumOk(f));
    const own = fwd(r, ns({ src: MAC5, sip: '::', target: 'fd00:1::5', sll: false }), 1, 5001);
    assert.equal(own.consumed, false);
    assert.equal(own.drop, null);
    assert.deepEqual(dests(own), [5], 'kept inside the VSID on this host, not answered, not sent across');
  });

  it('tenants are isolated: blue gets blue\'s answer, an unknown target is dropped, link-local stays on the host', () => {
    const r = rig();
    const blue = fwd(r, ns({ src: MAC5, sip: 'fd00:1::5', target: 'fd00:1::6' }), 3, 6001);
    assert.deepEqual(dests(blue), [3]);
    const unknown = fwd(r, ns({ src: MAC5, sip: 'fd00:1::5', target: 'fd00:1::99' }), 1, 5001);
    assert.equal(unknown.drop, 'no-lookup-record');
    const ll = fwd(r, ns({ src: MAC5, sip: 'fe80::5', target: 'fe80::6' }), 1, 5001);
    assert.equal(ll.drop, null);
    assert.deepEqual(dests(ll), [5]);
  });
});

describe('IPv6 announcements', () => {
  it('a newly local IPv6 record is announced into its VSID with an unsolicited NA (override, to all-nodes)', () => {
    const r = rig();
    const nas = r.host.originated.filter((o) => o.bytes[12] === 0x86 && o.bytes[13] === 0xdd);
    // host A: vm5 (fd00:1::5) and vm8 (fd00:2::8) in red and blue
    assert.deepEqual(nas.map((o) => o.vsid).sort(), [5001, 5002, 6001, 6002]);
    const na = nas.find((o) => o.vsid === 5001)!.bytes;
    assert.ok(icmpv6ChecksumOk(na));
    assert.deepEqual(decodeOne(na, NA_FIELDS), {
      'eth.dst': '33:33:00:00:00:01', 'eth.src': '02:00:00:00:00:05', 'ipv6.src': 'fd00:1::5', 'ipv6.dst': 'ff02::1', 'ipv6.hlim': '255',
      'icmpv6.type': '136', 'icmpv6.checksum.status': '1', 'icmpv6.nd.na.flag.r': '0', 'icmpv6.nd.na.flag.s': '0', 'icmpv6.nd.na.flag.o': '1',
      'icmpv6.nd.na.target_address': 'fd00:1::5', 'icmpv6.opt.type': '2', 'icmpv6.opt.linkaddr': '02:00:00:00:00:05',
    });
    assert.equal(r.v.counters.unsolicitedNaSent, 4);
  });
});

describe('IPv6 unicast, tenant MTU and routing', () => {
  it('IPv6 unicast to a remote CA finds its record by MAC and goes to the uplink (encapsulation waits for PA ARP)', () => {
    const r = rig();
    const m = fwd(r, ping6({ src: MAC5, dst: MAC6, sip: 'fd00:1::5', dip: 'fd00:1::6', size: 100 }), 1, 5001);
    assert.deepEqual(dests(m), [EXT]);
    assert.equal(r.v.encapsulate(r.b, 0, 10_000), 'pa-unresolved'); // no ARP for the PA yet in this rig
  });

  it('a packet of the tenant MTU (1458) passes; one byte more becomes ICMPv6 packet too big with MTU 1458', () => {
    const r = rig();
    const ok = fwd(r, ping6({ src: MAC5, dst: MAC6, sip: 'fd00:1::5', dip: 'fd00:1::6', size: 1458 - 48 }), 1, 5001);
    assert.deepEqual(dests(ok), [EXT]);
    const big = fwd(r, ping6({ src: MAC5, dst: MAC6, sip: 'fd00:1::5', dip: 'fd00:1::6', size: 1458 - 47 }), 1, 5001);
    assert.equal(big.drop, null);
    assert.deepEqual(dests(big), [1]);
    const f = out(r, big);
    assert.equal(f.length, 14 + 1280, 'the error fills but never exceeds the IPv6 minimum MTU');
    assert.ok(icmpv6ChecksumOk(f));
    assert.equal(readU32(f, 58), 1458);
    assert.deepEqual(decodeOne(f, ['eth.dst', 'eth.src', 'ipv6.src', 'ipv6.dst', 'icmpv6.type', 'icmpv6.mtu', 'icmpv6.checksum.status', 'icmpv6.echo.sequence_number']), {
      'eth.dst': '02:00:00:00:00:05', 'eth.src': '02:58:53:00:00:01', 'ipv6.src': 'fd00:1::1;fd00:1::5', 'ipv6.dst': 'fd00:1::5;fd00:1::6',
      // the quoted echo request is cut at 1280 bytes: its checksum cannot be verified (2), the error's is good (1)
      'icmpv6.type': '2;128', 'icmpv6.mtu': '1458', 'icmpv6.checksum.status': '1;2', 'icmpv6.echo.sequence_number': '1',
    });
    assert.deepEqual(r.host.drops, [{ port: 1, reason: 'tenant-mtu-exceeded' }]);
    assert.equal(r.v.counters.packetTooBig, 1);
  });

  it('routes IPv6 between subnets of one routing domain: hop limit - 1, router MAC, destination VSID', () => {
    const r = rig();
    const remote = fwd(r, ping6({ src: MAC5, dst: ROUTER_MAC, sip: 'fd00:1::5', dip: 'fd00:2::7', size: 56 }), 1, 5001);
    assert.deepEqual(dests(remote), [EXT]);
    assert.equal(remote.vsid, 5002);
    const f = out(r, remote);
    assert.equal(f[21], 63);
    assert.equal(readMac(f, 0), MAC7);
    assert.equal(readMac(f, 6), ROUTER_MAC);
    const local = fwd(r, ping6({ src: MAC5, dst: ROUTER_MAC, sip: 'fd00:1::5', dip: 'fd00:2::8', size: 56 }), 1, 5001);
    assert.deepEqual(dests(local), [2]);
    const none = fwd(r, ping6({ src: MAC5, dst: ROUTER_MAC, sip: 'fd00:1::5', dip: 'fd00:9::8', size: 56 }), 1, 5001);
    assert.equal(none.drop, 'no-route');
    const last = fwd(r, ping6({ src: MAC5, dst: ROUTER_MAC, sip: 'fd00:1::5', dip: 'fd00:2::7', size: 56, hopLimit: 1 }), 1, 5001);
    assert.equal(last.drop, null);
    assert.deepEqual(dests(last), [1]);
    const te = out(r, last);
    assert.equal(te[54], 3, 'ICMPv6 time exceeded');
    assert.equal(te[55], 0);
    assert.equal(formatIpv6Address(te, 22), 'fd00:1::1');
    assert.equal(formatIpv6Address(te, 38), 'fd00:1::5');
    assert.ok(icmpv6ChecksumOk(te));
    assert.equal(r.v.counters.timeExceeded, 1);
    // an IPv6 customer route: fd00:99::/64 via the CA fd00:2::7 (an appliance VM on host B)
    const base = spec({ ipv6: true });
    const rr = rig({ ...base, customerRoutes: [{ rdid: base.routingDomains[0]!.id, vsid: 5001, prefix: 'fd00:99::/64', nextHop: 'fd00:2::7' }] });
    const viaRoute = fwd(rr, ping6({ src: MAC5, dst: ROUTER_MAC, sip: 'fd00:1::5', dip: 'fd00:99::42', size: 56 }), 1, 5001);
    assert.deepEqual(dests(viaRoute), [EXT]);
    assert.equal(readMac(out(rr, viaRoute), 0), MAC7);
    assert.equal(viaRoute.vsid, 5002);
    assert.deepEqual(r.host.drops, [{ port: 1, reason: 'ttl-exceeded' }]);
    assert.equal(r.v.counters.routed, 2);
  });

  it('answering an NS and forwarding IPv6 unicast allocate nothing per frame', () => {
    const r = rig();
    const nsBytes = ns({ src: MAC5, sip: 'fd00:1::5', target: 'fd00:1::6' });
    const uni = ping6({ src: MAC5, dst: MAC6, sip: 'fd00:1::5', dip: 'fd00:1::6', size: 64 });
    const m = r.b.meta[0]!;
    const base = r.b.slotStart(0) + HEADROOM;
    let answered = 0;
    let sent = 0;
    const res = measureAllocation((k) => {
      const bytes = (k & 1) === 0 ? nsBytes : uni;
      m.reset();
      m.off = base;
      r.b.slab.set(bytes, base);
      m.len = bytes.length;
      m.inPort = 1 as PortId;
      m.vsid = 5001;
      m.etherType = 0x86dd;
      m.l3Off = 14;
      r.v.forward(r.b, 0, r.ports, 10_000);
      if (m.consumed) answered++;
      else if (m.dest.count === 1) sent++;
    });
    assert.ok(answered > 0 && sent > 0);
    // one 16-byte heap number per frame would show 1.6 MB over the 100,000 rounds; a few KB is one-off JIT state
    assert.ok(res.gcs === 0 && res.newSpaceBytes < 10_000, JSON.stringify(res));
  });
});
