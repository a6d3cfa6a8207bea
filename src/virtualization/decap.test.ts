// virtualization/decap.test.ts: parseUnderlay on crafted NVGRE/VXLAN/ARP/IPv4 frames and on real OVS and Linux
// captures (test/fixtures/wire), malformed and truncated input, fuzzing, and decapInPlace's offload rebasing.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { frame, ip4, mac } from '../../test/helpers/frame-builder.js';
import { readCaptureFile } from '../../test/helpers/pcap.js';
import { prng } from '../../test/helpers/prng.js';
import { load } from '../../test/fixtures/virtualization/kit.js';
import { FrameMeta, GSO_NONE, GSO_TCPV4 } from '../dataplane/frame.js';
import { parseIpv4Address } from '../wire/addresses.js';
import { writeU16 } from '../wire/byte-order.js';
import { internetChecksum } from '../wire/checksum.js';
import { formatMac, readMac } from '../wire/ethernet.js';
import {
  decapInPlace,
  parseUnderlay,
  Underlay,
  UNDERLAY_ARP,
  UNDERLAY_IPV4,
  UNDERLAY_NVGRE,
  UNDERLAY_OTHER,
  UNDERLAY_VXLAN,
} from './decap.js';

const WIRE = new URL('../../../test/fixtures/wire/', import.meta.url);
const VM1 = mac('02:00:00:00:00:01');
const VM2 = mac('02:00:00:00:00:02');
const PA1 = '192.0.2.1';
const PA2 = '192.0.2.2';

