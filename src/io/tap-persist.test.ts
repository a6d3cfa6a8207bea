// io/tap-persist.test.ts: persistent TAPs and attaching to one by name, also in another network namespace (root,
// namespaces and devices with a per-run prefix): the addon's openTap persist/netns, tapSetPersist and linkKind, the
// calling thread always back in its own namespace (on errors too), and openTapPort's choice of namespace.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { loadNative, type LinkKind, type XsNet } from './native.js';
import { otherNetns } from './netns.js';
import { openTapPort, type TapPort } from './tap.js';
import { addNs, isRoot, runPrefix, sh, tryRun } from '../../test/helpers/ns-basic.js';

const nat = loadNative();
const skip = !isRoot() ? 'needs root (network namespaces)' : 'error' in nat ? nat.error : false;

const P = runPrefix();
const NS_A = `${P}-a`;
const NS_B = `${P}-b`;
/** Every device name this file may create in the root namespace: deleted in after() whatever happened. */
const ROOT_NAMES = [`${P}p0`, `${P}p1`, `${P}p2`, `${P}v0`, `${P}w0`, `${P}h0`];
const fds: number[] = [];
const ports: TapPort[] = [];

const ownNs = (): string => readlinkSync('/proc/thread-self/ns/net');
const nsPath = (ns: string): string => `/run/netns/${ns}`;
const inRoot = (name: string): boolean => tryRun('ip', ['link', 'show', name]);
const inNs = (ns: string, name: string): boolean => tryRun('ip', ['-n', ns, 'link', 'show', name]);

function x(): XsNet {
  return nat as XsNet;
}

/** A persistent TAP made in the root namespace and left without fd (as a killed daemon leaves one). */
function persistentTap(name: string, vnet: boolean): void {
  const fd = x().openTap(name, vnet, 12, false, true);
  assert.ok(fd >= 0, `openTap ${name}: ${fd}`);
  assert.equal(x().close(fd), 0);
  assert.ok(inRoot(name), 'a persistent TAP outlives its fd');
}

function kind(name: string, ns?: string): LinkKind {
  const k = x().linkKind(name, ns);
  assert.equal(typeof k, 'object', `linkKind ${name} ${ns ?? ''}: ${String(k)}`);
  return k as LinkKind;
}

