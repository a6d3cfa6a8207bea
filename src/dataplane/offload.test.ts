// dataplane/offload.test.ts: software GSO segmentation and checksum completion, checked against a plain reference
// checksum (RFC 1071, one BE word at a time) over hand-built 64 KB super-frames.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batch, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_UDP_L4, GSO_ECN, HEADROOM, slotSizeFor } from './frame.js';
import { completeChecksum, segmentFrame } from './offload.js';
import { asPortId } from './types.js';
import { be16, be32, payload, refSum } from '../../test/helpers/bytes.js';

/** Pseudo-header sum (BE) for IPv4 (l3 = offset of the IPv4 header) or IPv6. */
function pseudo(f: Uint8Array, l3: number, v4: boolean, proto: number, l4len: number): number {
  const addrs = v4 ? f.subarray(l3 + 12, l3 + 20) : f.subarray(l3 + 8, l3 + 40);
  return refSum(addrs) + proto + l4len;
}

interface Built {
  bytes: Uint8Array;
  l3: number;
  l4: number;
  l4len: number;
  pay: Uint8Array;
}

/** Ethernet [+ tag] + IPv4/IPv6 + TCP (with 12 bytes of options) or UDP, as a kernel GSO frame looks. */
function build(opts: { v4: boolean; udp?: boolean; tag?: boolean; payLen: number; flags?: number; seq?: number }): Built {
  const pay = payload(opts.payLen, opts.payLen * 7 + (opts.v4 ? 1 : 2));
  const eth = opts.tag ? 18 : 14;
  const ipl = opts.v4 ? 20 : 40;
  const l4len = opts.udp ? 8 : 32;
  const f = new Uint8Array(eth + ipl + l4len + pay.length);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  let o = 12;
  if (opts.tag) {
    f.set([0x81, 0x00, 0x20, 0x0a], 12); // VLAN 10, PCP 1
    o = 16;
  }
  f[o] = opts.v4 ? 0x08 : 0x86;
  f[o + 1] = opts.v4 ? 0x00 : 0xdd;
  const l3 = eth;
  const proto = opts.udp ? 17 : 6;
  const l4total = l4len + pay.length;
  if (opts.v4) {
    f.set([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 5, 10, 0, 0, 6], l3);
    const tot = ipl + l4total;
    f[l3 + 2] = tot >>> 8;
    f[l3 + 3] = tot & 0xff;
  } else {
    f.set([0x60, 0, 0, 0, l4total >>> 8, l4total & 0xff, proto, 64], l3);
    f.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5], l3 + 8);
    f.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6], l3 + 24);
  }
  const l4 = l3 + ipl;
  if (opts.udp) {
    f.set([0x9c, 0x40, 0x13, 0x89, l4total >>> 8, l4total & 0xff, 0, 0], l4);
  } else {
    const seq = opts.seq ?? 0xfffff000; // wraps during the stream
    f.set([0xc0, 0x01, 0x14, 0x51, seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff], l4);
    f.set([0, 0, 0x30, 0x39, 0x80, opts.flags ?? 0x18, 0x01, 0xf5, 0, 0, 0, 0], l4 + 8);
    f.set([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], l4 + 20); // NOP NOP timestamps
  }
  f.set(pay, l4 + l4len);
  // The kernel leaves a partial (pseudo-header) checksum in a GSO frame: put one there.
  const ps = refSum(f, 0, 0, pseudo(f, l3, opts.v4, proto, l4total)); // folded
  const at = l4 + (opts.udp ? 6 : 16);
  f[at] = ps >>> 8;
  f[at + 1] = ps & 0xff;
  return { bytes: f, l3, l4, l4len, pay };
}

function load(b: Batch, i: number, bytes: Uint8Array, shift = 0): void {
  const m = b.meta[i]!;
  m.reset();
  m.off = b.slotStart(i) + HEADROOM + shift;
  m.len = bytes.length;
  b.slab.set(bytes, m.off);
}