function innerFrame(payload = 20): Uint8Array {
  return frame().eth({ src: VM1, dst: VM2 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).udp({ sport: 1, dport: 2 }).payload(payload).bytes();
}
function nvgre(vsid = 5001, flowId = 0x2a, inner = innerFrame()): Uint8Array {
  return frame().eth().ipv4({ src: PA1, dst: PA2, df: true }).nvgre(vsid, flowId).payload(inner).bytes();
}
function vxlan(vni = 5001, inner = innerFrame(), flags?: number): Uint8Array {
  const v = flags === undefined ? { vni } : { vni, flags };
  return frame().eth().ipv4({ src: PA1, dst: PA2 }).udp({ sport: 50000, dport: 4789, checksum: 0 }).vxlan(v).payload(inner).bytes();
}
/** Refill the outer IPv4 header checksum after a test edited the header. */
function refillIpChecksum(f: Uint8Array): Uint8Array {
  writeU16(f, 24, 0);
  writeU16(f, 24, internetChecksum(f, 14, (f[14]! & 15) * 4));
  return f;
}
function parse(f: Uint8Array): { r: ReturnType<typeof parseUnderlay>; u: Underlay; m: FrameMeta; u8: Uint8Array } {
  const { b, m } = load(f);
  const u = new Underlay();
  return { r: parseUnderlay(b.slab, m, u), u, m, u8: b.slab };
}

describe('parseUnderlay: well-formed frames', () => {
  it('NVGRE: VSID = key >> 8, FlowID, outer addresses, inner frame bounds', () => {
    const inner = innerFrame(33);
    const { r, u, m, u8 } = parse(nvgre(0x123456, 0x07, inner));
    assert.equal(r, null);
    assert.equal(u.kind, UNDERLAY_NVGRE);
    assert.equal(u.vsid, 0x123456);
    assert.equal(u.flowId, 7);
    assert.equal(u.srcIp, ip4(PA1));
    assert.equal(u.dstIp, ip4(PA2));
    assert.equal(u.innerOff, m.off + 42);
    assert.equal(u.innerLen, inner.length);
    assert.deepEqual(u8.slice(u.innerOff, u.innerOff + u.innerLen), inner);
  });

  it('VXLAN: VNI, inner frame bounds from the UDP length', () => {
    const inner = innerFrame(5);
    const { r, u, m } = parse(vxlan(16777214, inner));
    assert.equal(r, null);
    assert.equal(u.kind, UNDERLAY_VXLAN);
    assert.equal(u.vsid, 16777214);
    assert.equal(u.innerOff, m.off + 50);
    assert.equal(u.innerLen, inner.length);
  });

  it('Ethernet padding after the IP packet is not part of the inner frame', () => {
    const inner = frame().eth({ src: VM1, dst: VM2 }).payload(2).bytes(); // a 16-byte inner frame
    const f = frame().eth().ipv4({ src: PA1, dst: PA2 }).nvgre(5001, 1).payload(inner).pad(90).bytes();
    const { r, u } = parse(f);
    assert.equal(r, null);
    assert.equal(u.innerLen, 16);
  });

  it('ARP: op, sender MAC, sender and target addresses', () => {
    const f = frame().eth({ src: VM1, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 1, sha: VM1, spa: PA1, tpa: PA2 }).pad().bytes();
    const { r, u } = parse(f);
    assert.equal(r, null);
    assert.equal(u.kind, UNDERLAY_ARP);
    assert.equal(u.arpOp, 1);
    assert.equal(u.arpSenderMac, VM1);
    assert.equal(u.srcIp, ip4(PA1));
    assert.equal(u.dstIp, ip4(PA2));
  });

  it('plain IPv4 (ICMP, TCP, UDP to another port, a later UDP fragment) is UNDERLAY_IPV4 with its protocol', () => {
    const cases: [Uint8Array, number][] = [
      [frame().eth().ipv4({ src: PA1, dst: PA2 }).icmp().bytes(), 1],
      [frame().eth().ipv4({ src: PA1, dst: PA2 }).tcp().bytes(), 6],
      [frame().eth().ipv4({ src: PA1, dst: PA2 }).udp({ dport: 4790 }).payload(30).bytes(), 17],
      [frame().eth().ipv4({ src: PA1, dst: PA2, fragmentOffset: 10, protocol: 17 }).payload(30).bytes(), 17],
    ];
    for (const [f, proto] of cases) {
      const { r, u } = parse(f);
      assert.equal(r, null);
      assert.equal(u.kind, UNDERLAY_IPV4);
      assert.equal(u.ipProto, proto);
      assert.equal(u.dstIp, ip4(PA2));
    }
  });

  it('IPv6, unknown EtherTypes and malformed ARP are UNDERLAY_OTHER; the record is reset each call', () => {
    const u = new Underlay();
    const a = load(nvgre());
    assert.equal(parseUnderlay(a.b.slab, a.m, u), null);
    assert.equal(u.kind, UNDERLAY_NVGRE);
    for (const f of [
      frame().eth().ipv6().udp({ dport: 4789 }).vxlan({ vni: 1 }).payload(innerFrame()).bytes(),
      frame().eth({ type: 0x88b5 }).payload(50).bytes(),
      frame().eth().arp({ hlen: 8 }).pad().bytes(),
    ]) {
      const { b, m } = load(f);
      assert.equal(parseUnderlay(b.slab, m, u), null);
      assert.equal(u.kind, UNDERLAY_OTHER);
      assert.equal(u.vsid, 0);
      assert.equal(u.innerLen, 0);
    }
  });
});

describe('parseUnderlay: malformed tunnel packets are bad-encap', () => {
  const cases: [string, () => Uint8Array][] = [
    ['GRE C bit', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ vsid: 5001, checksum: true, protocol: 0x6558 }).payload(innerFrame()).bytes()],
    ['GRE S bit', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ vsid: 5001, sequence: 1, protocol: 0x6558 }).payload(innerFrame()).bytes()],
    ['GRE R bit', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ vsid: 5001, rawFlags: 0x4000, protocol: 0x6558 }).payload(innerFrame()).bytes()],
    ['GRE reserved0 bit 4', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ vsid: 5001, rawFlags: 0x0800, protocol: 0x6558 }).payload(innerFrame()).bytes()],
    ['GRE version 1', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ vsid: 5001, rawFlags: 0x0001, protocol: 0x6558 }).payload(innerFrame()).bytes()],
    ['GRE without K', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ protocol: 0x6558 }).payload(new Uint8Array(4)).payload(innerFrame()).bytes()],
    ['GRE proto IPv4', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).gre({ vsid: 5001, protocol: 0x0800 }).payload(innerFrame()).bytes()],
    ['GRE inner frame of 13 bytes', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).nvgre(5001).payload(13).bytes()],
    ['GRE header cut by the IP length', () => frame().eth().ipv4({ src: PA1, dst: PA2, totalLength: 26 }).nvgre(5001).payload(innerFrame()).bytes()],
    ['GRE IP total length beyond the frame', () => frame().eth().ipv4({ src: PA1, dst: PA2, totalLength: 500 }).nvgre(5001).payload(innerFrame()).bytes()],
    ['GRE IHL 4', () => frame().eth().ipv4({ src: PA1, dst: PA2, ihl: 4 }).nvgre(5001).payload(innerFrame()).bytes()],
    ['GRE outer MF', () => frame().eth().ipv4({ src: PA1, dst: PA2, mf: true }).nvgre(5001).payload(innerFrame()).bytes()],
    ['GRE outer later fragment (GRE-looking payload)', () => frame().eth().ipv4({ src: PA1, dst: PA2, fragmentOffset: 185 }).nvgre(5001).payload(innerFrame()).bytes()],
    ['GRE bad outer IP checksum', () => frame().eth().ipv4({ src: PA1, dst: PA2, checksum: 0x1234 }).nvgre(5001).payload(innerFrame()).bytes()],
    ['VXLAN without I flag', () => vxlan(5001, innerFrame(), 0x00)],
    ['VXLAN with another flag', () => vxlan(5001, innerFrame(), 0x0c)],
    ['VXLAN GBP-style flags', () => vxlan(5001, innerFrame(), 0x88)],
    ['VXLAN reserved byte after the flags', () => { const f = vxlan(); f[43] = 1; return f; }],
    ['VXLAN reserved byte after the VNI', () => { const f = vxlan(); f[49] = 1; return f; }],
    ['VXLAN inner frame of 13 bytes', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).udp({ dport: 4789, checksum: 0 }).vxlan({ vni: 5001 }).payload(13).bytes()],
    ['VXLAN header cut', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).udp({ dport: 4789, checksum: 0 }).payload(7).bytes()],
    ['VXLAN UDP length < 8', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).udp({ dport: 4789, length: 4, checksum: 0 }).vxlan({ vni: 1 }).payload(innerFrame()).bytes()],
    ['VXLAN UDP length beyond IP', () => frame().eth().ipv4({ src: PA1, dst: PA2 }).udp({ dport: 4789, length: 900, checksum: 0 }).vxlan({ vni: 1 }).payload(innerFrame()).bytes()],
    ['VXLAN outer MF', () => frame().eth().ipv4({ src: PA1, dst: PA2, mf: true }).udp({ dport: 4789, checksum: 0 }).vxlan({ vni: 1 }).payload(innerFrame()).bytes()],
    ['VXLAN bad outer IP checksum', () => frame().eth().ipv4({ src: PA1, dst: PA2, checksum: 1 }).udp({ dport: 4789, checksum: 0 }).vxlan({ vni: 1 }).payload(innerFrame()).bytes()],
  ];
  for (const [name, make] of cases) {
    it(name, () => {
      const { r, u } = parse(make());
      assert.equal(r, 'bad-encap');
      assert.notEqual(u.kind, UNDERLAY_NVGRE);
      assert.notEqual(u.kind, UNDERLAY_VXLAN);
    });
  }

  it('the outer addresses are known for a reasoned drop (the layer can tell whose PA it was)', () => {
    const { r, u } = parse(vxlan(5001, innerFrame(), 0));
    assert.equal(r, 'bad-encap');
    assert.equal(u.dstIp, ip4(PA2));
    assert.equal(u.srcIp, ip4(PA1));
  });

  it('a refilled header checksum makes an edited header valid again (the checksum cases test only that)', () => {
    const f = nvgre();
    f[20] = 0; // clear DF, checksum now wrong
    assert.equal(parse(f).r, 'bad-encap');
    assert.equal(parse(refillIpChecksum(f)).r, null);
  });
});

