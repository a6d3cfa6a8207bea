// policy/acl.test.ts: port ACLs and extended ACLs through a real Switch with memory ports: directions, most
// specific match, MAC over IP, meter, extended before port ACLs, weights, stateful TCP/UDP/ICMP, idle timeouts on
// the ManualClock, live rule changes, counters.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, MAC_C, portCfg, rig } from '../dataplane/switch.test-kit.js';
import type { PortConfig } from '../dataplane/switch-api.js';
import type { AclSpec } from './acl.js';
import type { ExtendedAclSpec } from './extended-acl.js';

const IP_A = '10.0.0.1';
const IP_B = '10.0.0.2';
const IP_C = '10.0.1.3';

const ping = (dst: number, src: number, ipDst: string, ipSrc: string, type = 8, id = 7): Uint8Array =>
  frame().eth({ dst, src }).ipv4({ src: ipSrc, dst: ipDst }).icmp({ type, id, seq: 1 }).bytes();
const tcp = (dst: number, src: number, ipDst: string, ipSrc: string, sport: number, dport: number, flags: string): Uint8Array =>
  frame().eth({ dst, src }).ipv4({ src: ipSrc, dst: ipDst }).tcp({ sport, dport, flags }).bytes();
const udp = (dst: number, src: number, ipDst: string, ipSrc: string, sport: number, dport: number): Uint8Array =>
  frame().eth({ dst, src }).ipv4({ src: ipSrc, dst: ipDst }).udp({ sport, dport }).payload(new Uint8Array(20)).bytes();

/** Three ports a (MAC_A, 10.0.0.1), b (MAC_B, 10.0.0.2), c (MAC_C, 10.0.1.3); MACs learned. */
function three(a: Partial<PortConfig> = {}) {
  const r = rig({ a, b: {}, c: {} });
  // learn every MAC (broadcast from each, no IP: never matched by IP rules)
  for (const [p, m] of [['a', MAC_A], ['b', MAC_B], ['c', MAC_C]] as const) r.port[p]!.inject(frame().eth({ dst: 0xffff_ffff_ffff, src: m }).bytes());
  r.sw.poll();
  for (const p of ['a', 'b', 'c']) r.port[p]!.takeSent();
  /** Send `f` in on port `from`, return how many frames each port sent. */
  const send = (from: string, f: Uint8Array): Record<string, number> => {
    r.port[from]!.inject(f);
    r.sw.poll();
    return { a: r.port['a']!.takeSent().length, b: r.port['b']!.takeSent().length, c: r.port['c']!.takeSent().length };
  };
  const setA = (over: Partial<PortConfig>): void => r.sw.updatePort(r.id['a']!, portCfg('a', over));
  const relearn = (): void => {
    for (const [p, m] of [['a', MAC_A], ['b', MAC_B], ['c', MAC_C]] as const) r.port[p]!.inject(frame().eth({ dst: 0xffff_ffff_ffff, src: m }).bytes());
    r.sw.poll();
    for (const p of ['a', 'b', 'c']) r.port[p]!.takeSent();
  };
  const drops = (p: string) => r.sw.portCounters(r.id[p]!).drops;
  const hits = () => r.sw.portAcl(r.id['a']!);
  return { ...r, send, setA: (o: Partial<PortConfig>) => { setA(o); relearn(); }, drops, hits };
}

