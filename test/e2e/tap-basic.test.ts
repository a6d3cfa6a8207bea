// test/e2e/tap-basic.test.ts: three VM namespaces on TAP ports of one xswitchd: every pair pings, TCP flows,
// the MAC table and the per-port counters match the traffic that was sent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { iperf3, ping, pingUntilReply } from '../helpers/peers.js';
import { type Counters, startTapSwitch, type TapVm, type Xswitchd } from '../helpers/xswitchd.js';

/** 14 Ethernet + 20 IPv4 + 8 ICMP + 56 data: an untagged default ping on a TAP (no padding, no vnet header). */
const PING_FRAME = 98;
/** ARP request/reply on a TAP: 42 bytes unpadded (60 if some stack pads). */
const ARP_MAX = 60;
/** Frames besides the pings a pair may exchange during the counted run: an ARP refresh each way. */
const ARP_SLACK = 4;

describe('xswitchd with three TAP VMs', { timeout: 240_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vms: TapVm[];
  before(async () => {
    t = Topology.create();
    ({ d, vms } = await startTapSwitch(t, 3));
  });
  after(async () => {
    await t?.cleanup();
  });

  it('every pair pings', async () => {
    for (const a of vms) {
      for (const b of vms) {
        if (a === b) continue;
        assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name}: no reply\n${d.logTail()}`);
        const p = await ping(t, a.ns, b.ip, { count: 3, interval: 0.1 });
        assert.equal(p.received, 3, `${a.name} -> ${b.name}: ${p.raw.stdout}`);
      }
    }
  });

  it('TCP (bounded iperf3) between two pairs', async (tc) => {
    const [vm1, vm2, vm3] = vms as [TapVm, TapVm, TapVm];
    for (const [server, client] of [[vm2, vm1], [vm1, vm3]] as const) {
      const r = await iperf3(t, server.ns, server.ip, client.ns);
      assert.ok(r.ok, `iperf3 ${client.name} -> ${server.name}: ${r.error ?? ''} ${r.client.stderr}\n${d.logTail()}`);
      assert.ok(r.bytes > 1_000_000, `iperf3 ${client.name} -> ${server.name} moved only ${r.bytes} bytes`);
      tc.diagnostic(`iperf3 ${client.name} -> ${server.name}: ${(r.bitsPerSecond / 1e9).toFixed(2)} Gbit/s`);
    }
  });

  it('xsctl --json mac shows all three MACs on their ports', async () => {
    const table = await d.macTable('sw0');
    for (const vm of vms) {
      const e = table.filter((x) => x.mac.toLowerCase() === vm.mac);
      assert.equal(e.length, 1, `MAC ${vm.mac} once in ${JSON.stringify(table)}`);
      assert.equal(e[0]?.port, vm.name);
    }
  });

  it('per-port counters grow by exactly what a counted ping sends (ARP slack aside)', async () => {
    const [vm1, vm2, vm3] = vms as [TapVm, TapVm, TapVm];
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip));
    const n = 40;
    const before: Counters = await d.counters('sw0');
    const p = await ping(t, vm1.ns, vm2.ip, { count: n, interval: 0.02 });
    assert.equal(p.received, n, p.raw.stdout);
    const afterC: Counters = await d.counters('sw0');
    const delta = (port: string, k: 'rxFrames' | 'txFrames' | 'rxBytes' | 'txBytes'): number =>
      (afterC.ports[port]?.[k] ?? NaN) - (before.ports[port]?.[k] ?? NaN);
    const msg = `before ${JSON.stringify(before)}\nafter ${JSON.stringify(afterC)}`;
    // vm1 sent n echo requests (+ maybe an ARP refresh) and received n replies (+ maybe ARP).
    for (const [port, k] of [['vm1', 'rxFrames'], ['vm1', 'txFrames'], ['vm2', 'rxFrames'], ['vm2', 'txFrames']] as const) {
      const f = delta(port, k);
      assert.ok(f >= n && f <= n + ARP_SLACK, `${port}.${k} grew by ${f}, expected ${n}..${n + ARP_SLACK}\n${msg}`);
      const bytesKey = k === 'rxFrames' ? 'rxBytes' : 'txBytes';
      const b = delta(port, bytesKey);
      const extra = f - n;
      assert.ok(b >= n * PING_FRAME && b <= n * PING_FRAME + extra * ARP_MAX,
        `${port}.${bytesKey} grew by ${b} for ${f} frames, expected ${n}*${PING_FRAME} + ${extra} ARP\n${msg}`);
    }
    // vm3 is not involved: no unicast reaches it, at most an ARP broadcast.
    assert.ok(delta('vm3', 'txFrames') <= 2, `vm3 got ${delta('vm3', 'txFrames')} frames\n${msg}`);
    assert.ok(delta('vm3', 'rxFrames') <= 2, `vm3 sent ${delta('vm3', 'rxFrames')} frames\n${msg}`);
    // switch totals are the sums of the ports
    for (const k of ['rxFrames', 'txFrames', 'rxBytes', 'txBytes'] as const) {
      const sum = Object.values(afterC.ports).reduce((a, c) => a + c[k], 0);
      assert.equal(afterC.switch[k], sum, `switch.${k} equals the sum of ports\n${msg}`);
    }
    void vm3;
  });

  it('no drops were counted on a clean run', async () => {
    const c = await d.counters('sw0');
    const drops = Object.entries(c.switch.drops).filter(([, v]) => v > 0);
    // Unknown-unicast/flood corner cases may legitimately count 'no-destination' or 'hairpin'; nothing else.
    const unexpected = drops.filter(([r]) => r !== 'no-destination' && r !== 'hairpin');
    assert.deepEqual(unexpected, [], JSON.stringify(c.switch.drops));
  });
});
