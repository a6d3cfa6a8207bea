// test/e2e/peers-baseline.test.ts: the e2e helpers against independent switches (a Linux bridge, a private
// userspace OVS with VLAN ports), so a failing xswitch e2e test can be told apart from a broken helper or peer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, iperf3, OvsPeer, ping, pingUntilReply, sendFrames } from '../helpers/peers.js';

describe('e2e helpers on a Linux bridge and a private OVS', { timeout: 180_000 }, () => {
  let t: Topology;
  before(() => {
    t = Topology.create();
  });
  after(async () => {
    await t?.cleanup();
  });

  it('Linux bridge: ping, iperf3, tshark capture and scapy frames', async () => {
    const sw = await t.addNs('br');
    await t.ip(sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await t.ip(sw, 'link', 'set', 'br0', 'up');
    const vms: string[] = [];
    for (const i of [1, 2]) {
      const vm = await t.addNs(`vm${i}`);
      vms.push(vm);
      await t.veth({ ns: sw, name: t.ifname(`b${i}`) }, { ns: vm, name: 'eth0' });
      await t.ip(sw, 'link', 'set', t.ifname(`b${i}`), 'master', 'br0');
      await t.configureVmLink(vm, 'eth0', { mac: `02:00:00:00:00:0${i}`, cidr: `10.0.0.${i}/24` });
    }
    const [vm1, vm2] = vms as [string, string];
    assert.ok(await pingUntilReply(t, vm1, '10.0.0.2'), 'bridge path never answered');
    const p = await ping(t, vm1, '10.0.0.2', { count: 5, interval: 0.1 });
    assert.equal(p.transmitted, 5);
    assert.equal(p.received, 5);
    assert.equal(p.lossPct, 0);
    assert.ok(p.rttAvgMs !== null && p.rttAvgMs > 0);

    const tcp = await iperf3(t, vm2, '10.0.0.2', vm1);
    assert.ok(tcp.ok, `iperf3 failed: ${tcp.error} ${tcp.client.stderr}`);
    assert.ok(tcp.bytes > 0);

    const cap = await Capture.start(t, vm2, 'eth0', { seconds: 20 });
    const s = await sendFrames(t, vm1, 'eth0', ['icmp', 'runt_10', 'hdr_14'], { SRC_IP: '10.0.0.1', DST_IP: '10.0.0.2', TAG: 'baseline-tag' });
    assert.equal(s.sent.icmp, 1);
    assert.equal(s.sent.hdr_14, 1);
    assert.ok(s.failed.runt_10 !== undefined, 'the kernel refuses frames < 14 bytes on an Ethernet device');
    await cap.waitCount('icmp.type == 8 && ip.src == 10.0.0.1', 1);
    await cap.stop();
    const rows = await cap.fields('icmp.type == 8', ['eth.src', 'icmp.ident']);
    assert.deepEqual(rows[0], ['02:00:00:00:00:01', '22611']);
  });

  it('private OVS: tag=10/20 access ports and a trunk carrying 10,20', async () => {
    const o = await t.addNs('o');
    const tr = await t.addNs('tr');
    const a10 = await t.addNs('a10');
    const a20 = await t.addNs('a20');
    const ovs = await OvsPeer.start(t, o);
    await t.veth({ ns: o, name: 'a0' }, { ns: a10, name: 'eth0' });
    await t.veth({ ns: o, name: 'a1' }, { ns: a20, name: 'eth0' });
    await t.veth({ ns: o, name: 't0' }, { ns: tr, name: 'eth0' });
    await t.configureVmLink(a10, 'eth0', { mac: '02:00:00:00:10:01', cidr: '10.0.10.1/24' });
    await t.configureVmLink(a20, 'eth0', { mac: '02:00:00:00:20:01', cidr: '10.0.10.2/24' });
    await t.configureVmLink(tr, 'eth0', {});
    await ovs.addBridge('br0');
    await ovs.addPort('br0', 'a0', 'tag=10');
    await ovs.addPort('br0', 'a1', 'tag=20');
    await ovs.addPort('br0', 't0', 'trunks=10,20');

    // Untagged from the access port leaves the trunk tagged 10; same subnet on VLAN 20 is unreachable.
    const trunkCap = await Capture.start(t, tr, 'eth0', { seconds: 30 });
    const c20 = await Capture.start(t, a20, 'eth0', { seconds: 30 });
    const p = await ping(t, a10, '10.0.10.2', { count: 2, interval: 0.2 });
    assert.equal(p.received, 0, 'VLAN 10 and 20 are isolated by OVS');
    await trunkCap.waitCount('arp && vlan.id == 10', 1);

    // A Dot1Q frame for VLAN 20 into the trunk reaches the VLAN 20 access port untagged, not VLAN 10's.
    const s = await sendFrames(t, tr, 'eth0', ['dot1q_bcast'], { VLAN: '20', SRC_MAC: '02:00:00:00:99:01', TAG: 'trunk-20' });
    assert.equal(s.sent.dot1q_bcast, 1);
    await c20.waitCount('udp.dstport == 9 && !vlan', 1);
    await trunkCap.stop();
    await c20.stop();
    assert.equal(await trunkCap.count('arp && vlan.id == 20'), 0);
    const fdb = await ovs.appctl('fdb/show', 'br0');
    assert.match(fdb.stdout, /02:00:00:00:10:01/);
    await ovs.stop();
  });
});