describe('port ACLs', () => {
  it('in = into the VM, out = from the VM; a denied frame is dropped with acl-deny and the rule counts it', () => {
    const acls: AclSpec[] = [{ direction: 'in', action: 'deny', remote: `${IP_B}/32` }];
    const t = three({ acls });
    // b -> a is "in" for a: dropped
    assert.deepEqual(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)), { a: 0, b: 0, c: 0 });
    assert.equal(t.drops('b')['acl-deny'], 1);
    // a -> b is "out" for a: the in rule does not apply
    assert.deepEqual(t.send('a', ping(MAC_B, MAC_A, IP_B, IP_A, 0)), { a: 0, b: 1, c: 0 });
    // c -> a: another remote
    assert.deepEqual(t.send('c', ping(MAC_A, MAC_C, IP_A, IP_C)), { a: 1, b: 0, c: 0 });
    const st = t.hits()!;
    assert.equal(st.acls[0]!.frames, 1);
    assert.ok(st.acls[0]!.bytes >= 42);
    // out: a -> b denied at a's ingress
    t.setA({ acls: [{ direction: 'out', action: 'deny', remote: '10.0.0.0/24' }] });
    assert.deepEqual(t.send('a', ping(MAC_B, MAC_A, IP_B, IP_A)), { a: 0, b: 0, c: 0 });
    assert.equal(t.drops('a')['acl-deny'], 1);
    assert.deepEqual(t.send('a', ping(MAC_C, MAC_A, IP_C, IP_A)), { a: 0, b: 0, c: 1 }, '10.0.1.3 is outside 10.0.0.0/24');
  });

  it('the most specific rule wins (longest prefix; MAC over any IP); deny wins a tie; no match = allow', () => {
    const t = three({
      acls: [
        { direction: 'both', action: 'deny', remote: '10.0.0.0/8' },
        { direction: 'both', action: 'allow', remote: '10.0.0.0/24' },
        { direction: 'both', action: 'deny', remote: '10.0.0.2/32' },
        { direction: 'both', action: 'allow', remote: '02:00:00:00:00:0b' },
      ],
    });
    // b: /32 deny, but the MAC allow is more specific
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 1);
    // c (10.0.1.3): only the /8 deny matches
    assert.equal(t.send('c', ping(MAC_A, MAC_C, IP_A, IP_C)).a, 0);
    // from c with a 10.0.0.x source: /24 allow beats /8 deny
    assert.equal(t.send('c', ping(MAC_A, MAC_C, IP_A, '10.0.0.9')).a, 1);
    // 192.168.1.1: nothing matches -> allow
    assert.equal(t.send('c', ping(MAC_A, MAC_C, IP_A, '192.168.1.1')).a, 1);
    const st = t.hits()!;
    // the MAC rule also matched b's learning broadcast (non-IP frames match MAC rules)
    assert.deepEqual(st.acls.map((r) => r.frames), [1, 1, 0, 2]);
    t.setA({ acls: [{ direction: 'in', action: 'allow', remote: '10.0.0.2/32' }, { direction: 'in', action: 'deny', remote: '10.0.0.2/32' }] });
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 0, 'deny wins a tie');
  });

  it('meter rules count and allow; a flood to a denied port excludes only that port', () => {
    const t = three({ acls: [{ direction: 'in', action: 'meter', remote: '10.0.0.0/16' }, { direction: 'in', action: 'deny', remote: '10.0.1.3' }] });
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 1);
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 1);
    // broadcast IPv4 from c: reaches b, not a
    assert.deepEqual(t.send('c', ping(0xffff_ffff_ffff, MAC_C, '10.0.1.255', IP_C)), { a: 0, b: 1, c: 0 });
    const st = t.hits()!;
    assert.equal(st.acls[0]!.frames, 3, 'meter counted every frame it matched, denied or not');
    assert.equal(st.acls[1]!.frames, 1);
    assert.equal(t.drops('c')['acl-deny'] ?? 0, 0, 'not dropped: delivered to b');
  });

  it('IP rules never match non-IP frames; MAC rules do', () => {
    const t = three({ acls: [{ direction: 'in', action: 'deny', remote: '0.0.0.0/0' }] });
    const arp = frame().eth({ dst: MAC_A, src: MAC_B }).arp({ op: 2 }).bytes();
    assert.equal(t.send('b', arp).a, 1);
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 0);
    t.setA({ acls: [{ direction: 'in', action: 'deny', remote: '02:00:00:00:00:0b' }] });
    assert.equal(t.send('b', arp).a, 0);
  });
});