describe('parseUnderlay: truncated and fuzzed input never throws', () => {
  it('truncated at every length (frame length and slab end): null or bad-encap, inner frame always inside', () => {
    for (const f of [nvgre(), vxlan(), frame().eth().arp().bytes()]) {
      for (let len = 0; len <= f.length; len++) {
        const { b, m } = load(f);
        m.len = len;
        const u = new Underlay();
        const r = parseUnderlay(b.slab, m, u);
        assert.ok(r === null || r === 'bad-encap', `len ${len}: ${r}`);
        if (u.kind === UNDERLAY_NVGRE || u.kind === UNDERLAY_VXLAN) {
          assert.equal(len, f.length, 'only the whole frame is a tunnel packet');
          assert.ok(u.innerOff >= m.off && u.innerOff + u.innerLen <= m.off + len);
        }
        // the same bytes at the very end of a slab of exactly that size
        const slab = new Uint8Array(len + 3);
        slab.set(f.subarray(0, len), 3);
        const m2 = new FrameMeta();
        Object.assign(m2, { off: 3, len, etherType: m.etherType, l3Off: 14 });
        const r2 = parseUnderlay(slab, m2, u);
        assert.equal(r2, r, `len ${len}`);
        // and a meta claiming more bytes than the slab holds
        m2.len = len + 10;
        assert.doesNotThrow(() => parseUnderlay(slab, m2, u));
      }
    }
  });

  it('20,000 random byte flips of NVGRE and VXLAN frames: no throw, bounds hold', () => {
    const r = prng(7);
    const u = new Underlay();
    for (let n = 0; n < 20_000; n++) {
      const f = n % 2 === 0 ? nvgre() : vxlan();
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) f[14 + Math.floor(r() * 40)] = Math.floor(r() * 256);
      const { b, m } = load(f);
      m.len = r() < 0.2 ? Math.floor(r() * f.length) : f.length;
      const res = parseUnderlay(b.slab, m, u);
      assert.ok(res === null || res === 'bad-encap');
      if (u.kind === UNDERLAY_NVGRE || u.kind === UNDERLAY_VXLAN) {
        assert.ok(u.innerLen >= 14 && u.innerOff >= m.off && u.innerOff + u.innerLen <= m.off + m.len, `case ${n}`);
      }
    }
  });
});

