// test/e2e/tap-persist.test.ts: xswitchd's TAP ports are persistent and re-attached by name, also when a port is
// added for a TAP a hypervisor made in the VM namespace. Removing a port (apply without it, or `xsctl port del`)
// deletes its device from the VM namespace, re-attached or not; a port whose name is
// a veth end in a VM namespace is a clear error (on apply, and on a restore after a restart: `xsctl status`
// degraded) while the daemon stays up and the other ports forward.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { ping, pingUntilReply } from '../helpers/peers.js';
import { run, sleep } from '../helpers/proc.js';
import { makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

async function linkIn(ns: string, ifname: string): Promise<boolean> {
  return (await run(['ip', '-n', ns, 'link', 'show', ifname])).code === 0;
}

describe('persistent TAP ports: removal and names taken by other devices', { timeout: 240_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vms: TapVm[];
  let badNs: string;
  const doc = (ports: TapVm[], extra: Record<string, unknown>[] = []): object => ({
    host: 'h1', switches: [{ name: 'sw0', ports: [...ports.map((vm) => tapPortDoc(vm)), ...extra] }],
  });
  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    vms = await makeTapVms(t, 4);
    badNs = await t.addNs('bad');
    await d.applyOk(doc(vms));
    await plugTapVms(d, vms);
  });
  after(async () => {
    // the daemon stops first (cleanup kills it by PID) and leaves its TAPs: they go with the namespaces
    await t?.cleanup();
  });

  it('a port removed by applying a document without it takes its TAP out of the VM namespace', async () => {
    const [vm1, vm2, vm3, vm4] = vms as [TapVm, TapVm, TapVm, TapVm];
    assert.ok(await pingUntilReply(t, vm1.ns, vm4.ip), `vm1 -> vm4 before\n${d.logTail()}`);
    await d.applyOk(doc([vm1, vm2, vm3]));
    assert.ok(!(await linkIn(vm4.ns, vm4.tap)), `${vm4.tap} deleted from ${vm4.ns}`);
    assert.ok(!(await linkIn(d.ns, vm4.tap)), 'and not left in the daemon namespace');
  });

  it('a name taken by a veth end in a VM namespace: the apply is refused with the reason, the rest forwards', async () => {
    const [vm1, vm2] = vms as [TapVm, TapVm];
    const name = t.ifname('vb');
    await t.veth({ ns: badNs, name }, { ns: badNs, name: t.ifname('vc') });
    const r = await d.apply(doc([vm1, vm2, vms[2]!], [{ name: 'bad', interface: { tap: name } }]));
    assert.notEqual(r.code, 0, 'refused');
    const text = r.stdout + r.stderr;
    assert.match(text, new RegExp(`tap ${name}: the name is taken by a veth device in netns ${badNs}, not a TAP`), text);
    assert.ok(d.running, 'daemon up');
    assert.ok(!(await linkIn(d.ns, name)), 'no TAP of that name was made in the daemon namespace');
    assert.ok(await linkIn(badNs, name), 'the veth is untouched');
    const p = await ping(t, vm1.ns, vm2.ip, { count: 3, interval: 0.1 });
    assert.equal(p.received, 3, p.raw.stdout);
  });

  it('a port added for a TAP that already exists in a VM namespace attaches to it there (no second device)', async () => {
    const [vm1, vm2, vm3, vm4] = vms as [TapVm, TapVm, TapVm, TapVm];
    // as a hypervisor that made the VM's NIC itself: a persistent TAP, configured, before the port exists
    await t.ip(vm4.ns, 'tuntap', 'add', 'mode', 'tap', 'name', vm4.tap);
    await t.configureVmLink(vm4.ns, vm4.tap, { mac: vm4.mac, cidr: vm4.cidr });
    await d.applyOk(doc([vm1, vm2, vm3, vm4]));
    assert.ok(!(await linkIn(d.ns, vm4.tap)), 'nothing created in the daemon namespace');
    assert.match(d.logTail(20_000), new RegExp(`"port":"vm4".*"reattached":"netns ${vm4.ns}"`));
    assert.ok(await pingUntilReply(t, vm1.ns, vm4.ip, 20_000), `vm1 -> vm4 through the attached TAP\n${d.logTail()}`);
    const p = await ping(t, vm4.ns, vm2.ip, { count: 3, interval: 0.1 });
    assert.equal(p.received, 3, p.raw.stdout);
  });

  it('after a restart: a stored port whose name became a veth end is reported degraded, re-attached ports work, port del deletes a re-attached TAP', async () => {
    const [vm1, vm2, vm3] = vms as [TapVm, TapVm, TapVm];
    // a stored TAP port whose device is replaced by a veth end while the daemon is down
    const late = { name: 'late', ns: vms[3]!.ns, tap: t.ifname('lt') };
    await d.applyOk(doc([vm1, vm2, vm3], [{ name: 'late', interface: { tap: late.tap } }]));
    await t.waitLink(d.ns, late.tap);
    await d.kill('SIGKILL');
    await t.ip(d.ns, 'link', 'del', late.tap); // persistent: still there after the kill
    await t.veth({ ns: late.ns, name: late.tap }, { ns: late.ns, name: t.ifname('lu') });
    await sleep(200);
    await d.start();
    const status = await d.json<{ degraded: { path: string; message: string }[] | null }>(['status']);
    assert.ok(status.degraded !== null, `degraded: ${JSON.stringify(status)}`);
    assert.ok(status.degraded.some((e) => e.message.includes(`tap ${late.tap}: the name is taken by a veth device in netns ${late.ns}`)), JSON.stringify(status.degraded));
    const shown = (await d.xsctlOk(['status'])).stdout;
    assert.match(shown, /degraded: .*veth device/, shown);
    assert.match(d.logTail(20_000), /restored the stored desired state only in part/);
    const ports = await d.portList('sw0');
    assert.deepEqual(ports.filter((p) => p.id >= 0).map((p) => p.name).sort(), ['vm1', 'vm2', 'vm3'], 'running');
    assert.deepEqual(ports.filter((p) => p.id < 0).map((p) => p.name), ['late'], 'stored, not running');
    assert.match(ports.find((p) => p.name === 'late')?.error ?? '', /the name is taken by a veth device/, 'port list says why');
    const listText = (await d.xsctlOk(['port', 'list', 'sw0'])).stdout;
    assert.match(listText, new RegExp(`\\nlate: down, not running: cannot open TAP ${late.tap}: tap ${late.tap}: the name is taken by a veth device`), listText);
    assert.ok(await pingUntilReply(t, vm1.ns, vm3.ip, 20_000), `re-attached ports forward\n${d.logTail()}`);
    assert.ok(await linkIn(late.ns, late.tap), 'the veth is untouched');

    // the fix the log suggests: drop the stored port (every later change applies the whole document)
    await d.xsctlOk(['port', 'del', 'sw0', 'late']);
    assert.ok(await linkIn(late.ns, late.tap), 'the veth is still untouched');
    await d.xsctlOk(['port', 'del', 'sw0', 'vm3']);
    assert.ok(!(await linkIn(vm3.ns, vm3.tap)), `${vm3.tap} (re-attached in ${vm3.ns}) deleted by port del`);
    assert.ok(!(await linkIn(d.ns, vm3.tap)));
    const p = await ping(t, vm2.ns, vm1.ip, { count: 3, interval: 0.1 });
    assert.equal(p.received, 3, p.raw.stdout);
  });

  it('deleting the switch deletes every TAP it had, wherever it is', async () => {
    const [vm1, vm2] = vms as [TapVm, TapVm];
    await d.xsctlOk(['switch', 'del', 'sw0']);
    for (const vm of [vm1, vm2]) assert.ok(!(await linkIn(vm.ns, vm.tap)), `${vm.tap} gone from ${vm.ns}`);
  });
});
