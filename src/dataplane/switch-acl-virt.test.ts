// dataplane/switch-acl-virt.test.ts: ICMP errors the switch itself sends a VM (fragmentation needed / packet too big
// when an encapsulated frame would exceed the tenant MTU, virtualization/icmp-reply.ts; time exceeded from the
// distributed router) and the VM port's ACLs. Outbound: the sender's port ACLs and extended ACLs judge the ORIGINAL
// packet first, as they would judge it forwarded (layer.ts aclDenied); a denied packet is dropped with the ACL's
// reason, counted in the rule's hits, and gets no ICMP; an allowed one that never leaves records no connection.
// Inbound: the error is built in place of the VM's frame and marked trusted (layer.ts replied), the switch's own
// frame, so port policy never judges it: it reaches the VM whether or not the VM's connection is tracked, and the
// VM's inbound rules do not count it. Checked here so a change to that path shows.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { memoryPort, type MemoryPort } from '../io/memory.js';
import { ca6Of, hostInput, MAC5, MAC6, spec, VMS, vsidOf } from '../virtualization/virtualization.test-kit.js';
import { portCfg, RecordingLogger } from './switch.test-kit.js';
import { Switch } from './switch.js';
import { ManualClock } from './types.js';
import type { ExtendedAclSpec } from '../policy/extended-acl.js';
import type { PortConfig } from './switch-api.js';
import { MAC8, ROUTER_MAC } from '../virtualization/virtualization.test-kit.js';

const statefulOut: ExtendedAclSpec[] = [
  { direction: 'out', action: 'allow', weight: 100, protocol: 'udp', stateful: true },
  { direction: 'in', action: 'deny', weight: 1 },
];

function hostA(): { sw: Switch; vm: MemoryPort; uplink: MemoryPort } {
  const sw = new Switch({ name: 'sw0', clock: new ManualClock(1_000_000), log: new RecordingLogger() });
  const uplink = memoryPort('uplink', { maxFrameBytes: 2048 });
  sw.addPort(uplink, portCfg('uplink', { kind: 'external' }));
  const vm = memoryPort('vm', { maxFrameBytes: 2048 });
  sw.addPort(vm, portCfg('vm', { vsid: vsidOf('red', 1), mac: MAC5, extendedAcls: statefulOut }));
  sw.setVirtualization(hostInput('host-a', spec({ ipv6: true })));
  return { sw, vm, uplink };
}

const vm6 = VMS.find((v) => v.name === 'vm6')!;
const vm5 = VMS.find((v) => v.name === 'vm5')!;

describe('switch-originated ICMP errors and a VM port with stateful extended ACLs', () => {
  it('IPv4 fragmentation needed reaches the VM, its connection tracked or not; the in deny rule never sees it', () => {
    const h = hostA();
    const big = (sport: number): Uint8Array =>
      frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).udp({ sport, dport: 5000 }).payload(1452).bytes();
    const small = frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).udp({ sport: 4000, dport: 5000 }).payload(20).bytes();
    h.vm.inject(small);
    h.sw.poll();
    assert.equal(h.sw.portAcl(h.sw.portId('vm')!)!.connections!.size, 1, 'the connection is tracked');
    for (const sport of [4000, 4001]) {
      h.vm.takeSent();
      h.vm.inject(big(sport));
      h.sw.poll();
      const back = h.vm.takeSent();
      assert.equal(back.length, 1, `fragmentation needed back to the VM (source port ${sport}, ${sport === 4000 ? '' : 'not '}tracked)`);
      const f = back[0]!;
      assert.equal(f[14 + 9], 1, 'ICMP');
      assert.deepEqual([f[34], f[35]], [3, 4]);
    }
    const st = h.sw.portAcl(h.sw.portId('vm')!)!;
    assert.equal(st.extendedAcls[1]!.frames, 0, 'the in deny rule did not judge the errors');
    assert.equal(st.connections!.related, 0, 'trusted: not even looked at');
  });

  it('IPv6 packet too big reaches the VM the same way', () => {
    const h = hostA();
    const big = frame().eth({ src: MAC5, dst: MAC6 }).ipv6({ src: ca6Of(vm5), dst: ca6Of(vm6) }).udp({ sport: 4000, dport: 5000 }).payload(1452).bytes();
    h.sw.poll();
    h.vm.takeSent(); // announcements of the new policy
    h.vm.inject(big);
    h.sw.poll();
    const back = h.vm.takeSent();
    assert.equal(back.length, 1, 'packet too big back to the VM');
    assert.equal(back[0]![14 + 40], 2, 'ICMPv6 type 2');
  });
});