describe('IPv6', () => {
  const v6udp = (dst: number, src: number, ipDst: string, ipSrc: string, sport: number, dport: number, ext?: { type: number }[]): Uint8Array =>
    frame().eth({ dst, src }).ipv6({ src: ipSrc, dst: ipDst, ...(ext === undefined ? {} : { ext }) }).udp({ sport, dport }).payload(new Uint8Array(8)).bytes();
  const v6echo = (dst: number, src: number, ipDst: string, ipSrc: string, type: number): Uint8Array =>
    frame().eth({ dst, src }).ipv6({ src: ipSrc, dst: ipDst }).icmpv6({ type, id: 3, seq: 1 }).bytes();

  it('IPv6 prefixes: longest prefix wins, an IPv4 rule never matches IPv6; extension headers are walked to the ports', () => {
    const t = three({
      acls: [{ direction: 'in', action: 'deny', remote: 'fd00::/64' }, { direction: 'in', action: 'allow', remote: 'fd00::3/128' }, { direction: 'in', action: 'deny', remote: '0.0.0.0/0' }],
      extendedAcls: [{ direction: 'in', action: 'deny', weight: 7, protocol: 'udp', localPort: 999 }],
    });
    assert.equal(t.send('b', v6udp(MAC_A, MAC_B, 'fd00::1', 'fd00::2', 1, 2)).a, 0);
    assert.equal(t.send('c', v6udp(MAC_A, MAC_C, 'fd00::1', 'fd00::3', 1, 2)).a, 1);
    assert.equal(t.send('c', v6udp(MAC_A, MAC_C, 'fd00::1', 'fd01::3', 1, 2)).a, 1, 'no IPv6 rule matches; the IPv4 /0 does not apply');
    assert.equal(t.send('c', v6udp(MAC_A, MAC_C, 'fd00::1', 'fd00::3', 1, 999, [{ type: 0 }, { type: 60 }])).a, 0, 'the port behind two extension headers');
    assert.equal(t.drops('c')['extended-acl-deny'], 1);
  });

  it('stateful ICMPv6 echo from an address-less icmp rule', () => {
    const t = three({ extendedAcls: [{ direction: 'out', action: 'allow', weight: 9, protocol: 'icmp', stateful: true }, { direction: 'in', action: 'deny', weight: 1 }] });
    assert.equal(t.send('b', v6echo(MAC_A, MAC_B, 'fd00::1', 'fd00::2', 129)).a, 0);
    assert.equal(t.send('a', v6echo(MAC_B, MAC_A, 'fd00::2', 'fd00::1', 128)).b, 1);
    assert.equal(t.send('b', v6echo(MAC_A, MAC_B, 'fd00::1', 'fd00::2', 129)).a, 1);
    const c = t.sw.portAcl(t.id['a']!, true)!.connectionList!;
    assert.equal(c[0]!.protocol, 58);
    assert.equal(c[0]!.remote, 'fd00::2 3');
  });
});

