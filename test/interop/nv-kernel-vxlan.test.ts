// test/interop/nv-kernel-vxlan.test.ts: VXLAN interop with the Linux kernel's own implementation: a "host" that
// runs no xswitch but a kernel `vxlan` device (VNI = VSID, dstport 4789) bridged to a VM namespace exchanges ping
// and TCP with a tenant VM behind xswitch (record rule vxlan) in both directions; another VNI passes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MultiHost, type NvVm } from '../helpers/hosts.js';
import { makeUnderlayBridge, VxlanPeer } from '../helpers/nv-peers.js';
import { Topology } from '../helpers/netns.js';
import { Capture, iperf3, ping, pingUntilReply } from '../helpers/peers.js';
import { dropCount } from '../helpers/xswitchd.js';

const VSID = 5001;
/** Outside hosts.ts's rewrite PA range (192.0.2.100+). */
const PEER_PA = '192.0.2.201';
const PEER_VM = { cidr: '10.0.0.101/24', mac: '02:00:00:00:01:01' };

describe('interop: Linux kernel vxlan peer', { timeout: 300_000 }, () => {
  describe('baseline: the kernel vxlan peer against another one', () => {
    let t: Topology;
    before(() => {
      t = Topology.create();
    });
    after(async () => {
      await t?.cleanup();
    });

    it('two kernel vxlan peers ping over br0 with VNI 5001; another VNI passes nothing', async () => {
      const u = await t.addNs('u');
      await makeUnderlayBridge(t, u);
      const a = await VxlanPeer.start(t, { name: 'xa', underlay: { ns: u, bridge: 'br0' }, pa: '192.0.2.201/24', remotePa: '192.0.2.202', vni: VSID, vm: PEER_VM });
      const b = await VxlanPeer.start(t, { name: 'xb', underlay: { ns: u, bridge: 'br0' }, pa: '192.0.2.202/24', remotePa: '192.0.2.201', vni: VSID, vm: { cidr: '10.0.0.102/24', mac: '02:00:00:00:01:02' } });
      assert.equal(await a.vxlanMtu(), 1550);
      const cap = await Capture.start(t, u, 'br0', { seconds: 60, bpf: 'udp port 4789' });
      assert.ok(await pingUntilReply(t, a.vmNs, b.vmIp, 20_000));
      const p = await ping(t, a.vmNs, b.vmIp, { count: 5, interval: 0.1 });
      assert.equal(p.received, 5);
      await cap.waitCount(`vxlan.vni == ${VSID} && vxlan.flag_i == 1 && vxlan.flags_reserved == 0 && ip.src == 192.0.2.201 && icmp`, 5);
      await cap.stop();
      await b.setVni(VSID + 1);
      const q = await ping(t, a.vmNs, b.vmIp, { count: 3, interval: 0.2 });
      assert.equal(q.received, 0);
      assert.equal((await b.counts()).rx, 0);
    });
  });

  describe('kernel vxlan peer <-> xswitch', () => {
    let mh: MultiHost;
    let peer: VxlanPeer;
    let vm: NvVm;
    before(async () => {
      mh = await MultiHost.create({ hosts: 1 });
      mh.addTenant({ name: 'red', subnets: [{ vsid: VSID, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] });
      vm = await mh.addVm({ name: 'red1', host: 'h1', vsid: VSID, ca: '10.0.0.5', mac: '02:00:00:00:00:05', rule: 'vxlan' });
      mh.extra.records.push({ ca: '10.0.0.101', vsid: VSID, mac: PEER_VM.mac, pa: PEER_PA, rule: 'vxlan', vm: null });
      await mh.applyAll();
      peer = await VxlanPeer.start(mh.topo, {
        underlay: { ns: mh.underlay, bridge: 'br0', mtu: mh.underlayMtu },
        pa: `${PEER_PA}/24`, remotePa: mh.host('h1').pa, vni: VSID, vm: PEER_VM,
      });
    });
    after(async () => {
      await mh?.cleanup();
    });

    it('ping and TCP both ways; the underlay shows VXLAN VNI 5001 on UDP 4789 both ways', async () => {
      const cap = await mh.captureUnderlay({ seconds: 90, bpf: 'udp port 4789' });
      const warm = await pingUntilReply(mh.topo, peer.vmNs, vm.ca, 20_000);
      assert.ok(warm, `peer VM never got a reply from ${vm.ca}\nvx0: ${JSON.stringify(await peer.counts())}\n` +
        `counters: ${JSON.stringify(await mh.counters('h1'))}\n${mh.logs()}`);
      const p1 = await ping(mh.topo, peer.vmNs, vm.ca, { count: 5, interval: 0.1 });
      const p2 = await mh.ping(vm, peer.vmIp, { count: 5, interval: 0.1 });
      console.log(`# ping peer->xswitch ${p1.received}/5 rtt ${p1.rttAvgMs} ms, xswitch->peer ${p2.received}/5 rtt ${p2.rttAvgMs} ms`);
      assert.equal(p1.received, 5, p1.raw.stdout);
      assert.equal(p2.received, 5, p2.raw.stdout);
      const fromPeer = await cap.waitCount(`vxlan.vni == ${VSID} && ip.src == ${PEER_PA} && ip.dst == ${vm.pa} && icmp`, 10);
      const toPeer = await cap.waitCount(`vxlan.vni == ${VSID} && vxlan.flag_i == 1 && vxlan.flags_reserved == 0 && udp.dstport == 4789 && ip.src == ${vm.pa} && ip.dst == ${PEER_PA} && icmp`, 10);
      await cap.stop();
      assert.equal(await cap.count(`ip.src == ${vm.pa} && !(vxlan.vni == ${VSID} && ip.flags.df == 1)`), 0);
      console.log(`# underlay: ${fromPeer} VXLAN ICMP packets from the kernel peer, ${toPeer} from xswitch (VNI ${VSID})`);

      const groBefore = (await mh.counters('h1')).switch.gro?.superFrames ?? 0;
      const tcp1 = await iperf3(mh.topo, vm.ns, vm.ca, peer.vmNs, { seconds: 2 });
      assert.ok(tcp1.ok, `iperf3 peer -> xswitch: ${tcp1.error} ${tcp1.client.stderr}`);
      const gro = ((await mh.counters('h1')).switch.gro?.superFrames ?? 0) - groBefore;
      console.log(`# GRO: ${gro} super-frames built from the peer's segments`);
      assert.ok(gro > 0, 'the peer sends MTU-size segments over the veth underlay: xswitch coalesces them for its VM');
      const tcp2 = await iperf3(mh.topo, peer.vmNs, peer.vmIp, vm.ns, { seconds: 2 });
      assert.ok(tcp2.ok, `iperf3 xswitch -> peer: ${tcp2.error} ${tcp2.client.stderr}`);
      console.log(`# iperf3 peer->xswitch ${(tcp1.bitsPerSecond / 1e6).toFixed(0)} Mbit/s (${tcp1.bytes} B), ` +
        `xswitch->peer ${(tcp2.bitsPerSecond / 1e6).toFixed(0)} Mbit/s (${tcp2.bytes} B)`);
      assert.ok(mh.allRunning(), mh.logs());
    });

    it('the peer on another VNI reaches nothing, and xswitch counts its packets as unknown-vsid', async () => {
      await peer.setVni(VSID + 1);
      const before = await mh.counters('h1');
      const vmCap = await mh.capture(vm.ns, vm.tap, { seconds: 30, name: 'red1' });
      const p1 = await ping(mh.topo, peer.vmNs, vm.ca, { count: 4, interval: 0.2 });
      const p2 = await mh.ping(vm, peer.vmIp, { count: 4, interval: 0.2 });
      assert.equal(p1.received, 0, p1.raw.stdout);
      assert.equal(p2.received, 0, p2.raw.stdout);
      const c = await peer.counts();
      assert.equal(c.rx, 0, `vx0 (VNI ${VSID + 1}) decapsulated xswitch's VNI ${VSID} packets`);
      assert.ok(c.tx > 0, 'the peer did send');
      await vmCap.stop();
      assert.equal(await vmCap.count(`ip.src == ${peer.vmIp} || arp.src.proto_ipv4 == ${peer.vmIp}`), 0, 'a frame of VNI 5002 reached the VSID 5001 VM');
      const after = await mh.counters('h1');
      const unknown = Math.max(dropCount(after.switch, 'unknown-vsid') - dropCount(before.switch, 'unknown-vsid'),
        dropCount(after.ports['uplink'], 'unknown-vsid') - dropCount(before.ports['uplink'], 'unknown-vsid'));
      console.log(`# other VNI: peer tx ${c.tx}, rx ${c.rx}; xswitch unknown-vsid +${unknown}`);
      assert.ok(unknown > 0, `no unknown-vsid drop counted: ${JSON.stringify(after)}`);
      assert.ok(mh.allRunning(), mh.logs());
    });
  });
});
