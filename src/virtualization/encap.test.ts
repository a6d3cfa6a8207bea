// virtualization/encap.test.ts: NVGRE/VXLAN encapsulation in headroom, IP rewrite with incremental checksums (full,
// partial, GSO, UDP 0, fragments), the flow hash, round trips through decap.ts, tshark's reading, no allocation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame, ip4, mac } from '../../test/helpers/frame-builder.js';
import { prng } from '../../test/helpers/prng.js';
import { bytesOf, classify, load, measureAllocation, place, tsharkFields } from '../../test/fixtures/virtualization/kit.js';
import { Batch, GSO_NONE, GSO_TCPV4, slotSizeFor, type FrameMeta } from '../dataplane/frame.js';
import { completeChecksum, segmentFrame } from '../dataplane/offload.js';
import { readU16, readU32, writeU16 } from '../wire/byte-order.js';
import { checksumValid, foldSum, pseudoSumIpv4 } from '../wire/checksum.js';
import { parseEthernet, readMac } from '../wire/ethernet.js';
import { parseGre } from '../wire/gre.js';
import { IPPROTO_TCP, IPPROTO_UDP, parseIpv4 } from '../wire/ipv4.js';
import { parseUdp } from '../wire/udp.js';
import { parseVxlan } from '../wire/vxlan.js';
import { ArpCache, arpReplyInPlace } from './arp-cache.js';
import { decapInPlace, parseUnderlay, rewriteIn, Underlay, UNDERLAY_NVGRE, UNDERLAY_VXLAN } from './decap.js';
import { encapNvgre, encapVxlan, flowHash, NVGRE_PREPEND, Outer, rewriteOut, VXLAN_PREPEND } from './encap.js';
import { fragNeededInPlace } from './icmp-reply.js';

const VM1 = mac('02:00:00:00:00:01');
const VM2 = mac('02:00:00:00:00:02');
const UPLINK = mac('02:aa:00:00:00:01');
const NEXTHOP = mac('02:bb:00:00:00:01');
const PA1 = ip4('192.0.2.1');
const PA2 = ip4('192.0.2.2');

function outer(srcPa = PA1, dstPa = PA2, srcMac = UPLINK, dstMac = NEXTHOP): Outer {
  const o = new Outer();
  o.srcMac = srcMac;
  o.dstMac = dstMac;
  o.srcPa = srcPa;
  o.dstPa = dstPa;
  return o;
}

function tcpFrame(payload = 100, src = '10.0.0.5', dst = '10.0.0.6'): Uint8Array {
  return frame()
    .eth({ src: VM1, dst: VM2 })
    .ipv4({ src, dst, df: true, id: 0x1234 })
    .tcp({ sport: 40000, dport: 5201, seq: 0x01020304, ack: 0x0a0b0c0d, flags: 'PA' })
    .payload(payload)
    .bytes();
}

function udpFrame(payload = 33, checksum?: number, src = '10.0.0.5', dst = '10.0.0.6'): Uint8Array {
  return frame()
    .eth({ src: VM1, dst: VM2 })
    .ipv4({ src, dst })
    .udp(checksum === undefined ? { sport: 40001, dport: 7777 } : { sport: 40001, dport: 7777, checksum })
    .payload(payload)
    .bytes();
}

/** Does the IPv4 + TCP/UDP frame at u8[off..off+len) carry valid checksums (UDP 0 = none is valid)? */
function checksumsOk(u8: Uint8Array, off: number): { ip: boolean; l4: boolean } {
  const ip = off + 14;
  const ihl = (u8[ip]! & 15) * 4;
  const tot = readU16(u8, ip + 2);
  const proto = u8[ip + 9]!;
  const l4len = tot - ihl;
  const ps = pseudoSumIpv4(readU32(u8, ip + 12), readU32(u8, ip + 16), proto, l4len);
  const ipOk = checksumValid(u8, ip, ihl);
  if (proto === IPPROTO_UDP && readU16(u8, ip + ihl + 6) === 0) return { ip: ipOk, l4: true };
  return { ip: ipOk, l4: checksumValid(u8, ip + ihl, l4len, ps) };
}

