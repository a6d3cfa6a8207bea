// wire/emit-parse.test.ts: emit then parse returns the record (per format, random fields), the frame builder's
// output parses with valid checksums, views re-point with at(), and the QinQ tag helpers.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { parseIpv6Address } from './addresses.js';
import { ArpView, emitArp, parseArp } from './arp.js';
import { DHCP_ACK, DHCP_DISCOVER, DhcpView, emitDhcp, isDhcpServerMessage, parseDhcp } from './dhcp.js';
import { dissect, type Layer } from './dissect.js';
import {
  ETHERTYPE_QINQ,
  ETHERTYPE_VLAN,
  makeTci,
  parseEthernet,
  popVlanTag,
  pushVlanTag,
  readTci,
  vlanTagCount,
} from './ethernet.js';
import { checkNvgre, emitGre, GreView, nvgreFlowId, nvgreKey, nvgreVsid, parseGre } from './gre.js';
import { emitIcmp, parseIcmp } from './icmp.js';
import { Icmpv6View, parseIcmpv6 } from './icmpv6.js';
import { emitIpv4, Ipv4View, parseIpv4 } from './ipv4.js';
import { Ipv6ExtWalker, parseIpv6 } from './ipv6.js';
import { emitTcp, parseTcp, TCP_ACK, TCP_PSH, TCP_SYN, tcpFlagsFromString } from './tcp.js';
import { emitUdp, parseUdp } from './udp.js';
import { emitVxlan, parseVxlan, VxlanView } from './vxlan.js';
import { prng } from '../../test/helpers/prng.js';

const r16 = (rnd: () => number): number => Math.floor(rnd() * 0x10000);
const r32 = (rnd: () => number): number => Math.floor(rnd() * 0x1_0000_0000);

function layer<P extends Layer['proto']>(ls: Layer[], proto: P, nth = 0): Extract<Layer, { proto: P }> {
  const found = ls.filter((l) => l.proto === proto);
  const l = found[nth];
  assert.ok(l !== undefined, `no ${proto} layer #${nth}`);
  return l as Extract<Layer, { proto: P }>;
}

