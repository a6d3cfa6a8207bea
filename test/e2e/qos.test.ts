// test/e2e/qos.test.ts: port QoS on TAP VMs of a real xswitchd with bounded iperf3 (TCP):
// - maximum bandwidth: a VM capped at 50 Mbit/s sends within 10% of the cap (the switch reads its TAP no faster)
//   and receives within 10% of it (its egress scheduler paces frames to it); the cap is lifted live with xsctl.
// - minimum bandwidth: two VMs with weights 1 and 3 saturating one receiver whose port declares linkMbps 100 get
//   shares within 15% of 25% / 75%; the weight-1 VM alone gets about the whole link.
// Rates stay at or below 100 Mbit/s so the shared 2-core machine is not the bottleneck.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { iperf3, type IperfResult, pingUntilReply, PYTHON } from '../helpers/peers.js';
import { type Counters, makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

const CAP_MBPS = 50;
const LINK_MBPS = 100;

interface QosJson {
  throttles: number;
  policedFrames: number;
  queued: number;
  dequeued: number;
  queueDrops: number;
  sources: { port: number; weight: number; dequeued: number }[];
}

/** Mean receive rate of the middle seconds of an iperf3 run (the ends overlap the other client's start/stop). */
function middleMbps(r: IperfResult, skip = 1): number {
  const j = JSON.parse(r.client.stdout) as { intervals?: { sum?: { bits_per_second?: number } }[] };
  const iv = (j.intervals ?? []).map((x) => x.sum?.bits_per_second ?? 0);
  const mid = iv.length > 2 * skip ? iv.slice(skip, iv.length - skip) : iv;
  return mid.reduce((a, b) => a + b, 0) / Math.max(1, mid.length) / 1e6;
}

describe('QoS on TAP VMs', { timeout: 600_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  let vm3: TapVm;
  const qosOf = async (port: string): Promise<QosJson | undefined> => {
    const c = await d.counters('sw0');
    return (c.ports[port] as unknown as { qos?: QosJson }).qos;
  };

  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    [vm1, vm2, vm3] = (await makeTapVms(t, 3)) as [TapVm, TapVm, TapVm];
    await d.applyOk({
      host: 'h1',
      switches: [{ name: 'sw0', ports: [tapPortDoc(vm1, { policy: { maxMbps: CAP_MBPS } }), tapPortDoc(vm2), tapPortDoc(vm3)] }],
    });
    await plugTapVms(d, [vm1, vm2, vm3]);
    for (const [a, b] of [[vm1, vm2], [vm1, vm3], [vm2, vm3]] as const) assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name}\n${d.logTail()}`);
  });
  after(async () => {
    await t?.cleanup();
  });

  it(`maximum bandwidth: a VM capped at ${CAP_MBPS} Mbit/s sends within 10% of it`, async (tc) => {
    const r = await iperf3(t, vm2.ns, vm2.ip, vm1.ns, { seconds: 4 });
    assert.ok(r.ok, `iperf3: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
    const mbps = r.bitsPerSecond / 1e6;
    tc.diagnostic(`iperf3 vm1 (maxMbps ${CAP_MBPS}) -> vm2: ${mbps.toFixed(1)} Mbit/s`);
    console.log(`qos e2e: capped sender ${mbps.toFixed(1)} Mbit/s (cap ${CAP_MBPS})`);
    assert.ok(Math.abs(mbps - CAP_MBPS) <= CAP_MBPS * 0.1, `${mbps.toFixed(1)} Mbit/s is not within 10% of ${CAP_MBPS}`);
    const q = await qosOf('vm1');
    assert.ok(q !== undefined && q.throttles > 0, `vm1's reads were paused for the cap: ${JSON.stringify(q)}`);
  });

  it('maximum bandwidth towards the VM: shaped by its egress scheduler to within 10% of the cap', async (tc) => {
    const r = await iperf3(t, vm1.ns, vm1.ip, vm2.ns, { seconds: 4 });
    assert.ok(r.ok, `iperf3: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
    const mbps = r.bitsPerSecond / 1e6;
    tc.diagnostic(`iperf3 vm2 -> vm1 (maxMbps ${CAP_MBPS}): ${mbps.toFixed(1)} Mbit/s`);
    console.log(`qos e2e: capped receiver ${mbps.toFixed(1)} Mbit/s (cap ${CAP_MBPS})`);
    assert.ok(Math.abs(mbps - CAP_MBPS) <= CAP_MBPS * 0.1, `${mbps.toFixed(1)} Mbit/s is not within 10% of ${CAP_MBPS}`);
    const q = await qosOf('vm1');
    assert.ok(q !== undefined && q.dequeued > 0, `frames to vm1 went through its scheduler: ${JSON.stringify(q)}`);
    const c: Counters = await d.counters('sw0');
    assert.equal(c.ports['vm2']?.drops['qos-queue-full'] ?? 0, 0, 'a VM source is paused, not dropped');
  });

  it('the cap is lifted live (xsctl port set --max-mbps 0) and shown in port list', async (tc) => {
    const list = await d.xsctlOk(['port', 'list', 'sw0']);
    assert.match(list.stdout, /max=50Mbps/);
    await d.xsctlOk(['port', 'set', 'sw0', 'vm1', '--max-mbps', '0']);
    const r = await iperf3(t, vm2.ns, vm2.ip, vm1.ns, { seconds: 2 });
    assert.ok(r.ok, `iperf3: ${r.error ?? ''}`);
    tc.diagnostic(`uncapped: ${(r.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`);
    assert.ok(r.bitsPerSecond > CAP_MBPS * 1.5e6, `uncapped only ${r.bitsPerSecond / 1e6} Mbit/s`);
  });

  it(`minimum bandwidth: weights 1:3 towards a ${LINK_MBPS} Mbit/s port share 25/75 within 15%; alone, one gets the link`, async (tc) => {
    await d.applyOk({
      host: 'h1',
      switches: [{
        name: 'sw0',
        ports: [
          tapPortDoc(vm1, { policy: { minWeight: 1 } }),
          tapPortDoc(vm2, { policy: { minWeight: 3 } }),
          tapPortDoc(vm3, { policy: { linkMbps: LINK_MBPS } }),
        ],
      }],
    });
    const [r1, r3] = await Promise.all([
      iperf3(t, vm3.ns, vm3.ip, vm1.ns, { seconds: 5 }),
      iperf3(t, vm3.ns, vm3.ip, vm2.ns, { seconds: 5 }),
    ]);
    assert.ok(r1.ok && r3.ok, `iperf3: ${r1.error ?? ''} ${r3.error ?? ''}\n${d.logTail()}`);
    const a = middleMbps(r1);
    const b = middleMbps(r3);
    const share = a / (a + b);
    const msg = `weight 1: ${a.toFixed(1)} Mbit/s, weight 3: ${b.toFixed(1)} Mbit/s, share ${(share * 100).toFixed(1)}% (whole runs: ${(r1.bitsPerSecond / 1e6).toFixed(1)} / ${(r3.bitsPerSecond / 1e6).toFixed(1)})`;
    tc.diagnostic(msg);
    console.log(`qos e2e: ${msg}`);
    assert.ok(Math.abs(share - 0.25) <= 0.25 * 0.15, `share of weight 1 not within 15% of 25%: ${msg}`);
    assert.ok(a + b <= LINK_MBPS * 1.1 && a + b >= LINK_MBPS * 0.8, `link total ${a + b} Mbit/s: ${msg}`);
    const q = await qosOf('vm3');
    assert.ok(q !== undefined && q.dequeued > 0 && q.sources.length >= 2, JSON.stringify(q));

    const alone = await iperf3(t, vm3.ns, vm3.ip, vm1.ns, { seconds: 3 });
    assert.ok(alone.ok, `iperf3 alone: ${alone.error ?? ''}`);
    const m = alone.bitsPerSecond / 1e6;
    tc.diagnostic(`weight 1 alone: ${m.toFixed(1)} Mbit/s`);
    console.log(`qos e2e: weight 1 alone ${m.toFixed(1)} Mbit/s of ${LINK_MBPS}`);
    assert.ok(m >= LINK_MBPS * 0.85 && m <= LINK_MBPS * 1.1, `alone ${m.toFixed(1)} Mbit/s is not about the whole ${LINK_MBPS} Mbit/s link`);
  });

  it('802.1p classes: PCP 0 and PCP 5 floods towards a 20 Mbit/s trunk port with pcpWeights 1:3 share 25/75 within 15%', async (tc) => {
    // This kernel has no 802.1Q devices (no 8021q module), so no TCP over a VLAN sub-interface: each VM floods
    // tagged 1400-byte frames from a raw socket; their TAP queues overflow in the kernel, the switch reads each
    // VM no faster than its scheduler queue drains, and vm3's scheduler counts what it sent on per class.
    const trunk = { mode: 'trunk', allowed: [10] };
    const link = 20;
    await d.applyOk({
      host: 'h1',
      switches: [{
        name: 'sw0',
        ports: [
          tapPortDoc(vm1, { vlan: trunk }),
          tapPortDoc(vm2, { vlan: trunk }),
          tapPortDoc(vm3, { vlan: trunk, policy: { linkMbps: link, pcpWeights: [1, 1, 1, 1, 1, 3, 1, 1] } }),
        ],
      }],
    });
    const flood = (vm: TapVm, pcp: number): Promise<unknown> => t.execOk(vm.ns, [PYTHON, '-c', `
import socket, struct, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("${vm.tap}", 0))
f = bytes.fromhex("${vm3.mac.replace(/:/g, '')}${vm.mac.replace(/:/g, '')}") + struct.pack("!HHH", 0x8100, (${pcp} << 13) | 10, 0x88b5) + bytes(1400)
end = time.time() + 4
n = 0
while time.time() < end:
    for _ in range(64):
        try:
            s.send(f); n += 1
        except OSError:
            time.sleep(0.0005)
print(n)
`], { timeout: 30_000 });
    const perPcp = (q: QosJson | undefined): Map<number, number> => {
      const m = new Map<number, number>();
      for (const x of q?.sources ?? []) {
        const p = (x as { pcp?: number | null }).pcp ?? -1;
        m.set(p, (m.get(p) ?? 0) + x.dequeued);
      }
      return m;
    };
    const before = perPcp(await qosOf('vm3'));
    await Promise.all([flood(vm1, 0), flood(vm2, 5)]);
    const after = perPcp(await qosOf('vm3'));
    const a = (after.get(0) ?? 0) - (before.get(0) ?? 0);
    const b = (after.get(5) ?? 0) - (before.get(5) ?? 0);
    const share = a / (a + b);
    const mbps = ((a + b) * 1418 * 8) / 4 / 1e6;
    const msg = `PCP 0: ${a} frames, PCP 5: ${b} frames, PCP 0 share ${(share * 100).toFixed(1)}%, about ${mbps.toFixed(1)} Mbit/s of ${link}`;
    tc.diagnostic(msg);
    console.log(`qos e2e: ${msg}`);
    assert.ok(a + b > 1000, `too few frames to judge: ${msg}\n${d.logTail()}`);
    assert.ok(Math.abs(share - 0.25) <= 0.25 * 0.15, `PCP 0 share not within 15% of 25%: ${msg}`);
  });
});

describe('QoS on the uplink (AF_PACKET external port)', { timeout: 300_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  let extNs: string;
  const extIp = '10.0.0.100';
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    extNs = await t.addNs('ext');
    const upEnd = t.ifname('up');
    await t.veth({ ns: h1, name: upEnd }, { ns: extNs, name: 'eth0' });
    await t.sysctl(h1, `net.ipv6.conf.${upEnd}.disable_ipv6`, 1);
    await t.execOk(extNs, ['ethtool', '-K', 'eth0', 'tx', 'off']);
    await t.configureVmLink(extNs, 'eth0', { mac: '02:00:00:00:00:64', cidr: `${extIp}/24` });
    d = await Xswitchd.start(t, h1);
    [vm1, vm2] = (await makeTapVms(t, 2)) as [TapVm, TapVm];
    await d.applyOk({
      host: 'h1',
      switches: [{
        name: 'sw0',
        uplink: { interface: upEnd, policy: { linkMbps: LINK_MBPS } },
        ports: [tapPortDoc(vm1, { policy: { minWeight: 1 } }), tapPortDoc(vm2, { policy: { minWeight: 3 } })],
      }],
    });
    await plugTapVms(d, [vm1, vm2]);
    for (const vm of [vm1, vm2]) assert.ok(await pingUntilReply(t, vm.ns, extIp), `${vm.name} -> ext\n${d.logTail()}`);
  });
  after(async () => {
    await t?.cleanup();
  });

  it(`weights 1:3 share an uplink with linkMbps ${LINK_MBPS} 25/75 within 15%`, async (tc) => {
    const [r1, r3] = await Promise.all([
      iperf3(t, extNs, extIp, vm1.ns, { seconds: 5 }),
      iperf3(t, extNs, extIp, vm2.ns, { seconds: 5 }),
    ]);
    assert.ok(r1.ok && r3.ok, `iperf3: ${r1.error ?? ''} ${r3.error ?? ''}\n${d.logTail()}`);
    const a = middleMbps(r1);
    const b = middleMbps(r3);
    const share = a / (a + b);
    const msg = `uplink: weight 1: ${a.toFixed(1)} Mbit/s, weight 3: ${b.toFixed(1)} Mbit/s, share ${(share * 100).toFixed(1)}%`;
    tc.diagnostic(msg);
    console.log(`qos e2e: ${msg}`);
    assert.ok(Math.abs(share - 0.25) <= 0.25 * 0.15, `share of weight 1 not within 15% of 25%: ${msg}`);
    const ports = await d.portList('sw0');
    assert.deepEqual((ports.find((p) => p.name === 'uplink') as unknown as { policy?: unknown }).policy, { linkMbps: LINK_MBPS });
  });
});