describe('persistent TAPs, attached by name across namespaces', { skip }, () => {
  before(() => {
    addNs(NS_A);
    addNs(NS_B);
  });
  after(() => {
    for (const p of ports) p.close();
    for (const fd of fds) x().close(fd);
    // persistent devices in the root namespace would outlive the run
    for (const n of ROOT_NAMES) if (inRoot(n)) tryRun('ip', ['link', 'del', n]);
    tryRun('ip', ['netns', 'del', NS_A]);
    tryRun('ip', ['netns', 'del', NS_B]);
  });

  test('persist keeps the TAP after close; tapSetPersist(false) then close deletes it', () => {
    const name = `${P}p0`;
    persistentTap(name, true);
    const fd = x().openTap(name, true);
    assert.ok(fd >= 0, 'the same name attaches again');
    assert.equal(x().tapName(fd), name);
    assert.equal(x().tapSetPersist(fd, false), 0);
    assert.equal(x().close(fd), 0);
    assert.ok(!inRoot(name), 'non-persistent again: gone with its last fd');
    const plain = x().openTap(name, false);
    assert.ok(plain >= 0);
    assert.equal(x().close(plain), 0);
    assert.ok(!inRoot(name), 'without persist the TAP lives only while the fd is open');
  });

  test('linkKind tells a TAP from a veth and a missing name, here and in another namespace', () => {
    const name = `${P}p1`;
    persistentTap(name, false);
    const k = kind(name);
    assert.deepEqual([k.driver, k.bus], ['tun', 'tap']);
    assert.equal(k.ifindex, x().ifindex(name));
    sh('ip', ['link', 'add', `${P}v0`, 'type', 'veth', 'peer', 'name', `${P}w0`, 'netns', NS_A]);
    assert.equal(kind(`${P}v0`).driver, 'veth');
    assert.equal(kind(`${P}w0`, nsPath(NS_A)).driver, 'veth', 'looked up inside NS_A');
    assert.equal(x().linkKind(`${P}w0`), -19, 'ENODEV: not in our namespace');
    assert.equal(x().linkKind(name, nsPath(NS_A)), -19, 'ENODEV: the TAP is not in NS_A');
    assert.ok(kind('lo', nsPath(NS_A)).ifindex > 0, 'lo is there too');
    sh('ip', ['link', 'set', name, 'netns', NS_B]);
    const there = kind(name, nsPath(NS_B));
    assert.deepEqual([there.driver, there.bus], ['tun', 'tap']);
  });

  test('openTap with a namespace attaches to the TAP there; close after tapSetPersist(false) deletes it there', () => {
    const name = `${P}p1`; // moved into NS_B by the test before, persistent, no fd
    const before = ownNs();
    const fd = x().openTap(name, true, 12, false, true, nsPath(NS_B));
    fds.push(fd);
    assert.ok(fd >= 0, `attach in NS_B: ${fd}`);
    assert.equal(ownNs(), before, 'the thread came back to its namespace');
    assert.equal(x().tapName(fd), name);
    assert.ok(!inRoot(name), 'nothing was created in our namespace');
    // the fd is the device's: a frame written to it shows up as rx in NS_B
    sh('ip', ['-n', NS_B, 'link', 'set', name, 'up']);
    const rx0 = Number(sh('ip', ['netns', 'exec', NS_B, 'cat', `/sys/class/net/${name}/statistics/rx_packets`]));
    const slab = new Uint8Array(128);
    slab.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5], 12); // after a 12-byte vnet header
    assert.equal(x().sendBatch(fd, slab, Uint32Array.of(0), Uint32Array.of(12 + 60), 1), 1);
    const rx1 = Number(sh('ip', ['netns', 'exec', NS_B, 'cat', `/sys/class/net/${name}/statistics/rx_packets`]));
    assert.equal(rx1, rx0 + 1, 'the frame arrived in NS_B');
    assert.equal(x().tapSetPersist(fd, false), 0);
    fds.splice(fds.indexOf(fd), 1);
    assert.equal(x().close(fd), 0);
    assert.ok(!inNs(NS_B, name), 'deleted from NS_B with its last fd');
  });

  test('every failure after entering the namespace leaves the thread back in its own one, and creates nothing', () => {
    const before = ownNs();
    assert.equal(x().openTap(`${P}w0`, true, 12, false, true, nsPath(NS_A)), -22, 'EINVAL: a veth, not a TAP');
    assert.equal(ownNs(), before);
    assert.ok(inNs(NS_A, `${P}w0`), 'the veth is untouched');
    assert.equal(x().openTap(`${P}p2`, true, 12, false, true, nsPath(NS_A)), -19, 'ENODEV: attach only');
    assert.equal(ownNs(), before);
    assert.ok(!inNs(NS_A, `${P}p2`) && !inRoot(`${P}p2`), 'no TAP was created anywhere');
    assert.equal(x().openTap(`${P}p2`, true, 12, false, true, `/run/netns/${P}-nope`), -2, 'ENOENT: no such namespace file');
    assert.equal(x().openTap(`${P}p2`, true, 12, false, true, '/proc/self/ns/mnt'), -22, 'EINVAL: not a network namespace');
    assert.equal(x().linkKind(`${P}w0`, '/proc/self/ns/mnt'), -22);
    assert.equal(x().linkKind(`${P}p2`, nsPath(NS_A)), -19);
    assert.equal(ownNs(), before);
    // and the thread really works in its own namespace afterwards: a new TAP appears here
    const fd = x().openTap(`${P}p2`, false);
    assert.ok(fd >= 0 && inRoot(`${P}p2`) && !inNs(NS_A, `${P}p2`));
    x().close(fd);
    assert.ok(!inRoot(`${P}p2`));
  });

  test('otherNetns lists each other namespace once (named first), never our own', () => {
    const list = otherNetns();
    const labels = list.map((n) => n.label);
    assert.ok(labels.includes(`netns ${NS_A}`) && labels.includes(`netns ${NS_B}`), labels.join(', '));
    assert.equal(new Set(list.map((n) => n.path)).size, list.length);
    assert.ok(!list.some((n) => n.path === '/proc/self/ns/net' || n.path === `/proc/${process.pid}/ns/net`), 'not our own');
    const firstProc = labels.findIndex((l) => l.startsWith('the namespace of pid'));
    assert.ok(firstProc === -1 || labels.slice(firstProc).every((l) => !l.startsWith('netns ')), 'named ones first');
  });

  test('openTapPort: finds the persistent TAP in another namespace, refuses a non-TAP name and ambiguity', () => {
    const name = `${P}p0`;
    const fd = x().openTap(name, true, 12, false, true);
    assert.ok(fd >= 0);
    x().close(fd);
    sh('ip', ['link', 'set', name, 'netns', NS_A]);
    const spaces = otherNetns();
    let calls = 0;
    const netns = (): typeof spaces => {
      calls++;
      return spaces;
    };
    const p = openTapPort(name, { offload: true, persist: true, netns });
    if ('error' in p) assert.fail(p.error);
    ports.push(p);
    assert.equal(p.adopted, `netns ${NS_A}`);
    assert.equal(calls, 1);
    assert.ok(!inRoot(name) && inNs(NS_A, name), 'attached where it was');
    p.detach();
    assert.ok(inNs(NS_A, name), 'detach() leaves a persistent TAP');

    // the same name as a TAP in a second namespace: which one is meant is unclear
    const fd2 = x().openTap(name, true, 12, false, true);
    assert.ok(fd2 >= 0);
    x().close(fd2);
    sh('ip', ['link', 'set', name, 'netns', NS_B]);
    const amb = openTapPort(name, { offload: true, persist: true, netns: () => otherNetns() });
    assert.ok('error' in amb && /2 network namespaces/.test(amb.error), JSON.stringify(amb));
    sh('ip', ['-n', NS_B, 'link', 'del', name]);

    // a veth end of that name elsewhere: an error naming it, nothing created here
    const veth = openTapPort(`${P}w0`, { offload: true, persist: true, netns: () => otherNetns() });
    assert.ok('error' in veth && veth.error.includes(`a veth device in netns ${NS_A}`), JSON.stringify(veth));
    assert.ok(!inRoot(`${P}w0`));
    // ... and in our own namespace
    const own = openTapPort(`${P}v0`, { offload: false, persist: true, netns: () => otherNetns() });
    assert.ok('error' in own && own.error.includes("a veth device in xswitchd's network namespace"), JSON.stringify(own));

    // close() of a persistent port deletes the device where it is now
    const again = openTapPort(name, { offload: false, persist: true, netns: () => otherNetns() });
    if ('error' in again) assert.fail(again.error);
    assert.equal(again.adopted, `netns ${NS_A}`, 'flags may differ from the last open (no vnet header now)');
    again.close();
    assert.ok(!inNs(NS_A, name) && !inRoot(name), 'gone');
  });

  test('openTapPort: a TUN, a multiqueue TAP and a TAP another fd holds are clear errors', () => {
    sh('ip', ['-n', NS_A, 'tuntap', 'add', 'mode', 'tun', 'name', `${P}u0`]);
    const tun = openTapPort(`${P}u0`, { offload: true, persist: true, netns: () => otherNetns() });
    assert.ok('error' in tun && tun.error.includes(`taken by a TUN device in netns ${NS_A}`), JSON.stringify(tun));
    sh('ip', ['-n', NS_A, 'tuntap', 'add', 'mode', 'tap', 'multi_queue', 'name', `${P}m0`]);
    const mq = openTapPort(`${P}m0`, { offload: true, persist: true, netns: () => otherNetns() });
    assert.ok('error' in mq && mq.error.includes(`(the existing TAP in netns ${NS_A}): EINVAL`), JSON.stringify(mq));
    assert.ok(inNs(NS_A, `${P}u0`) && inNs(NS_A, `${P}m0`), 'both left alone');
    const name = `${P}p2`;
    const held = openTapPort(name, { offload: true, persist: true });
    if ('error' in held) assert.fail(held.error);
    ports.push(held);
    const second = openTapPort(name, { offload: true, persist: true });
    assert.ok('error' in second && /EBUSY: another process holds it/.test(second.error), JSON.stringify(second));
    held.close();
    assert.ok(!inRoot(name));
  });

  test('openTapPort leaves alone a TAP of that name another fd holds in another namespace (it has a carrier)', () => {
    const name = `${P}h0`;
    const fd = x().openTap(name, true); // someone else's port: attached, moved, up
    assert.ok(fd >= 0);
    fds.push(fd);
    sh('ip', ['link', 'set', name, 'netns', NS_A]);
    sh('ip', ['-n', NS_A, 'link', 'set', name, 'up']);
    assert.equal(kind(name, nsPath(NS_A)).link, true, 'attached: carrier');
    const p = openTapPort(name, { offload: true, persist: true, netns: () => otherNetns() });
    if ('error' in p) assert.fail(p.error);
    assert.equal(p.adopted, undefined, 'a new TAP of its own');
    assert.ok(inRoot(name) && inNs(NS_A, name));
    p.close();
    assert.ok(!inRoot(name) && inNs(NS_A, name), 'the held one untouched');
    fds.splice(fds.indexOf(fd), 1);
    x().close(fd);
    assert.ok(!inNs(NS_A, name), 'non-persistent: gone with its holder');
  });

  test('a name pattern (xs%d) is never made persistent: it could not be found again by name', () => {
    const p = openTapPort(`${P}q%d`, { offload: false, persist: true, netns: () => otherNetns() });
    if ('error' in p) assert.fail(p.error);
    assert.match(p.name, new RegExp(`^${P}q\\d+$`));
    assert.equal(p.persistent, false);
    const real = p.name;
    p.detach();
    assert.ok(!inRoot(real), 'gone with its fd');
  });

  test('without persist (the default) nothing outlives the port, and a new name is created here', () => {
    const name = `${P}p2`;
    const p = openTapPort(name, { offload: true, netns: () => otherNetns() });
    if ('error' in p) assert.fail(p.error);
    assert.equal(p.adopted, undefined, 'made by this open');
    assert.ok(inRoot(name));
    p.detach();
    assert.ok(!inRoot(name), 'a non-persistent TAP goes with its fd, detach() or not');
  });
});