describe('encap: NVGRE', () => {
  it('writes outer Ethernet, IPv4 (DF, TTL 64, checksum) and GRE key vsid<<8|flowId before the frame', () => {
    const inner = tcpFrame();
    const { b, m } = load(inner);
    const off0 = m.off;
    assert.equal(encapNvgre(b, m, outer(), 5001, 0x2a, 0x4321), true);
    assert.equal(m.off, off0 - NVGRE_PREPEND);
    assert.equal(m.len, inner.length + 42);
    const u8 = b.slab;
    const eth = parseEthernet(u8, m.off, m.len);
    assert.ok(eth.ok);
    assert.equal(eth.value.dst, NEXTHOP);
    assert.equal(eth.value.src, UPLINK);
    assert.equal(eth.value.etherType, 0x0800);
    const ip = parseIpv4(u8, m.off + 14, m.len - 14);
    assert.ok(ip.ok, ip.ok ? '' : ip.reason);
    assert.equal(ip.value.df, true);
    assert.equal(ip.value.mf, false);
    assert.equal(ip.value.ttl, 64);
    assert.equal(ip.value.protocol, 47);
    assert.equal(ip.value.id, 0x4321);
    assert.equal(ip.value.checksumOk, true);
    assert.equal(ip.value.totalLength, 20 + 8 + inner.length);
    assert.equal(ip.value.src, PA1);
    assert.equal(ip.value.dst, PA2);
    const gre = parseGre(u8, m.off + 34, m.len - 34);
    assert.ok(gre.ok);
    assert.equal(gre.value.flags, 0x2000);
    assert.equal(gre.value.protocol, 0x6558);
    assert.equal(gre.value.key, 5001 * 256 + 0x2a);
    assert.equal(gre.value.vsid, 5001);
    assert.equal(gre.value.flowId, 0x2a);
    assert.deepEqual(u8.slice(m.off + 42, m.off + m.len), inner);
  });

  it('masks the VSID to 24 bits and FlowID to 8, and adjusts csumStart and hdrLen', () => {
    const { b, m } = load(tcpFrame());
    m.needsCsum = true;
    m.csumStart = 34;
    m.csumOffset = 16;
    m.gsoType = GSO_TCPV4;
    m.gsoSize = 1000;
    m.hdrLen = 54;
    encapNvgre(b, m, outer(), 0xffffff, 0x1ff, 0);
    assert.equal(readU32(b.slab, m.off + 38), 0xffffffff);
    assert.equal(m.csumStart, 34 + 42);
    assert.equal(m.csumOffset, 16);
    assert.equal(m.hdrLen, 54 + 42);
  });

  it('refuses, frame untouched, without headroom', () => {
    const inner = tcpFrame(10);
    const b = new Batch(1, slotSizeFor(256));
    const m = b.meta[0]!;
    m.reset();
    b.slab.set(inner, 20);
    m.off = 20;
    m.len = inner.length;
    const before = b.slab.slice();
    assert.equal(encapNvgre(b, m, outer(), 5001, 1, 1), false);
    assert.equal(encapVxlan(b, m, outer(), 5001, 1, 1), false);
    assert.equal(m.off, 20);
    assert.deepEqual(b.slab, before);
  });
});

describe('encap: VXLAN', () => {
  it('writes outer IPv4 (proto 17, DF), UDP to 4789 with checksum 0, VXLAN flags 0x08 and VNI', () => {
    const inner = udpFrame();
    const { b, m } = load(inner);
    const off0 = m.off;
    m.needsCsum = true;
    m.csumStart = 34;
    m.csumOffset = 6;
    assert.equal(encapVxlan(b, m, outer(), 5001, 50000, 7), true);
    assert.equal(m.off, off0 - VXLAN_PREPEND);
    assert.equal(m.len, inner.length + 50);
    assert.equal(m.csumStart, 84);
    const u8 = b.slab;
    const ip = parseIpv4(u8, m.off + 14, m.len - 14);
    assert.ok(ip.ok);
    assert.equal(ip.value.protocol, 17);
    assert.equal(ip.value.df, true);
    assert.equal(ip.value.ttl, 64);
    assert.equal(ip.value.checksumOk, true);
    assert.equal(ip.value.totalLength, 20 + 8 + 8 + inner.length);
    const udp = parseUdp(u8, m.off + 34, m.len - 34);
    assert.ok(udp.ok);
    assert.equal(udp.value.sport, 50000);
    assert.equal(udp.value.dport, 4789);
    assert.equal(udp.value.checksum, 0);
    assert.equal(udp.value.length, 8 + 8 + inner.length);
    const vx = parseVxlan(u8, m.off + 42, m.len - 42);
    assert.ok(vx.ok);
    assert.equal(vx.value.flags, 0x08);
    assert.equal(vx.value.vni, 5001);
    assert.equal(readU32(u8, m.off + 42), 0x08000000);
    assert.equal(u8[m.off + 49], 0);
    assert.deepEqual(u8.slice(m.off + 50, m.off + m.len), inner);
  });
});

