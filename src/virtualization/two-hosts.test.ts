// virtualization/two-hosts.test.ts: two whole Switches (memory ports) whose external ports are joined by the test,
// red and blue tenants with the SAME CAs and MACs on both, for NVGRE, VXLAN and IP rewrite: policy ARP, unicast
// across hosts, tenant isolation, distributed routing, tenant MTU, forged and foreign tunnel packets, migration.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { portCfg, RecordingLogger } from '../dataplane/switch.test-kit.js';
import { Switch } from '../dataplane/switch.js';
import { ManualClock, type PortId } from '../dataplane/types.js';
import { GSO_NONE, GSO_TCPV4, GSO_UDP_TUNNEL_IPV4 } from '../dataplane/frame.js';
import type { PortBackend } from '../io/backend.js';
import { memoryPort, type MemoryPort } from '../io/memory.js';
import { parseIpv4Address } from '../wire/addresses.js';
import { parseArp } from '../wire/arp.js';
import { readU16, readU32 } from '../wire/byte-order.js';
import { checksumValid } from '../wire/checksum.js';
import { readMac } from '../wire/ethernet.js';
import type { LookupRule, NetworkSpec } from './model.js';
import {
  hostInput,
  MAC5,
  MAC6,
  MAC7,
  MAC8,
  ROUTER_MAC,
  spec,
  UPLINK_A,
  UPLINK_B,
  VMS,
  type Tenant,
  vsidOf,
} from './virtualization.test-kit.js';

const ip = (s: string): number => parseIpv4Address(s)!;

interface Host {
  readonly name: 'host-a' | 'host-b';
  readonly sw: Switch;
  readonly clock: ManualClock;
  readonly uplink: MemoryPort;
  readonly uplinkId: PortId;
  /** VM ports by `${tenant}-${vm}`. */
  readonly vm: Record<string, MemoryPort>;
  readonly vmId: Record<string, PortId>;
}

function addVm(h: Host, tenant: Tenant, vmName: string, offload = false): void {
  const vm = VMS.find((v) => v.name === vmName)!;
  const key = `${tenant}-${vmName}`;
  const port = memoryPort(key, { offload });
  h.vm[key] = port;
  h.vmId[key] = h.sw.addPort(port, portCfg(key, { vsid: vsidOf(tenant, vm.subnet), mac: vm.mac }));
}

/** What an uplink with tunnel offload is to the switch: its own port plus tunnelTx; sends are logged in order. */
function tunnelUplink(up: MemoryPort, tun: MemoryPort, log: string[]): PortBackend {
  const logged = (p: MemoryPort, tag: string): PortBackend['send'] => (b, idx, c) => {
    const n = p.send(b, idx, c);
    for (let k = 0; k < n; k++) log.push(`${tag}:${b.meta[idx[k]!]!.len}`);
    return n;
  };
  const tunnelTx: PortBackend = {
    kind: tun.kind, name: tun.name, offload: true, maxFrameBytes: tun.maxFrameBytes, stats: tun.stats,
    receive: () => 0, send: logged(tun, 'tunnel'), start: () => undefined, stop: () => undefined, close: () => tun.close(),
  };
  return {
    kind: up.kind, name: up.name, offload: true, maxFrameBytes: up.maxFrameBytes, stats: up.stats, tunnelTx,
    receive: (b, f, m) => up.receive(b, f, m), send: logged(up, 'uplink'), start: (cb) => up.start(cb), stop: () => up.stop(),
    close: () => up.close(),
  };
}

function makeHost(name: 'host-a' | 'host-b', s: NetworkSpec, mtu = 1500, tunnel?: { port: MemoryPort; log: string[] }): Host {
  const clock = new ManualClock(1_000_000);
  const sw = new Switch({ name: 'sw0', clock, log: new RecordingLogger() });
  const uplink = memoryPort('uplink', tunnel !== undefined ? { offload: true } : { maxFrameBytes: 2048 });
  const uplinkId = sw.addPort(tunnel !== undefined ? tunnelUplink(uplink, tunnel.port, tunnel.log) : uplink, portCfg('uplink', { kind: 'external' }));
  const h: Host = { name, sw, clock, uplink, uplinkId, vm: {}, vmId: {} };
  for (const vm of VMS) if (vm.host === name) for (const t of ['red', 'blue'] as const) addVm(h, t, vm.name, tunnel !== undefined);
  sw.setVirtualization(hostInput(name, s, mtu));
  return h;
}

