// test/interop/nv-ovs-gre.test.ts: NVGRE interop with an independent implementation: a "host" that runs no
// xswitch but Open vSwitch userspace GRE (key VSID<<8|FlowID, FlowID != 0) exchanges ping and TCP with a tenant VM
// behind xswitch in both directions; tshark decodes both sides' keys; another VSID on the peer passes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NV_SWITCH } from '../helpers/hosts.js';
import { isolatedOnOtherVsid, pingBothWays, tcpBothWays, topologyPerSuite, xswitchSide, type XswitchSide } from '../helpers/nv-interop.js';
import { completeTxChecksums, makeUnderlayBridge, NvgrePeer } from '../helpers/nv-peers.js';
import { Capture, ping, pingUntilReply } from '../helpers/peers.js';

const VSID = 5001;
/** FlowID the OVS peer puts in its key. */
const PEER_FLOW = 0x2a;
/** FlowID xswitch must use towards the peer's PA (`remotes`). */
const XS_FLOW = 0x07;
/** Outside hosts.ts's rewrite PA range (192.0.2.100+). */
const PEER_PA = '192.0.2.200';
const PEER_VM = { cidr: '10.0.0.100/24', mac: '02:00:00:00:01:00' };

const keyFilter = (vsid: number, flow: number | null): string =>
  `gre && {gre.key & 0xffffff00} == 0x${(vsid << 8).toString(16)}` + (flow === null ? '' : ` && {gre.key & 0xff} == 0x${flow.toString(16)}`);

describe('interop: OVS userspace GRE (NVGRE) peer', { timeout: 300_000 }, () => {
  // Baseline without xswitch: two such peers talk through a bridge, so a failure below is xswitch's, not the peer's.
  describe('baseline: the OVS NVGRE peer against another one', () => {
    const topo = topologyPerSuite();

    it('two OVS GRE peers ping over br0 with FlowIDs 0x2a / 0x07; another VSID passes nothing', async () => {
      const t = topo();
      const u = await t.addNs('u');
      await makeUnderlayBridge(t, u);
      const a = await NvgrePeer.start(t, { name: 'na', underlay: { ns: u, bridge: 'br0' }, pa: '192.0.2.200/24', remotePa: '192.0.2.201', vsid: VSID, flowId: PEER_FLOW, vm: PEER_VM });
      const b = await NvgrePeer.start(t, { name: 'nb', underlay: { ns: u, bridge: 'br0' }, pa: '192.0.2.201/24', remotePa: '192.0.2.200', vsid: VSID, flowId: XS_FLOW, vm: { cidr: '10.0.0.101/24', mac: '02:00:00:00:01:01' } });
      const cap = await Capture.start(t, u, 'br0', { seconds: 60, bpf: 'ip proto 47' });
      assert.ok(await pingUntilReply(t, a.vmNs, b.vmIp, 20_000), `no reply\n${await a.dumpFlows()}\n${await a.neighbours()}`);
      const p = await ping(t, a.vmNs, b.vmIp, { count: 5, interval: 0.1 });
      assert.equal(p.received, 5);
      await cap.waitCount(keyFilter(VSID, PEER_FLOW) + ' && ip.src == 192.0.2.200 && ip.flags.df == 1 && gre.flags_and_version == 0x2000 && gre.proto == 0x6558', 5);
      await cap.waitCount(keyFilter(VSID, XS_FLOW) + ' && ip.src == 192.0.2.201', 5);
      await cap.stop();
      await b.setVsid(VSID + 1);
      const q = await ping(t, a.vmNs, b.vmIp, { count: 3, interval: 0.2 });
      assert.equal(q.received, 0);
      assert.equal((await b.flowCounts()).rx, 0, await b.dumpFlows());
    });
  });

  describe('OVS NVGRE peer <-> xswitch', () => {
    let side: XswitchSide;
    let peer: NvgrePeer;
    before(async () => {
      side = await xswitchSide(VSID, 'encap', { ca: '10.0.0.100', mac: PEER_VM.mac, pa: PEER_PA },
        (mh) => void mh.extra.remotes.push({ pa: PEER_PA, flowId: XS_FLOW }));
      const { mh } = side;
      // The OVS peer reads its veth through AF_PACKET and ignores "checksum not ready": the host's underlay veth
      // must complete xswitch's offloaded inner checksums itself, as a physical NIC does (see completeTxChecksums).
      await completeTxChecksums(mh.topo, mh.host('h1').ns);
      peer = await NvgrePeer.start(mh.topo, {
        underlay: { ns: mh.underlay, bridge: 'br0', mtu: mh.underlayMtu },
        pa: `${PEER_PA}/24`, remotePa: mh.host('h1').pa, vsid: VSID, flowId: PEER_FLOW, vm: PEER_VM,
      });
    });
    after(async () => {
      await side?.mh.cleanup();
    });

    it('ping and TCP both ways; the underlay shows the peer key 5001/0x2a and xswitch key 5001/0x07', async () => {
      const { mh, vm } = side;
      const cap = await mh.captureUnderlay({ seconds: 90, bpf: 'ip proto 47' });
      // peer -> xswitch VM first (the peer's ARP crosses the tunnel), then the other way.
      await pingBothWays(side, peer, async () => `flows:\n${await peer.dumpFlows()}\nneigh:\n${await peer.neighbours()}`);
      const fromPeer = await cap.waitCount(`${keyFilter(VSID, PEER_FLOW)} && ip.src == ${PEER_PA} && ip.dst == ${vm.pa} && icmp`, 10);
      const toPeer = await cap.waitCount(`${keyFilter(VSID, XS_FLOW)} && ip.src == ${vm.pa} && ip.dst == ${PEER_PA} && icmp`, 10);
      await cap.stop();
      // xswitch's packets are well-formed NVGRE: K bit only, TEB, DF.
      const bad = await cap.count(`ip.src == ${vm.pa} && !(gre.flags_and_version == 0x2000 && gre.proto == 0x6558 && ip.flags.df == 1)`);
      assert.equal(bad, 0);
      // Any FlowID other than ours from xswitch would mean `remotes` was ignored.
      assert.equal(await cap.count(`ip.src == ${vm.pa} && !({gre.key & 0xff} == 0x${XS_FLOW.toString(16)})`), 0);
      console.log(`# underlay: ${fromPeer} ICMP packets with key 0x${((VSID << 8) | PEER_FLOW).toString(16)} from the peer, ${toPeer} with 0x${((VSID << 8) | XS_FLOW).toString(16)} from xswitch`);

      await tcpBothWays(side, peer, 'the peer sends MTU-size segments: xswitch coalesces them for its VM');
      const fc = await peer.flowCounts();
      assert.ok(fc.rx > 0 && fc.tx > 0, await peer.dumpFlows());
      assert.ok(mh.allRunning(), mh.logs());
    });

    it('the peer on another VSID reaches nothing, and xswitch counts its packets as unknown-vsid', async () => {
      await peer.setVsid(VSID + 1);
      let fc = { rx: 0, tx: 0 };
      await isolatedOnOtherVsid(side, peer, VSID, 'VSID', async () => {
        fc = await peer.flowCounts();
        assert.equal(fc.rx, 0, `the peer's RX flow for VSID ${VSID + 1} matched xswitch's VSID ${VSID} packets\n${await peer.dumpFlows()}`);
        assert.ok(fc.tx > 0, 'the peer did send');
      }, (unknown) => `# other VSID: peer tx ${fc.tx}, rx ${fc.rx}; xswitch unknown-vsid +${unknown} (${NV_SWITCH})`);
      await peer.setVsid(VSID);
    });
  });
});
