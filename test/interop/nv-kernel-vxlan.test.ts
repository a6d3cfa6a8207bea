// test/interop/nv-kernel-vxlan.test.ts: VXLAN interop with the Linux kernel's own implementation: a "host" that
// runs no xswitch but a kernel `vxlan` device (VNI = VSID, dstport 4789) bridged to a VM namespace exchanges ping
// and TCP with a tenant VM behind xswitch (record rule vxlan) in both directions; another VNI passes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isolatedOnOtherVsid, pingBothWays, tcpBothWays, topologyPerSuite, xswitchSide, type XswitchSide } from '../helpers/nv-interop.js';
import { makeUnderlayBridge, VxlanPeer } from '../helpers/nv-peers.js';
import { Capture, ping, pingUntilReply } from '../helpers/peers.js';

const VSID = 5001;
/** Outside hosts.ts's rewrite PA range (192.0.2.100+). */
const PEER_PA = '192.0.2.201';
const PEER_VM = { cidr: '10.0.0.101/24', mac: '02:00:00:00:01:01' };

describe('interop: Linux kernel vxlan peer', { timeout: 300_000 }, () => {
  describe('baseline: the kernel vxlan peer against another one', () => {
    const topo = topologyPerSuite();

    it('two kernel vxlan peers ping over br0 with VNI 5001; another VNI passes nothing', async () => {
      const t = topo();
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
    let side: XswitchSide;
    let peer: VxlanPeer;
    before(async () => {
      side = await xswitchSide(VSID, 'vxlan', { ca: '10.0.0.101', mac: PEER_VM.mac, pa: PEER_PA });
      const { mh } = side;
      peer = await VxlanPeer.start(mh.topo, {
        underlay: { ns: mh.underlay, bridge: 'br0', mtu: mh.underlayMtu },
        pa: `${PEER_PA}/24`, remotePa: mh.host('h1').pa, vni: VSID, vm: PEER_VM,
      });
    });
    after(async () => {
      await side?.mh.cleanup();
    });

    it('ping and TCP both ways; the underlay shows VXLAN VNI 5001 on UDP 4789 both ways', async () => {
      const { mh, vm } = side;
      const cap = await mh.captureUnderlay({ seconds: 90, bpf: 'udp port 4789' });
      await pingBothWays(side, peer, async () => `vx0: ${JSON.stringify(await peer.counts())}`);
      const fromPeer = await cap.waitCount(`vxlan.vni == ${VSID} && ip.src == ${PEER_PA} && ip.dst == ${vm.pa} && icmp`, 10);
      const toPeer = await cap.waitCount(`vxlan.vni == ${VSID} && vxlan.flag_i == 1 && vxlan.flags_reserved == 0 && udp.dstport == 4789 && ip.src == ${vm.pa} && ip.dst == ${PEER_PA} && icmp`, 10);
      await cap.stop();
      assert.equal(await cap.count(`ip.src == ${vm.pa} && !(vxlan.vni == ${VSID} && ip.flags.df == 1)`), 0);
      console.log(`# underlay: ${fromPeer} VXLAN ICMP packets from the kernel peer, ${toPeer} from xswitch (VNI ${VSID})`);

      await tcpBothWays(side, peer, 'the peer sends MTU-size segments over the veth underlay: xswitch coalesces them for its VM');
      assert.ok(mh.allRunning(), mh.logs());
    });

    it('the peer on another VNI reaches nothing, and xswitch counts its packets as unknown-vsid', async () => {
      await peer.setVni(VSID + 1);
      let c = { rx: 0, tx: 0 };
      await isolatedOnOtherVsid(side, peer, VSID, 'VNI', async () => {
        c = await peer.counts();
        assert.equal(c.rx, 0, `vx0 (VNI ${VSID + 1}) decapsulated xswitch's VNI ${VSID} packets`);
        assert.ok(c.tx > 0, 'the peer did send');
      }, (unknown) => `# other VNI: peer tx ${c.tx}, rx ${c.rx}; xswitch unknown-vsid +${unknown}`);
    });
  });
});