describe('frame builder output parses, with valid checksums', () => {
  it('eth/vlan/ipv4/udp with payload', () => {
    const b = frame()
      .eth({ src: 0x020000000001, dst: '02:00:00:00:00:02' })
      .vlan({ vid: 10, pcp: 3 })
      .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 64 })
      .udp({ sport: 1000, dport: 53 })
      .payload(100)
      .bytes();
    assert.equal(b.length, 14 + 4 + 20 + 8 + 100);
    const d = dissect(b);
    assert.equal(d.error, null);
    const e = layer(d.layers, 'ethernet').value;
    assert.deepEqual(e.tags, [{ tpid: ETHERTYPE_VLAN, pcp: 3, dei: 0, vid: 10 }]);
    assert.equal(e.src, 0x020000000001);
    const ip = layer(d.layers, 'ipv4').value;
    assert.equal(ip.totalLength, 128);
    assert.ok(ip.checksumOk);
    const u = layer(d.layers, 'udp');
    assert.equal(u.value.length, 108);
    assert.equal(u.checksumOk, true);
  });

  it('arp, tcp, icmp, ipv6/icmpv6 NS, dhcp, nvgre and vxlan tunnels', () => {
    const arp = dissect(frame().eth().arp({ op: 1, sha: '02:00:00:00:00:01', spa: '10.0.0.1', tha: 0, tpa: '10.0.0.2' }).pad().bytes());
    assert.equal(arp.error, null);
    assert.equal(layer(arp.layers, 'arp').value.tpa, 0x0a000002);

    const tcp = dissect(frame().eth().ipv4().tcp({ sport: 1, dport: 2, flags: 'SA', seq: 0xfffffffe, ack: 7 }).payload(3).bytes());
    const t = layer(tcp.layers, 'tcp');
    assert.equal(t.value.flags, TCP_SYN | TCP_ACK);
    assert.equal(t.value.seq, 0xfffffffe);
    assert.ok(t.checksumOk);

    const icmp = dissect(frame().eth().ipv4().icmp({ type: 8, code: 0, id: 77, seq: 5 }).payload(56).bytes());
    const ic = layer(icmp.layers, 'icmp').value;
    assert.ok(ic.checksumOk && ic.id === 77 && ic.seq === 5);

    const ns = dissect(
      frame().eth().ipv6({ src: 'fe80::1', dst: 'ff02::1:ff00:2', hopLimit: 255 }).icmpv6({ type: 135, target: 'fd00::2', sll: '02:00:00:00:00:01' }).bytes(),
    );
    const n = layer(ns.layers, 'icmpv6').value;
    assert.ok(n.checksumOk);
    assert.equal(n.sourceLinkAddr, 0x020000000001);
    assert.deepEqual(n.target, parseIpv6Address('fd00::2'));

    const dh = dissect(frame().eth().ipv4({ src: '0.0.0.0', dst: '255.255.255.255' }).udp().dhcp({ messageType: DHCP_DISCOVER, requestedIp: '10.0.0.9' }).bytes());
    const dv = layer(dh.layers, 'dhcp').value;
    assert.equal(dv.messageType, DHCP_DISCOVER);
    assert.equal(dv.requestedIp, 0x0a000009);
    assert.equal(layer(dh.layers, 'udp').value.dport, 67);

    const nv = dissect(frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2', df: true }).nvgre(5001, 0x2a).eth({ src: 1, dst: 2 }).ipv4().icmp().bytes());
    assert.equal(nv.error, null);
    const g = layer(nv.layers, 'gre').value;
    assert.equal(g.vsid, 5001);
    assert.equal(g.flowId, 0x2a);
    assert.equal(layer(nv.layers, 'ethernet', 1).value.src, 1);
    assert.ok(layer(nv.layers, 'icmp').value.checksumOk);

    const gc = dissect(frame().eth().ipv4().gre({ checksum: true, key: 5, sequence: 9 }).eth().ipv4().udp().payload(3).bytes());
    const gv = layer(gc.layers, 'gre').value;
    assert.ok(gv.checksumOk === true && gv.key === 5 && gv.sequence === 9);

    const vx = dissect(frame().eth().ipv4().udp({ sport: 4444 }).vxlan({ vni: 5001 }).eth().ipv4().tcp({ flags: 'PA', ack: 5 }).payload(20).bytes());
    assert.equal(vx.error, null);
    assert.equal(layer(vx.layers, 'vxlan').value.vni, 5001);
    assert.equal(layer(vx.layers, 'udp').value.dport, 4789);
    assert.ok(layer(vx.layers, 'tcp').checksumOk);
    assert.ok(layer(vx.layers, 'udp').checksumOk);

    const q = dissect(frame().eth().qinq(100, 10).ipv4().udp().bytes());
    assert.deepEqual(
      layer(q.layers, 'ethernet').value.tags.map((x) => [x.tpid, x.vid]),
      [
        [ETHERTYPE_QINQ, 100],
        [ETHERTYPE_VLAN, 10],
      ],
    );
  });

  it('ipv6 extension chains: walked to the upper layer; checksums over the pseudo header', () => {
    const b = frame().eth().ipv6({ ext: [{ type: 0 }, { type: 43 }, { type: 60 }, { type: 51 }] }).udp({ sport: 5, dport: 6 }).payload(10).bytes();
    const d = dissect(b);
    assert.equal(d.error, null);
    const v6 = layer(d.layers, 'ipv6').value;
    assert.deepEqual(v6.extensions, [0, 43, 60, 51]);
    assert.equal(v6.protocol, 17);
    assert.equal(v6.l4Offset, 40 + 8 + 8 + 8 + 24);
    assert.ok(layer(d.layers, 'udp').checksumOk);
    const w = new Ipv6ExtWalker();
    assert.equal(w.walk(b, 14, b.length - 14), null);
    assert.equal(w.offset, 14 + v6.l4Offset);
    // a later fragment stops at the fragment header
    const f = frame().eth().ipv6({ ext: [{ type: 44, fragmentOffset: 100, more: true, id: 0xdeadbeef }] }).payload(16).bytes();
    const fv = parseIpv6(f, 14, f.length - 14);
    assert.ok(fv.ok && fv.value.laterFragment && fv.value.fragment?.id === 0xdeadbeef && fv.value.fragment.more);
  });

  it('explicit overrides craft bad frames that the parsers reject', () => {
    const ihl = frame().eth().ipv4({ ihl: 3 }).udp().bytes();
    assert.equal(dissect(ihl).error?.reason, 'IPv4 IHL < 5');
    const big = frame().eth().ipv4({ totalLength: 1500 }).udp().bytes();
    assert.equal(dissect(big).error?.reason, 'IPv4 total length beyond the buffer');
    const ul = frame().eth().ipv4().udp({ length: 4 }).bytes();
    assert.equal(dissect(ul).error?.reason, 'UDP length < 8');
    const doff = frame().eth().ipv4().tcp({ dataOffset: 15 }).bytes();
    assert.equal(dissect(doff).error?.reason, 'TCP data offset beyond the segment');
    const arp = frame().eth().arp({ hlen: 8 }).bytes();
    assert.equal(dissect(arp).error?.reason, 'ARP hlen/plen not 6/4 for Ethernet/IPv4');
    const nd0 = frame().eth().ipv6().icmpv6({ type: 135, target: 'fd00::2', options: [{ kind: 'raw', type: 1, data: new Uint8Array(6), lengthByte: 0 }] }).bytes();
    assert.equal(dissect(nd0).error?.reason, 'ICMPv6 ND option length 0');
    const badCk = dissect(frame().eth().ipv4().udp({ checksum: 0x1234 }).bytes());
    assert.equal(layer(badCk.layers, 'udp').checksumOk, false);
    const noCk = dissect(frame().eth().ipv4().udp({ checksum: 0 }).bytes());
    assert.equal(layer(noCk.layers, 'udp').checksumOk, null);
    const v6zero = dissect(frame().eth().ipv6().udp({ checksum: 0 }).bytes());
    assert.equal(layer(v6zero.layers, 'udp').checksumOk, false); // zero is illegal over IPv6
  });
});