describe('extended ACLs', () => {
  const statefulOut: ExtendedAclSpec[] = [
    { direction: 'out', action: 'allow', weight: 100, stateful: true, idleTimeoutSec: 2 },
    { direction: 'in', action: 'deny', weight: 1 },
  ];

  it('weights decide; extended ACLs are evaluated before port ACLs', () => {
    const t = three({
      extendedAcls: [
        { direction: 'in', action: 'deny', weight: 10, protocol: 'tcp' },
        { direction: 'in', action: 'allow', weight: 20, protocol: 'tcp', localPort: 22 },
      ],
      acls: [{ direction: 'in', action: 'deny', remote: '10.0.0.2' }],
    });
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 5000, 22, 'S')).a, 1, 'weight 20 allow beats weight 10 deny and the port ACL');
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 5000, 23, 'S')).a, 0);
    assert.equal(t.drops('b')['extended-acl-deny'], 1);
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 0, 'no extended rule matches ICMP: the port ACL denies');
    assert.equal(t.drops('b')['acl-deny'], 1);
    const st = t.hits()!;
    assert.deepEqual(st.extendedAcls.map((r) => r.frames), [1, 1]);
    // meter port ACLs count even when an extended rule decided
    t.setA({ extendedAcls: [{ direction: 'in', action: 'allow', weight: 5 }], acls: [{ direction: 'in', action: 'meter', remote: '10.0.0.0/24' }, { direction: 'in', action: 'deny', remote: '10.0.0.2' }] });
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B)).a, 1, 'the extended allow decides over the port ACL deny');
    assert.deepEqual(t.hits()!.acls.map((r) => r.frames), [1, 0]);
  });

  it('stateful TCP: A opens to B, the return traffic is admitted, B cannot open to A; closing shortens the timeout', () => {
    const t = three({ extendedAcls: statefulOut });
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 80, 40000, 'S')).a, 0, 'inbound SYN refused');
    assert.equal(t.send('a', tcp(MAC_B, MAC_A, IP_B, IP_A, 40000, 80, 'S')).b, 1);
    assert.equal(t.hits()!.connections!.size, 1);
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 80, 40000, 'SA')).a, 1, 'SYN+ACK of our connection admitted');
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 80, 40001, 'SA')).a, 0, 'another port pair is not');
    assert.equal(t.send('c', tcp(MAC_A, MAC_C, IP_A, IP_C, 80, 40000, 'SA')).a, 0, 'another host is not');
    const conn = t.sw.portAcl(t.id['a']!, true)!.connectionList!;
    assert.equal(conn.length, 1);
    assert.equal(conn[0]!.state, 'established');
    assert.equal(conn[0]!.local, '10.0.0.1 40000');
    assert.equal(conn[0]!.opened, 'out');
    // idle 1.5 s: alive (timeout 2 s); then FIN: closing (min(idle, 10 s) = 2 s) ... RST: closed (2 s cap)
    t.clock.advance(1500);
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 80, 40000, 'PA')).a, 1);
    t.clock.advance(2100);
    assert.equal(t.send('b', tcp(MAC_A, MAC_B, IP_A, IP_B, 80, 40000, 'PA')).a, 0, 'idle-timed-out connection: dropped');
    assert.equal(t.hits()!.connections!.size, 0);
    assert.ok(t.hits()!.connections!.expired >= 1);
  });

  it('stateful UDP and ICMP echo; the sweep expires idle entries', () => {
    const t = three({ extendedAcls: statefulOut });
    assert.equal(t.send('b', udp(MAC_A, MAC_B, IP_A, IP_B, 53, 5353)).a, 0);
    assert.equal(t.send('a', udp(MAC_B, MAC_A, IP_B, IP_A, 5353, 53)).b, 1);
    assert.equal(t.send('b', udp(MAC_A, MAC_B, IP_A, IP_B, 53, 5353)).a, 1);
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B, 0, 9)).a, 0, 'an echo reply with no request');
    assert.equal(t.send('a', ping(MAC_B, MAC_A, IP_B, IP_A, 8, 9)).b, 1);
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B, 0, 9)).a, 1, 'the reply to our echo request');
    assert.equal(t.send('b', ping(MAC_A, MAC_B, IP_A, IP_B, 8, 9)).a, 0, "B's own echo request: not admitted");
    assert.equal(t.hits()!.connections!.size, 2);
    for (let k = 0; k < 5; k++) {
      t.clock.advance(1000);
      t.sw.tick(); // a bounded sweep per tick: the whole table every 4 ticks
    }
    assert.equal(t.hits()!.connections!.size, 0, 'swept');
  });

  it('live changes: connections survive unrelated changes and are dropped with the last stateful rule', () => {
    const t = three({ extendedAcls: statefulOut });
    t.send('a', udp(MAC_B, MAC_A, IP_B, IP_A, 5353, 53));
    t.setA({ extendedAcls: statefulOut, acls: [{ direction: 'in', action: 'deny', remote: '10.9.0.0/16' }], macLimit: 10 });
    assert.equal(t.send('b', udp(MAC_A, MAC_B, IP_A, IP_B, 53, 5353)).a, 1, 'the connection survived the update');
    t.setA({ extendedAcls: [{ direction: 'in', action: 'deny', weight: 1 }] });
    assert.equal(t.hits()!.connections, null);
    assert.equal(t.send('b', udp(MAC_A, MAC_B, IP_A, IP_B, 53, 5353)).a, 0);
    t.setA({});
    assert.equal(t.hits(), null);
    assert.equal(t.send('b', udp(MAC_A, MAC_B, IP_A, IP_B, 53, 5353)).a, 1);
  });
});
