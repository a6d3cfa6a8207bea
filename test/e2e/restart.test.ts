// test/e2e/restart.test.ts: SIGKILL xswitchd and start it again on the same SQLite store: switches, ports and
// extensions come back, and pings resume.
//
// TAP devices live only as long as the fd that created them unless made persistent: when the daemon dies, the
// kernel deletes them (from the VM namespaces they were moved to). The restarted daemon re-creates each TAP by
// name in ITS namespace, so the test moves them into the VM namespaces again and re-applies MAC and address, as
// a hypervisor would re-plug a VM NIC. If the daemon keeps its TAPs persistent, they stay in the VM namespaces
// and only the pings resuming is checked.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { ping, pingUntilReply } from '../helpers/peers.js';
import { pidAlive, run, waitFor } from '../helpers/proc.js';
import { extensionPath, makeTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

async function linkIn(ns: string, ifname: string): Promise<boolean> {
  return (await run(['ip', '-n', ns, 'link', 'show', ifname])).code === 0;
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
    const persistent = await linkIn(vm1.ns, vm1.tap);
    tc.diagnostic(persistent ? 'TAPs are persistent: they stayed in the VM namespaces' : 'TAPs vanished with the daemon: re-plugging them');
    if (!persistent) {
      // non-persistent TAPs vanished with the fd
      await waitFor(async () => !(await linkIn(vm2.ns, vm2.tap)), { timeout: 10_000, what: 'TAPs to vanish' });
    }
    await d.start();
    assert.notEqual(d.pid, oldPid);

    assert.equal(await d.exportJson(), exported, 'the desired state came back from the store');
    assert.deepEqual((await d.json<{ name: string }[]>(['switch', 'list'])).map((s) => s.name).sort(), switches.map((s) => s.name).sort());
    const strip = (ps: typeof ports): unknown => ps.map((p) => ({ name: p.name, interface: p.interface, mac: p.mac, vlan: p.vlan, up: p.up }))
      .sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(strip(await d.portList('sw0')), strip(ports));
    const extShape = (es: typeof exts): unknown => es.map((e) => ({ name: e.name, kind: e.kind, enabled: e.enabled, position: e.position }));
    assert.deepEqual(extShape(await d.extList('sw0')), extShape(exts));

    if (!persistent) {
      for (const vm of vms) await d.plugTap(vm.tap, vm.ns, { mac: vm.mac, cidr: vm.cidr });
    }
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip, 20_000), `pings resume after restart\n${d.logTail()}`);
    const p = await ping(t, vm2.ns, vm1.ip, { count: 5, interval: 0.1 });
    assert.equal(p.received, 5, p.raw.stdout);
    // the restored capture extension is live again
    const cap = (await d.extList('sw0')).find((e) => e.name === 'cap');
    assert.ok((cap?.stats?.ingress ?? 0) > 0, `restored extension sees traffic: ${JSON.stringify(cap)}`);
  });

  it('a clean stop (SIGTERM) and start also restores everything', async () => {
    const exported = await d.exportJson();
    await d.stop();
    await d.start();
    assert.equal(await d.exportJson(), exported);
    const [vm1, vm2] = vms as [TapVm, TapVm];
    if (!(await linkIn(vm1.ns, vm1.tap))) {
      for (const vm of vms) await d.plugTap(vm.tap, vm.ns, { mac: vm.mac, cidr: vm.cidr });
    }
    assert.ok(await pingUntilReply(t, vm1.ns, vm2.ip, 20_000), `pings after a clean restart\n${d.logTail()}`);
  });
});