describe('decapInPlace', () => {
  it('rebases a partial checksum inside the inner frame; clears one that pointed at the outer headers', () => {
    const f = vxlan(5001, innerFrame(40));
    let { b, m } = load(f);
    const u = new Underlay();
    const off0 = m.off;
    m.needsCsum = true;
    m.csumStart = 50 + 34;
    m.csumOffset = 6;
    m.dataValid = true;
    m.vlan = 12;
    assert.equal(parseUnderlay(b.slab, m, u), null);
    decapInPlace(m, u);
    assert.equal(m.off, off0 + 50);
    assert.equal(m.vlan, 0);
    assert.equal(m.needsCsum, true);
    assert.equal(m.csumStart, 34);
    assert.equal(m.csumOffset, 6);
    assert.equal(m.dataValid, true);
    ({ b, m } = load(f));
    m.needsCsum = true;
    m.csumStart = 34; // the outer UDP checksum
    m.csumOffset = 6;
    assert.equal(parseUnderlay(b.slab, m, u), null);
    decapInPlace(m, u);
    assert.equal(m.needsCsum, false);
    assert.equal(m.csumStart, 0);
  });

  it('rebases GSO hdrLen past the inner Ethernet header, else clears GSO', () => {
    const f = nvgre(5001, 1, frame().eth({ src: VM1, dst: VM2 }).ipv4().tcp().payload(3000).bytes());
    let { b, m } = load(f, 8192);
    const u = new Underlay();
    m.gsoType = GSO_TCPV4;
    m.gsoSize = 1400;
    m.hdrLen = 42 + 54;
    parseUnderlay(b.slab, m, u);
    decapInPlace(m, u);
    assert.equal(m.gsoType, GSO_TCPV4);
    assert.equal(m.hdrLen, 54);
    assert.equal(m.gsoSize, 1400);
    ({ b, m } = load(f, 8192));
    m.gsoType = GSO_TCPV4;
    m.gsoSize = 1400;
    m.hdrLen = 34; // only the outer headers
    parseUnderlay(b.slab, m, u);
    decapInPlace(m, u);
    assert.equal(m.gsoType, GSO_NONE);
    assert.equal(m.gsoSize, 0);
    assert.equal(m.hdrLen, 0);
  });

  it('leaves a frame that is not a tunnel packet alone', () => {
    const { b, m } = load(frame().eth().ipv4().icmp().bytes());
    const u = new Underlay();
    parseUnderlay(b.slab, m, u);
    const before = { off: m.off, len: m.len };
    decapInPlace(m, u);
    assert.deepEqual({ off: m.off, len: m.len }, before);
  });
});