describe('encap + decap: round trips', () => {
  for (const kind of ['nvgre', 'vxlan'] as const) {
    it(`${kind}: parseUnderlay + decapInPlace give back the identical inner frame and offload offsets`, () => {
      const r = prng(kind === 'nvgre' ? 11 : 12);
      const u = new Underlay();
      for (let n = 0; n < 200; n++) {
        const inner =
          n % 3 === 0 ? tcpFrame(Math.floor(r() * 1400)) : n % 3 === 1 ? udpFrame(Math.floor(r() * 1400)) : frame().eth({ src: VM1, dst: 'ff:ff:ff:ff:ff:ff' }).arp().pad().bytes();
        const { b, m } = load(inner);
        const off0 = m.off;
        const vsid = 4096 + Math.floor(r() * (16777214 - 4096));
        const flow = Math.floor(r() * 256);
        const csum = n % 3 !== 2 && n % 2 === 0; // a partial TCP/UDP checksum on every other IP frame
        m.needsCsum = csum;
        m.csumStart = csum ? 34 : 0;
        m.csumOffset = csum ? (n % 3 === 0 ? 16 : 6) : 0;
        m.gsoType = n % 4 === 0 ? GSO_TCPV4 : GSO_NONE;
        m.hdrLen = m.gsoType !== GSO_NONE ? 54 : 0;
        m.gsoSize = m.gsoType !== GSO_NONE ? 1000 : 0;
        m.vlan = 7;
        const ok = kind === 'nvgre' ? encapNvgre(b, m, outer(), vsid, flow, n) : encapVxlan(b, m, outer(), vsid, 49152 + n, n);
        assert.equal(ok, true);
        classify(b.slab, m); // what classifyIngress does on the uplink
        assert.equal(parseUnderlay(b.slab, m, u), null);
        assert.equal(u.kind, kind === 'nvgre' ? UNDERLAY_NVGRE : UNDERLAY_VXLAN);
        assert.equal(u.vsid, vsid);
        if (kind === 'nvgre') assert.equal(u.flowId, flow);
        assert.equal(u.srcIp, PA1);
        assert.equal(u.dstIp, PA2);
        decapInPlace(m, u);
        assert.equal(m.off, off0);
        assert.equal(m.len, inner.length);
        assert.equal(m.vlan, 0);
        assert.deepEqual(bytesOf(b, m), inner);
        assert.equal(m.csumStart, csum ? 34 : 0);
        assert.equal(m.csumOffset, csum ? (n % 3 === 0 ? 16 : 6) : 0);
        assert.equal(m.needsCsum, csum);
        assert.equal(m.hdrLen, n % 4 === 0 ? 54 : 0);
        assert.equal(m.gsoType, n % 4 === 0 ? GSO_TCPV4 : GSO_NONE);
      }
    });
  }
});

