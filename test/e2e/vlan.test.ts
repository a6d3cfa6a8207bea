// test/e2e/vlan.test.ts: access VLANs isolate TAP VMs; a trunk (veth over AF_PACKET) carrying 10,20 links
// xswitch to an independent VLAN-aware peer (a private userspace OVS with tag=10/tag=20 access ports); scapy
// Dot1Q frames into the trunk and tshark on both sides check which vlan.id xswitch accepts and emits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, OvsPeer, ping, pingUntilReply, sendFrames } from '../helpers/peers.js';
import { waitFor } from '../helpers/proc.js';
import { type Counters, dropCount, makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

interface OvsVm {
  readonly ns: string;
  readonly ip: string;
  readonly mac: string;
}

describe('VLANs: access ports and a trunk to a private OVS', { timeout: 300_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  let vm3: TapVm;
  let o: string;
  let o10: OvsVm;
  let o20: OvsVm;
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    o = await t.addNs('o');
    // trunk link: xswitch's end in h1 (AF_PACKET port), OVS's end k1 in the OVS namespace
    const trunkIf = t.ifname('k0');
    await t.veth({ ns: h1, name: trunkIf }, { ns: o, name: 'k1' });
    await t.sysctl(h1, `net.ipv6.conf.${trunkIf}.disable_ipv6`, 1);
    await t.sysctl(o, 'net.ipv6.conf.k1.disable_ipv6', 1);
    await t.execOk(o, ['ethtool', '-K', 'k1', 'tx', 'off']); // k1 sends into xswitch's AF_PACKET port
    o10 = { ns: await t.addNs('o10'), ip: '10.0.0.21', mac: '02:00:00:00:00:21' };
    o20 = { ns: await t.addNs('o20'), ip: '10.0.0.22', mac: '02:00:00:00:00:22' };
    for (const [vm, br] of [[o10, 'a0'], [o20, 'a1']] as const) {
      await t.veth({ ns: o, name: br }, { ns: vm.ns, name: 'eth0' });
      await t.sysctl(o, `net.ipv6.conf.${br}.disable_ipv6`, 1);
      await t.execOk(vm.ns, ['ethtool', '-K', 'eth0', 'tx', 'off']); // OVS reads it through AF_PACKET
      await t.configureVmLink(vm.ns, 'eth0', { mac: vm.mac, cidr: `${vm.ip}/24` });
    }
    const ovs = await OvsPeer.start(t, o);
    await ovs.addBridge('br0');
    await ovs.addPort('br0', 'a0', 'tag=10');
    await ovs.addPort('br0', 'a1', 'tag=20');
    await ovs.addPort('br0', 'k1', 'trunks=10,20');

    d = await Xswitchd.start(t, h1);
    [vm1, vm2, vm3] = (await makeTapVms(t, 3)) as [TapVm, TapVm, TapVm];
    await d.applyOk({
      host: 'h1',
      switches: [{
        name: 'sw0',
        ports: [
          tapPortDoc(vm1, { vlan: { mode: 'access', id: 10 } }),
          tapPortDoc(vm2, { vlan: { mode: 'access', id: 10 } }),
          tapPortDoc(vm3, { vlan: { mode: 'access', id: 20 } }),
          { name: 'trunk', interface: { veth: trunkIf }, vlan: { mode: 'trunk', allowed: [10, 20] } },
        ],
      }],
    });
    await plugTapVms(d, [vm1, vm2, vm3]);
  });
  after(async () => {
    await t?.cleanup();
  });

  it('access VLAN 10 <-> 10 pings, 10 <-> 20 does not', async () => {
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), `vm1 -> vm2 (both VLAN 10)\n${d.logTail()}`);
    const ok = await ping(t, vm2.ns, vm1.ip, { count: 3, interval: 0.1 });
    assert.equal(ok.received, 3, ok.raw.stdout);
    const no = await ping(t, vm1.ns, vm3.ip, { count: 3, interval: 0.2 });
    assert.equal(no.received, 0, `vm1 (VLAN 10) reached vm3 (VLAN 20): ${no.raw.stdout}`);
    const no2 = await ping(t, vm3.ns, vm2.ip, { count: 2, interval: 0.2 });
    assert.equal(no2.received, 0, `vm3 (VLAN 20) reached vm2 (VLAN 10): ${no2.raw.stdout}`);
  });

  it('through the trunk, OVS VLAN 10 reaches xswitch VLAN 10 only, VLAN 20 reaches VLAN 20 only', async () => {
    assert.ok(await pingUntilReply(t, o10.ns, vm1.ip, 20_000), `OVS VLAN 10 -> vm1\n${d.logTail()}`);
    for (const [src, dst, want] of [
      [o10, vm1, 3], [o10, vm2, 3], [o10, vm3, 0],
    ] as const) {
      if (want > 0) await pingUntilReply(t, src.ns, dst.ip);
      const p = await ping(t, src.ns, dst.ip, { count: 3, interval: 0.1 });
      assert.equal(p.received, want, `${src.ip} -> ${dst.name}: ${p.raw.stdout}`);
    }
    assert.ok(await pingUntilReply(t, vm3.ns, o20.ip, 20_000), `vm3 -> OVS VLAN 20\n${d.logTail()}`);
    const p20 = await ping(t, vm3.ns, o20.ip, { count: 3, interval: 0.1 });
    assert.equal(p20.received, 3, p20.raw.stdout);
    const x = await ping(t, o20.ns, vm1.ip, { count: 2, interval: 0.2 });
    assert.equal(x.received, 0, `OVS VLAN 20 reached vm1 (VLAN 10): ${x.raw.stdout}`);
  });

  it('xswitch tags what it emits on the trunk with the access VLAN; access ports get untagged frames', async () => {
    const trunkCap = await Capture.start(t, o, 'k1', { seconds: 40 });
    const vm2Cap = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 40 });
    const a = await ping(t, vm1.ns, o10.ip, { count: 3, interval: 0.1 });
    assert.equal(a.received, 3, a.raw.stdout);
    const b = await ping(t, vm3.ns, o20.ip, { count: 3, interval: 0.1 });
    assert.equal(b.received, 3, b.raw.stdout);
    const c = await ping(t, o10.ns, vm2.ip, { count: 3, interval: 0.1 });
    assert.equal(c.received, 3, c.raw.stdout);
    await trunkCap.waitCount(`icmp.type == 8 && ip.src == ${vm3.ip}`, 3);
    await vm2Cap.waitCount(`icmp.type == 8 && ip.src == ${o10.ip}`, 3);
    await trunkCap.stop();
    await vm2Cap.stop();
    const from1 = await trunkCap.fields(`icmp.type == 8 && ip.src == ${vm1.ip}`, ['vlan.id']);
    assert.equal(from1.length, 3, 'vm1 echo requests on the trunk');
    assert.deepEqual([...new Set(from1.map((r) => r[0]))], ['10']);
    const from3 = await trunkCap.fields(`icmp.type == 8 && ip.src == ${vm3.ip}`, ['vlan.id']);
    assert.deepEqual([...new Set(from3.map((r) => r[0]))], ['20']);
    // replies from xswitch VMs on the trunk are tagged too; nothing leaves the trunk untagged from a VM
    const untagged = await trunkCap.count(`!vlan && (eth.src == ${vm1.mac} || eth.src == ${vm2.mac} || eth.src == ${vm3.mac})`);
    assert.equal(untagged, 0, 'untagged VM frames on the trunk');
    assert.equal(await vm2Cap.count('vlan'), 0, 'tagged frames on an access port');
  });

  it('scapy Dot1Q frames into the trunk reach only their VLAN; VLAN 30 is not allowed', async () => {
    const caps = await Promise.all([vm1, vm2, vm3].map((vm) => Capture.start(t, vm.ns, vm.tap, { seconds: 40 })));
    const [c1, c2, c3] = caps as [Capture, Capture, Capture];
    const before: Counters = await d.counters('sw0');
    const src = { SRC_MAC: '02:00:00:00:99:01', SRC_IP: '10.0.0.99' };
    for (const [vlan, tag] of [['10', 'trunk-v10'], ['20', 'trunk-v20'], ['30', 'trunk-v30']] as const) {
      const s = await sendFrames(t, o, 'k1', ['dot1q_bcast'], { ...src, VLAN: vlan, TAG: tag, COUNT: '3' });
      assert.equal(s.sent.dot1q_bcast, 3, s.raw.stdout);
    }
    await c1.waitCount('frame contains "trunk-v10"', 3);
    await c2.waitCount('frame contains "trunk-v10"', 3);
    await c3.waitCount('frame contains "trunk-v20"', 3);
    const afterC = await waitFor(async () => {
      const c: Counters = await d.counters('sw0');
      return dropCount(c.ports.trunk, 'vlan-not-allowed') - dropCount(before.ports.trunk, 'vlan-not-allowed') >= 3 ? c : null;
    }, { timeout: 10_000, what: "3 'vlan-not-allowed' drops on the trunk port" });
    for (const c of caps) await c.stop();
    // delivered untagged, to the right VLAN only
    assert.equal(await c1.count('frame contains "trunk-v10" && vlan'), 0, 'vm1 got a tagged frame');
    assert.equal(await c1.count('frame contains "trunk-v20" || frame contains "trunk-v30"'), 0, 'vm1 got another VLAN');
    assert.equal(await c2.count('frame contains "trunk-v20" || frame contains "trunk-v30"'), 0, 'vm2 got another VLAN');
    assert.equal(await c3.count('frame contains "trunk-v10" || frame contains "trunk-v30"'), 0, 'vm3 got another VLAN');
    assert.equal(await c3.count('frame contains "trunk-v20" && vlan'), 0, 'vm3 got a tagged frame');
    assert.ok(afterC.ports.trunk !== undefined);
  });

  it('a tagged frame on an access port is dropped as vlan-tagged-on-access', async () => {
    const cap = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 30 });
    const before: Counters = await d.counters('sw0');
    const s = await sendFrames(t, vm1.ns, vm1.tap, ['dot1q_bcast'], { SRC_MAC: vm1.mac, SRC_IP: vm1.ip, VLAN: '20', TAG: 'hop-to-20', COUNT: '3' });
    assert.equal(s.sent.dot1q_bcast, 3);
    await waitFor(async () => {
      const c: Counters = await d.counters('sw0');
      return dropCount(c.ports.vm1, 'vlan-tagged-on-access') - dropCount(before.ports.vm1, 'vlan-tagged-on-access') >= 3;
    }, { timeout: 10_000, what: "3 'vlan-tagged-on-access' drops on vm1" });
    await cap.stop();
    assert.equal(await cap.count('frame contains "hop-to-20"'), 0, 'VLAN hopping from an access port');
  });

  it('the MAC table keys entries by VLAN and port', async () => {
    const table = await d.macTable('sw0');
    const find = (mac: string): { vlan: number; port: string } | undefined => table.find((e) => e.mac.toLowerCase() === mac);
    assert.deepEqual(find(vm1.mac) && { vlan: find(vm1.mac)?.vlan, port: find(vm1.mac)?.port }, { vlan: 10, port: 'vm1' });
    assert.deepEqual(find(vm3.mac) && { vlan: find(vm3.mac)?.vlan, port: find(vm3.mac)?.port }, { vlan: 20, port: 'vm3' });
    assert.deepEqual(find(o10.mac) && { vlan: find(o10.mac)?.vlan, port: find(o10.mac)?.port }, { vlan: 10, port: 'trunk' });
    assert.deepEqual(find(o20.mac) && { vlan: find(o20.mac)?.vlan, port: find(o20.mac)?.port }, { vlan: 20, port: 'trunk' });
  });
});