describe('emit then parse returns the record (random fields)', () => {
  const rnd = prng(2024);
  const buf = new Uint8Array(2048);

  it('ipv4', () => {
    for (let i = 0; i < 2000; i++) {
      const optLen = Math.floor(rnd() * 11);
      const options = new Uint8Array(optLen).fill(1); // NOPs
      const f = {
        src: r32(rnd), dst: r32(rnd), protocol: Math.floor(rnd() * 256), ttl: Math.floor(rnd() * 256),
        dscp: Math.floor(rnd() * 64), ecn: Math.floor(rnd() * 4), id: r16(rnd), df: rnd() < 0.5, mf: rnd() < 0.5,
        fragmentOffset: Math.floor(rnd() * 8192), options,
      };
      const off = Math.floor(rnd() * 64);
      const hl = emitIpv4({ ...f, totalLength: 100 }, buf, off);
      const p = parseIpv4(buf, off, 100);
      assert.ok(p.ok, p.ok ? '' : p.reason);
      const v = p.value;
      assert.equal(hl, v.headerLength);
      assert.deepEqual(
        [v.src, v.dst, v.protocol, v.ttl, v.dscp, v.ecn, v.id, v.df, v.mf, v.fragmentOffset, v.checksumOk],
        [f.src, f.dst, f.protocol, f.ttl, f.dscp, f.ecn, f.id, f.df, f.mf, f.fragmentOffset, true],
      );
      assert.equal(v.isFragment, f.mf || f.fragmentOffset !== 0);
      const view = new Ipv4View(new Uint8Array(1)).at(0);
      assert.equal(view.off, 0);
    }
  });

  it('tcp, udp, icmp, arp, gre, vxlan, dhcp', () => {
    for (let i = 0; i < 2000; i++) {
      const off = Math.floor(rnd() * 64);
      const tf = { sport: r16(rnd), dport: r16(rnd), seq: r32(rnd), ack: r32(rnd), flags: Math.floor(rnd() * 512), window: r16(rnd), urgent: r16(rnd) };
      const tl = emitTcp(tf, buf, off);
      const tp = parseTcp(buf, off, tl + 10);
      assert.ok(tp.ok);
      assert.deepEqual(
        [tp.value.sport, tp.value.dport, tp.value.seq, tp.value.ack, tp.value.flags, tp.value.window, tp.value.urgent, tp.value.payloadLength],
        [tf.sport, tf.dport, tf.seq, tf.ack, tf.flags, tf.window, tf.urgent, 10],
      );

      const uf = { sport: r16(rnd), dport: r16(rnd), length: 8 + Math.floor(rnd() * 100), checksum: r16(rnd) };
      emitUdp(uf, buf, off);
      const up = parseUdp(buf, off, uf.length);
      assert.ok(up.ok);
      assert.deepEqual([up.value.sport, up.value.dport, up.value.length, up.value.checksum], [uf.sport, uf.dport, uf.length, uf.checksum]);

      const icf = { type: 8, id: r16(rnd), seq: r16(rnd) };
      emitIcmp(icf, buf, off);
      const icp = parseIcmp(buf, off, 8);
      assert.ok(icp.ok && icp.value.id === icf.id && icp.value.seq === icf.seq);

      const af = { op: 1 + Math.floor(rnd() * 2), sha: Math.floor(rnd() * 2 ** 48), spa: r32(rnd), tha: Math.floor(rnd() * 2 ** 48), tpa: r32(rnd) };
      emitArp(af, buf, off);
      const ap = parseArp(buf, off, 28);
      assert.ok(ap.ok);
      assert.deepEqual(ap.value, af);
      assert.equal(new ArpView(buf, off).isGratuitous, af.spa === af.tpa);

      const vsid = Math.floor(rnd() * 0x1000000);
      const flow = Math.floor(rnd() * 256);
      const key = nvgreKey(vsid, flow);
      assert.equal(nvgreVsid(key), vsid);
      assert.equal(nvgreFlowId(key), flow);
      const gf = { protocol: 0x6558, key, ...(rnd() < 0.5 ? { sequence: r32(rnd) } : {}), ...(rnd() < 0.5 ? { checksum: r16(rnd) } : {}) };
      const gl = emitGre(gf, buf, off);
      const gp = parseGre(buf, off, gl);
      assert.ok(gp.ok);
      assert.equal(gp.value.headerLength, gl);
      assert.equal(gp.value.key, key);
      assert.equal(gp.value.vsid, vsid);
      assert.equal(gp.value.sequence, gf.sequence ?? null);
      assert.equal(gp.value.checksum, gf.checksum ?? null);
      assert.equal(checkNvgre(buf, off, gl) === null, gf.sequence === undefined && gf.checksum === undefined);
      assert.equal(new GreView(buf, off).flowId, flow);

      const vni = Math.floor(rnd() * 0x1000000);
      emitVxlan({ vni }, buf, off);
      const vp = parseVxlan(buf, off, 8);
      assert.ok(vp.ok && vp.value.vni === vni && new VxlanView(buf, off).vni === vni);

      const mt = 1 + Math.floor(rnd() * 8);
      const dl = emitDhcp({ messageType: mt, xid: r32(rnd), chaddr: 0x02aabbccddee, serverId: r32(rnd) }, buf, off);
      const dp = parseDhcp(buf, off, dl);
      assert.ok(dp.ok && dp.value.messageType === mt && dp.value.chaddr === 0x02aabbccddee);
      assert.equal(dp.value.op, isDhcpServerMessage(mt) ? 2 : 1);
      assert.equal(new DhcpView(buf, off).messageType(dl), mt);
    }
  });

  it('parseTcp / parseUdp verify the checksum when given the pseudo-header sum', () => {
    const t = frame().eth().ipv4().tcp({ sport: 9, dport: 10 }).payload(5).bytes();
    const ip = new Ipv4View(t, 14);
    assert.equal(parseIpv4(t, 14, t.length - 14).ok, true);
    const ok = parseTcp(t, 34, ip.payloadLength, ip.pseudoSum());
    assert.ok(ok.ok && ok.value.checksumOk === true);
    t[t.length - 1]! ^= 0xff;
    const bad = parseTcp(t, 34, ip.payloadLength, ip.pseudoSum());
    assert.ok(bad.ok && bad.value.checksumOk === false);
    const noPs = parseTcp(t, 34, ip.payloadLength);
    assert.ok(noPs.ok && noPs.value.checksumOk === null);
    const u = frame().eth().ipv4().udp().payload(7).bytes();
    const uip = new Ipv4View(u, 14);
    const up = parseUdp(u, 34, uip.payloadLength, uip.pseudoSum());
    assert.ok(up.ok && up.value.checksumOk === true);
  });

  it('tcp flags from scapy letters', () => {
    assert.equal(tcpFlagsFromString('S'), TCP_SYN);
    assert.equal(tcpFlagsFromString('PA'), TCP_PSH | TCP_ACK);
    assert.equal(tcpFlagsFromString('FSRPAUECN'), 0x1ff);
  });
});