interface TsharkFile {
  frames: Record<string, string[]>[];
}

describe('parseUnderlay on real captures (OVS userspace NVGRE, Linux kernel vxlan), against tshark', () => {
  for (const name of ['ovs-nvgre-flowid', 'linux-vxlan-5001']) {
    it(name, () => {
      const recs = readCaptureFile(new URL(`${name}.pcapng`, WIRE));
      const ts = (JSON.parse(readFileSync(new URL(`${name}.tshark.json`, WIRE), 'utf8')) as TsharkFile).frames;
      assert.equal(recs.length, ts.length);
      const u = new Underlay();
      const keys = new Set<string>();
      let tunnels = 0;
      for (let i = 0; i < recs.length; i++) {
        const t = ts[i]!;
        const { b, m } = load(recs[i]!.bytes);
        const r = parseUnderlay(b.slab, m, u);
        assert.equal(r, null, `frame ${i + 1}`);
        const key = t['gre.key']?.[0];
        const vni = t['vxlan.vni']?.[0];
        if (key !== undefined) {
          keys.add(key);
          const k = parseInt(key, 16);
          assert.equal(u.kind, UNDERLAY_NVGRE, `frame ${i + 1}`);
          assert.equal(u.vsid, k >>> 8);
          assert.equal(u.flowId, k & 0xff);
          assert.equal(u.innerLen, Number(t['ip.len']![0]) - 20 - 8);
        } else if (vni !== undefined) {
          assert.equal(u.kind, UNDERLAY_VXLAN, `frame ${i + 1}`);
          assert.equal(u.vsid, Number(vni));
          assert.equal(u.innerLen, Number(t['udp.length']![0]) - 16);
        } else if (t['arp.opcode'] !== undefined) {
          assert.equal(u.kind, UNDERLAY_ARP);
          assert.equal(u.arpOp, Number(t['arp.opcode'][0]));
          assert.equal(u.srcIp, parseIpv4Address(t['arp.src.proto_ipv4']![0]!));
          assert.equal(u.dstIp, parseIpv4Address(t['arp.dst.proto_ipv4']![0]!));
          assert.equal(formatMac(u.arpSenderMac), t['arp.src.hw_mac']![0]);
        } else {
          assert.ok(u.kind === UNDERLAY_OTHER || u.kind === UNDERLAY_IPV4, `frame ${i + 1}`);
          continue;
        }
        if (u.kind !== UNDERLAY_NVGRE && u.kind !== UNDERLAY_VXLAN) continue;
        tunnels++;
        assert.equal(u.srcIp, parseIpv4Address(t['ip.src']![0]!));
        assert.equal(u.dstIp, parseIpv4Address(t['ip.dst']![0]!));
        decapInPlace(m, u);
        // the inner Ethernet header is tshark's second one
        assert.equal(formatMac(readMac(b.slab, m.off)), t['eth.dst']![1]);
        assert.equal(formatMac(readMac(b.slab, m.off + 6)), t['eth.src']![1]);
        assert.equal(((b.slab[m.off + 12]! << 8) | b.slab[m.off + 13]!).toString(16).padStart(4, '0'), t['eth.type']![1]!.slice(2));
      }
      assert.ok(tunnels >= 10, `${tunnels} tunnel frames`);
      if (name === 'ovs-nvgre-flowid') assert.deepEqual([...keys].sort(), ['0x12345607', '0x1234562a']);
    });
  }
});
