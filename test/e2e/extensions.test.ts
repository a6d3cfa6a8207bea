// test/e2e/extensions.test.ts: test extensions (test/fixtures/extensions) loaded by path into a running
// xswitchd: an ingress filter, a capture that tries to tamper, an egress filter, a forwarding extension, live
// reordering under traffic, and a throwing extension that gets disabled while traffic keeps flowing.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, parsePing, ping, pingUntilReply } from '../helpers/peers.js';
import { waitFor } from '../helpers/proc.js';
import {
  type Counters, dropCount, type ExtInfo, extensionPath, makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd,
} from '../helpers/xswitchd.js';

describe('extensions in a running xswitchd', { timeout: 400_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  let vm3: TapVm;
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    [vm1, vm2, vm3] = (await makeTapVms(t, 3)) as [TapVm, TapVm, TapVm];
    await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports: [vm1, vm2, vm3].map((vm) => tapPortDoc(vm)) }] });
    await plugTapVms(d, [vm1, vm2, vm3]);
    for (const [a, b] of [[vm1, vm2], [vm2, vm3], [vm1, vm3]] as const) {
      assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name} before any extension\n${d.logTail()}`);
    }
  });
  after(async () => {
    await t?.cleanup();
  });
  // each case starts from a switch without extensions, even if the previous one failed half-way
  beforeEach(async () => {
    for (const e of await d.extList('sw0')) await d.xsctlOk(['ext', 'del', 'sw0', e.name]);
  });

  const ext = async (name: string): Promise<ExtInfo> => {
    const list = await d.extList('sw0');
    const e = list.find((x) => x.name === name);
    assert.ok(e !== undefined, `extension ${name} in ${JSON.stringify(list)}`);
    return e;
  };
  const addExt = async (name: string, file: string, config?: Record<string, unknown>): Promise<void> => {
    await d.xsctlOk(['ext', 'add', 'sw0', name, '--path', extensionPath(file), ...(config !== undefined ? ['--config', JSON.stringify(config)] : [])]);
  };
  const delExt = (name: string): Promise<unknown> => d.xsctlOk(['ext', 'del', 'sw0', name]);

  it('an ingress filter dropping ICMP from vm1: pings fail, extension-drop counted on vm1', async () => {
    await addExt('noicmp', 'drop-icmp', { port: 'vm1' });
    const before: Counters = await d.counters('sw0');
    const p = await ping(t, vm1.ns, vm2.ip, { count: 3, interval: 0.2 });
    assert.equal(p.received, 0, `ICMP from vm1 passed the filter: ${p.raw.stdout}`);
    const other = await ping(t, vm2.ns, vm3.ip, { count: 3, interval: 0.1 });
    assert.equal(other.received, 3, `vm2 -> vm3 must not be affected: ${other.raw.stdout}`);
    const c: Counters = await d.counters('sw0');
    const drops = dropCount(c.ports.vm1, 'extension-drop') - dropCount(before.ports.vm1, 'extension-drop');
    assert.ok(drops >= 3, `vm1 extension-drop grew by ${drops}: ${JSON.stringify(c.ports.vm1)}`);
    assert.equal(dropCount(c.ports.vm2, 'extension-drop') - dropCount(before.ports.vm2, 'extension-drop'), 0);
    const e = await ext('noicmp');
    assert.equal(e.kind, 'filter');
    assert.equal(e.enabled, true);
    assert.ok((e.stats?.dropped ?? 0) >= 3, JSON.stringify(e));
    await delExt('noicmp');
    const back = await ping(t, vm1.ns, vm2.ip, { count: 3, interval: 0.1 });
    assert.equal(back.received, 3, `after ext del: ${back.raw.stdout}`);
  });

  it('a capture extension cannot drop or modify: pings pass and frames arrive byte-identical', async (tc) => {
    await addExt('tamper', 'capture-tamper');
    const sent = await Capture.start(t, vm1.ns, vm1.tap, { seconds: 40 });
    const got = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 40 });
    const p = await ping(t, vm1.ns, vm2.ip, { count: 5, interval: 0.1, extra: ['-s', '200', '-p', 'a55a'] });
    assert.equal(p.received, 5, `pings with a tampering capture: ${p.raw.stdout}\n${d.logTail()}`);
    await got.waitCount(`icmp.type == 8 && ip.src == ${vm1.ip}`, 5);
    await sent.waitCount(`icmp.type == 0 && ip.src == ${vm2.ip}`, 5);
    await sent.stop();
    await got.stop();
    const fields = ['icmp.seq', 'eth.src', 'eth.dst', 'ip.len', 'ip.checksum', 'data.data'];
    const reqSent = await sent.fields(`icmp.type == 8 && ip.src == ${vm1.ip}`, fields);
    const reqGot = await got.fields(`icmp.type == 8 && ip.src == ${vm1.ip}`, fields);
    assert.equal(reqGot.length, 5);
    assert.deepEqual(reqGot, reqSent, 'echo requests changed on the way');
    const repSent = await got.fields(`icmp.type == 0 && ip.src == ${vm2.ip}`, fields);
    const repGot = await sent.fields(`icmp.type == 0 && ip.src == ${vm2.ip}`, fields);
    assert.deepEqual(repGot, repSent, 'echo replies changed on the way');
    const e = await ext('tamper');
    assert.equal(e.kind, 'capture');
    assert.equal(e.enabled, true, `the capture must stay enabled (it never throws): ${JSON.stringify(e)}`);
    assert.equal(e.faults, 0);
    assert.ok((e.stats?.observed ?? 0) >= 20, JSON.stringify(e.stats));
    assert.equal(e.stats?.changed, 0, `a capture changed what the batch reports: ${JSON.stringify(e.stats)}`);
    tc.diagnostic(`capture-tamper stats: ${JSON.stringify(e.stats)}`);
    await delExt('tamper');
  });

  it('an egress filter excludes one destination of a broadcast', async () => {
    await addExt('nobcast3', 'egress-exclude', { port: 'vm3' });
    const c2 = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 40 });
    const c3 = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40 });
    const b = await ping(t, vm1.ns, '10.0.0.255', { count: 3, interval: 0.2, extra: ['-b'] });
    assert.equal(b.transmitted, 3, b.raw.stdout + b.raw.stderr);
    await c2.waitCount(`icmp.type == 8 && ip.dst == 10.0.0.255`, 3);
    // unicast to vm3 is untouched
    const u = await ping(t, vm1.ns, vm3.ip, { count: 2, interval: 0.1 });
    assert.equal(u.received, 2, u.raw.stdout);
    await c3.waitCount(`icmp.type == 8 && ip.dst == ${vm3.ip}`, 2);
    await c2.stop();
    await c3.stop();
    assert.equal(await c3.count('icmp.type == 8 && ip.dst == 10.0.0.255'), 0, 'vm3 received the excluded broadcast');
    const e = await ext('nobcast3');
    assert.ok((e.stats?.excluded ?? 0) >= 3, JSON.stringify(e));
    await delExt('nobcast3');
    // positive control: without the extension vm3 gets the broadcast
    const c3b = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 30 });
    await ping(t, vm1.ns, '10.0.0.255', { count: 2, interval: 0.2, extra: ['-b'] });
    await c3b.waitCount(`icmp.type == 8 && ip.dst == 10.0.0.255`, 2);
    await c3b.stop();
  });

  it('a forwarding extension overrides built-in forwarding (everything from vm1 goes to vm3 only)', async () => {
    await addExt('fwd', 'forward-to', { from: 'vm1', to: 'vm3' });
    // vm1 knows vm2's MAC, so it sends unicast to vm2; the forwarder must still deliver it to vm3 only.
    await t.ip(vm1.ns, 'neigh', 'replace', vm2.ip, 'lladdr', vm2.mac, 'dev', vm1.tap, 'nud', 'permanent');
    try {
      const c2 = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 40 });
      const c3 = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40 });
      const before: Counters = await d.counters('sw0');
      const p = await ping(t, vm1.ns, vm2.ip, { count: 3, interval: 0.2 });
      assert.equal(p.received, 0, `vm1 -> vm2 got through despite the forwarder: ${p.raw.stdout}`);
      await c3.waitCount(`icmp.type == 8 && ip.dst == ${vm2.ip} && eth.dst == ${vm2.mac}`, 3).catch(async (err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}\ncounters before ${JSON.stringify(before)}\n` +
          `after ${JSON.stringify(await d.counters('sw0'))}\next ${JSON.stringify(await d.extList('sw0'))}\n${d.logTail()}`);
      });
      // the rest of the switch still forwards (the extension floods other ports' frames)
      const other = await ping(t, vm2.ns, vm3.ip, { count: 3, interval: 0.1 });
      assert.equal(other.received, 3, `vm2 -> vm3 with the forwarder: ${other.raw.stdout}`);
      await c2.stop();
      await c3.stop();
      assert.equal(await c2.count(`icmp.type == 8 && ip.src == ${vm1.ip}`), 0, 'vm2 received vm1 frames');
      const e = await ext('fwd');
      assert.equal(e.kind, 'forwarding');
      assert.ok((e.stats?.redirected ?? 0) >= 3, JSON.stringify(e));
      await delExt('fwd');
    } finally {
      await t.ip(vm1.ns, 'neigh', 'del', vm2.ip, 'dev', vm1.tap);
    }
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), 'built-in forwarding back after ext del');
  });

  it('reordering extensions at run time loses no frame of a running ping', async (tc) => {
    await addExt('c1', 'count', { kind: 'capture' });
    for (const f of ['f1', 'f2', 'f3']) await addExt(f, 'count', { kind: 'filter' });
    assert.ok(await pingUntilReply(t, vm2.ns, vm3.ip));
    const bg = t.spawn(vm2.ns, ['timeout', '30', 'ping', '-n', '-c', '100', '-i', '0.05', '-W', '2', vm3.ip], { timeout: 40_000 });
    const orders = [['c1', 'f3', 'f2', 'f1'], ['c1', 'f2', 'f1', 'f3'], ['c1', 'f1', 'f3', 'f2'], ['c1', 'f3', 'f1', 'f2'], ['c1', 'f1', 'f2', 'f3']];
    let done = 0;
    for (let round = 0; round < 2 && bg.running; round++) {
      for (const order of orders) {
        await d.xsctlOk(['ext', 'order', 'sw0', order.join(',')]);
        const list = await d.extList('sw0');
        const got = [...list].sort((a, b) => a.position - b.position).map((e) => e.name);
        assert.deepEqual(got, order, 'ext list follows the new order');
        done++;
      }
    }
    // class order is enforced: a filter before a capture is refused, order unchanged
    const bad = await d.xsctl(['ext', 'order', 'sw0', 'f1,c1,f2,f3']);
    assert.equal(bad.code, 1, `a filter before a capture must be refused: ${bad.stdout} ${bad.stderr}`);
    assert.ok(done >= 5);
    await bg.waitExit(35_000);
    const r = parsePing({ code: bg.exitCode ?? 1, signal: null, stdout: bg.stdout, stderr: bg.stderr, timedOut: false });
    assert.equal(r.transmitted, 100, bg.stdout);
    assert.equal(r.received, 100, `frames lost while reordering ${done} times: ${bg.stdout}`);
    tc.diagnostic(`${done} reorders during a 100-ping run, 0% loss`);
    const stats = await d.extList('sw0');
    for (const e of stats) assert.ok((e.stats?.ingress ?? 0) >= 200, `${e.name} saw every frame: ${JSON.stringify(e)}`);
    for (const n of ['c1', 'f1', 'f2', 'f3']) await delExt(n);
  });

  it('a throwing extension does not stop traffic and ends up disabled with a reason', async (tc) => {
    const before: Counters = await d.counters('sw0');
    await addExt('boom', 'throwing');
    // keep traffic flowing until the pipeline gives up on it
    const e = await waitFor(async () => {
      await ping(t, vm1.ns, vm2.ip, { count: 2, interval: 0.05 });
      const x = await ext('boom');
      return x.enabled ? null : x;
    }, { timeout: 60_000, interval: 200, what: 'the throwing extension to be disabled' });
    assert.ok(e.faults >= 1, JSON.stringify(e));
    assert.equal(typeof e.disabledReason, 'string');
    assert.ok((e.disabledReason ?? '').length > 0, `a reason: ${JSON.stringify(e)}`);
    tc.diagnostic(`disabled after ${e.faults} faults: ${e.disabledReason ?? ''}`);
    const p = await ping(t, vm1.ns, vm2.ip, { count: 5, interval: 0.1 });
    assert.equal(p.received, 5, `traffic after the extension was disabled: ${p.raw.stdout}`);
    const c: Counters = await d.counters('sw0');
    const faults = dropCount(c.switch, 'extension-fault') - dropCount(before.switch, 'extension-fault');
    assert.ok(faults >= 1, `frames held by a throwing filter count as extension-fault: ${JSON.stringify(c.switch.drops)}`);
    const status = await d.xsctl(['status']);
    assert.equal(status.code, 0, 'daemon alive');
    await delExt('boom');
  });
});
