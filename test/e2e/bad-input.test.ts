// test/e2e/bad-input.test.ts: malformed frames sent into a TAP port are dropped and counted by reason; 10,000
// random/mutated frames leave the daemon alive with every frame accounted for; bad documents and bad xsctl
// calls get clear errors and exit codes and leave the desired state unchanged.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, ping, pingUntilReply, PYTHON, pyScript, sendFrames } from '../helpers/peers.js';
import { pidAlive, run, waitFor } from '../helpers/proc.js';
import { type Counters, dropCount, makeTapVms, plugTapVms, type TapVm, tapPortDoc, XSCTL, Xswitchd } from '../helpers/xswitchd.js';

const FUZZ_FRAMES = 10_000;

function sumDrops(c: Counters['switch']): number {
  return Object.values(c.drops).reduce((a, b) => a + b, 0);
}

describe('bad input', { timeout: 400_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    [vm1, vm2] = (await makeTapVms(t, 2)) as [TapVm, TapVm];
    // no port `mac`: the bad frames below carry other source MACs and must meet the parser, not a MAC guard
    await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports: [vm1, vm2].map((vm) => tapPortDoc(vm, { mac: undefined })) }] });
    await plugTapVms(d, [vm1, vm2]);
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), `vm1 -> vm2\n${d.logTail()}`);
  });
  after(async () => {
    await t?.cleanup();
  });

  // name -> drop reason xswitch must count on the ingress port
  const CASES: [string, string][] = [
    ['trunc_vlan', 'truncated'],       // 16 bytes: cut inside the 802.1Q tag
    ['src_mcast', 'bad-src-mac'],
    ['src_bcast', 'bad-src-mac'],
    ['src_zero', 'bad-src-mac'],
    ['qinq', 'qinq-not-allowed'],      // 802.1ad + 802.1Q
    ['qinq_8100', 'qinq-not-allowed'], // 802.1Q + 802.1Q
    ['jumbo', 'oversize'],             // 9014 bytes on a 1500-MTU port (the VM's TAP has MTU 9000 to send it)
    ['garbage', 'bad-src-mac'],        // fixed 64 bytes whose source MAC has the group bit set
    ['hdr_14', 'truncated'],           // EtherType IPv4 and no IPv4 header at all
    ['ip_totlen_big', 'truncated'],    // IPv4 total length 1400 in a 42-byte packet
    ['ip_bad_ihl', 'bad-l3-header'],   // IPv4 IHL 3
    ['arp_short', 'truncated'],        // Ethernet/IPv4 ARP cut to 20 bytes
  ];

  it('each malformed frame is dropped, counted by reason on the ingress port, and never delivered', async (tc) => {
    await t.ip(vm1.ns, 'link', 'set', vm1.tap, 'mtu', '9000');
    const cap = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 90 });
    const env = { SRC_MAC: vm1.mac, DST_MAC: vm2.mac, SRC_IP: vm1.ip, DST_IP: vm2.ip, COUNT: '3' };
    for (const [name, reason] of CASES) {
      const before: Counters = await d.counters('sw0');
      const s = await sendFrames(t, vm1.ns, vm1.tap, [name], { ...env, TAG: `bad-${name}` });
      assert.equal(s.sent[name], 3, `${name} sent: ${s.raw.stdout}`);
      await waitFor(async () => {
        const c: Counters = await d.counters('sw0');
        return dropCount(c.ports.vm1, reason) - dropCount(before.ports.vm1, reason) >= 3;
      }, { timeout: 10_000, what: `3 '${reason}' drops on vm1 for ${name}` }).catch(async (e: unknown) => {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\nbefore ${JSON.stringify(before.ports.vm1)}\n` +
          `after ${JSON.stringify((await d.counters('sw0')).ports.vm1)}`);
      });
    }
    // frames of fewer than 14 bytes never reach the switch: the kernel refuses them on an Ethernet device
    const runts = await sendFrames(t, vm1.ns, vm1.tap, ['runt_10', 'runt_13'], env);
    assert.ok(runts.failed.runt_10 !== undefined && runts.failed.runt_13 !== undefined, runts.raw.stdout);
    const ok = await ping(t, vm1.ns, vm2.ip, { count: 2, interval: 0.1 });
    assert.equal(ok.received, 2, 'the port still forwards');
    await cap.stop();
    for (const [name] of CASES) {
      assert.equal(await cap.count(`frame contains "bad-${name}"`), 0, `${name} was delivered to vm2`);
    }
    await t.ip(vm1.ns, 'link', 'set', vm1.tap, 'mtu', '1500');
  });

  it(`${FUZZ_FRAMES} random/mutated frames: daemon alive, every frame delivered or counted as a drop`, async (tc) => {
    const readTx = async (): Promise<number> => t.linkStat(vm1.ns, vm1.tap, 'tx_packets');
    const before: Counters = await d.counters('sw0');
    const txBefore = await readTx();
    const r = await t.exec(vm1.ns, ['timeout', '60', PYTHON, pyScript('fuzz.py'), vm1.tap, String(FUZZ_FRAMES), '7', '4000'],
      { env: { ...process.env, SRC_MAC: vm1.mac, DST_MAC: vm2.mac, SRC_IP: vm1.ip, DST_IP: vm2.ip }, timeout: 70_000 });
    assert.equal(r.code, 0, `fuzz.py: ${r.stdout} ${r.stderr}`);
    const m = /sent (\d+) failed (\d+)/.exec(r.stdout);
    assert.ok(m !== null, r.stdout);
    const sent = Number(m[1]);
    assert.ok(sent >= FUZZ_FRAMES * 0.99, `only ${sent} of ${FUZZ_FRAMES} frames left the sender`);
    // The daemon read exactly what the TAP handed it (tx_packets counts frames read from the fd) and every
    // received frame on this two-port switch is either sent once (to the other port) or counted as a drop.
    let last = '';
    const settled = await waitFor(async () => {
      const c: Counters = await d.counters('sw0');
      const txTap = (await readTx()) - txBefore;
      const rx = c.ports.vm1!.rxFrames - before.ports.vm1!.rxFrames;
      const accounted = (c.switch.txFrames - before.switch.txFrames) + (sumDrops(c.switch) - sumDrops(before.switch));
      const rxAll = c.switch.rxFrames - before.switch.rxFrames;
      last = `tap read ${txTap}, vm1 rx ${rx}, switch rx ${rxAll}, tx+drops ${accounted}, drops ${JSON.stringify(c.switch.drops)}`;
      return rx === txTap && rxAll === accounted && txTap >= sent * 0.95 ? c : null;
    }, { timeout: 30_000, interval: 500, what: 'counters to account for every frame' }).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}: ${last}\n${d.logTail()}`);
    });
    tc.diagnostic(last);
    assert.ok(pidAlive(d.pid), 'xswitchd survived');
    assert.equal((await d.xsctl(['status'])).code, 0);
    assert.ok(sumDrops(settled.switch) - sumDrops(before.switch) > 0, 'the fuzz produced drops');
    // and it still forwards
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), `vm1 -> vm2 after the fuzz\n${d.logTail()}`);
  });

  it('bad xsctl calls: usage errors exit 2, refusals exit 1 with a JSON error, no daemon exits 3', async () => {
    const exported = await d.exportJson();
    for (const args of [[], ['frobnicate'], ['port', 'add', 'sw0'], ['port', 'add', 'sw0', 'p9'], ['counters'], ['ext', 'order', 'sw0'], ['apply']]) {
      const r = await d.xsctl(args);
      assert.equal(r.code, 2, `xsctl ${args.join(' ')} is a usage error: ${r.code} ${r.stdout} ${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, `xsctl ${args.join(' ')} explains itself on stderr`);
    }
    const refusals: string[][] = [
      ['port', 'add', 'nosuchswitch', 'p1', '--tap', t.ifname('zz')],
      ['port', 'add', 'sw0', 'vm1', '--tap', t.ifname('zz')],                     // duplicate name
      ['port', 'add', 'sw0', 'p2', '--tap', t.ifname('zy'), '--access', '5000'],  // VLAN id out of range
      ['port', 'del', 'sw0', 'nosuchport'],
      ['ext', 'add', 'sw0', 'x', '--path', join(t.dir, 'missing.js')],
      ['ext', 'order', 'sw0', 'nosuch,ext'],
      ['switch', 'del', 'nosuchswitch'],
      ['switch', 'add', 'sw0'],                                                   // exists
    ];
    for (const args of refusals) {
      const r = await d.xsctl(args, { json: true });
      assert.equal(r.code, 1, `xsctl ${args.join(' ')} must be refused with 1: ${r.code} ${r.stdout} ${r.stderr}`);
      const j = r.json<{ error?: unknown }>();
      assert.equal(typeof j.error, 'string', `JSON error for ${args.join(' ')}: ${r.stdout}`);
      assert.ok((j.error as string).length > 0);
      const plain = await d.xsctl(args);
      assert.equal(plain.code, 1);
      assert.ok(plain.stderr.trim().length > 0, `a message on stderr for ${args.join(' ')}`);
    }
    const vlanErr = (await d.xsctl(refusals[2]!, { json: true })).json<{ error: string; field?: string }>();
    assert.match(`${vlanErr.field ?? ''} ${vlanErr.error}`, /vlan|access/i, 'the VLAN error names the field');
    const noDaemon = await run([process.execPath, XSCTL, '--socket', join(t.dir, 'nobody.sock'), 'status'], { timeout: 20_000 });
    assert.equal(noDaemon.code, 3, `unreachable daemon: ${noDaemon.code} ${noDaemon.stderr}`);
    assert.equal(await d.exportJson(), exported, 'xsctl export unchanged');
  });

  it('invalid documents are rejected whole, with every error by path, and change nothing', async () => {
    const exported = await d.exportJson();
    const good = (extra: Record<string, unknown>[]): Record<string, unknown> => ({
      host: 'h1',
      switches: [{ name: 'sw0', ports: [...[vm1, vm2].map((vm) => tapPortDoc(vm, { mac: undefined })), ...extra] }],
    });
    // two errors at known paths; also a valid new port that must not be half-applied
    const bad = good([
      { name: 'p3', interface: { tap: t.ifname('t3') } },
      { name: 'p4', interface: { tap: t.ifname('t4') }, vlan: { mode: 'access', id: 5000 } },
      { name: 'p5', interface: { tap: t.ifname('t5') }, mac: 'not-a-mac' },
    ]);
    const r = await d.apply(bad, { json: true });
    assert.equal(r.code, 1, `invalid document: ${r.code} ${r.stdout} ${r.stderr}`);
    const j = r.json<{ error: string; errors?: { path?: string; field?: string; message?: string }[] }>();
    const text = JSON.stringify(j);
    assert.match(text, /switches\[0\]\.ports\[3\]\.vlan\.id/, `error path for the VLAN id: ${text}`);
    assert.match(text, /switches\[0\]\.ports\[4\]\.mac/, `error path for the MAC: ${text}`);
    const plain = await d.apply(bad);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /ports\[3\]\.vlan\.id/, 'the plain error lists paths too');
    assert.equal(await d.exportJson(), exported, 'nothing applied from a rejected document');
    const links = await t.exec(d.ns, ['ip', 'link', 'show', t.ifname('t3')]);
    assert.notEqual(links.code, 0, 'the valid port of a rejected document was not created');

    // not a document at all / not YAML
    for (const text2 of ['switches: [ {name: sw0', 'just a string', '[1, 2, 3]', '{"switches": 5}']) {
      const x = await d.apply(text2);
      assert.ok(x.code === 1 || x.code === 2, `apply of ${JSON.stringify(text2)}: ${x.code} ${x.stdout} ${x.stderr}`);
      assert.ok(x.stderr.trim().length > 0, 'explained on stderr');
    }
    // unknown extension file, bad extension config (the factory returns { error })
    const extBad = { ...good([]), switches: [{ name: 'sw0', ports: [vm1, vm2].map((vm) => tapPortDoc(vm, { mac: undefined })),
      extensions: [{ name: 'e', path: join(t.dir, 'nope.js') }] }] };
    const e1 = await d.apply(extBad);
    assert.equal(e1.code, 1, `missing extension module: ${e1.stdout} ${e1.stderr}`);
    // a dry run of a valid change applies nothing
    const dry = await d.apply(good([{ name: 'p3', interface: { tap: t.ifname('t3') } }]), { dryRun: true });
    assert.equal(dry.code, 0, `dry run: ${dry.stdout} ${dry.stderr}`);
    // a missing file
    const missing = await d.xsctl(['apply', '-f', join(t.dir, 'missing.yaml')]);
    assert.ok(missing.code === 1 || missing.code === 2, `missing file: ${missing.code}`);
    assert.equal(await d.exportJson(), exported, 'xsctl export unchanged after every rejected apply');
    assert.ok(pidAlive(d.pid));
  });
});