// ---- the sender's ACLs judge the original before the switch answers it -----------------------------------------

/** Host A with the VM port vm (red vm5, 10.0.0.5, VSID 5001) configured with `cfg`, and vm8 (10.0.1.8, 5002) with
 * `cfg8`. */
function sender(cfg: Partial<PortConfig>, cfg8: Partial<PortConfig> = {}) {
  const clock = new ManualClock(1_000_000);
  const sw = new Switch({ name: 'sw0', clock, log: new RecordingLogger() });
  sw.addPort(memoryPort('uplink', { maxFrameBytes: 2048 }), portCfg('uplink', { kind: 'external' }));
  const vm = memoryPort('vm', { maxFrameBytes: 2048 });
  sw.addPort(vm, portCfg('vm', { vsid: vsidOf('red', 1), mac: MAC5, ...cfg }));
  const vm8 = memoryPort('vm8', { maxFrameBytes: 2048 });
  sw.addPort(vm8, portCfg('vm8', { vsid: vsidOf('red', 2), mac: MAC8, ...cfg8 }));
  sw.setVirtualization(hostInput('host-a', spec({ ipv6: true })));
  sw.poll();
  vm.takeSent(); // announcements of the new policy
  vm8.takeSent();
  const id = sw.portId('vm')!;
  return {
    sw,
    clock,
    vm8,
    /** Frames the VM got back for frame f. */
    send(f: Uint8Array): Uint8Array[] {
      vm.inject(f);
      sw.poll();
      return vm.takeSent();
    },
    drop: (reason: string): number => (sw.portCounters(id).drops as Record<string, number>)[reason] ?? 0,
    layer: (name: string): number => sw.virtualization()!.counters[name]!,
    acl: (withConnections = false) => sw.portAcl(id, withConnections)!,
  };
}

interface Target {
  readonly name: string;
  readonly mac: number;
  readonly ip: string;
  readonly ip6: string;
}
/** A remote VM of the sender's subnet (bridged to the uplink) and one of the other subnet (routed to the uplink). */
const BRIDGED: Target = { name: 'vm6 (same subnet, remote)', mac: MAC6, ip: '10.0.0.6', ip6: 'fd00:1::6' };
const ROUTED: Target = { name: 'vm7 (routed, remote)', mac: ROUTER_MAC, ip: '10.0.1.7', ip6: 'fd00:2::7' };
/** A local VM of the other subnet (routed to vm8's port). */
const ROUTED_LOCAL: Target = { name: 'vm8 (routed, local)', mac: ROUTER_MAC, ip: '10.0.1.8', ip6: 'fd00:2::8' };

function v4(to: Target, o: { payload?: number; ttl?: number; sport?: number } = {}): Uint8Array {
  return frame()
    .eth({ src: MAC5, dst: to.mac })
    .ipv4({ src: '10.0.0.5', dst: to.ip, df: true, ttl: o.ttl ?? 64 })
    .udp({ sport: o.sport ?? 4000, dport: 5000 })
    .payload(o.payload ?? 32)
    .bytes();
}
function v6(to: Target, o: { payload?: number; hopLimit?: number } = {}): Uint8Array {
  return frame()
    .eth({ src: MAC5, dst: to.mac })
    .ipv6({ src: ca6Of(vm5), dst: to.ip6, hopLimit: o.hopLimit ?? 64 })
    .udp({ sport: 4000, dport: 5000 })
    .payload(o.payload ?? 32)
    .bytes();
}
/** UDP payload over the tenant MTU of 1458 (IPv4 20 + UDP 8 + 1452 = 1480). */
const BIG = 1452;

