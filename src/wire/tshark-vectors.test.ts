// wire/tshark-vectors.test.ts: our parsers, and the frame builder's output, against tshark 4.0 on the same
// captures. Captures and tshark's field values (test/fixtures/wire/*.tshark.json) are committed; see
// test/fixtures/wire/README.md to regenerate them (XS_WIRE_REGEN=1 rewrites frame-builder.pcap from BUILDER).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { readCaptureFile, writeCaptureFile } from '../../test/helpers/pcap.js';
import { formatIpv4Address, formatIpv6Address, parseIpv6Address } from './addresses.js';
import { dissect, type Dissection, type Layer } from './dissect.js';
import { ETHERTYPE_QINQ, formatMac } from './ethernet.js';
import { ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, ICMP_PARAMETER_PROBLEM, ICMP_REDIRECT, ICMP_TIME_EXCEEDED } from './icmp.js';
import {
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_NEIGHBOR_ADVERTISEMENT,
  ICMPV6_NEIGHBOR_SOLICITATION,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_REDIRECT,
  ICMPV6_ROUTER_ADVERTISEMENT,
  ND_OPT_MTU,
  ND_OPT_PREFIX_INFO,
  ND_OPT_SOURCE_LINK_ADDR,
  ND_OPT_TARGET_LINK_ADDR,
} from './icmpv6.js';
import { IPV6_EXT_AH, IPV6_EXT_DEST_OPTS, IPV6_EXT_FRAGMENT, IPV6_EXT_HOP_BY_HOP, IPV6_EXT_ROUTING } from './ipv6.js';

const FIX = new URL('../../../test/fixtures/wire/', import.meta.url);

interface TsharkFile {
  frames: Record<string, string[]>[];
}
interface ManifestEntry {
  name: string;
  error: { proto: string; reason: string } | null;
}

function loadJson<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, FIX), 'utf8')) as T;
}

const hex = (v: number, digits: number): string => '0x' + v.toString(16).padStart(digits, '0');
const bit = (b: boolean): string => (b ? '1' : '0');
/** tshark checksum.status: 0 bad, 1 good, 2 unverified, 3 not present, 4 illegal (zero where required). */
const status = (ok: boolean | null, zero = false): string => (ok === null ? '3' : ok ? '1' : zero ? '4' : '0');

/** Our dissection rendered with tshark's field names and formats. */
function fieldsOf(d: Dissection): Record<string, string[]> {
  const m: Record<string, string[]> = {};
  const add = (f: string, v: string | number): void => {
    (m[f] ??= []).push(String(v));
  };
  for (const l of d.layers) addLayer(l, add);
  return m;
}

