// virtualization/icmp-reply.test.ts: ICMP fragmentation needed / time exceeded written over the offending frame:
// addresses, quote, checksums, offload state, the RFC 1122 cases that get no error, and tshark's reading.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame, ip4, mac } from '../../test/helpers/frame-builder.js';
import { bytesOf, load, tsharkFields } from '../../test/fixtures/virtualization/kit.js';
import { GSO_NONE, GSO_TCPV4, type FrameMeta } from '../dataplane/frame.js';
import { parseEthernet } from '../wire/ethernet.js';
import { parseIcmp } from '../wire/icmp.js';
import { parseIpv4 } from '../wire/ipv4.js';
import { fragNeededInPlace, timeExceededInPlace } from './icmp-reply.js';

const VM1 = mac('02:00:00:00:00:01');
const ROUTER = mac('02:58:53:00:00:01');
const GW = ip4('10.0.0.1');

function bigTcp(payload = 1460, df = true): Uint8Array {
  return frame()
    .eth({ src: VM1, dst: ROUTER })
    .ipv4({ src: '10.0.0.5', dst: '10.0.1.7', df, ttl: 17 })
    .tcp({ sport: 40000, dport: 5201, seq: 99, ack: 1 })
    .payload(payload)
    .bytes();
}

function check(u8: Uint8Array, m: FrameMeta, orig: Uint8Array, type: number, code: number, mtu: number): void {
  const ihl = (orig[14]! & 15) * 4;
  const quote = ihl + Math.min(8, ((orig[16]! << 8) | orig[17]!) - ihl);
  assert.equal(m.len, 14 + 20 + 8 + quote);
  assert.equal(m.etherType, 0x0800);
  assert.equal(m.l3Off, 14);
  assert.equal(m.dstMac, VM1);
  assert.equal(m.srcMac, ROUTER);
  assert.equal(m.gsoType, GSO_NONE);
  assert.equal(m.hdrLen, 0);
  assert.equal(m.needsCsum, false);
  const e = parseEthernet(u8, m.off, m.len);
  assert.ok(e.ok);
  assert.equal(e.value.dst, VM1);
  assert.equal(e.value.src, ROUTER);
  const ip = parseIpv4(u8, m.off + 14, m.len - 14);
  assert.ok(ip.ok);
  assert.equal(ip.value.src, GW);
  assert.equal(ip.value.dst, ip4('10.0.0.5'));
  assert.equal(ip.value.ttl, 64);
  assert.equal(ip.value.protocol, 1);
  assert.equal(ip.value.checksumOk, true);
  assert.equal(ip.value.totalLength, m.len - 14);
  const icmp = parseIcmp(u8, m.off + 34, m.len - 34);
  assert.ok(icmp.ok);
  assert.equal(icmp.value.type, type);
  assert.equal(icmp.value.code, code);
  assert.equal(icmp.value.checksumOk, true);
  assert.equal(icmp.value.rest, mtu);
  assert.deepEqual(u8.slice(m.off + 42, m.off + m.len), orig.slice(14, 14 + quote), 'quote = original IP header + 8 bytes');
}