/** Everything that crossed the underlay, per direction. */
interface Wire {
  readonly ab: Uint8Array[];
  readonly ba: Uint8Array[];
}

/** Poll both switches and move frames between their uplinks until the underlay is quiet. */
function exchange(a: Host, b: Host, wire: Wire = { ab: [], ba: [] }): Wire {
  for (let round = 0; round < 20; round++) {
    a.sw.poll();
    b.sw.poll();
    const ab = a.uplink.takeSent();
    const ba = b.uplink.takeSent();
    if (ab.length === 0 && ba.length === 0) return wire;
    for (const f of ab) {
      wire.ab.push(f);
      b.uplink.inject(f);
    }
    for (const f of ba) {
      wire.ba.push(f);
      a.uplink.inject(f);
    }
  }
  throw new Error('the underlay never went quiet');
}

function pair(s: NetworkSpec, mtu = 1500): { a: Host; b: Host } {
  const a = makeHost('host-a', s, mtu);
  const b = makeHost('host-b', s, mtu);
  exchange(a, b); // PA ARP both ways, announcements
  for (const h of [a, b]) for (const p of Object.values(h.vm)) p.takeSent();
  return { a, b };
}

function udp(src: number, dst: number, sip: string, dip: string, o: { ttl?: number; payload?: number; df?: boolean; mark?: number } = {}): Uint8Array {
  const f = frame()
    .eth({ src, dst })
    .ipv4({ src: sip, dst: dip, ttl: o.ttl ?? 64, df: o.df ?? true })
    .udp({ sport: 4000, dport: 5000 })
    .payload(o.payload ?? 32)
    .bytes();
  f[42] = o.mark ?? 0xab;
  return f;
}

/** Frames every VM port got since the last call, by port key (empty ones left out). */
function received(h: Host): Record<string, Uint8Array[]> {
  const out: Record<string, Uint8Array[]> = {};
  for (const [k, p] of Object.entries(h.vm)) {
    const s = p.takeSent();
    if (s.length > 0) out[k] = s;
  }
  return out;
}

function drops(h: Host, id: PortId): Record<string, number> {
  return { ...h.sw.portCounters(id).drops };
}

const RULES: LookupRule[] = ['encap', 'vxlan', 'rewrite'];