function addLayer(l: Layer, add: (f: string, v: string | number) => void): void {
  switch (l.proto) {
    case 'ethernet': {
      const v = l.value;
      add('eth.src', formatMac(v.src));
      add('eth.dst', formatMac(v.dst));
      add('eth.type', hex(v.tags.length > 0 ? v.tags[0]!.tpid : v.etherType, 4));
      v.tags.forEach((t, i) => {
        if (t.tpid === ETHERTYPE_QINQ) {
          // tshark's ieee8021ad dissector has no etype field
          add('ieee8021ad.id', t.vid);
          add('ieee8021ad.priority', t.pcp);
          return;
        }
        add('vlan.id', t.vid);
        add('vlan.priority', t.pcp);
        add('vlan.etype', hex(i + 1 < v.tags.length ? v.tags[i + 1]!.tpid : v.etherType, 4));
      });
      return;
    }
    case 'arp':
      add('arp.opcode', l.value.op);
      add('arp.src.hw_mac', formatMac(l.value.sha));
      add('arp.src.proto_ipv4', formatIpv4Address(l.value.spa));
      add('arp.dst.hw_mac', formatMac(l.value.tha));
      add('arp.dst.proto_ipv4', formatIpv4Address(l.value.tpa));
      return;
    case 'ipv4': {
      const v = l.value;
      add('ip.version', 4);
      add('ip.hdr_len', v.headerLength);
      add('ip.len', v.totalLength);
      add('ip.id', hex(v.id, 4));
      add('ip.flags.df', bit(v.df));
      add('ip.flags.mf', bit(v.mf));
      add('ip.frag_offset', v.fragmentOffset); // tshark 4.0: in 8-byte units
      add('ip.ttl', v.ttl);
      add('ip.proto', v.protocol);
      add('ip.src', formatIpv4Address(v.src));
      add('ip.dst', formatIpv4Address(v.dst));
      add('ip.checksum', hex(v.checksum, 4));
      add('ip.checksum.status', status(v.checksumOk));
      return;
    }
    case 'ipv6': {
      const v = l.value;
      add('ip.version', 6);
      add('ipv6.plen', v.payloadLength);
      add('ipv6.nxt', v.nextHeader);
      add('ipv6.hlim', v.hopLimit);
      add('ipv6.flow', hex(v.flowLabel, 6));
      add('ipv6.tclass', hex(v.trafficClass, 8));
      add('ipv6.src', formatIpv6Address(v.src));
      add('ipv6.dst', formatIpv6Address(v.dst));
      v.extensions.forEach((t, i) => {
        const next = i + 1 < v.extensions.length ? v.extensions[i + 1]! : v.protocol;
        const f =
          t === IPV6_EXT_HOP_BY_HOP
            ? 'ipv6.hopopts.nxt'
            : t === IPV6_EXT_ROUTING
              ? 'ipv6.routing.nxt'
              : t === IPV6_EXT_FRAGMENT
                ? 'ipv6.fraghdr.nxt'
                : t === IPV6_EXT_DEST_OPTS
                  ? 'ipv6.dstopts.nxt'
                  : t === IPV6_EXT_AH
                    ? 'ah.next_header'
                    : 'unknown';
        add(f, next);
      });
      if (v.fragment !== null) {
        add('ipv6.fraghdr.offset', v.fragment.offset);
        add('ipv6.fraghdr.more', bit(v.fragment.more));
        add('ipv6.fraghdr.ident', hex(v.fragment.id, 8));
      }
      return;
    }
    case 'tcp': {
      const v = l.value;
      add('tcp.srcport', v.sport);
      add('tcp.dstport', v.dport);
      add('tcp.seq_raw', v.seq);
      add('tcp.ack_raw', v.ack);
      add('tcp.hdr_len', v.headerLength);
      add('tcp.flags', hex(v.flags, 4));
      add('tcp.window_size_value', v.window);
      add('tcp.checksum.status', status(l.checksumOk));
      if (v.mss !== null) add('tcp.options.mss_val', v.mss);
      if (v.windowScale !== null) add('tcp.options.wscale.shift', v.windowScale);
      return;
    }
    case 'udp':
      add('udp.srcport', l.value.sport);
      add('udp.dstport', l.value.dport);
      add('udp.length', l.value.length);
      add('udp.checksum.status', status(l.checksumOk, l.value.checksum === 0));
      return;
    case 'icmp': {
      const v = l.value;
      add('icmp.type', v.type);
      add('icmp.code', v.code);
      if (v.type === 0 || v.type === 8) {
        add('icmp.ident', v.id);
        add('icmp.seq', v.seq);
      }
      if (v.type === ICMP_DEST_UNREACHABLE && v.code === ICMP_FRAG_NEEDED) add('icmp.mtu', v.mtu);
      add('icmp.checksum.status', status(v.checksumOk));
      return;
    }
    case 'icmpv6': {
      const v = l.value;
      const t = v.type;
      add('icmpv6.type', t);
      add('icmpv6.code', v.code);
      add('icmpv6.checksum.status', status(v.checksumOk));
      if (t === ICMPV6_ECHO_REQUEST || t === ICMPV6_ECHO_REPLY) {
        add('icmpv6.echo.identifier', hex(v.id, 4));
        add('icmpv6.echo.sequence_number', v.seq);
      }
      if (t === ICMPV6_PACKET_TOO_BIG) add('icmpv6.mtu', v.mtu);
      if (t === ICMPV6_NEIGHBOR_SOLICITATION) add('icmpv6.nd.ns.target_address', formatIpv6Address(v.target!));
      if (t === ICMPV6_NEIGHBOR_ADVERTISEMENT) {
        add('icmpv6.nd.na.target_address', formatIpv6Address(v.target!));
        add('icmpv6.nd.na.flag.r', bit(v.router));
        add('icmpv6.nd.na.flag.s', bit(v.solicited));
        add('icmpv6.nd.na.flag.o', bit(v.override));
      }
      if (t === ICMPV6_REDIRECT) add('icmpv6.nd.rd.target_address', formatIpv6Address(v.target!));
      if (t === ICMPV6_ROUTER_ADVERTISEMENT) {
        add('icmpv6.nd.ra.cur_hop_limit', v.curHopLimit);
        add('icmpv6.nd.ra.flag.m', bit(v.managed));
        add('icmpv6.nd.ra.flag.o', bit(v.otherConfig));
        add('icmpv6.nd.ra.router_lifetime', v.routerLifetime);
        add('icmpv6.nd.ra.reachable_time', v.reachableTime);
        add('icmpv6.nd.ra.retrans_timer', v.retransTimer);
      }
      let prefixIndex = 0;
      for (const o of v.options) {
        add('icmpv6.opt.type', o.type);
        if (o.type === ND_OPT_SOURCE_LINK_ADDR || o.type === ND_OPT_TARGET_LINK_ADDR) {
          // the first option of each kind is what the record keeps
          add('icmpv6.opt.linkaddr', formatMac(o.type === ND_OPT_SOURCE_LINK_ADDR ? v.sourceLinkAddr! : v.targetLinkAddr!));
        }
        if (o.type === ND_OPT_MTU) add('icmpv6.opt.mtu', v.optionMtu!);
        if (o.type === ND_OPT_PREFIX_INFO) {
          const p = v.prefixes[prefixIndex++]!;
          add('icmpv6.opt.prefix.length', p.prefixLength);
          add('icmpv6.opt.prefix.valid_lifetime', p.validLifetime);
          add('icmpv6.opt.prefix.preferred_lifetime', p.preferredLifetime);
          add('icmpv6.opt.prefix', formatIpv6Address(p.prefix));
        }
      }
      return;
    }
    case 'gre': {
      const v = l.value;
      add('gre.flags_and_version', hex(v.flags | v.version, 4));
      add('gre.proto', hex(v.protocol, 4));
      if (v.checksum !== null) {
        add('gre.checksum', hex(v.checksum, 4));
        add('gre.checksum.status', status(v.checksumOk));
      }
      if (v.key !== null) add('gre.key', hex(v.key, 8));
      if (v.sequence !== null) add('gre.sequence_number', v.sequence);
      return;
    }
    case 'vxlan':
      add('vxlan.flags', hex(l.value.flags << 8, 4));
      add('vxlan.vni', l.value.vni);
      return;
    case 'dhcp': {
      const v = l.value;
      add('dhcp.type', v.op);
      add('dhcp.id', hex(v.xid, 8));
      add('dhcp.hw.mac_addr', formatMac(v.chaddr));
      add('dhcp.ip.your', formatIpv4Address(v.yiaddr));
      if (v.messageType !== 0) add('dhcp.option.dhcp', v.messageType);
      if (v.requestedIp !== null) add('dhcp.option.requested_ip_address', formatIpv4Address(v.requestedIp));
      if (v.serverId !== null) add('dhcp.option.dhcp_server_id', formatIpv4Address(v.serverId));
      return;
    }
    default:
      return assertNeverLayer(l);
  }
}

