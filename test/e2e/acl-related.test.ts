// test/e2e/acl-related.test.ts: stateful extended ACLs and what has no ports of its own, on a real xswitchd with TAP
// VMs. vm1 allows outbound TCP/UDP/ICMP statefully and denies everything else inbound. While vm1 holds a TCP
// connection to vm2, an ICMP fragmentation needed crafted in vm2 (scapy) quoting that connection reaches vm1
// (tshark in vm1 sees it; xsctl counts it related), while one quoting an unknown connection is dropped and counted
// extended-acl-deny. Then 4000-byte UDP datagrams, fragmented by the kernels at MTU 1500, go from vm1 to vm2 and
// back whole through the stateful rule (the later fragments take their first fragment's verdict), and none comes
// back under a rule set that denies the echo's first fragment (its later fragments follow: extended-acl-deny, not
// acl-fragment-unknown).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Topology } from '../helpers/netns.js';
import { Capture, ping, pingUntilReply, PYTHON, pyScript } from '../helpers/peers.js';
import { sleep } from '../helpers/proc.js';
import { dropCount, makeTapVms, plugTapVms, type TapVm, tapPortDoc, Xswitchd } from '../helpers/xswitchd.js';

interface AclView {
  extendedAcls: { index: number; rule: Record<string, unknown>; frames: number; bytes: number }[];
  connections: { size: number; created: number; hits: number; related: number } | null;
  connectionList?: { protocol: number; local: string; remote: string; opened: string; state: string }[];
  fragments: { size: number; stored: number; hits: number; unknown: number; unknownDropped: number; full: number } | null;
  drops: Record<string, number>;
}