/** Check every segment of a segmented frame against the reference; returns the concatenated payload. */
function verify(out: Batch, n: number, src: Built, v4: boolean, udp: boolean, mss: number, flags0: number): Uint8Array {
  const payParts: Uint8Array[] = [];
  const hdr = src.l4 + src.l4len;
  const seq0 = udp ? 0 : be32(src.bytes, src.l4 + 4);
  for (let k = 0; k < n; k++) {
    const m = out.meta[k]!;
    const f = out.slab.subarray(m.off, m.off + m.len);
    const segPay = k === n - 1 ? src.pay.length - k * mss : mss;
    assert.equal(m.len, hdr + segPay, `segment ${k} length`);
    assert.equal(m.gsoType, GSO_NONE);
    assert.equal(m.needsCsum, false);
    assert.equal(m.inPort, 7, 'meta copied');
    assert.equal(m.vlan, 10, 'meta copied');
    assert.deepEqual(f.subarray(0, src.l3), src.bytes.subarray(0, src.l3), 'Ethernet header kept');
    const l3 = src.l3, l4 = src.l4;
    const l4total = src.l4len + segPay;
    if (v4) {
      assert.equal(be16(f, l3 + 2), 20 + l4total, 'IPv4 total length');
      assert.equal(be16(f, l3 + 4), (0x1234 + k) & 0xffff, 'IPv4 id');
      assert.equal(refSum(f.subarray(l3, l3 + 20)), 0xffff, `IPv4 header checksum of segment ${k}`);
    } else {
      assert.equal(be16(f, l3 + 4), l4total, 'IPv6 payload length');
    }
    const proto = udp ? 17 : 6;
    assert.equal(refSum(f, l4, f.length, pseudo(f, l3, v4, proto, l4total)), 0xffff, `L4 checksum of segment ${k}`);
    if (udp) {
      assert.equal(be16(f, l4 + 4), l4total, 'UDP length');
    } else {
      assert.equal(be32(f, l4 + 4), (seq0 + k * mss) >>> 0, `seq of segment ${k}`);
      let want = flags0;
      if (k !== n - 1) want &= ~0x09;
      if (k !== 0) want &= ~0x80;
      assert.equal(f[l4 + 13], want, `flags of segment ${k}`);
    }
    payParts.push(f.slice(hdr));
  }
  const all = new Uint8Array(payParts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of payParts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

function runCase(name: string, o: { v4: boolean; udp?: boolean; tag?: boolean; payLen: number; mss: number; shift?: number; flags?: number }): void {
  test(name, () => {
    const src = new Batch(2, slotSizeFor(65600));
    const out = new Batch(64, slotSizeFor(1600));
    const built = build({ v4: o.v4, udp: o.udp ?? false, tag: o.tag ?? false, payLen: o.payLen, flags: o.flags ?? 0x18 });
    load(src, 1, built.bytes, o.shift ?? 0);
    const m = src.meta[1]!;
    m.inPort = asPortId(7);
    m.vlan = 10;
    m.gsoType = o.udp ? GSO_UDP_L4 : o.v4 ? GSO_TCPV4 : GSO_TCPV6;
    m.gsoSize = o.mss;
    m.needsCsum = true;
    m.csumStart = built.l4;
    m.csumOffset = o.udp ? 6 : 16;
    const n = segmentFrame(src, 1, out, 0, 64);
    assert.equal(n, Math.ceil(o.payLen / o.mss));
    const pay = verify(out, n, built, o.v4, o.udp ?? false, o.mss, o.flags ?? 0x18);
    assert.deepEqual(pay, built.pay, 'concatenated payload equals the super-frame payload');
  });
}

runCase('TCPv4 64 KB super-frame, MSS 1448, PSH|ACK', { v4: true, payLen: 65483, mss: 1448 });
runCase('TCPv4 with FIN|PSH|ACK|CWR: FIN/PSH last only, CWR first only', { v4: true, payLen: 20000, mss: 1448, flags: 0x80 | 0x19 });
runCase('TCPv4 with 802.1Q tag, odd source offset (unaligned copy)', { v4: true, tag: true, payLen: 30001, mss: 1460, shift: 1 });
runCase('TCPv6 64 KB super-frame, MSS 1428, source offset +2', { v4: false, payLen: 65000, mss: 1428, shift: 2 });
runCase('UDP_L4 (USO) IPv4, 1400-byte datagrams, odd tail', { v4: true, udp: true, payLen: 14001, mss: 1400, shift: 3 });
runCase('TCPv4 payload not above MSS: one segment', { v4: true, payLen: 1000, mss: 1448 });

test('segmentFrame refuses what it cannot do', () => {
  const src = new Batch(2, slotSizeFor(65600));
  const out = new Batch(8, slotSizeFor(1600));
  const built = build({ v4: true, payLen: 20000 });
  load(src, 0, built.bytes);
  const m = src.meta[0]!;
  m.gsoType = GSO_TCPV4;
  m.gsoSize = 1448;
  assert.equal(segmentFrame(src, 0, out, 0, 8), -1, 'more segments than slots');
  m.gsoType = GSO_UDP;
  assert.equal(segmentFrame(src, 0, out, 0, 8), -1, 'UFO (IP fragmentation) not done');
  m.gsoType = GSO_TCPV4;
  m.gsoSize = 0;
  assert.equal(segmentFrame(src, 0, out, 0, 8), -1, 'no MSS');
  m.gsoSize = 9000;
  m.len = 40; // cut inside the TCP header
  assert.equal(segmentFrame(src, 0, out, 0, 8), -1, 'truncated');
  m.len = built.bytes.length;
  assert.equal(segmentFrame(src, 0, src, 0, 2), -1, 'output overlapping the source slot');
  m.gsoType = GSO_TCPV4 | GSO_ECN;
  m.gsoSize = 1448;
  const big = new Batch(16, slotSizeFor(1600));
  assert.equal(segmentFrame(src, 0, big, 0, 16), 14, 'ECN flag accepted');
  m.gsoSize = 9000;
  assert.equal(segmentFrame(src, 0, big, 0, 16), -1, 'segments larger than the out slots');
});

test('completeChecksum fills TCPv4, TCPv6 and UDP partial checksums (verified by full recompute)', () => {
  const b = new Batch(4, slotSizeFor(9280));
  const cases: Array<[boolean, boolean, number, number]> = [
    [true, false, 1448, 0],
    [false, false, 999, 1],
    [true, true, 1471, 3],
    [false, true, 8000, 2],
  ];
  cases.forEach(([v4, udp, len, shift], i) => {
    const built = build({ v4, udp, payLen: len });
    load(b, i, built.bytes, shift);
    const m = b.meta[i]!;
    m.needsCsum = true;
    m.csumStart = built.l4;
    m.csumOffset = udp ? 6 : 16;
    completeChecksum(b.slab, m);
    assert.equal(m.needsCsum, false);
    const f = b.slab.subarray(m.off, m.off + m.len);
    const l4total = f.length - built.l4;
    const got = be16(f, built.l4 + m.csumOffset);
    // Full recompute with the field zeroed.
    const copy = f.slice();
    copy[built.l4 + m.csumOffset] = 0;
    copy[built.l4 + m.csumOffset + 1] = 0;
    const want = ~refSum(copy, built.l4, copy.length, pseudo(copy, built.l3, v4, udp ? 17 : 6, l4total)) & 0xffff;
    assert.equal(got, want === 0 && udp ? 0xffff : want, `case ${i}`);
  });
});

test('completeChecksum refuses offsets outside the frame as bad-vnet-hdr', () => {
  const b = new Batch(1, slotSizeFor(2048));
  const built = build({ v4: true, payLen: 100 });
  load(b, 0, built.bytes);
  const m = b.meta[0]!;
  const before = b.slab.slice(m.off, m.off + m.len);
  m.needsCsum = true;
  m.csumStart = built.l4;
  m.csumOffset = 200;
  completeChecksum(b.slab, m);
  assert.equal(m.drop, 'bad-vnet-hdr');
  assert.equal(m.needsCsum, false);
  assert.deepEqual(b.slab.slice(m.off, m.off + m.len), before, 'frame untouched');
});

test('segmentation throughput (printed, not asserted)', () => {
  const src = new Batch(1, slotSizeFor(65600));
  const out = new Batch(64, slotSizeFor(1600));
  const built = build({ v4: true, payLen: 65000 });
  load(src, 0, built.bytes);
  const m = src.meta[0]!;
  m.gsoType = GSO_TCPV4;
  m.gsoSize = 1448;
  let n = 0;
  for (let r = 0; r < 200; r++) n += segmentFrame(src, 0, out, 0, 64); // warm up
  const rounds = 3000;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) n += segmentFrame(src, 0, out, 0, 64);
  const ns = Number(process.hrtime.bigint() - t0);
  const bytes = rounds * built.pay.length;
  console.log(`# segmentFrame: ${(bytes / ns).toFixed(2)} GB/s payload, ${((rounds * 1e9) / ns).toFixed(0)} super-frames/s`);
  const m2 = src.meta[0]!;
  m2.needsCsum = true;
  m2.csumStart = built.l4;
  m2.csumOffset = 16;
  const t1 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    m2.needsCsum = true;
    completeChecksum(src.slab, m2);
  }
  const ns1 = Number(process.hrtime.bigint() - t1);
  console.log(`# completeChecksum: ${(bytes / ns1).toFixed(2)} GB/s`);
  assert.ok(n > 0);
});