describe('the sending VM\'s port ACLs judge a packet before the switch answers it with ICMP', () => {
  for (const [deny, allow] of [[BRIDGED, ROUTED], [ROUTED, BRIDGED]] as const) {
    it(`IPv4 DF over the tenant MTU: to ${deny.name}, denied out, acl-deny and no ICMP; to ${allow.name}, fragmentation needed`, () => {
      const h = sender({ acls: [{ direction: 'out', action: 'deny', remote: `${deny.ip}/32` }] });
      assert.equal(h.send(v4(deny, { payload: BIG })).length, 0, 'no ICMP for a destination the VM may not reach');
      assert.equal(h.drop('acl-deny'), 1);
      assert.equal(h.drop('tenant-mtu-exceeded'), 0);
      assert.equal(h.acl().acls[0]!.frames, 1, 'the deny rule counted it');
      assert.equal(h.layer('fragNeeded'), 0);

      const back = h.send(v4(allow, { payload: BIG }));
      assert.equal(back.length, 1, 'fragmentation needed for an allowed destination');
      assert.deepEqual([back[0]![34], back[0]![35]], [3, 4]);
      assert.equal((back[0]![40]! << 8) | back[0]![41]!, 1458);
      assert.equal(h.drop('tenant-mtu-exceeded'), 1);
      assert.equal(h.layer('fragNeeded'), 1);
      assert.equal(h.acl().acls[0]!.frames, 1);
      // control: the same rule drops a small packet on the forwarding path
      assert.equal(h.send(v4(deny)).length, 0);
      assert.equal(h.drop('acl-deny'), 2);
    });

    it(`IPv6 over the tenant MTU: to ${deny.name}, denied out, acl-deny and no ICMPv6; to ${allow.name}, packet too big`, () => {
      const h = sender({ acls: [{ direction: 'out', action: 'deny', remote: `${deny.ip6}/128` }] });
      assert.equal(h.send(v6(deny, { payload: BIG })).length, 0);
      assert.equal(h.drop('acl-deny'), 1);
      assert.equal(h.drop('tenant-mtu-exceeded'), 0);
      assert.equal(h.acl().acls[0]!.frames, 1);
      assert.equal(h.layer('packetTooBig'), 0);

      const back = h.send(v6(allow, { payload: BIG }));
      assert.equal(back.length, 1, 'packet too big for an allowed destination');
      assert.equal(back[0]![14 + 40], 2, 'ICMPv6 type 2');
      assert.equal(h.drop('tenant-mtu-exceeded'), 1);
      assert.equal(h.layer('packetTooBig'), 1);
    });
  }

  for (const [deny, allow] of [[ROUTED, ROUTED_LOCAL], [ROUTED_LOCAL, ROUTED]] as const) {
    it(`TTL 1 / hop limit 1 through the router: to ${deny.name}, denied out, no time exceeded; to ${allow.name}, time exceeded`, () => {
      const h = sender({
        acls: [
          { direction: 'out', action: 'deny', remote: `${deny.ip}/32` },
          { direction: 'out', action: 'deny', remote: `${deny.ip6}/128` },
        ],
      });
      assert.equal(h.send(v4(deny, { ttl: 1 })).length, 0, 'no ICMP time exceeded for a denied destination');
      assert.equal(h.send(v6(deny, { hopLimit: 1 })).length, 0, 'no ICMPv6 time exceeded for a denied destination');
      assert.equal(h.drop('acl-deny'), 2);
      assert.equal(h.drop('ttl-exceeded'), 0);
      assert.equal(h.acl().acls[0]!.frames, 1);
      assert.equal(h.acl().acls[1]!.frames, 1);
      assert.equal(h.layer('timeExceeded'), 0);

      const back4 = h.send(v4(allow, { ttl: 1 }));
      assert.equal(back4.length, 1);
      assert.equal(back4[0]![34], 11, 'ICMP time exceeded');
      const back6 = h.send(v6(allow, { hopLimit: 1 }));
      assert.equal(back6.length, 1);
      assert.equal(back6[0]![14 + 40], 3, 'ICMPv6 time exceeded');
      assert.equal(h.drop('ttl-exceeded'), 2);
      assert.equal(h.layer('timeExceeded'), 2);
    });
  }

  it('stateful extended ACLs: a denied packet gets no ICMP (extended-acl-deny); an allowed one records no connection', () => {
    const h = sender({
      extendedAcls: [
        { direction: 'out', action: 'allow', weight: 100, protocol: 'udp', stateful: true, idleTimeoutSec: 10 },
        { direction: 'out', action: 'deny', weight: 200, remoteAddress: `${ROUTED.ip}/32` },
        { direction: 'in', action: 'deny', weight: 1 },
      ],
    });
    assert.equal(h.send(v4(ROUTED, { payload: BIG })).length, 0, 'oversized to a denied destination: no ICMP');
    assert.equal(h.send(v4(ROUTED, { ttl: 1 })).length, 0, 'TTL 1 to a denied destination: no ICMP');
    assert.equal(h.drop('extended-acl-deny'), 2);
    assert.equal(h.acl().extendedAcls[1]!.frames, 2, 'the deny rule counted both');

    const frag = h.send(v4(BRIDGED, { payload: BIG }));
    assert.equal(frag.length, 1, 'oversized, allowed by the stateful rule: fragmentation needed');
    assert.deepEqual([frag[0]![34], frag[0]![35]], [3, 4]);
    const ttl = h.send(v4(ROUTED_LOCAL, { ttl: 1 }));
    assert.equal(ttl.length, 1, 'TTL 1, allowed: time exceeded');
    assert.equal(ttl[0]![34], 11);
    assert.equal(h.acl().extendedAcls[0]!.frames, 2, 'the stateful allow rule counted both');
    assert.equal(h.acl().connections!.created, 0, 'packets that never left opened no connection');
    assert.equal(h.acl().connections!.size, 0);

    // control: a packet that leaves opens one (on two source ports)
    h.send(v4(BRIDGED, { sport: 4000 }));
    h.send(v4(BRIDGED, { sport: 4001 }));
    assert.equal(h.acl().connections!.created, 2);
    // 8 s later (idle timeout 10 s): an oversized packet of connection 4000 is admitted by it and answered, but
    // does not refresh it; a small one of 4001 leaves and does
    h.clock.advance(8_000);
    const tracked = h.send(v4(BRIDGED, { payload: BIG, sport: 4000 }));
    assert.equal(tracked.length, 1, 'fragmentation needed for a tracked connection');
    h.send(v4(BRIDGED, { sport: 4001 }));
    h.clock.advance(4_000);
    const left = h.acl(true).connectionList!.map((c) => c.local);
    assert.deepEqual(left, ['10.0.0.5 4001'], 'the connection the oversized packet belonged to was not refreshed by it');
  });
});

