// test/e2e/acl.test.ts: port ACLs and stateful extended ACLs on a real xswitchd with three TAP VMs: a deny rule
// blocks ping (rule hits and the drop reason read from xsctl), the most specific allow beats a broader deny, a
// stateful rule lets vm1 open TCP and UDP to vm2 while vm2's attempts towards vm1 are refused, the return traffic
// of an idle-timed-out connection is dropped, and rules changed live take effect while a tracked connection
// survives an unrelated change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { ping, pingUntilReply, PYTHON, pyScript } from '../helpers/peers.js';
import { sleep } from '../helpers/proc.js';
import { dropCount, makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

interface AclView {
  acls: { index: number; rule: Record<string, unknown>; frames: number; bytes: number }[];
  extendedAcls: { index: number; rule: Record<string, unknown>; frames: number; bytes: number }[];
  connections: { size: number; limit: number; created: number; expired: number; refused: number; hits: number } | null;
  connectionList?: { protocol: number; local: string; remote: string; opened: string; state: string }[];
  drops: Record<string, number>;
}

interface ClientResult {
  connected: boolean;
  echo: boolean;
  late: boolean;
  error?: string;
}

describe('port ACLs and extended ACLs on TAP VMs', { timeout: 300_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vms: TapVm[];
  let vm1: TapVm;
  let vm2: TapVm;
  let vm3: TapVm;
  let port = 7000;

  /** Apply the switch with per-port extras (acls / extendedAcls) for vm1. */
  const applyVm1 = async (extra: Record<string, unknown>): Promise<void> => {
    await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports: vms.map((vm) => tapPortDoc(vm, vm === vm1 ? extra : {})) }] });
  };
  const aclView = (p: string, conns = false): Promise<AclView> => d.json<AclView>(['acl', 'sw0', p, ...(conns ? ['--connections'] : [])]);
  const drops = async (p: string, reason: string): Promise<number> => dropCount((await d.counters('sw0')).ports[p], reason);

  /** A bounded server in `server` and a client in `client`; returns the client's result. */
  const probe = async (proto: 'tcp' | 'udp', server: TapVm, client: TapVm, o: { delay?: number; wait?: number; sport?: number } = {}): Promise<ClientResult> => {
    const p = port++;
    const delay = o.delay ?? 0;
    const wait = o.wait ?? 0;
    const srv = t.spawn(server.ns, [PYTHON, pyScript('acl_peer.py'), 'server', proto, String(p), String(6 + delay + wait), String(delay)], { timeout: 30_000 });
    await sleep(400);
    const r = await t.exec(client.ns, [PYTHON, pyScript('acl_peer.py'), 'client', proto, server.ip, String(p), String(o.sport ?? 0), String(wait)], { timeout: 30_000 });
    void srv;
    try {
      return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ClientResult;
    } catch {
      throw new Error(`acl_peer client: ${r.stdout} ${r.stderr}`);
    }
  };

  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    vms = await makeTapVms(t, 3);
    [vm1, vm2, vm3] = vms as [TapVm, TapVm, TapVm];
    await applyVm1({});
    await plugTapVms(d, vms);
    for (const a of vms) for (const b of vms) if (a !== b) assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name} before any rule`);
  });
  after(async () => {
    await t?.cleanup();
  });

  it('a deny rule blocks ping; xsctl shows the rule hits and the acl-deny drops', async () => {
    await applyVm1({ acls: [{ direction: 'in', action: 'deny', remote: `${vm2.ip}/32` }] });
    // vm3 first: vm1's replies let the switch learn vm1's MAC again (the update flushed it); otherwise vm2's
    // requests are flooded, vm3 still gets a copy and only vm1's copy is excluded (a rule hit, not a drop)
    const q = await ping(t, vm3.ns, vm1.ip, { count: 3, interval: 0.2 });
    assert.equal(q.received, 3, `vm3 -> vm1 unaffected: ${q.raw.stdout}`);
    const before = await drops(vm2.name, 'acl-deny');
    const p = await ping(t, vm2.ns, vm1.ip, { count: 3, interval: 0.2 });
    assert.equal(p.received, 0, `vm2 -> vm1 must be blocked: ${p.raw.stdout}`);
    const v = await aclView(vm1.name);
    assert.equal(v.acls.length, 1);
    assert.ok(v.acls[0]!.frames >= 3, `rule hits ${JSON.stringify(v.acls)}`);
    assert.ok(v.acls[0]!.bytes >= 3 * 98);
    assert.ok((await drops(vm2.name, 'acl-deny')) - before >= 3, 'the echo requests are counted acl-deny on their input port');
    const text = (await d.xsctlOk(['acl', 'sw0', vm1.name])).stdout;
    assert.match(text, new RegExp(`in\\s+deny\\s+any\\s+${vm2.ip.replaceAll('.', '\\.')}/32\\s+\\d+`), text);
  });

  it('the most specific rule wins: a /32 allow beats a /24 deny', async () => {
    await applyVm1({ acls: [{ direction: 'in', action: 'deny', remote: '10.0.0.0/24' }, { direction: 'in', action: 'allow', remote: `${vm3.ip}/32` }] });
    const p = await ping(t, vm2.ns, vm1.ip, { count: 2, interval: 0.2 });
    assert.equal(p.received, 0, p.raw.stdout);
    const q = await ping(t, vm3.ns, vm1.ip, { count: 2, interval: 0.2 });
    assert.equal(q.received, 2, q.raw.stdout);
    const v = await aclView(vm1.name);
    assert.ok(v.acls[0]!.frames >= 2 && v.acls[1]!.frames >= 2, JSON.stringify(v.acls));
  });

  const stateful = (idle: number): Record<string, unknown> => ({
    extendedAcls: [
      { direction: 'out', action: 'allow', protocol: 'tcp', weight: 100, stateful: true, idleTimeoutSec: idle },
      { direction: 'out', action: 'allow', protocol: 'udp', weight: 90, stateful: true, idleTimeoutSec: idle },
      { direction: 'in', action: 'deny', weight: 1 },
    ],
  });

  it('stateful: vm1 opens TCP and UDP to vm2; vm2 cannot open to vm1; xsctl shows connections and extended-acl-deny', async () => {
    await applyVm1(stateful(30));
    const before = await drops(vm2.name, 'extended-acl-deny');
    const out = await probe('tcp', vm2, vm1);
    assert.ok(out.connected && out.echo, `vm1 -> vm2 TCP: ${JSON.stringify(out)}\n${d.logTail()}`);
    const inb = await probe('tcp', vm1, vm2);
    assert.equal(inb.connected, false, `vm2 -> vm1 TCP must be refused: ${JSON.stringify(inb)}`);
    const uout = await probe('udp', vm2, vm1, { sport: 6001 });
    assert.ok(uout.echo, `vm1 -> vm2 UDP: ${JSON.stringify(uout)}`);
    const uin = await probe('udp', vm1, vm2, { sport: 6002 });
    assert.equal(uin.echo, false, `vm2 -> vm1 UDP must be refused: ${JSON.stringify(uin)}`);
    const v = await aclView(vm1.name, true);
    assert.ok(v.connections !== null && v.connections.created >= 2, JSON.stringify(v.connections));
    const tcpConn = v.connectionList!.find((c) => c.protocol === 6 && c.remote.startsWith(vm2.ip) && c.opened === 'out');
    assert.ok(tcpConn !== undefined, JSON.stringify(v.connectionList));
    assert.ok(v.extendedAcls[0]!.frames >= 1 && v.extendedAcls[1]!.frames >= 1, JSON.stringify(v.extendedAcls));
    assert.ok(v.extendedAcls[2]!.frames >= 2, `the in deny rule counted vm2's attempts: ${JSON.stringify(v.extendedAcls)}`);
    assert.ok((await drops(vm2.name, 'extended-acl-deny')) - before >= 2);
  });

  it('return traffic of an idle-timed-out connection is dropped (idleTimeoutSec 2), before the timeout it passes', async () => {
    await applyVm1(stateful(2));
    const ctrlU = await probe('udp', vm2, vm1, { sport: 6101, delay: 0.5, wait: 3 });
    assert.ok(ctrlU.echo && ctrlU.late, `UDP late reply after 0.5 s must pass: ${JSON.stringify(ctrlU)}`);
    const u = await probe('udp', vm2, vm1, { sport: 6102, delay: 4, wait: 6 });
    assert.ok(u.echo, JSON.stringify(u));
    assert.equal(u.late, false, `UDP reply after 4 s idle must be dropped: ${JSON.stringify(u)}`);
    const ctrlT = await probe('tcp', vm2, vm1, { delay: 0.5, wait: 3 });
    assert.ok(ctrlT.echo && ctrlT.late, `TCP late data after 0.5 s must pass: ${JSON.stringify(ctrlT)}`);
    const tc = await probe('tcp', vm2, vm1, { delay: 4, wait: 5 });
    assert.ok(tc.echo, JSON.stringify(tc));
    assert.equal(tc.late, false, `TCP data after 4 s idle must be dropped: ${JSON.stringify(tc)}`);
    const v = await aclView(vm1.name);
    assert.ok(v.connections!.expired >= 2, JSON.stringify(v.connections));
  });

  it('live changes: removing the rules opens vm1, a tracked connection survives an unrelated change', async () => {
    await applyVm1(stateful(30));
    assert.equal((await probe('tcp', vm1, vm2)).connected, false);
    await applyVm1({});
    const open = await probe('tcp', vm1, vm2);
    assert.ok(open.connected && open.echo, `after removing the rules: ${JSON.stringify(open)}`);
    await applyVm1(stateful(30));
    assert.equal((await probe('tcp', vm1, vm2)).connected, false, 'rules back: refused again');
    // a connection from vm1 whose server answers late; meanwhile a port ACL (unrelated to it) is added live
    const p = port++;
    t.spawn(vm2.ns, [PYTHON, pyScript('acl_peer.py'), 'server', 'tcp', String(p), '15', '3'], { timeout: 30_000 });
    await sleep(400);
    const client = t.spawn(vm1.ns, [PYTHON, pyScript('acl_peer.py'), 'client', 'tcp', vm2.ip, String(p), '0', '6'], { timeout: 30_000 });
    await sleep(1000);
    await applyVm1({ ...stateful(30), acls: [{ direction: 'both', action: 'meter', remote: '10.0.0.0/24' }] });
    await client.exited;
    const r = JSON.parse(client.stdout.trim()) as ClientResult;
    assert.ok(r.echo && r.late, `the connection survived the live change: ${JSON.stringify(r)}`);
    const v = await aclView(vm1.name);
    assert.ok(v.acls[0]!.frames >= 1, 'the meter rule counts from now on');
  });
});