describe('ICMPv6 ND views', () => {
  it('RA with prefix and MTU options; NA flags; view lookups agree with the record', () => {
    const b = frame()
      .eth()
      .ipv6({ src: 'fe80::1', dst: 'ff02::1' })
      .icmpv6({
        type: 134, managed: true, otherConfig: true, routerLifetime: 600, reachableTime: 5, retransTimer: 6, sll: 0x0200000000aa,
        options: [{ kind: 'prefix', prefix: parseIpv6Address('fd00:1::')!, prefixLength: 64, validLifetime: 100, preferredLifetime: 50 }, { kind: 'mtu', mtu: 9000 }],
      })
      .bytes();
    const off = 54;
    const p = parseIcmpv6(b, off, b.length - off);
    assert.ok(p.ok);
    const v = p.value;
    assert.ok(v.managed && v.otherConfig && v.routerLifetime === 600 && v.reachableTime === 5 && v.retransTimer === 6);
    assert.equal(v.sourceLinkAddr, 0x0200000000aa);
    assert.equal(v.optionMtu, 9000);
    assert.deepEqual(v.prefixes.map((x) => [x.prefixLength, x.onLink, x.autonomous, x.validLifetime, x.preferredLifetime]), [[64, true, true, 100, 50]]);
    const view = new Icmpv6View(b, off);
    assert.equal(view.linkAddr(b.length - off, 1), 0x0200000000aa);
    assert.equal(view.linkAddr(b.length - off, 2), -1);

    const na = frame().eth().ipv6().icmpv6({ type: 136, target: 'fd00::5', solicited: true, override: true, tll: 0x02000000000b }).bytes();
    const nv = parseIcmpv6(na, 54, na.length - 54);
    assert.ok(nv.ok && !nv.value.router && nv.value.solicited && nv.value.override && nv.value.targetLinkAddr === 0x02000000000b);
  });
});