// ---- MAC rules and the distributed router ---------------------------------------------------------------------

describe('port ACL MAC rules on routed frames: out as the frame left the VM, in as it reaches the VM', () => {
  const ROUTER_TEXT = '02:58:53:00:00:01';
  it("an out rule on the VM's own MAC (local) or on the gateway's (remote) stops its routed traffic too", () => {
    for (const rule of [{ local: '02:00:00:00:00:05' }, { remote: ROUTER_TEXT }]) {
      const h = sender({ acls: [{ direction: 'out', action: 'deny', ...rule }] });
      h.send(v4(ROUTED_LOCAL));
      assert.equal(h.vm8.takeSent().length, 0, `routed to vm8 despite deny out ${JSON.stringify(rule)}`);
      assert.equal(h.drop('acl-deny'), 1);
      assert.equal(h.acl().acls[0]!.frames, 1, 'the rule counted it');
    }
    // a remote rule on the destination VM's MAC is not what the VM sent to: its routed frames pass
    const h = sender({ acls: [{ direction: 'out', action: 'deny', remote: '02:00:00:00:00:08' }] });
    h.send(v4(ROUTED_LOCAL));
    const got = h.vm8.takeSent();
    assert.equal(got.length, 1, 'routed to vm8');
    assert.equal(readMacAt(got[0]!, 6), ROUTER_MAC, 'from the router MAC');
    assert.equal(h.drop('acl-deny'), 0);
  });

  it("an in rule at the destination sees the routed frame as delivered (from the router MAC)", () => {
    const h = sender({}, { acls: [{ direction: 'in', action: 'deny', remote: ROUTER_TEXT }] });
    h.send(v4(ROUTED_LOCAL));
    assert.equal(h.vm8.takeSent().length, 0, 'excluded at vm8 by its in rule on the router MAC');
    const h2 = sender({}, { acls: [{ direction: 'in', action: 'deny', remote: '02:00:00:00:00:05' }] });
    h2.send(v4(ROUTED_LOCAL));
    assert.equal(h2.vm8.takeSent().length, 1, "the sender's MAC is not what vm8 receives from");
  });
});

function readMacAt(f: Uint8Array, o: number): number {
  let v = 0;
  for (let k = 0; k < 6; k++) v = v * 256 + f[o + k]!;
  return v;
}
