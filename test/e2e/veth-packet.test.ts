// test/e2e/veth-packet.test.ts: a VM on a veth end attached to xswitch through AF_PACKET (--veth) talks to a VM
// on a TAP port: ping and TCP both ways.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { iperf3, ping, pingUntilReply } from '../helpers/peers.js';
import { dropCount, makeTapVms, plugTapVms, type PortCounters, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

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
    // This VM sends plain, checksummed frames (the super-frame path is the next suite's).
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

/** Bytes per frame in one direction of a port's counters, over the interval between two readings. */
function avgFrame(before: PortCounters | undefined, after: PortCounters | undefined, dir: 'rx' | 'tx'): number {
  const f = (c: PortCounters | undefined): number => (c === undefined ? 0 : dir === 'rx' ? c.rxFrames : c.txFrames);
  const b = (c: PortCounters | undefined): number => (c === undefined ? 0 : dir === 'rx' ? c.rxBytes : c.txBytes);
  const frames = f(after) - f(before);
  return frames > 0 ? (b(after) - b(before)) / frames : 0;
}

// The VMs' veths keep their defaults (TSO, GSO, tx checksum offload on), so the kernel hands the AF_PACKET socket
// super-frames and partial checksums. With port offload they go out whole; without it (offload: false) the switch
// must still read them whole and then segment and checksum them in software.
for (const offload of [true, false]) {
  describe(`AF_PACKET veth port <-> veth port, offloads on in the VMs, port offload ${offload ? 'on' : 'off'}`, { timeout: 180_000 }, () => {
    let t: Topology;
    let d: Xswitchd;
    let nsA: string;
    let nsB: string;
    before(async () => {
      t = Topology.create();
      const h1 = await t.addNs('h1');
      nsA = await t.addNs('vm21');
      nsB = await t.addNs('vm22');
      const ports: Record<string, unknown>[] = [];
      for (const [ns, host, mac, cidr, name] of [
        [nsA, t.ifname('v21'), '02:00:00:00:00:21', '10.0.0.21/24', 'vm21'],
        [nsB, t.ifname('v22'), '02:00:00:00:00:22', '10.0.0.22/24', 'vm22'],
      ] as const) {
        await t.veth({ ns: h1, name: host }, { ns, name: 'eth0' });
        await t.sysctl(h1, `net.ipv6.conf.${host}.disable_ipv6`, 1);
        // no ethtool here on purpose: the veth defaults
        await t.configureVmLink(ns, 'eth0', { mac, cidr });
        ports.push({ name, interface: { veth: host }, mac, offload });
      }
      d = await Xswitchd.start(t, h1);
      await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports }] });
    });
    after(async () => {
      await t?.cleanup();
    });

    it(offload ? 'TCP moves TSO super-frames through both ports whole, without drops'
      : 'TCP works: super-frames are read whole and sent segmented, without drops', async (tc) => {
      const tso = await t.execOk(nsA, ['ethtool', '-k', 'eth0']);
      assert.match(tso.stdout, /^tcp-segmentation-offload: on/m, 'the VM veth must offer TSO for this test to mean anything');
      assert.ok(await pingUntilReply(t, nsA, '10.0.0.22'), `no ping reply\n${d.logTail()}`);
      const c0 = await d.counters('sw0');
      const r = await iperf3(t, nsB, '10.0.0.22', nsA);
      assert.ok(r.ok, `iperf3: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
      assert.ok(r.bytes > 1_000_000, `only ${r.bytes} bytes`);
      const c1 = await d.counters('sw0');
      // Plain frames are at most 1514 bytes: a larger average means the kernel handed over GSO frames (and, out,
      // that the switch sent them on unsegmented).
      const rx = avgFrame(c0.ports['vm21'], c1.ports['vm21'], 'rx');
      const tx = avgFrame(c0.ports['vm22'], c1.ports['vm22'], 'tx');
      assert.ok(rx > 4000, `vm21 received ${rx.toFixed(0)} bytes per frame`);
      if (offload) assert.ok(tx > 4000, `vm22 sent ${tx.toFixed(0)} bytes per frame`);
      else assert.ok(tx > 0 && tx <= 1514, `vm22 sent ${tx.toFixed(0)} bytes per frame`);
      assert.equal(dropCount(c1.switch), 0, JSON.stringify(c1.switch.drops));
      tc.diagnostic(`${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s, ${rx.toFixed(0)} B/frame in, ${tx.toFixed(0)} B/frame out`);
    });
  });
}
