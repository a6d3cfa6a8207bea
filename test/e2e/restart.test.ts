// test/e2e/restart.test.ts: SIGKILL xswitchd and start it again on the same SQLite store: switches, ports and
// extensions come back, and pings resume.
//
// TAP devices live only as long as the fd that created them unless made persistent. xswitchd makes its TAP ports
// persistent, so when it dies they stay where they are, in the VM namespaces they were moved to, with their MAC,
// addresses and routes; the restarted daemon finds each by name in those namespaces and attaches to it again. No
// re-plugging: a VM NIC that vanished with the daemon fails the test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { ping, pingUntilReply } from '../helpers/peers.js';
import { pidAlive, run, sleep } from '../helpers/proc.js';
import { extensionPath, makeTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

async function linkIn(ns: string, ifname: string): Promise<boolean> {
  return (await run(['ip', '-n', ns, 'link', 'show', ifname])).code === 0;
}

/** The VM NIC as the VM sees it: there, with its MAC and address. */
async function assertNicIntact(vm: TapVm, when: string): Promise<void> {
  const r = await run(['ip', '-n', vm.ns, '-j', 'addr', 'show', 'dev', vm.tap]);
  assert.equal(r.code, 0, `${when}: TAP ${vm.tap} is gone from ${vm.ns} (${r.stderr.trim()})`);
  const [link] = JSON.parse(r.stdout) as { address: string; addr_info: { family: string; local: string; prefixlen: number }[] }[];
  assert.equal(link?.address, vm.mac, `${when}: MAC of ${vm.tap}`);
  assert.ok(link.addr_info.some((a) => a.family === 'inet' && `${a.local}/${a.prefixlen}` === vm.cidr), `${when}: ${vm.cidr} on ${vm.tap}: ${r.stdout}`);
}

describe('xswitchd restart on the same store', { timeout: 240_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vms: TapVm[];
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    vms = await makeTapVms(t, 2);
    await d.applyOk({
      host: 'h1',
      switches: [{
        name: 'sw0',
        extensions: [
          { name: 'cap', path: extensionPath('count'), enabled: true, config: { kind: 'capture' } },
          { name: 'flt', path: extensionPath('count'), enabled: false, config: { kind: 'filter' } },
        ],
        ports: [tapPortDoc(vms[0]!), tapPortDoc(vms[1]!, { macLimit: 512 })],
      }, { name: 'sw1', ports: [] }],
    });
    for (const vm of vms) await d.plugTap(vm.tap, vm.ns, { mac: vm.mac, cidr: vm.cidr });
  });
  after(async () => {
    await t?.cleanup();
  });

  it('state and traffic survive SIGKILL + start', async (tc) => {
    const [vm1, vm2] = vms as [TapVm, TapVm];
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip), `before restart\n${d.logTail()}`);
    const exported = await d.exportJson();
    const switches = await d.json<{ name: string }[]>(['switch', 'list']);
    const ports = await d.portList('sw0');
    const exts = await d.extList('sw0');
    const oldPid = d.pid;

    await d.kill('SIGKILL');
    assert.ok(!pidAlive(oldPid), 'old daemon gone');
    // the kernel would delete a non-persistent TAP when the dead daemon's fd closes: give it the time to
    await sleep(500);
    for (const vm of vms) await assertNicIntact(vm, 'after SIGKILL');
    tc.diagnostic('TAPs are persistent: they stayed in the VM namespaces');
    await d.start();
    assert.notEqual(d.pid, oldPid);

    assert.equal(await d.exportJson(), exported, 'the desired state came back from the store');
    assert.deepEqual((await d.json<{ name: string }[]>(['switch', 'list'])).map((s) => s.name).sort(), switches.map((s) => s.name).sort());
    const strip = (ps: typeof ports): unknown => ps.map((p) => ({ name: p.name, interface: p.interface, mac: p.mac, vlan: p.vlan, up: p.up }))
      .sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(strip(await d.portList('sw0')), strip(ports));
    const extShape = (es: typeof exts): unknown => es.map((e) => ({ name: e.name, kind: e.kind, enabled: e.enabled, position: e.position }));
    assert.deepEqual(extShape(await d.extList('sw0')), extShape(exts));

    // attached again where they are: nothing new in the daemon's namespace, the NICs as the VMs left them
    for (const vm of vms) {
      assert.ok(!(await linkIn(d.ns, vm.tap)), `no second ${vm.tap} in the daemon's namespace`);
      await assertNicIntact(vm, 'after restart');
    }
    assert.match(d.logTail(20_000), /"reattached":"netns [^"]*-vm1"/, 'the log says where the TAP was found');
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip, 20_000), `pings resume after restart, without re-plugging\n${d.logTail()}`);
    const p = await ping(t, vm2.ns, vm1.ip, { count: 5, interval: 0.1 });
    assert.equal(p.received, 5, p.raw.stdout);
    // the restored capture extension is live again
    const cap = (await d.extList('sw0')).find((e) => e.name === 'cap');
    assert.ok((cap?.stats?.ingress ?? 0) > 0, `restored extension sees traffic: ${JSON.stringify(cap)}`);
  });

  it('a clean stop (SIGTERM) and start also restores everything', async () => {
    const exported = await d.exportJson();
    await d.stop();
    for (const vm of vms) await assertNicIntact(vm, 'after a clean stop');
    await d.start();
    assert.equal(await d.exportJson(), exported);
    const [vm1, vm2] = vms as [TapVm, TapVm];
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip, 20_000), `pings after a clean restart\n${d.logTail()}`);
  });
});