describe('fragNeededInPlace', () => {
  it('a DF TCP segment becomes type 3 code 4 with the MTU, quoting header + 8 bytes', () => {
    const orig = bigTcp();
    const { b, m } = load(orig);
    const off0 = m.off;
    m.needsCsum = true;
    m.csumStart = 34;
    m.csumOffset = 16;
    m.dataValid = true;
    assert.equal(fragNeededInPlace(b.slab, m, 1458, GW, ROUTER), true);
    assert.equal(m.off, off0);
    assert.equal(m.dataValid, false);
    check(b.slab, m, orig, 3, 4, 1458);
  });

  it('quotes IPv4 options too', () => {
    const orig = frame()
      .eth({ src: VM1, dst: ROUTER })
      .ipv4({ src: '10.0.0.5', dst: '10.0.1.7', df: true, options: new Uint8Array([1, 1, 1, 0]) })
      .udp()
      .payload(1400)
      .bytes();
    const { b, m } = load(orig);
    assert.equal(fragNeededInPlace(b.slab, m, 1400, GW, ROUTER), true);
    check(b.slab, m, orig, 3, 4, 1400);
    assert.equal(m.len, 14 + 20 + 8 + 24 + 8);
  });

  it('a GSO super-frame: quotes its first bytes, offload state cleared', () => {
    const orig = bigTcp(6000);
    const { b, m } = load(orig, 8192);
    m.gsoType = GSO_TCPV4;
    m.gsoSize = 1448;
    m.hdrLen = 54;
    m.needsCsum = true;
    m.csumStart = 34;
    m.csumOffset = 16;
    orig[16] = 0; // a super-frame's total length need not be right: quote what is there
    orig[17] = 0;
    b.slab.set(orig, m.off);
    assert.equal(fragNeededInPlace(b.slab, m, 1458, GW, ROUTER), true);
    assert.equal(m.gsoType, GSO_NONE);
    assert.equal(m.gsoSize, 0);
    assert.equal(m.len, 14 + 20 + 8 + 20 + 8);
    assert.deepEqual(b.slab.slice(m.off + 42, m.off + m.len), orig.slice(14, 14 + 28));
  });

  it('no reply (false, frame untouched): no DF, ICMP errors, later fragments, broadcast/multicast, not IPv4', () => {
    const cases: [string, Uint8Array][] = [
      ['no DF', bigTcp(1460, false)],
      ['ICMP error', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true }).icmp({ type: 3, code: 1 }).payload(28).bytes()],
      ['ICMP time exceeded', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true }).icmp({ type: 11 }).payload(28).bytes()],
      ['later fragment', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true, fragmentOffset: 100, protocol: 6 }).payload(1400).bytes()],
      ['broadcast MAC', frame().eth({ src: VM1, dst: 'ff:ff:ff:ff:ff:ff' }).ipv4({ df: true }).udp().payload(1400).bytes()],
      ['multicast IP', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true, dst: '239.1.1.1' }).udp().payload(1400).bytes()],
      ['limited broadcast IP', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true, dst: '255.255.255.255' }).udp().payload(1400).bytes()],
      ['source 0.0.0.0', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true, src: '0.0.0.0' }).udp().payload(1400).bytes()],
      ['IPv6', frame().eth({ src: VM1, dst: ROUTER }).ipv6().udp().payload(1400).bytes()],
      ['ARP', frame().eth({ src: VM1, dst: ROUTER }).arp().bytes()],
      ['total length beyond the frame', frame().eth({ src: VM1, dst: ROUTER }).ipv4({ df: true, totalLength: 3000 }).udp().payload(1400).bytes()],
    ];
    for (const [name, f] of cases) {
      const { b, m } = load(f);
      const before = b.slab.slice();
      const len = m.len;
      assert.equal(fragNeededInPlace(b.slab, m, 1458, GW, ROUTER), false, name);
      assert.deepEqual(b.slab, before, name);
      assert.equal(m.len, len);
    }
    // an echo request is not an error: it gets one
    const echo = frame().eth({ src: VM1, dst: ROUTER }).ipv4({ src: '10.0.0.5', df: true }).icmp({ type: 8 }).payload(1400).bytes();
    const { b, m } = load(echo);
    assert.equal(fragNeededInPlace(b.slab, m, 1458, GW, ROUTER), true);
  });

  it('truncated at every length: never throws, replies only to a whole packet', () => {
    const orig = bigTcp(40);
    for (let len = 0; len <= orig.length; len++) {
      const { b, m } = load(orig);
      m.len = len;
      const r = fragNeededInPlace(b.slab, m, 1458, GW, ROUTER);
      assert.equal(r, len === orig.length, `len ${len}`);
    }
  });
});

describe('timeExceededInPlace', () => {
  it('type 11 code 0, no DF needed; a tiny frame grows into the tailroom', () => {
    const orig = frame().eth({ src: VM1, dst: ROUTER }).ipv4({ src: '10.0.0.5', dst: '10.0.1.7', ttl: 1 }).udp().bytes(); // 42 bytes
    const { b, m } = load(orig);
    assert.equal(timeExceededInPlace(b.slab, m, GW, ROUTER), true);
    check(b.slab, m, orig, 11, 0, 0);
    assert.equal(m.len, 70);
  });

  it('no reply to an ICMP error', () => {
    const f = frame().eth({ src: VM1, dst: ROUTER }).ipv4({ ttl: 1 }).icmp({ type: 12 }).payload(28).bytes();
    const { b, m } = load(f);
    assert.equal(timeExceededInPlace(b.slab, m, GW, ROUTER), false);
  });
});

describe('tshark reads the ICMP errors', () => {
  it('types, codes, MTU, checksums good, quoted header decoded', () => {
    const a = load(bigTcp());
    fragNeededInPlace(a.b.slab, a.m, 1458, GW, ROUTER);
    const c = load(frame().eth({ src: VM1, dst: ROUTER }).ipv4({ src: '10.0.0.5', dst: '10.0.1.7', ttl: 1 }).udp({ sport: 7, dport: 7777 }).payload(100).bytes());
    timeExceededInPlace(c.b.slab, c.m, GW, ROUTER);
    const t = tsharkFields([bytesOf(a.b, a.m), bytesOf(c.b, c.m)], [
      'icmp.type',
      'icmp.code',
      'icmp.mtu',
      'icmp.checksum.status',
      'ip.src',
      'ip.dst',
      'ip.ttl',
      'ip.checksum.status',
      'tcp.srcport',
      'udp.dstport',
      '_ws.malformed',
    ]);
    assert.deepEqual(t[0], {
      'icmp.type': ['3'],
      'icmp.code': ['4'],
      'icmp.mtu': ['1458'],
      'icmp.checksum.status': ['1'],
      'ip.src': ['10.0.0.1', '10.0.0.5'],
      'ip.dst': ['10.0.0.5', '10.0.1.7'],
      'ip.ttl': ['64', '17'],
      'ip.checksum.status': ['1', '1'],
      'tcp.srcport': ['40000'],
      'udp.dstport': [],
      '_ws.malformed': [],
    });
    assert.deepEqual(t[1]!['icmp.type'], ['11']);
    assert.deepEqual(t[1]!['icmp.checksum.status'], ['1']);
    assert.deepEqual(t[1]!['udp.dstport'], ['7777']);
    assert.deepEqual(t[1]!['_ws.malformed'], []);
  });
});