describe('rewrite: CA <-> PA with incremental checksums', () => {
  const CA1 = ip4('10.0.0.5'), CA2 = ip4('10.0.0.6');
  const RPA1 = ip4('198.51.100.17'), RPA2 = ip4('203.0.113.250');

  it('TCP: addresses and MACs rewritten, IP and TCP checksums verify; rewriteIn restores every byte', () => {
    const orig = tcpFrame(101);
    const { b, m } = load(orig);
    assert.equal(rewriteOut(b, m, outer(RPA1, RPA2)), null);
    const u8 = b.slab;
    assert.equal(readMac(u8, m.off), NEXTHOP);
    assert.equal(readMac(u8, m.off + 6), UPLINK);
    assert.equal(readU32(u8, m.off + 26), RPA1);
    assert.equal(readU32(u8, m.off + 30), RPA2);
    assert.deepEqual(checksumsOk(u8, m.off), { ip: true, l4: true });
    assert.equal(rewriteIn(b, m, CA1, CA2, VM1, VM2), null);
    assert.equal(m.dstMac, VM2);
    assert.equal(m.srcMac, VM1);
    assert.deepEqual(bytesOf(b, m), orig);
  });

  it('UDP checksum 0 stays 0; the IP checksum still verifies', () => {
    const orig = udpFrame(40, 0);
    const { b, m } = load(orig);
    assert.equal(rewriteOut(b, m, outer(RPA1, RPA2)), null);
    assert.equal(readU16(b.slab, m.off + 40), 0);
    assert.equal(checksumsOk(b.slab, m.off).ip, true);
    assert.equal(rewriteIn(b, m, CA1, CA2, VM1, VM2), null);
    assert.deepEqual(bytesOf(b, m), orig);
  });

  it('UDP: an updated checksum of 0 is sent as 0xffff, which verifies', () => {
    const orig = udpFrame(21);
    const { b, m } = load(orig);
    // try every low half of the source PA: exactly the ones that make the ones'-complement sum zero give 0xffff
    let hits = 0;
    for (let lo = 0; lo < 0x10000; lo++) {
      place(b, m, orig);
      const srcPa = ((RPA1 & 0xffff0000) >>> 0) + lo;
      assert.equal(rewriteOut(b, m, outer(srcPa, RPA2)), null);
      const c = readU16(b.slab, m.off + 40);
      assert.notEqual(c, 0, 'never 0 ("no checksum")');
      if (c === 0xffff) {
        hits++;
        assert.deepEqual(checksumsOk(b.slab, m.off), { ip: true, l4: true });
        assert.equal(rewriteIn(b, m, CA1, CA2, VM1, VM2), null);
        assert.deepEqual(bytesOf(b, m), orig);
      }
    }
    assert.ok(hits >= 1, 'some source PA makes the UDP checksum zero');
  });

  it('partial checksum (needsCsum): the pseudo-header seed is updated; completing it gives a valid checksum', () => {
    for (const proto of [IPPROTO_TCP, IPPROTO_UDP]) {
      const full = proto === IPPROTO_TCP ? tcpFrame(333) : udpFrame(333);
      const field = proto === IPPROTO_TCP ? 16 : 6;
      const seedOf = (u8: Uint8Array, off: number): number =>
        foldSum(pseudoSumIpv4(readU32(u8, off + 26), readU32(u8, off + 30), proto, readU16(u8, off + 16) - 20));
      const orig = full.slice();
      writeU16(orig, 34 + field, seedOf(orig, 0));
      const { b, m } = load(orig);
      m.needsCsum = true;
      m.csumStart = 34;
      m.csumOffset = field;
      assert.equal(rewriteOut(b, m, outer(RPA1, RPA2)), null);
      assert.equal(readU16(b.slab, m.off + 34 + field), seedOf(b.slab, m.off), 'seed = new pseudo-header sum');
      assert.equal(checksumsOk(b.slab, m.off).ip, true);
      assert.equal(rewriteIn(b, m, CA1, CA2, VM1, VM2), null);
      assert.deepEqual(bytesOf(b, m), orig, 'round trip restores the seed');
      rewriteOut(b, m, outer(RPA1, RPA2));
      completeChecksum(b.slab, m);
      assert.equal(m.needsCsum, false);
      assert.equal(m.drop, null);
      assert.deepEqual(checksumsOk(b.slab, m.off), { ip: true, l4: true });
    }
  });

  it('GSO super-frame: seed updated, software segmentation yields valid segments with the PAs', () => {
    const payload = 4000;
    const orig = tcpFrame(payload);
    const seed = foldSum(pseudoSumIpv4(ip4('10.0.0.5'), ip4('10.0.0.6'), IPPROTO_TCP, 20 + payload));
    writeU16(orig, 50, seed);
    const { b, m } = load(orig, 8192);
    m.gsoType = GSO_TCPV4;
    m.gsoSize = 1400;
    m.hdrLen = 54;
    m.needsCsum = true;
    m.csumStart = 34;
    m.csumOffset = 16;
    assert.equal(rewriteOut(b, m, outer(RPA1, RPA2)), null);
    const out = new Batch(8, slotSizeFor(2048));
    const n = segmentFrame(b, 0, out, 0, 8);
    assert.equal(n, 3);
    for (let k = 0; k < n; k++) {
      const om = out.meta[k]!;
      assert.equal(readU32(out.slab, om.off + 26), RPA1);
      assert.equal(readU32(out.slab, om.off + 30), RPA2);
      assert.deepEqual(checksumsOk(out.slab, om.off), { ip: true, l4: true }, `segment ${k}`);
    }
  });

  it('fragments: a first fragment gets the datagram checksum fix; a later one only the IP header', () => {
    const whole = udpFrame(64);
    // first fragment: the datagram's first 24 bytes (UDP header + 16), MF set
    const first = frame()
      .eth({ src: VM1, dst: VM2 })
      .ipv4({ src: '10.0.0.5', dst: '10.0.0.6', mf: true, protocol: IPPROTO_UDP })
      .payload(whole.slice(34, 34 + 24))
      .bytes();
    const wholeLoaded = load(whole);
    rewriteOut(wholeLoaded.b, wholeLoaded.m, outer(RPA1, RPA2));
    const expectUdpCsum = readU16(wholeLoaded.b.slab, wholeLoaded.m.off + 40);
    const f1 = load(first);
    assert.equal(rewriteOut(f1.b, f1.m, outer(RPA1, RPA2)), null);
    assert.equal(readU16(f1.b.slab, f1.m.off + 40), expectUdpCsum);
    assert.equal(checksumsOk(f1.b.slab, f1.m.off).ip, true);

    const later = frame()
      .eth({ src: VM1, dst: VM2 })
      .ipv4({ src: '10.0.0.5', dst: '10.0.0.6', fragmentOffset: 3, protocol: IPPROTO_UDP })
      .payload(16)
      .bytes();
    const f2 = load(later);
    assert.equal(rewriteOut(f2.b, f2.m, outer(RPA1, RPA2)), null);
    assert.deepEqual(f2.b.slab.slice(f2.m.off + 34, f2.m.off + f2.m.len), later.slice(34), 'payload untouched');
    assert.equal(checksumsOk(f2.b.slab, f2.m.off).ip, true);
    assert.equal(rewriteIn(f2.b, f2.m, CA1, CA2, VM1, VM2), null);
    assert.deepEqual(bytesOf(f2.b, f2.m), later);
  });

  it('ICMP and other protocols: only the IP header (and MACs) change, their checksums stay valid', () => {
    const orig = frame().eth({ src: VM1, dst: VM2 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).icmp({ id: 7, seq: 1 }).payload(56).bytes();
    const { b, m } = load(orig);
    assert.equal(rewriteOut(b, m, outer(RPA1, RPA2)), null);
    assert.deepEqual(b.slab.slice(m.off + 34, m.off + m.len), orig.slice(34));
    assert.equal(checksumValid(b.slab, m.off + 14, 20), true);
    assert.equal(checksumValid(b.slab, m.off + 34, m.len - 34), true);
  });

  it('refuses non-IPv4 and malformed frames with rewrite-unsupported, frame untouched', () => {
    const cases: [string, Uint8Array][] = [
      ['ipv6', frame().eth({ src: VM1, dst: VM2 }).ipv6().udp().payload(8).bytes()],
      ['arp', frame().eth({ src: VM1, dst: VM2 }).arp().bytes()],
      ['tcp header cut', frame().eth({ src: VM1, dst: VM2 }).ipv4({ protocol: IPPROTO_TCP }).payload(10).bytes()],
      ['udp header cut', frame().eth({ src: VM1, dst: VM2 }).ipv4({ protocol: IPPROTO_UDP }).payload(7).bytes()],
      ['total length beyond frame', frame().eth({ src: VM1, dst: VM2 }).ipv4({ totalLength: 200 }).udp().payload(8).bytes()],
      ['ihl 4', frame().eth({ src: VM1, dst: VM2 }).ipv4({ ihl: 4 }).udp().payload(8).bytes()],
    ];
    for (const [name, bytes] of cases) {
      const { b, m } = load(bytes);
      const before = b.slab.slice();
      assert.equal(rewriteOut(b, m, outer(RPA1, RPA2)), 'rewrite-unsupported', name);
      assert.deepEqual(b.slab, before, name);
    }
    // truncated at every length: a reason or a rewrite, never a throw, never a write past the frame
    const t = tcpFrame(20);
    for (let len = 0; len <= t.length; len++) {
      const { b, m } = load(t);
      m.len = len;
      const tail = b.slab.slice(m.off + len);
      const r = rewriteOut(b, m, outer(RPA1, RPA2));
      assert.ok(r === null || r === 'rewrite-unsupported');
      assert.equal(r === null, len === t.length, `len ${len}`);
      assert.deepEqual(b.slab.slice(m.off + len), tail);
    }
  });

  it('random frames: rewriteOut verifies and rewriteIn restores the exact bytes (500 cases)', () => {
    const r = prng(3);
    const rndIp = (): number => Math.floor(r() * 0x1_0000_0000);
    for (let n = 0; n < 500; n++) {
      const src = rndIp(), dst = rndIp();
      const len = Math.floor(r() * 300);
      const opts = r() < 0.3 ? new Uint8Array([1, 1, 1, 1]) : undefined;
      const ipSpec = opts === undefined ? { src, dst } : { src, dst, options: opts };
      const f = frame().eth({ src: VM1, dst: VM2 }).ipv4(ipSpec);
      const kind = n % 3;
      const orig = (kind === 0 ? f.tcp({ sport: n, dport: 80 }) : kind === 1 ? f.udp({ sport: n, dport: 53 }) : f.udp({ sport: n, dport: 53, checksum: 0 }))
        .payload(len)
        .bytes();
      const { b, m } = load(orig);
      const o = outer(rndIp(), rndIp(), NEXTHOP + n, UPLINK + n);
      assert.equal(rewriteOut(b, m, o), null);
      assert.deepEqual(checksumsOk(b.slab, m.off), { ip: true, l4: true }, `case ${n}`);
      assert.equal(rewriteIn(b, m, src, dst, VM1, VM2), null);
      assert.deepEqual(bytesOf(b, m), orig, `case ${n}`);
    }
  });
});

describe('flowHash', () => {
  it('is deterministic, separates flows, and spreads FlowIDs over all 256 values', () => {
    const counts = new Array<number>(256).fill(0);
    const seen = new Set<number>();
    for (let p = 0; p < 8192; p++) {
      const f = frame().eth({ src: VM1, dst: VM2 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).tcp({ sport: 1024 + p, dport: 443 }).bytes();
      const { b, m } = load(f);
      const h = flowHash(b.slab, m);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 30);
      assert.equal(flowHash(b.slab, m), h);
      seen.add(h);
      counts[h & 0xff]!++;
    }
    assert.ok(seen.size > 8180, `${seen.size} distinct hashes of 8192 flows`);
    // 32 expected per bucket: a fair hash stays within [8, 64] everywhere
    assert.ok(Math.min(...counts) >= 8 && Math.max(...counts) <= 64, `bucket range ${Math.min(...counts)}..${Math.max(...counts)}`);
  });

  it('ignores payload, TTL and the IP id; uses ports; fragments of one datagram hash alike', () => {
    const h = (f: Uint8Array): number => {
      const { b, m } = load(f);
      return flowHash(b.slab, m);
    };
    const base = (): ReturnType<typeof frame> => frame().eth({ src: VM1, dst: VM2 });
    const a = h(base().ipv4({ ttl: 64, id: 1 }).udp({ sport: 1, dport: 2 }).payload(10).bytes());
    assert.equal(h(base().ipv4({ ttl: 3, id: 99 }).udp({ sport: 1, dport: 2 }).payload(99).bytes()), a);
    assert.notEqual(h(base().ipv4().udp({ sport: 1, dport: 3 }).bytes()), a);
    assert.notEqual(h(base().ipv4({ dst: '10.0.0.7' }).udp({ sport: 1, dport: 2 }).bytes()), a);
    const f1 = h(base().ipv4({ mf: true, protocol: 17 }).payload(16).bytes());
    const f2 = h(base().ipv4({ fragmentOffset: 2, protocol: 17 }).payload(16).bytes());
    assert.equal(f1, f2);
    const v6a = h(base().ipv6({ src: 'fd00::1', dst: 'fd00::2' }).tcp({ sport: 5, dport: 6 }).bytes());
    const v6b = h(base().ipv6({ src: 'fd00::1', dst: 'fd00::3' }).tcp({ sport: 5, dport: 6 }).bytes());
    assert.notEqual(v6a, v6b);
    const arp1 = h(frame().eth({ src: VM1, dst: 'ff:ff:ff:ff:ff:ff' }).arp().bytes());
    const arp2 = h(frame().eth({ src: VM2, dst: 'ff:ff:ff:ff:ff:ff' }).arp().bytes());
    assert.notEqual(arp1, arp2);
  });

  it('never throws on truncated frames', () => {
    const f = frame().eth({ src: VM1, dst: VM2 }).ipv6().tcp().bytes();
    const g = tcpFrame(0);
    for (const x of [f, g]) {
      for (let len = 0; len <= x.length; len++) {
        const { b, m } = load(x);
        m.len = len;
        const h = flowHash(b.slab, m);
        assert.ok(Number.isInteger(h) && h >= 0);
      }
    }
  });
});

describe('tshark 4.0 reads what encap and rewrite emit', () => {
  it('NVGRE key/proto, VXLAN VNI, DF, and good IP/TCP/UDP checksums (outer and inner)', () => {
    const frames: Uint8Array[] = [];
    let m: FrameMeta;
    let b: Batch;
    ({ b, m } = load(tcpFrame(200)));
    encapNvgre(b, m, outer(), 5001, 0x2a, 1);
    frames.push(bytesOf(b, m));
    ({ b, m } = load(udpFrame(77)));
    encapVxlan(b, m, outer(), 5001, 51000, 2);
    frames.push(bytesOf(b, m));
    ({ b, m } = load(tcpFrame(123)));
    rewriteOut(b, m, outer(ip4('198.51.100.17'), ip4('203.0.113.250')));
    frames.push(bytesOf(b, m));
    ({ b, m } = load(udpFrame(45)));
    rewriteOut(b, m, outer(ip4('198.51.100.17'), ip4('203.0.113.250')));
    frames.push(bytesOf(b, m));
    ({ b, m } = load(udpFrame(45, 0)));
    rewriteOut(b, m, outer(ip4('198.51.100.17'), ip4('203.0.113.250')));
    frames.push(bytesOf(b, m));
    const t = tsharkFields(frames, [
      'gre.key',
      'gre.proto',
      'gre.flags_and_version',
      'vxlan.vni',
      'vxlan.flags',
      'udp.dstport',
      'ip.flags.df',
      'ip.ttl',
      'ip.src',
      'ip.dst',
      'ip.checksum.status',
      'tcp.checksum.status',
      'udp.checksum.status',
      '_ws.malformed',
    ]);
    assert.equal(t.length, 5);
    const [nv, vx, rwTcp, rwUdp, rwUdp0] = t as [Record<string, string[]>, Record<string, string[]>, Record<string, string[]>, Record<string, string[]>, Record<string, string[]>];
    for (const f of t) assert.deepEqual(f['_ws.malformed'], []);
    assert.deepEqual(nv['gre.key'], ['0x0013892a']);
    assert.deepEqual(nv['gre.proto'], ['0x6558']);
    assert.deepEqual(nv['gre.flags_and_version'], ['0x2000']);
    assert.deepEqual(nv['ip.flags.df'], ['1', '1']);
    assert.deepEqual(nv['ip.ttl']?.[0], '64');
    assert.deepEqual(nv['ip.src'], ['192.0.2.1', '10.0.0.5']);
    assert.deepEqual(nv['ip.checksum.status'], ['1', '1']);
    assert.deepEqual(nv['tcp.checksum.status'], ['1']);
    assert.deepEqual(vx['vxlan.vni'], ['5001']);
    assert.deepEqual(vx['vxlan.flags'], ['0x0800']);
    assert.deepEqual(vx['udp.dstport'], ['4789', '7777']);
    assert.deepEqual(vx['ip.flags.df'], ['1', '0']);
    assert.deepEqual(vx['ip.checksum.status'], ['1', '1']);
    assert.deepEqual(vx['udp.checksum.status'], ['3', '1'], 'outer UDP checksum 0 (not present), inner good');
    assert.deepEqual(rwTcp['ip.src'], ['198.51.100.17']);
    assert.deepEqual(rwTcp['ip.dst'], ['203.0.113.250']);
    assert.deepEqual(rwTcp['ip.checksum.status'], ['1']);
    assert.deepEqual(rwTcp['tcp.checksum.status'], ['1']);
    assert.deepEqual(rwUdp['udp.checksum.status'], ['1']);
    assert.deepEqual(rwUdp['ip.checksum.status'], ['1']);
    assert.deepEqual(rwUdp0['udp.checksum.status'], ['3']);
    assert.deepEqual(rwUdp0['ip.checksum.status'], ['1']);
  });
});

describe('mechanism: no allocation per frame (100,000 calls each, high VSIDs, PAs and MACs above 2^31)', () => {
  const HI_PA1 = ip4('203.0.113.1'), HI_PA2 = ip4('203.0.113.2');
  const HI_MAC1 = mac('fe:ed:fa:ce:be:ef'), HI_MAC2 = mac('fa:ce:b0:0c:ff:fe');
  const o = outer(HI_PA1, HI_PA2, HI_MAC1, HI_MAC2);
  const tcp = frame().eth({ src: HI_MAC1, dst: HI_MAC2 }).ipv4({ src: '192.168.7.5', dst: '192.168.7.6', df: true }).tcp().payload(200).bytes();
  const cases: [string, () => (k: number) => void][] = [
    ['encapNvgre', () => {
      const { b, m } = load(tcp);
      const off = m.off;
      return (k) => {
        m.off = off;
        m.len = tcp.length;
        encapNvgre(b, m, o, 16777214, k & 0xff, k);
      };
    }],
    ['encapVxlan', () => {
      const { b, m } = load(tcp);
      const off = m.off;
      return (k) => {
        m.off = off;
        m.len = tcp.length;
        encapVxlan(b, m, o, 16777214, 49152 + (k & 0x3fff), k);
      };
    }],
    ['flowHash', () => {
      const { b, m } = load(tcp);
      let acc = 0;
      return () => {
        acc ^= flowHash(b.slab, m);
      };
    }],
    ['rewriteOut + rewriteIn', () => {
      const { b, m } = load(tcp);
      const ca1 = ip4('192.168.7.5'), ca2 = ip4('192.168.7.6');
      return () => {
        rewriteOut(b, m, o);
        rewriteIn(b, m, ca1, ca2, HI_MAC1, HI_MAC2);
      };
    }],
    ...(['nvgre', 'vxlan'] as const).map((kind): [string, () => (k: number) => void] => [
      `parseUnderlay + decapInPlace (${kind})`,
      () => {
        const { b, m } = load(tcp);
        if (kind === 'nvgre') encapNvgre(b, m, o, 16777214, 7, 1);
        else encapVxlan(b, m, o, 16777214, 50000, 1);
        const off = m.off, len = m.len;
        const u = new Underlay();
        return () => {
          m.off = off;
          m.len = len;
          m.etherType = 0x0800;
          m.l3Off = 14;
          if (parseUnderlay(b.slab, m, u) === null) decapInPlace(m, u);
        };
      },
    ]),
    ['parseUnderlay (ARP)', () => {
      const { b, m } = load(frame().eth({ src: HI_MAC1, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ sha: HI_MAC1, spa: HI_PA1, tpa: HI_PA2 }).pad().bytes());
      const u = new Underlay();
      return () => {
        parseUnderlay(b.slab, m, u);
      };
    }],
    ['arpReplyInPlace', () => {
      const req = frame().eth({ src: HI_MAC1, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ sha: HI_MAC1, spa: HI_PA1, tpa: HI_PA2 }).pad().bytes();
      const { b, m } = load(req);
      const off = m.off;
      return () => {
        b.slab.set(req, off);
        arpReplyInPlace(b.slab, m, HI_MAC2);
      };
    }],
    ['fragNeededInPlace', () => {
      const big = frame().eth({ src: HI_MAC1, dst: HI_MAC2 }).ipv4({ src: '192.168.7.5', dst: '192.168.7.6', df: true }).tcp().payload(1400).bytes();
      const { b, m } = load(big);
      const off = m.off;
      const from = ip4('192.168.7.1');
      return () => {
        b.slab.set(big, off);
        m.len = big.length;
        fragNeededInPlace(b.slab, m, 1458, from, HI_MAC2);
      };
    }],
    ['ArpCache.lookup / wantRequest', () => {
      const cache = new ArpCache();
      cache.learn(HI_PA2, HI_MAC2, 0);
      let acc = 0;
      return (k) => {
        if (cache.lookup(HI_PA2, k) === HI_MAC2 && !cache.wantRequest(HI_PA2, k)) acc++;
      };
    }],
  ];
  for (const [name, make] of cases) {
    it(name, () => {
      const r = measureAllocation(make());
      console.log(JSON.stringify({ name, ...r }));
      assert.equal(r.gcs, 0, `${name}: ${r.gcs} garbage collections`);
      assert.ok(r.newSpaceBytes < 100_000, `${name}: ${r.newSpaceBytes} bytes over 100,000 calls`);
    });
  }

  it('the probe itself sees one heap number per call', () => {
    const sink = new Float64Array(1);
    let box: unknown = null;
    const r = measureAllocation((k) => {
      box = k + 0.5; // a double stored in an untyped slot: a fresh heap number each time
      sink[0] = box as number;
    });
    assert.ok(r.gcs > 0 || r.newSpaceBytes > 1_000_000, JSON.stringify(r));
  });
});