for (const rule of RULES) {
  describe(`two hosts, ${rule}`, () => {
    it('PA ARP resolves both ways; the policy table answers tenant ARP locally (nothing crosses)', () => {
      const { a, b } = pair(spec({ rule }));
      assert.equal(a.sw.virtualization()!.arp.find((e) => e.address === '192.0.2.2' || e.address.startsWith('192.0.2.1'))?.state, 'reachable');
      a.vm['red-vm5']!.inject(frame().eth({ src: MAC5, dst: 0xffff_ffff_ffff }).arp({ op: 1, sha: MAC5, spa: '10.0.0.5', tpa: '10.0.0.6' }).bytes());
      const w = exchange(a, b);
      assert.equal(w.ab.length, 0);
      const got = received(a);
      assert.deepEqual(Object.keys(got), ['red-vm5']);
      const rep = parseArp(got['red-vm5']![0]!, 14, 28);
      assert.ok(rep.ok);
      assert.equal(rep.value.op, 2);
      assert.equal(rep.value.sha, MAC6);
      assert.equal(rep.value.spa, ip('10.0.0.6'));
      assert.deepEqual(received(b), {});
    });

    it('unicast crosses to the same tenant only, both ways; the underlay carries the rule', () => {
      const { a, b } = pair(spec({ rule }));
      for (const t of ['red', 'blue'] as const) {
        const f = udp(MAC5, MAC6, '10.0.0.5', '10.0.0.6', { mark: t === 'red' ? 1 : 2 });
        a.vm[`${t}-vm5`]!.inject(f);
        const w = exchange(a, b);
        assert.equal(w.ab.length, 1);
        const o = w.ab[0]!;
        assert.equal(readMac(o, 0), UPLINK_B);
        assert.equal(readMac(o, 6), UPLINK_A);
        if (rule === 'encap') {
          assert.equal(o[23], 47);
          assert.equal(readU32(o, 38) >>> 8, vsidOf(t, 1));
          assert.equal(readU16(o, 36), 0x6558);
        } else if (rule === 'vxlan') {
          assert.equal(o[23], 17);
          assert.equal(readU16(o, 36), 4789);
          assert.equal(readU32(o, 46) >>> 8, vsidOf(t, 1));
        } else {
          assert.equal(o.length, f.length);
          assert.equal(readU32(o, 26), ip(t === 'red' ? '192.0.2.15' : '192.0.2.25'));
          assert.equal(readU32(o, 30), ip(t === 'red' ? '192.0.2.16' : '192.0.2.26'));
          assert.ok(checksumValid(o, 14, 20));
        }
        const got = received(b);
        assert.deepEqual(Object.keys(got), [`${t}-vm6`]);
        assert.deepEqual(got[`${t}-vm6`], [f]);
        assert.deepEqual(received(a), {});
        // and back
        const r = udp(MAC6, MAC5, '10.0.0.6', '10.0.0.5', { mark: t === 'red' ? 3 : 4 });
        b.vm[`${t}-vm6`]!.inject(r);
        exchange(a, b);
        assert.deepEqual(received(a), { [`${t}-vm5`]: [r] });
        assert.deepEqual(received(b), {});
      }
    });

    it('broadcast stays on its host and in its VSID', () => {
      const { a, b } = pair(spec({ rule }));
      a.vm['red-vm5']!.inject(frame().eth({ src: MAC5, dst: 0xffff_ffff_ffff }).ipv4({ src: '10.0.0.5', dst: '10.0.0.255' }).udp().bytes());
      const w = exchange(a, b);
      assert.equal(w.ab.length, 0);
      assert.deepEqual(received(a), {});
      assert.deepEqual(received(b), {});
    });

    it('distributed routing across subnets of one routing domain: TTL - 1 once, router MAC as source', () => {
      const { a, b } = pair(spec({ rule }));
      for (const t of ['red', 'blue'] as const) {
        a.vm[`${t}-vm5`]!.inject(udp(MAC5, ROUTER_MAC, '10.0.0.5', '10.0.1.7', { ttl: 20 }));
        exchange(a, b);
        const got = received(b);
        assert.deepEqual(Object.keys(got), [`${t}-vm7`]);
        const f = got[`${t}-vm7`]![0]!;
        assert.equal(readMac(f, 0), MAC7);
        assert.equal(readMac(f, 6), ROUTER_MAC);
        assert.equal(f[22], 19);
        assert.ok(checksumValid(f, 14, 20));
        assert.equal(readU32(f, 26), ip('10.0.0.5'));
        assert.equal(readU32(f, 30), ip('10.0.1.7'));
      }
      // a CA of red's other subnet is not reachable from a routing domain that has no record for it
      assert.deepEqual(received(a), {});
    });

    it('MTU: the largest tenant packet crosses, one byte more becomes fragmentation needed; no outer fragments', () => {
      const { a, b } = pair(spec({ rule }));
      const mtu = a.sw.virtualization()!.vsids.find((v) => v.vsid === 5001)!.tenantMtu;
      assert.equal(mtu, rule === 'encap' ? 1458 : rule === 'vxlan' ? 1450 : 1500);
      a.vm['red-vm5']!.inject(udp(MAC5, MAC6, '10.0.0.5', '10.0.0.6', { payload: mtu - 28 }));
      let w = exchange(a, b);
      assert.equal(w.ab.length, 1);
      assert.ok(w.ab[0]!.length - 14 <= 1500);
      assert.equal(readU16(w.ab[0]!, 20) & 0x3fff, 0); // outer: not a fragment
      assert.equal(received(b)['red-vm6']?.length, 1);
      if (rule !== 'rewrite') {
        a.vm['red-vm5']!.inject(udp(MAC5, MAC6, '10.0.0.5', '10.0.0.6', { payload: mtu - 27 }));
        w = exchange(a, b);
        assert.equal(w.ab.length, 0);
        const back = received(a)['red-vm5'];
        assert.equal(back?.length, 1);
        const icmp = back![0]!;
        assert.equal(icmp[34], 3);
        assert.equal(icmp[35], 4);
        assert.equal(readU16(icmp, 40), mtu);
        assert.equal(readU32(icmp, 30), ip('10.0.0.5'));
        assert.equal(drops(a, a.vmId['red-vm5']!)['tenant-mtu-exceeded'], 1);
        assert.equal(a.sw.virtualization()!.counters['fragNeeded'], 1);
      }
    });

    it('live migration: vm6 moves from B to A; it is announced, and traffic from B follows it', () => {
      const s = spec({ rule });
      const { a, b } = pair(s);
      const moved = spec({ rule, hostOf: { vm6: 'host-a' } });
      addVm(a, 'red', 'vm6');
      addVm(a, 'blue', 'vm6');
      a.sw.setVirtualization(hostInput('host-a', moved));
      b.sw.setVirtualization(hostInput('host-b', moved));
      const w = exchange(a, b);
      // the new host announces the CA into its VSID (local VMs), and for rewrite the PA on the underlay
      const garps = (received(a)['red-vm5'] ?? []).map((f) => parseArp(f, 14, 28)).filter((p) => p.ok && p.value.spa === p.value.tpa);
      assert.equal(garps.length, 1);
      if (rule === 'rewrite') {
        const paGarp = w.ab.map((f) => parseArp(f, 14, 28)).find((p) => p.ok && p.value.spa === ip('192.0.2.16') && p.value.tpa === ip('192.0.2.16'));
        assert.ok(paGarp !== undefined);
      }
      // vm7 on B routes to vm6, now on A
      b.vm['red-vm7']!.inject(udp(MAC7, ROUTER_MAC, '10.0.1.7', '10.0.0.6', { ttl: 9 }));
      exchange(a, b);
      const got = received(a);
      assert.deepEqual(Object.keys(got), ['red-vm6']);
      assert.equal(got['red-vm6']![0]![22], 8);
      // vm5 -> vm6 is local on A now: nothing on the underlay
      a.vm['red-vm5']!.inject(udp(MAC5, MAC6, '10.0.0.5', '10.0.0.6'));
      assert.equal(exchange(a, b).ab.length, 0);
      assert.deepEqual(Object.keys(received(a)), ['red-vm6']);
      const st = a.sw.virtualization()!;
      assert.equal(st.records.find((r) => r.vsid === 5001 && r.ca === '10.0.0.6')!.local, true);
    });
  });
}