function assertNeverLayer(x: never): never {
  throw new Error(`unhandled layer ${JSON.stringify(x)}`);
}

const NOT_COMPARED = new Set(['frame.len', '_ws.malformed']);

/**
 * Strict: every field either side has must be equal, occurrence by occurrence. Relaxed (ICMP errors quoting a
 * packet, fragments, frames we reject): each field we produce must equal tshark's first occurrences.
 */
function compare(where: string, d: Dissection, expected: Record<string, string[]>): number {
  const mine = fieldsOf(d);
  const quoting = d.layers.some(
    (l) =>
      (l.proto === 'icmp' &&
        [ICMP_DEST_UNREACHABLE, ICMP_REDIRECT, ICMP_TIME_EXCEEDED, ICMP_PARAMETER_PROBLEM].includes(l.value.type)) ||
      (l.proto === 'icmpv6' && l.value.type < 128) ||
      (l.proto === 'ipv4' && l.value.isFragment) ||
      (l.proto === 'ipv6' && l.value.fragment !== null),
  );
  const relaxed = quoting || d.error !== null;
  let n = 0;
  const keys = new Set([...Object.keys(mine), ...(relaxed ? [] : Object.keys(expected))]);
  for (const f of keys) {
    if (NOT_COMPARED.has(f)) continue;
    const a = mine[f] ?? [];
    const e = expected[f] ?? [];
    assert.deepEqual(a, relaxed ? e.slice(0, a.length) : e, `${where}: field ${f}`);
    n++;
  }
  return n;
}

