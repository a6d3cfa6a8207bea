// test/e2e/veth-packet.test.ts: a VM on a veth end attached to xswitch through AF_PACKET (--veth) talks to a VM
// on a TAP port: ping and TCP both ways.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { iperf3, ping, pingUntilReply } from '../helpers/peers.js';
import { makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

describe('AF_PACKET veth port <-> TAP port', { timeout: 180_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let tapVm: TapVm;
  let vethNs: string;
  const vethIp = '10.0.0.11';
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    vethNs = await t.addNs('vm11');
    const hostEnd = t.ifname('v11');
    await t.veth({ ns: h1, name: hostEnd }, { ns: vethNs, name: 'eth0' });
    await t.sysctl(h1, `net.ipv6.conf.${hostEnd}.disable_ipv6`, 1);
    // TESTING.md §3: without tx checksum offload off, the AF_PACKET side reads CHECKSUM_PARTIAL/GSO frames.
    await t.execOk(vethNs, ['ethtool', '-K', 'eth0', 'tx', 'off']);
    await t.configureVmLink(vethNs, 'eth0', { mac: '02:00:00:00:00:11', cidr: `${vethIp}/24` });
    d = await Xswitchd.start(t, h1);
    [tapVm] = (await makeTapVms(t, 1)) as [TapVm];
    await d.applyOk({
      host: 'h1',
      switches: [{ name: 'sw0', ports: [tapPortDoc(tapVm), { name: 'vm11', interface: { veth: hostEnd }, mac: '02:00:00:00:00:11' }] }],
    });
    await plugTapVms(d, [tapVm]);
  });
  after(async () => {
    await t?.cleanup();
  });

  it('port list shows the veth and the TAP port', async () => {
    const ports = await d.portList('sw0');
    const names = ports.map((p) => p.name).sort();
    assert.deepEqual(names, ['vm1', 'vm11']);
    assert.equal(ports.find((p) => p.name === 'vm11')?.interface.veth, t.ifname('v11'));
    assert.equal(ports.find((p) => p.name === 'vm1')?.interface.tap, tapVm.tap);
  });

  it('pings both ways', async () => {
    assert.ok(await pingUntilReply(t, vethNs, tapVm.ip), `veth VM -> TAP VM: no reply\n${d.logTail()}`);
    const a = await ping(t, vethNs, tapVm.ip, { count: 5, interval: 0.1 });
    assert.equal(a.received, 5, a.raw.stdout);
    const b = await ping(t, tapVm.ns, vethIp, { count: 5, interval: 0.1 });
    assert.equal(b.received, 5, b.raw.stdout);
    // large frames (1472 + 28 = full 1500 MTU) cross both back ends
    const big = await ping(t, vethNs, tapVm.ip, { count: 3, interval: 0.1, extra: ['-s', '1472', '-M', 'do'] });
    assert.equal(big.received, 3, big.raw.stdout);
  });

  it('TCP from the veth VM to the TAP VM', async (tc) => {
    const r = await iperf3(t, tapVm.ns, tapVm.ip, vethNs);
    assert.ok(r.ok, `iperf3: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
    assert.ok(r.bytes > 1_000_000, `only ${r.bytes} bytes`);
    tc.diagnostic(`${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);
  });

  it('TCP from the TAP VM (TSO super-frames) to the veth VM', async (tc) => {
    const r = await iperf3(t, vethNs, vethIp, tapVm.ns);
    assert.ok(r.ok, `iperf3: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
    assert.ok(r.bytes > 1_000_000, `only ${r.bytes} bytes`);
    tc.diagnostic(`${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);
  });
});