describe('two hosts: bad underlay input', () => {
  it('forged VSID, PA not owned, malformed GRE/VXLAN: dropped by reason on the uplink; nothing reaches a VM', () => {
    const { a, b } = pair(spec());
    const inner = () => frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).udp().payload(8);
    const outer = (dst: string) => frame().eth({ src: UPLINK_A, dst: UPLINK_B }).ipv4({ src: '192.0.2.1', dst });
    const bad: [Uint8Array, string][] = [
      [outer('192.0.2.2').nvgre(7777, 3).eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).udp().bytes(), 'unknown-vsid'],
      [outer('192.0.2.2').udp().vxlan({ vni: 7777 }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'unknown-vsid'],
      [outer('192.0.2.99').nvgre(5001, 3).eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).udp().bytes(), 'pa-not-owned'],
      [outer('192.0.2.99').udp().vxlan({ vni: 5001 }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'pa-not-owned'],
      [outer('192.0.2.2').gre({ vsid: 5001, sequence: 1 }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'bad-encap'],
      [outer('192.0.2.2').udp().vxlan({ vni: 5001, flags: 0 }).eth({ src: MAC5, dst: MAC6 }).ipv4().udp().bytes(), 'bad-encap'],
    ];
    void inner;
    for (const [f] of bad) b.uplink.inject(f);
    b.sw.poll();
    const d = drops(b, b.uplinkId);
    assert.equal(d['unknown-vsid'], 2);
    assert.equal(d['pa-not-owned'], 2);
    assert.equal(d['bad-encap'], 2);
    assert.deepEqual(received(b), {});
    assert.deepEqual(received(a), {});
  });

  it('a tunnel packet claiming blue VSID with a red inner frame reaches blue only (the VSID decides)', () => {
    const { b } = pair(spec());
    b.uplink.inject(
      frame().eth({ src: UPLINK_A, dst: UPLINK_B }).ipv4({ src: '192.0.2.1', dst: '192.0.2.2' }).nvgre(6001, 9).eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6' }).udp().bytes(),
    );
    b.sw.poll();
    assert.deepEqual(Object.keys(received(b)), ['blue-vm6']);
  });
});