function runCapture(file: string, json: string): { frames: number; fields: number; dissections: Dissection[] } {
  const recs = readCaptureFile(new URL(file, FIX));
  const ts = loadJson<TsharkFile>(json);
  assert.equal(recs.length, ts.frames.length, 'frame count');
  let fields = 0;
  const dissections: Dissection[] = [];
  recs.forEach((r, i) => {
    const d = dissect(r.bytes);
    dissections.push(d);
    fields += compare(`${file} frame ${i + 1}`, d, ts.frames[i]!);
  });
  return { frames: recs.length, fields, dissections };
}

/** Frame-builder frames committed as frame-builder.pcap: tshark confirms their lengths and checksums. */
function builderVectors(): Uint8Array[] {
  const fd01 = parseIpv6Address('fd01::')!;
  return [
    frame().eth({ src: 0x020000000001, dst: '02:00:00:00:00:02' }).vlan({ vid: 10, pcp: 3 }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 64 }).udp({ sport: 1000, dport: 9999 }).payload(33).bytes(),
    frame().eth({ dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 1, sha: '02:00:00:00:00:01', spa: '10.0.0.1', tha: 0, tpa: '10.0.0.2' }).pad().bytes(),
    frame().eth().ipv4({ df: true, id: 4242 }).tcp({ sport: 1234, dport: 80, flags: 'S', seq: 1000, options: new Uint8Array([2, 4, 5, 0xb4, 1, 3, 3, 7]) }).bytes(),
    frame().eth().ipv4().tcp({ sport: 80, dport: 1234, flags: 'PA', seq: 0xfffffff0, ack: 1001 }).payload(101).bytes(),
    frame().eth().ipv4().icmp({ type: 8, code: 0, id: 7, seq: 1 }).payload(56).bytes(),
    frame().eth().ipv4({ src: '10.0.0.254' }).icmp({ type: 3, code: 4, mtu: 1450 }).ipv4({ df: true }).udp({ sport: 5, dport: 6 }).payload(4).bytes(),
    frame().eth().ipv4({ options: new Uint8Array([1, 7, 7, 4, 0, 0, 0, 0]) }).udp().payload(1).bytes(),
    frame().eth().ipv6().icmpv6({ type: 128, id: 1, seq: 2 }).payload(9).bytes(),
    frame().eth({ dst: '33:33:ff:00:00:02' }).ipv6({ dst: 'ff02::1:ff00:2', hopLimit: 255 }).icmpv6({ type: 135, target: 'fd00::2', sll: '02:00:00:00:00:01' }).bytes(),
    frame().eth().ipv6({ src: 'fd00::2', dst: 'fd00::1', hopLimit: 255 }).icmpv6({ type: 136, target: 'fd00::2', solicited: true, override: true, tll: 0x020000000002 }).bytes(),
    frame().eth().ipv6({ src: 'fe80::1', dst: 'ff02::1', hopLimit: 255 }).icmpv6({ type: 134, managed: true, sll: 1, options: [{ kind: 'prefix', prefix: fd01, prefixLength: 64 }, { kind: 'mtu', mtu: 1500 }] }).bytes(),
    frame().eth().ipv6({ src: 'fe80::1', hopLimit: 255 }).icmpv6({ type: 137, target: 'fe80::9', destination: 'fd00:9::1', tll: 9 }).bytes(),
    frame().eth().ipv6({ ext: [{ type: 0 }, { type: 43 }, { type: 60 }] }).udp({ sport: 5, dport: 6 }).payload(10).bytes(),
    frame().eth().ipv6({ ext: [{ type: 51 }] }).tcp({ sport: 7, dport: 22 }).bytes(),
    frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2', df: true }).nvgre(5001, 0x2a).eth({ src: '02:aa:00:00:00:01', dst: '02:aa:00:00:00:02' }).ipv4().icmp({ id: 3, seq: 4 }).bytes(),
    frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).gre({ checksum: true, key: 0x12345607, sequence: 9 }).eth().ipv4().udp().payload(3).bytes(),
    frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).gre().ipv4().icmp().bytes(),
    frame().eth().ipv6({ src: 'fd00:200::1', dst: 'fd00:200::2' }).nvgre(77, 1).eth().ipv4().icmp().bytes(),
    frame().eth().ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).udp({ sport: 4444 }).vxlan({ vni: 5001 }).eth().ipv4().tcp({ flags: 'PA', ack: 5 }).payload(20).bytes(),
    frame().eth().ipv6().udp().vxlan({ vni: 0xabcdef }).eth({ dst: 'ff:ff:ff:ff:ff:ff' }).vlan({ vid: 20 }).arp().bytes(),
    frame().eth().qinq(100, 10, 2).ipv4().udp().bytes(),
    frame().eth({ dst: 'ff:ff:ff:ff:ff:ff' }).ipv4({ src: '0.0.0.0', dst: '255.255.255.255' }).udp().dhcp({ messageType: 1, requestedIp: '10.0.0.9' }).bytes(),
    frame().eth({ dst: 'ff:ff:ff:ff:ff:ff' }).ipv4({ src: '10.0.0.254', dst: '255.255.255.255' }).udp().dhcp({ messageType: 2, yiaddr: '10.0.0.9', serverId: '10.0.0.254' }).bytes(),
  ];
}

