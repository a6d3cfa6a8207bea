// test/e2e/guards.test.ts: port guards on TAP VMs of a real xswitchd, with scapy peers and tshark:
// a rogue DHCP server behind DHCP guard gives no lease (and does once the guard is turned off, live), router
// advertisements / redirects from a guarded port never reach other VMs, a spoofed source MAC is dropped, storm
// control holds a broadcast flood near its rate while two other VMs keep pinging, and a private VLAN's
// isolated / community / promiscuous reachability matrix with real pings. Every negative checks the drop reason
// in `xsctl --json counters`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, ping, pingUntilReply, PYTHON, pyScript, sendFrames } from '../helpers/peers.js';
import { waitFor } from '../helpers/proc.js';
import { type Counters, dropCount, makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

const STORM_LIMIT = 200;
const STORM_BURST = 20; // src/policy/storm.ts: 100 ms of the rate

describe('port guards on TAP VMs', { timeout: 600_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vm1: TapVm;
  let vm2: TapVm;
  let vm3: TapVm;
  let vm4: TapVm;
  let vm5: TapVm;
  let vm6: TapVm;
  const guarded = { dhcpGuard: true, routerGuard: true, macSpoofing: false };
  const doc = (vm1Policy: Record<string, unknown>, extra: Record<string, Record<string, unknown>> = {}): object => ({
    host: 'h1',
    switches: [{
      name: 'sw0',
      ports: [
        tapPortDoc(vm1, { policy: vm1Policy, ...extra['vm1'] }),
        tapPortDoc(vm2, extra['vm2']),
        tapPortDoc(vm3, extra['vm3']),
        tapPortDoc(vm4, { policy: { stormLimit: STORM_LIMIT }, ...extra['vm4'] }),
        tapPortDoc(vm5, extra['vm5']),
        tapPortDoc(vm6, extra['vm6']),
      ],
    }],
  });

  async function py(vm: TapVm, args: string[], env: Record<string, string> = {}, timeoutS = 60): Promise<string> {
    const r = await t.exec(vm.ns, [PYTHON, pyScript('guards.py'), ...args], { env: { ...process.env, SRC_MAC: vm.mac, SRC_IP: vm.ip, ...env }, timeout: timeoutS * 1000 });
    if (r.code !== 0) throw new Error(`guards.py ${args.join(' ')} failed (${r.code}): ${r.stdout} ${r.stderr}`);
    return r.stdout;
  }
  async function drops(port: string, reason: string): Promise<number> {
    const c: Counters = await d.counters('sw0');
    return dropCount(c.ports[port], reason);
  }
  async function waitDrops(port: string, reason: string, atLeast: number): Promise<number> {
    return waitFor(async () => {
      const n = await drops(port, reason);
      return n >= atLeast ? n : 0;
    }, { timeout: 10_000, what: `${atLeast} '${reason}' drops on ${port}` });
  }

  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    [vm1, vm2, vm3, vm4, vm5, vm6] = (await makeTapVms(t, 6)) as [TapVm, TapVm, TapVm, TapVm, TapVm, TapVm];
    await d.applyOk(doc(guarded));
    await plugTapVms(d, [vm1, vm2, vm3, vm4, vm5, vm6]);
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), `vm1 -> vm2 with guards on\n${d.logTail()}`);
  });
  after(async () => {
    await t?.cleanup();
  });

  it('xsctl shows the policy of each port', async () => {
    const ports = (await d.portList('sw0')) as unknown as { name: string; policy?: Record<string, unknown> }[];
    const p1 = ports.find((p) => p.name === 'vm1');
    assert.deepEqual(p1?.policy, { dhcpGuard: true, routerGuard: true, macSpoofing: false, stormLimit: 0, trustPriority: true });
    assert.equal(ports.find((p) => p.name === 'vm2')?.policy, undefined);
    const text = await d.xsctlOk(['port', 'list', 'sw0']);
    assert.match(text.stdout, /POLICY/);
    assert.match(text.stdout, /vm1 .*dhcp-guard router-guard no-mac-spoofing/);
    assert.match(text.stdout, /vm4 .*storm=200pps/);
    const bad = await d.xsctl(['port', 'set', 'sw0', 'vm2', '--pvlan', 'sideways:10']);
    assert.equal(bad.code, 2, bad.stderr);
    const refused = await d.xsctl(['port', 'set', 'sw0', 'vm2', '--mac-spoofing', 'off', '--mac', 'none']);
    assert.equal(refused.code, 1, `macSpoofing off without a mac must be refused: ${refused.stdout} ${refused.stderr}`);
    assert.match(refused.stdout + refused.stderr, /needs the port's mac/);
  });

  it('a rogue DHCP server behind DHCP guard gives no lease; with the guard off (xsctl port set, live) it does', async () => {
    const server = t.spawn(vm1.ns, [PYTHON, pyScript('guards.py'), 'dhcp-server', vm1.tap, '60'], {
      env: { ...process.env, SRC_MAC: vm1.mac, SRC_IP: vm1.ip }, timeout: 90_000,
    });
    try {
      await new Promise((r) => setTimeout(r, 1500)); // scapy import
      const before = await drops('vm1', 'dhcp-guard');
      const no = await py(vm2, ['dhcp-client', vm2.tap, vm2.mac, '5']);
      assert.match(no, /^no-offer$/m, `vm2 got a lease from the rogue server behind DHCP guard: ${no}`);
      assert.match(server.stdout, /offered/, `the rogue server saw no DISCOVER: ${server.stdout} ${server.stderr}`);
      const n = await waitDrops('vm1', 'dhcp-guard', before + 1);
      assert.ok(n > before);

      await d.xsctlOk(['port', 'set', 'sw0', 'vm1', '--dhcp-guard', 'off']);
      const ports = (await d.portList('sw0')) as unknown as { name: string; policy?: Record<string, unknown> }[];
      assert.deepEqual(ports.find((p) => p.name === 'vm1')?.policy, { dhcpGuard: false, routerGuard: true, macSpoofing: false, stormLimit: 0, trustPriority: true }, 'the other guards stay');
      const yes = await py(vm2, ['dhcp-client', vm2.tap, vm2.mac, '8']);
      assert.match(yes, /^offer 10\.0\.0\.150 10\.0\.0\.66$/m, `no offer with the guard off: ${yes}\n${server.stdout}`);
    } finally {
      await server.stop();
      await d.applyOk(doc(guarded));
    }
  });

  it('router advertisements, redirects and DHCPv6 advertises from a guarded port never reach other VMs', async () => {
    const c2 = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 40 });
    const c3 = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40 });
    const rg0 = await drops('vm1', 'router-guard');
    const dg0 = await drops('vm1', 'dhcp-guard');
    await py(vm1, ['send', vm1.tap, 'ra', '3']);
    await py(vm1, ['send', vm1.tap, 'icmp6_redirect', '2']);
    await py(vm1, ['send', vm1.tap, 'icmp_redirect', '2']);
    await py(vm1, ['send', vm1.tap, 'dhcp6_advertise', '2']);
    await py(vm1, ['send', vm1.tap, 'marker', '3'], { TAG: 'rg-marker' });
    // the control: the same RA from an unguarded port arrives
    await py(vm3, ['send', vm3.tap, 'ra', '2']);
    await c2.waitCount('frame contains "rg-marker"', 3);
    await c3.waitCount('frame contains "rg-marker"', 3);
    await c2.waitCount(`icmpv6.type == 134 && eth.src == ${vm3.mac}`, 2);
    await waitDrops('vm1', 'router-guard', rg0 + 7);
    await waitDrops('vm1', 'dhcp-guard', dg0 + 2);
    await c2.stop();
    await c3.stop();
    for (const c of [c2, c3]) {
      assert.equal(await c.count(`eth.src == ${vm1.mac} && (icmpv6.type == 134 || icmpv6.type == 137 || icmp.type == 5 || dhcpv6)`), 0, `guarded traffic leaked to ${c.file}`);
    }
  });

  it('a spoofed source MAC is dropped, counted mac-spoof and never learned; the port MAC still works', async () => {
    const cap = await Capture.start(t, vm2.ns, vm2.tap, { seconds: 40 });
    const before = await drops('vm1', 'mac-spoof');
    await py(vm1, ['send', vm1.tap, 'spoofed', '5'], { SPOOF_MAC: '02:00:00:00:00:99', TAG: 'spoof-x' });
    await py(vm1, ['send', vm1.tap, 'marker', '2'], { TAG: 'spoof-marker' });
    await cap.waitCount('frame contains "spoof-marker"', 2);
    const n = await waitDrops('vm1', 'mac-spoof', before + 5);
    await cap.stop();
    assert.equal(await cap.count('frame contains "spoof-x"'), 0, 'a spoofed frame reached vm2');
    assert.ok(n - before >= 5);
    const table = await d.macTable('sw0');
    assert.equal(table.some((e) => e.mac.toLowerCase() === '02:00:00:00:00:99'), false, 'the spoofed MAC was learned');
    const p = await ping(t, vm1.ns, vm2.ip, { count: 3, interval: 0.1 });
    assert.equal(p.received, 3, p.raw.stdout);
    const text = await d.xsctlOk(['counters', 'sw0']);
    assert.match(text.stdout, /vm1 .*mac-spoof=\d+/, text.stdout);
  });

  it('storm control holds a broadcast flood near its rate while two other VMs keep pinging', async () => {
    assert.ok(await pingUntilReply(t, vm2.ns, vm3.ip));
    const cap = await Capture.start(t, vm5.ns, vm5.tap, { seconds: 60, bpf: 'udp port 9' });
    const before = await drops('vm4', 'storm-control');
    const pinging = ping(t, vm2.ns, vm3.ip, { count: 15, interval: 0.2 });
    const out = await py(vm4, ['flood', vm4.tap, vm4.mac, '3000', '1000']);
    const m = /^flood (\d+) ([\d.]+)$/m.exec(out);
    assert.ok(m !== null, out);
    const sent = Number(m[1]);
    const seconds = Number(m[2]);
    const p = await pinging;
    await new Promise((r) => setTimeout(r, 1500));
    await cap.stop();
    const got = await cap.count('frame contains "storm-flood"');
    const expected = STORM_LIMIT * seconds + STORM_BURST;
    const dropped = (await drops('vm4', 'storm-control')) - before;
    console.log(JSON.stringify({ sent, seconds, got, expected, dropped, pings: p.received }));
    assert.equal(sent, 3000);
    assert.ok(got >= expected * 0.5 && got <= expected * 1.5 + 40, `vm5 got ${got} flood frames, expected about ${expected} (${sent} sent in ${seconds} s)`);
    assert.ok(dropped >= (sent - got) * 0.9, `storm-control drops ${dropped}, ${sent - got} not delivered`);
    assert.ok(p.received >= 13, `vm2 -> vm3 during the flood: ${p.raw.stdout}`);
  });

  it('802.1p: an untrusted port has its priority reset to 0, a trusted one keeps it (seen tagged on a trunk VM)', async () => {
    const trunk = { vlan: { mode: 'trunk', allowed: [10] } };
    await d.applyOk(doc({ ...guarded, trustPriority: false }, { vm1: trunk, vm2: trunk, vm3: trunk }));
    const cap = await Capture.start(t, vm3.ns, vm3.tap, { seconds: 40 });
    const f1 = await sendFrames(t, vm1.ns, vm1.tap, ['dot1q_bcast'], { SRC_MAC: vm1.mac, SRC_IP: vm1.ip, VLAN: '10', PCP: '5', TAG: 'pcp-untrusted', COUNT: '3' });
    const f2 = await sendFrames(t, vm2.ns, vm2.tap, ['dot1q_bcast'], { SRC_MAC: vm2.mac, SRC_IP: vm2.ip, VLAN: '10', PCP: '5', TAG: 'pcp-trusted', COUNT: '3' });
    assert.equal(f1.sent.dot1q_bcast, 3);
    assert.equal(f2.sent.dot1q_bcast, 3);
    await cap.waitCount('frame contains "pcp-untrusted"', 3);
    await cap.waitCount('frame contains "pcp-trusted"', 3);
    await cap.stop();
    const untrusted = await cap.fields('frame contains "pcp-untrusted"', ['vlan.id', 'vlan.priority']);
    const trusted = await cap.fields('frame contains "pcp-trusted"', ['vlan.id', 'vlan.priority']);
    assert.deepEqual([...new Set(untrusted.map((r) => r.join('/')))], ['10/0'], 'untrusted port keeps its PCP');
    assert.deepEqual([...new Set(trusted.map((r) => r.join('/')))], ['10/5'], 'trusted port lost its PCP');
  });

  const pv = (type: string, secondary?: number): Record<string, unknown> => ({ vlan: { mode: 'private', primary: 10, type, ...(secondary !== undefined ? { secondary } : {}) } });
  const pvlans = (): Record<string, Record<string, unknown>> => ({ vm1: pv('isolated', 11), vm2: pv('isolated', 11), vm3: pv('community', 12), vm4: pv('community', 12), vm5: pv('promiscuous') });

  it('private VLAN: isolated <-> isolated blocked, isolated <-> promiscuous allowed, community members reach each other', async () => {
    await d.applyOk(doc(guarded, pvlans()));
    const vms = [vm1, vm2, vm3, vm4, vm5];
    // static neighbours: a blocked ping is then a unicast frame the switch refuses (not an unanswered ARP)
    for (const a of vms) {
      for (const b of vms) if (a !== b) await t.execOk(a.ns, ['ip', 'neigh', 'replace', b.ip, 'lladdr', b.mac, 'dev', a.tap, 'nud', 'permanent']);
    }
    // every VM talks to the promiscuous one first, so the switch knows each MAC: a blocked unicast is then sent to
    // its one known port and refused there (an unknown destination would be flooded, reaching only vm5)
    for (const a of [vm1, vm2, vm3, vm4]) assert.ok(await pingUntilReply(t, a.ns, vm5.ip), `${a.name} -> vm5 (promiscuous)\n${d.logTail()}`);
    const cases: [TapVm, TapVm, boolean][] = [
      [vm1, vm2, false], [vm2, vm1, false],
      [vm1, vm5, true], [vm5, vm2, true],
      [vm3, vm4, true], [vm4, vm3, true],
      [vm3, vm1, false], [vm2, vm4, false],
      [vm3, vm5, true],
    ];
    for (const [a, b, ok] of cases) {
      if (ok) assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name} should reach\n${d.logTail()}`);
      const before = await drops(a.name, 'pvlan-blocked');
      const p = await ping(t, a.ns, b.ip, { count: 3, interval: 0.2 });
      assert.equal(p.received, ok ? 3 : 0, `${a.name} -> ${b.name}: ${p.raw.stdout}`);
      if (!ok) await waitDrops(a.name, 'pvlan-blocked', before + 3);
    }
  });

  it('private VLAN over a trunk: primary tag toward a promiscuous trunk, secondary tags toward a trunk that carries them, and back in', async () => {
    // vm6 is the far side of a trunk (scapy and tshark on its TAP: this kernel has no 8021q module for sub-interfaces)
    await d.applyOk(doc(guarded, { ...pvlans(), vm6: { vlan: { mode: 'trunk', allowed: [10] } } }));
    const c6 = await Capture.start(t, vm6.ns, vm6.tap, { seconds: 90 });
    const vid = async (tag: string): Promise<string[]> => [...new Set((await c6.fields(`frame contains "${tag}"`, ['vlan.id'])).map((r) => r[0]!))];
    // a trunk carrying only the primary is a promiscuous trunk: everything of the private VLAN leaves tagged 10
    for (const [vm, tag] of [[vm1, 'pv-ptrunk-iso'], [vm3, 'pv-ptrunk-com']] as const) {
      const s = await sendFrames(t, vm.ns, vm.tap, ['bcast_udp'], { SRC_MAC: vm.mac, SRC_IP: vm.ip, TAG: tag, COUNT: '2' });
      assert.equal(s.sent.bcast_udp, 2);
      await c6.waitCount(`frame contains "${tag}"`, 2);
      assert.deepEqual(await vid(tag), ['10'], tag);
    }

    // the trunk now carries the secondaries: isolated / community frames leave in them
    await d.applyOk(doc(guarded, { ...pvlans(), vm6: { vlan: { mode: 'trunk', allowed: [10, 11, 12] } } }));
    for (const [vm, tag] of [[vm1, 'pv-out-iso'], [vm3, 'pv-out-com'], [vm5, 'pv-out-prom']] as const) {
      const s = await sendFrames(t, vm.ns, vm.tap, ['bcast_udp'], { SRC_MAC: vm.mac, SRC_IP: vm.ip, TAG: tag, COUNT: '2' });
      assert.equal(s.sent.bcast_udp, 2);
    }
    for (const tag of ['pv-out-iso', 'pv-out-com', 'pv-out-prom']) await c6.waitCount(`frame contains "${tag}"`, 2);
    assert.deepEqual(await vid('pv-out-iso'), ['11']);
    assert.deepEqual(await vid('pv-out-com'), ['12']);
    assert.deepEqual(await vid('pv-out-prom'), ['10']);
    await c6.stop();

    // from behind the trunk: tagged 11 is an isolated host (reaches only vm5), 12 community 12, 10 everyone
    const vms = [vm1, vm2, vm3, vm4, vm5];
    const caps = await Promise.all(vms.map((vm) => Capture.start(t, vm.ns, vm.tap, { seconds: 40 })));
    for (const [vlan, tag] of [['11', 'pv-in-11'], ['12', 'pv-in-12'], ['10', 'pv-in-10']] as const) {
      const s = await sendFrames(t, vm6.ns, vm6.tap, ['dot1q_bcast'], { SRC_MAC: `02:00:00:00:0e:${vlan}`, SRC_IP: '10.0.0.99', VLAN: vlan, TAG: tag, COUNT: '2' });
      assert.equal(s.sent.dot1q_bcast, 2);
    }
    for (const c of caps) await c.waitCount('frame contains "pv-in-10"', 2);
    for (const c of caps) await c.stop();
    const got = async (tag: string): Promise<string[]> => {
      const out: string[] = [];
      for (let k = 0; k < vms.length; k++) if ((await caps[k]!.count(`frame contains "${tag}"`)) > 0) out.push(vms[k]!.name);
      return out;
    };
    assert.deepEqual(await got('pv-in-11'), ['vm5']);
    assert.deepEqual(await got('pv-in-12'), ['vm3', 'vm4', 'vm5']);
    assert.deepEqual(await got('pv-in-10'), ['vm1', 'vm2', 'vm3', 'vm4', 'vm5']);
  });
});