void MAC8;

describe('two hosts, vxlan, uplink with tunnel offload (tunnelTx)', () => {
  it('a TCP super-frame goes whole to tunnelTx as UDP-tunnel GSO, in order with the frames around it', () => {
    const tun = memoryPort('tunnel', { offload: true });
    const log: string[] = [];
    const a = makeHost('host-a', spec({ rule: 'vxlan' }), 1500, { port: tun, log });
    const b = makeHost('host-b', spec({ rule: 'vxlan' }));
    exchange(a, b);
    log.length = 0;
    const c0 = a.sw.portCounters(a.uplinkId);
    const vm = a.vm['red-vm5']!;
    const small = udp(MAC5, MAC6, '10.0.0.5', '10.0.0.6', { mark: 1 });
    const big = frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).tcp({ sport: 40000, dport: 5201 }).payload(20000).bytes();
    const gso = { gsoType: GSO_TCPV4, gsoSize: 1398, hdrLen: 54, needsCsum: true, csumStart: 34, csumOffset: 16 };
    vm.inject(small);
    vm.inject(big, gso);
    vm.inject(big, gso);
    vm.inject(small);
    a.sw.poll();
    assert.deepEqual(log, [`uplink:${small.length + 50}`, `tunnel:${big.length + 50}`, `tunnel:${big.length + 50}`, `uplink:${small.length + 50}`]);
    const sent = tun.takeSentWithMeta();
    assert.equal(sent.length, 2);
    const o = sent[0]!;
    assert.equal(o.meta.gsoType, GSO_UDP_TUNNEL_IPV4 | GSO_TCPV4);
    assert.deepEqual([o.meta.gsoSize, o.meta.hdrLen, o.meta.csumStart, o.meta.csumOffset, o.meta.needsCsum], [1398, 104, 84, 16, true]);
    assert.equal(readU16(o.bytes, 16), o.bytes.length - 14, 'outer IPv4 length of the whole frame');
    assert.ok(checksumValid(o.bytes, 14, 20));
    assert.equal(readU16(o.bytes, 36), 4789);
    assert.equal(readU32(o.bytes, 46) >>> 8, vsidOf('red', 1));
    assert.deepEqual(o.bytes.subarray(50), big);
    assert.deepEqual(a.uplink.takeSentWithMeta().map((f) => f.meta.gsoType), [GSO_NONE, GSO_NONE]);
    // the switch's frame is back to what it was: a flood copy or a later destination sees the inner frame
    assert.deepEqual(drops(a, a.uplinkId), {});
    const c = a.sw.portCounters(a.uplinkId);
    assert.equal(c.txFrames - c0.txFrames, 4);
    assert.equal(c.txBytes - c0.txBytes, 2 * (small.length + 50) + 2 * (big.length + 50));
  });

  it('without tunnelTx the same super-frame is segmented to the MSS before encapsulation', () => {
    const a = makeHost('host-a', spec({ rule: 'vxlan' }));
    const b = makeHost('host-b', spec({ rule: 'vxlan' }));
    exchange(a, b);
    a.sw.removePort(a.vmId['red-vm5']!); // replaced by a port with offload (GSO frames in)
    const vm = memoryPort('red-vm5b', { offload: true });
    a.sw.addPort(vm, portCfg('red-vm5b', { vsid: vsidOf('red', 1), mac: MAC5 }));
    const big = frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).tcp().payload(5000).bytes();
    vm.inject(big, { gsoType: GSO_TCPV4, gsoSize: 1398, hdrLen: 54, needsCsum: true, csumStart: 34, csumOffset: 16 });
    a.sw.poll();
    const out = a.uplink.takeSentWithMeta();
    assert.equal(out.length, Math.ceil(5000 / 1398));
    for (const f of out) assert.equal(f.meta.gsoType, GSO_NONE);
  });
});