if (process.env['XS_WIRE_REGEN'] === '1') {
  writeCaptureFile(new URL('frame-builder.pcap', FIX), builderVectors().map((bytes, i) => ({ ts: 1700000000 + i / 1000, bytes })));
}

describe('tshark agreement', () => {
  it('frame builder: same bytes as the committed capture; tshark finds every length and checksum good', () => {
    const vectors = builderVectors();
    const recs = readCaptureFile(new URL('frame-builder.pcap', FIX));
    assert.equal(recs.length, vectors.length);
    recs.forEach((r, i) => assert.deepEqual(r.bytes, vectors[i], `builder frame ${i + 1} changed: regenerate`));
    const ts = loadJson<TsharkFile>('frame-builder.tshark.json');
    let checked = 0;
    ts.frames.forEach((f, i) => {
      assert.equal(f['_ws.malformed'], undefined, `frame ${i + 1} malformed for tshark`);
      for (const [k, v] of Object.entries(f)) {
        if (!k.endsWith('checksum.status')) continue;
        // 2: tshark could not verify (the UDP inside an ICMP error quotes only part of the datagram)
        for (const x of v) assert.ok(x === '1' || (x === '2' && k === 'udp.checksum.status' && i === 5), `frame ${i + 1} ${k}=${x}`);
        checked += v.length;
      }
    });
    assert.ok(checked >= 40, `${checked} checksums`);
    const { dissections } = runCapture('frame-builder.pcap', 'frame-builder.tshark.json');
    for (const d of dissections) assert.equal(d.error, null);
  });

  it('scapy-wire.pcap: good frames parse and match tshark, bad frames fail with the expected reason', () => {
    const manifest = loadJson<ManifestEntry[]>('scapy-wire.frames.json');
    const { frames, fields, dissections } = runCapture('scapy-wire.pcap', 'scapy-wire.tshark.json');
    assert.equal(frames, manifest.length);
    assert.ok(fields > 1000, `compared ${fields} fields`);
    manifest.forEach((m, i) => {
      const d = dissections[i]!;
      if (m.error === null) {
        assert.equal(d.error, null, `${m.name}: unexpected error ${JSON.stringify(d.error)}`);
      } else {
        assert.notEqual(d.error, null, `${m.name}: expected a ${m.error.proto} error`);
        assert.equal(d.error!.proto, m.error.proto, `${m.name}: ${d.error!.reason}`);
        assert.ok(d.error!.reason.includes(m.error.reason), `${m.name}: reason '${d.error!.reason}' lacks '${m.error.reason}'`);
      }
    });
  });

  it('scapy-crafted.pcap (peers): fields match tshark; the crafted bad frames are rejected', () => {
    const manifest = loadJson<ManifestEntry[]>('scapy-crafted.frames.json');
    const { dissections } = runCapture('scapy-crafted.pcap', 'scapy-crafted.tshark.json');
    assert.equal(dissections.length, manifest.length);
    manifest.forEach((m, i) => {
      const d = dissections[i]!;
      if (m.error === null) assert.equal(d.error, null, `${m.name}: unexpected error ${JSON.stringify(d.error)}`);
      else {
        assert.equal(d.error?.proto, m.error.proto, `${m.name}: ${JSON.stringify(d.error)}`);
        assert.ok(d.error!.reason.includes(m.error.reason), `${m.name}: '${d.error!.reason}' lacks '${m.error.reason}'`);
      }
    });
  });

  it('ovs-nvgre-flowid.pcapng (OVS userspace GRE): keys 0x1234562a / 0x12345607 = VSID 0x123456, FlowIDs 0x2a / 0x07', () => {
    const { dissections } = runCapture('ovs-nvgre-flowid.pcapng', 'ovs-nvgre-flowid.tshark.json');
    const flows = new Set<number>();
    for (const d of dissections) {
      assert.equal(d.error, null);
      for (const l of d.layers) {
        if (l.proto !== 'gre') continue;
        assert.equal(l.value.vsid, 0x123456);
        flows.add(l.value.flowId!);
      }
    }
    assert.deepEqual([...flows].sort((a, b) => a - b), [0x07, 0x2a]);
  });

  it('linux-vxlan-5001.pcapng (kernel vxlan): every frame is VXLAN VNI 5001 with a parsed inner frame', () => {
    const { dissections } = runCapture('linux-vxlan-5001.pcapng', 'linux-vxlan-5001.tshark.json');
    const ts = loadJson<TsharkFile>('linux-vxlan-5001.tshark.json');
    let tunnelled = 0;
    for (const d of dissections) {
      assert.equal(d.error, null);
      const vx = d.layers.find((l) => l.proto === 'vxlan');
      if (vx === undefined) continue; // underlay ARP between the VTEPs
      assert.ok(vx.proto === 'vxlan' && vx.value.vni === 5001);
      assert.equal(d.layers.filter((l) => l.proto === 'ethernet').length, 2);
      tunnelled++;
    }
    assert.equal(tunnelled, ts.frames.filter((f) => f['vxlan.vni'] !== undefined).length);
    assert.ok(tunnelled >= 20, `${tunnelled} VXLAN frames`);
  });
});