describe('RELATED ICMP errors and IP fragments through stateful extended ACLs', { timeout: 240_000 }, () => {
  let t: Topology;
  let d: Xswitchd;
  let vms: TapVm[];
  let vm1: TapVm;
  let vm2: TapVm;

  const applyVm1 = async (extra: Record<string, unknown>): Promise<void> => {
    await d.applyOk({ host: 'h1', switches: [{ name: 'sw0', ports: vms.map((vm) => tapPortDoc(vm, vm === vm1 ? extra : {})) }] });
  };
  const aclView = (conns = false): Promise<AclView> => d.json<AclView>(['acl', 'sw0', vm1.name, ...(conns ? ['--connections'] : [])]);
  const drops = async (p: string, reason: string): Promise<number> => dropCount((await d.counters('sw0')).ports[p], reason);
  const py = async (vm: TapVm, args: string[], timeout = 30_000): Promise<Record<string, number>> => {
    const r = await t.exec(vm.ns, [PYTHON, pyScript('acl_related.py'), ...args], { timeout });
    try {
      return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, number>;
    } catch {
      throw new Error(`acl_related.py ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    }
  };
  const stateful = {
    extendedAcls: [
      { direction: 'out', action: 'allow', protocol: 'tcp', weight: 100, stateful: true, idleTimeoutSec: 60 },
      { direction: 'out', action: 'allow', protocol: 'udp', weight: 90, stateful: true, idleTimeoutSec: 60 },
      { direction: 'out', action: 'allow', protocol: 'icmp', weight: 80, stateful: true, idleTimeoutSec: 60 },
      { direction: 'in', action: 'deny', weight: 1 },
    ],
  };

  before(async () => {
    t = Topology.create();
    const h1 = await t.addNs('h1');
    d = await Xswitchd.start(t, h1);
    vms = await makeTapVms(t, 2);
    [vm1, vm2] = vms as [TapVm, TapVm];
    await applyVm1({});
    await plugTapVms(d, vms);
    for (const a of vms) for (const b of vms) if (a !== b) assert.ok(await pingUntilReply(t, a.ns, b.ip), `${a.name} -> ${b.name} before any rule`);
  });
  after(async () => {
    await t?.cleanup();
  });

  it('fragmentation needed quoting vm1\'s TCP connection reaches vm1; one quoting an unknown connection is dropped and counted', async () => {
    await applyVm1(stateful);
    const p = await ping(t, vm1.ns, vm2.ip, { count: 2, interval: 0.2 });
    assert.equal(p.received, 2, `vm1 -> vm2 ping through the stateful icmp rule: ${p.raw.stdout}`);
    const cap = await Capture.start(t, vm1.ns, vm1.tap, { seconds: 40, bpf: 'icmp', name: 'vm1-icmp' });
    try {
      // a TCP connection from vm1:45001 to vm2 held open: the server sends "late" after 6 s, the client waits 9 s
      const port = 7301;
      const srv = t.spawn(vm2.ns, [PYTHON, pyScript('acl_peer.py'), 'server', 'tcp', String(port), '14', '6'], { timeout: 30_000 });
      await sleep(400);
      const client = t.spawn(vm1.ns, [PYTHON, pyScript('acl_peer.py'), 'client', 'tcp', vm2.ip, String(port), '45001', '9'], { timeout: 30_000 });
      await sleep(1500);
      const v0 = await aclView(true);
      assert.ok(v0.connectionList!.some((c) => c.protocol === 6 && c.local === `${vm1.ip} 45001`), JSON.stringify(v0.connectionList));
      const denied0 = await drops(vm2.name, 'extended-acl-deny');
      const related = await py(vm2, ['icmp', vm2.tap, vm2.mac, vm1.mac, vm2.ip, vm1.ip, '45001', String(port), '1400', '3']);
      const unknown = await py(vm2, ['icmp', vm2.tap, vm2.mac, vm1.mac, vm2.ip, vm1.ip, '45999', String(port), '1300', '3']);
      assert.equal(related['sent'], 3);
      assert.equal(unknown['sent'], 3);
      assert.equal(await cap.waitCount('icmp.type == 3 && icmp.code == 4 && icmp.mtu == 1400', 3), 3, 'the related errors reached vm1');
      const v1 = await aclView();
      assert.ok(v1.connections!.related >= 3, `counted related: ${JSON.stringify(v1.connections)}`);
      assert.ok((await drops(vm2.name, 'extended-acl-deny')) - denied0 >= 3, 'the unknown-connection errors are dropped extended-acl-deny on their input port');
      assert.ok(v1.extendedAcls[3]!.frames >= 3, `the in deny rule judged them: ${JSON.stringify(v1.extendedAcls)}`);
      const text = (await d.xsctlOk(['acl', 'sw0', vm1.name])).stdout;
      const m = /\((\d+) related ICMP errors\)/.exec(text);
      assert.ok(m !== null && Number(m[1]) >= 3, text);
      await client.exited;
      const r = JSON.parse(client.stdout.trim().split('\n').pop() ?? '{}') as { echo?: boolean; late?: boolean };
      assert.ok(r.echo === true && r.late === true, `the connection carried on: ${client.stdout}`);
      await srv.exited;
    } finally {
      await cap.stop();
    }
    assert.equal(await cap.count('icmp.mtu == 1300'), 0, 'no error quoting an unknown connection reached vm1');
  });

  it('4000-byte UDP datagrams, fragmented at MTU 1500, pass the stateful rule whole both ways; a deny of the first fragment stops all', async () => {
    await applyVm1(stateful);
    const port = 7401;
    const v0 = await aclView();
    t.spawn(vm2.ns, [PYTHON, pyScript('acl_peer.py'), 'server', 'udp', String(port), '8', '0'], { timeout: 30_000 });
    await sleep(400);
    const ok = await py(vm1, ['udpclient', vm2.ip, String(port), '46001', '5', '4000']);
    assert.equal(ok['echoed'], 5, `every datagram came back whole: ${JSON.stringify(ok)}`);
    const v1 = await aclView();
    // 3 fragments a datagram: 2 later fragments each way per datagram
    assert.ok(v1.fragments!.hits - (v0.fragments?.hits ?? 0) >= 20, `later fragments took their first's verdict: ${JSON.stringify(v1.fragments)}`);
    assert.equal(v1.fragments!.unknownDropped, 0);
    const text = (await d.xsctlOk(['acl', 'sw0', vm1.name])).stdout;
    assert.match(text, /FRAGMENTS\s+\d+\/2048 datagrams, \d+ first fragments stored, [1-9]\d* later fragments judged as their first, [1-9]\d* datagrams complete/, text);
    // no stateful rule now; the echo's first fragment hits the port deny, a port-less allow is below it
    await applyVm1({ extendedAcls: [{ direction: 'in', action: 'allow', weight: 1 }, { direction: 'in', action: 'deny', protocol: 'udp', remotePort: port, weight: 100 }] });
    const denied0 = await drops(vm2.name, 'extended-acl-deny');
    const unknown0 = await drops(vm2.name, 'acl-fragment-unknown');
    const no = await py(vm1, ['udpclient', vm2.ip, String(port), '46002', '5', '4000']);
    assert.equal(no['echoed'], 0, `no datagram came back: ${JSON.stringify(no)}`);
    assert.ok((await drops(vm2.name, 'extended-acl-deny')) - denied0 >= 15, 'every fragment of the 5 echoes denied (3 each)');
    assert.equal((await drops(vm2.name, 'acl-fragment-unknown')) - unknown0, 0, 'the later fragments were not unknown: their first was seen');
  });
});