for (const rule of ['encap', 'vxlan'] as const) {
  describe(`two hosts, IPv6 CAs, ${rule}`, () => {
    const ping6 = (src: number, dst: number, sip: string, dip: string, size = 32, mark = 0): Uint8Array => {
      const f = frame().eth({ src, dst }).ipv6({ src: sip, dst: dip, hopLimit: 64 }).icmpv6({ type: 128, id: mark, seq: 1 }).payload(size).bytes();
      return f;
    };

    it('an NS is answered on the sending host (nothing crosses); IPv6 unicast crosses to the same tenant only, both ways', () => {
      const { a, b } = pair(spec({ rule, ipv6: true }));
      a.vm['red-vm5']!.inject(frame().eth({ src: MAC5, dst: 0x33_33_ff_00_00_06 }).ipv6({ src: 'fd00:1::5', dst: 'ff02::1:ff00:6', hopLimit: 255 })
        .icmpv6({ type: 135, target: 'fd00:1::6', sll: MAC5 }).bytes());
      const w = exchange(a, b);
      assert.equal(w.ab.length, 0);
      const got = received(a);
      assert.deepEqual(Object.keys(got), ['red-vm5']);
      assert.equal(got['red-vm5']![0]![54], 136);
      assert.equal(readMac(got['red-vm5']![0]!, 80), MAC6);
      for (const t of ['red', 'blue'] as const) {
        const f = ping6(MAC5, MAC6, 'fd00:1::5', 'fd00:1::6', 32, t === 'red' ? 1 : 2);
        a.vm[`${t}-vm5`]!.inject(f);
        const wire = exchange(a, b);
        assert.equal(wire.ab.length, 1);
        const o = wire.ab[0]!;
        if (rule === 'encap') assert.equal(readU32(o, 38) >>> 8, vsidOf(t, 1));
        else assert.equal(readU32(o, 46) >>> 8, vsidOf(t, 1));
        assert.deepEqual(received(b), { [`${t}-vm6`]: [f] });
        const r = ping6(MAC6, MAC5, 'fd00:1::6', 'fd00:1::5', 32, t === 'red' ? 3 : 4);
        b.vm[`${t}-vm6`]!.inject(r);
        exchange(a, b);
        assert.deepEqual(received(a), { [`${t}-vm5`]: [r] });
      }
    });

    it('IPv6 over the tenant MTU comes back as packet too big; routed IPv6 arrives with hop limit 63 from the router MAC', () => {
      const { a, b } = pair(spec({ rule, ipv6: true }));
      const mtu = 1500 - (rule === 'encap' ? 42 : 50);
      a.vm['red-vm5']!.inject(ping6(MAC5, MAC6, 'fd00:1::5', 'fd00:1::6', mtu - 47));
      assert.equal(exchange(a, b).ab.length, 0);
      const back = received(a)['red-vm5']![0]!;
      assert.equal(back[54], 2);
      assert.equal(readU32(back, 58), mtu);
      a.vm['red-vm5']!.inject(ping6(MAC5, ROUTER_MAC, 'fd00:1::5', 'fd00:2::7', 32));
      assert.equal(exchange(a, b).ab.length, 1);
      const got = received(b)['red-vm7']![0]!;
      assert.equal(got[21], 63);
      assert.equal(readMac(got, 6), ROUTER_MAC);
      assert.equal(readMac(got, 0), MAC7);
    });
  });
}
