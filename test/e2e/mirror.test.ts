// test/e2e/mirror.test.ts: port mirroring on a real xswitchd with three TAP VMs: vm1 is a mirror source, vm3 a
// mirror destination running tshark on its NIC. vm1 pings vm2: vm3 sees copies of the echo requests and of the
// replies with vm1's and vm2's MACs and IPs; a bounded iperf3 TCP run between vm1 and vm2 shows up at vm3 too;
// vm3's own traffic keeps working (its own frames are not duplicated); `xsctl port set --mirror none` stops the
// copies live. Counters (the switch's `mirrored`, vm3's tx) are read from xsctl.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, iperf3, ping, pingUntilReply } from '../helpers/peers.js';
import { sleep } from '../helpers/proc.js';
import { makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

describe('port mirroring on TAP VMs', { timeout: 300_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  let vm3: TapVm;

  const mirrored = async (): Promise<number> => (await d.counters('sw0')).switch.mirrored ?? -1;
  /** ICMP echo (type 8) or reply (type 0) between a and b, with their MACs, as the capture saw them. */
  const icmpFilter = (type: number, from: TapVm, to: TapVm): string =>
    `icmp.type == ${type} && ip.src == ${from.ip} && ip.dst == ${to.ip} && eth.src == ${from.mac} && eth.dst == ${to.mac}`;

  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    const vms = await makeTapVms(t, 3);
    [vm1, vm2, vm3] = vms as [TapVm, TapVm, TapVm];
    await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports: [
      tapPortDoc(vm1, { policy: { mirror: 'source' } }),
      tapPortDoc(vm2),
      tapPortDoc(vm3, { policy: { mirror: 'destination' } }),
    ] }] });
    await plugTapVms(d, vms);
    for (const a of vms) for (const b of vms) if (a !== b) assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name}`);
  });
  after(async () => {
    await t?.cleanup();
  });

  it('xsctl shows the mirror settings', async () => {
    const ports = await d.json<{ name: string; mirror: string }[]>(['port', 'list', 'sw0']);
    assert.deepEqual(ports.map((p) => [p.name, p.mirror]), [['vm1', 'source'], ['vm2', 'none'], ['vm3', 'destination']]);
  });

  it('vm1 pings vm2: vm3 sees copies of the requests and the replies (both directions), with the right MACs and IPs', async () => {
    const m0 = await mirrored();
    const tx0 = (await d.counters('sw0')).ports['vm3']!.txFrames;
    const cap = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40, bpf: 'icmp' });
    const p = await ping(t, vm1.ns, vm2.ip, { count: 5, interval: 0.2 });
    assert.equal(p.received, 5, p.raw.stdout);
    const req = await cap.waitCount(icmpFilter(8, vm1, vm2), 5);
    const rep = await cap.waitCount(icmpFilter(0, vm2, vm1), 5);
    await cap.stop();
    assert.equal(req, 5, 'each echo request copied once');
    assert.equal(rep, 5, 'each echo reply copied once');
    const m = (await mirrored()) - m0;
    assert.ok(m >= 10, `switch mirrored counter grew by ${m}`);
    const tx = (await d.counters('sw0')).ports['vm3']!.txFrames - tx0;
    assert.ok(tx >= 10, `vm3 tx counter grew by ${tx}`);
    const text = (await d.xsctlOk(['counters', 'sw0'])).stdout;
    assert.match(text, /MIRRORED \(switch sw0\): \d+ copies sent to mirror destinations/);
  });

  it('TCP (iperf3, 2 s) through the source shows up at the destination in both directions', async () => {
    const m0 = await mirrored();
    const c0 = await d.counters('sw0');
    const cap = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40, bpf: 'tcp', name: 'mirror-tcp' });
    const r = await iperf3(t, vm2.ns, vm2.ip, vm1.ns, { seconds: 2 });
    assert.ok(r.ok, `iperf3: ${r.error} ${r.client.stderr}`);
    await sleep(500);
    await cap.stop();
    const fwd = await cap.fields(`tcp && ip.src == ${vm1.ip} && ip.dst == ${vm2.ip} && eth.src == ${vm1.mac}`, ['tcp.len']);
    const back = await cap.fields(`tcp && ip.src == ${vm2.ip} && ip.dst == ${vm1.ip} && eth.src == ${vm2.mac}`, ['tcp.len']);
    const seen = fwd.reduce((a, row) => a + Number(row[0] ?? 0), 0);
    const ratio = seen / r.bytes;
    const m = (await mirrored()) - m0;
    const c = await d.counters('sw0');
    const delta = (name: string, f: 'rxFrames' | 'txFrames' | 'rxBytes' | 'txBytes'): number => c.ports[name]![f] - c0.ports[name]![f];
    const full = (c.ports['vm3']!.drops['mirror-tx-full'] ?? 0) - (c0.ports['vm3']!.drops['mirror-tx-full'] ?? 0);
    const srcFrames = delta('vm1', 'rxFrames') + delta('vm1', 'txFrames');
    const srcBytes = delta('vm1', 'rxBytes') + delta('vm1', 'txBytes');
    console.log(JSON.stringify({ iperfMbps: Math.round(r.bitsPerSecond / 1e6), iperfBytes: r.bytes, sourceFrames: srcFrames, sourceBytes: srcBytes,
      mirrored: m, mirrorTxFull: full, vm3TxBytes: delta('vm3', 'txBytes'), tsharkPayloadBytes: seen, tsharkRatio: Number(ratio.toFixed(3)),
      tsharkFramesFwd: fwd.length, tsharkFramesBack: back.length }));
    assert.ok(fwd.length > 0 && back.length > 0, `copies in both directions: ${fwd.length} / ${back.length}`);
    // every frame vm1 sent or received is one copy, sent or counted mirror-tx-full (a few frames to/from vm3
    // itself, e.g. ARP, are not copies)
    assert.ok(m + full >= srcFrames - 10 && m + full <= srcFrames + 10, `copies ${m} + refused ${full} vs source frames ${srcFrames}`);
    if (full === 0) assert.ok(delta('vm3', 'txBytes') >= srcBytes * 0.99, `copied ${delta('vm3', 'txBytes')} of ${srcBytes} bytes`);
    // tshark on a loaded machine loses frames itself (dumpcap buffer): what it shows is a lower bound
    assert.ok(ratio >= 0.2, `vm3's tshark saw ${seen} of ${r.bytes} payload bytes`);
  });

  it("the destination's own traffic keeps working; its own frames are not duplicated", async () => {
    const cap = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40, bpf: 'icmp', name: 'mirror-own' });
    const p = await ping(t, vm3.ns, vm2.ip, { count: 4, interval: 0.2 });
    assert.equal(p.received, 4, p.raw.stdout);
    // vm3 -> vm1 (the source): the echo goes to vm1 and is not copied back to vm3; vm1's reply is its own traffic
    const q = await ping(t, vm3.ns, vm1.ip, { count: 4, interval: 0.2 });
    assert.equal(q.received, 4, q.raw.stdout);
    await sleep(500);
    await cap.stop();
    assert.equal(await cap.count(icmpFilter(0, vm2, vm3)), 4, 'each reply from vm2 once');
    assert.equal(await cap.count(icmpFilter(0, vm1, vm3)), 4, 'each reply from vm1 (a source) once, not twice');
  });

  it('turning the mirror off live stops the copies; vm1 and vm2 keep talking', async () => {
    await d.xsctlOk(['port', 'set', 'sw0', 'vm1', '--mirror', 'none']);
    const ports = await d.json<{ name: string; mirror: string }[]>(['port', 'list', 'sw0']);
    assert.equal(ports.find((p) => p.name === 'vm1')!.mirror, 'none');
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), 'vm1 -> vm2 after the change');
    const m0 = await mirrored();
    const cap = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40, bpf: 'icmp', name: 'mirror-off' });
    const p = await ping(t, vm1.ns, vm2.ip, { count: 5, interval: 0.2 });
    assert.equal(p.received, 5, p.raw.stdout);
    // a control in the same capture: vm3's own ping shows the capture works
    const own = await ping(t, vm3.ns, vm2.ip, { count: 2, interval: 0.2 });
    assert.equal(own.received, 2);
    await cap.waitCount(icmpFilter(0, vm2, vm3), 2);
    await sleep(500);
    await cap.stop();
    assert.equal(await cap.count(`icmp && ip.addr == ${vm1.ip}`), 0, 'no copies of vm1 <-> vm2 once off');
    assert.equal((await mirrored()) - m0, 0);
    const off = await iperf3(t, vm2.ns, vm2.ip, vm1.ns, { seconds: 2 });
    assert.ok(off.ok, `iperf3 without mirroring: ${off.error}`);
    console.log(JSON.stringify({ iperfMbpsMirrorOff: Math.round(off.bitsPerSecond / 1e6) }));
    assert.equal((await mirrored()) - m0, 0, 'no copies of TCP either');
    // and back on: copies resume
    await d.xsctlOk(['port', 'set', 'sw0', 'vm1', '--mirror', 'source']);
    const cap2 = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40, bpf: 'icmp', name: 'mirror-on' });
    const r = await ping(t, vm1.ns, vm2.ip, { count: 3, interval: 0.2 });
    assert.ok(r.received >= 1, r.raw.stdout);
    assert.ok((await cap2.waitCount(icmpFilter(8, vm1, vm2), r.transmitted)) >= 3);
    await cap2.stop();
  });
});