describe('802.1Q / QinQ tag helpers', () => {
  it('push then pop restores the frame; tags stack outermost first', () => {
    const inner = frame().eth({ src: 0x020000000001, dst: 0x020000000002 }).ipv4().udp().payload(10).bytes();
    const slab = new Uint8Array(256);
    const off0 = 64;
    slab.set(inner, off0);
    let off = pushVlanTag(slab, off0, makeTci(5, 0, 10));
    off = pushVlanTag(slab, off, makeTci(0, 1, 100), ETHERTYPE_QINQ);
    const len = inner.length + 8;
    assert.equal(off, off0 - 8);
    assert.equal(vlanTagCount(slab, off, len), 2);
    assert.equal(readTci(slab, off, 0) & 0xfff, 100);
    assert.equal(readTci(slab, off, 1) & 0xfff, 10);
    const e = parseEthernet(slab, off, len);
    assert.ok(e.ok);
    assert.deepEqual(e.value.tags, [
      { tpid: ETHERTYPE_QINQ, pcp: 0, dei: 1, vid: 100 },
      { tpid: ETHERTYPE_VLAN, pcp: 5, dei: 0, vid: 10 },
    ]);
    assert.equal(e.value.src, 0x020000000001);
    off = popVlanTag(slab, popVlanTag(slab, off));
    assert.equal(off, off0);
    assert.deepEqual(slab.subarray(off, off + inner.length), inner);
  });

  it('more than 4 tags and a truncated tag are rejected', () => {
    const b = frame().eth().vlan({ vid: 1 }).vlan({ vid: 2 }).vlan({ vid: 3 }).vlan({ vid: 4 }).vlan({ vid: 5 }).ipv4().bytes();
    const r = parseEthernet(b, 0, b.length);
    assert.ok(!r.ok && r.reason.includes('more than 4'));
    const t = parseEthernet(b, 0, 16);
    assert.ok(!t.ok && t.reason.startsWith('truncated'));
  });
});

describe('DHCP', () => {
  it('a server reply (ACK) is a server message; options past the end are rejected', () => {
    const b = new Uint8Array(400);
    const n = emitDhcp({ messageType: DHCP_ACK, yiaddr: 0x0a000032, options: [{ code: 51, data: new Uint8Array([0, 0, 14, 16]) }] }, b, 0);
    const p = parseDhcp(b, 0, n);
    assert.ok(p.ok && isDhcpServerMessage(p.value.messageType) && p.value.yiaddr === 0x0a000032);
    assert.deepEqual(p.value.options.map((o) => o.code), [53, 51]);
    const cut = parseDhcp(b, 0, n - 3); // option 51 now runs past the end
    assert.ok(!cut.ok && cut.reason.includes('past the end'));
  });
});
