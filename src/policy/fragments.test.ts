// policy/fragments.test.ts: IP fragments and extended ACLs. The FragTable alone (bound with counted refusals,
// aging, the last fragment's grace), and through a real Switch with memory ports: a first fragment's verdict
// (allowed by a tracked connection, or denied) is applied to the later fragments of the same datagram, IPv4 and
// IPv6; a later fragment whose first was not seen is judged by the port-independent rules when unambiguous, else
// dropped 'acl-fragment-unknown' and counted; a first fragment cut before its ports is judged like a later one.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, MAC_C } from '../dataplane/switch.test-kit.js';
import { three } from './acl.test-kit.js';
import type { ExtendedAclSpec } from './extended-acl.js';
import { FRAG_KEY_WIDTH, FRAG_TIMEOUT_MS, FragTable, LAST_GRACE_MS } from './fragments.js';

const IP_A = '10.0.0.1';
const IP_B = '10.0.0.2';
const IP_C = '10.0.1.3';

function keyOf(n: number): Uint32Array {
  const k = new Uint32Array(FRAG_KEY_WIDTH);
  k[0] = (4 << 8) | 17;
  k[1] = 0x0a000001;
  k[5] = 0x0a000002 + (n >>> 16);
  k[9] = n & 0xffff;
  return k;
}

describe('FragTable', () => {
  it('is bounded: a full table refuses and counts; entries age out after FRAG_TIMEOUT_MS and make room', () => {
    const ft = new FragTable(100);
    for (let n = 0; n < 150; n++) ft.store(keyOf(n), n & 1, 1000, 0);
    assert.equal(ft.size, 100);
    assert.equal(ft.stats.full, 50);
    assert.equal(ft.find(keyOf(120), 0), -1);
    const s = ft.find(keyOf(99), 0);
    assert.ok(s >= 0);
    assert.equal(ft.hit(s, true, 1000, 500, 0), 1, 'the stored verdict');
    assert.ok(ft.find(keyOf(99), FRAG_TIMEOUT_MS - 1) >= 0);
    assert.equal(ft.find(keyOf(99), FRAG_TIMEOUT_MS), -1, 'aged out');
    assert.equal(ft.stats.expired, 1);
    assert.equal(ft.expire(FRAG_TIMEOUT_MS, 1 << 20), 99, 'the sweep removes the rest');
    assert.equal(ft.size, 0);
    ft.store(keyOf(200), 0, 1000, FRAG_TIMEOUT_MS);
    assert.equal(ft.size, 1, 'room again');
  });

  it('the last fragment shortens the entry to LAST_GRACE_MS; a full table makes room from expired entries', () => {
    const ft = new FragTable(4);
    ft.store(keyOf(1), 0, 1000, 0);
    ft.hit(ft.find(keyOf(1), 10), false, 2000, 500, 10); // bytes 1000..2000 not seen yet
    assert.ok(ft.find(keyOf(1), 10 + LAST_GRACE_MS - 1) >= 0);
    assert.equal(ft.find(keyOf(1), 10 + LAST_GRACE_MS), -1);
    for (let n = 0; n < 4; n++) ft.store(keyOf(10 + n), 0, 1000, 5000);
    ft.store(keyOf(20), 0, 1000, 5000);
    assert.equal(ft.stats.full, 1);
    ft.store(keyOf(20), 0, 1000, 5000 + FRAG_TIMEOUT_MS);
    assert.equal(ft.stats.full, 1, 'the expired entries made room');
    assert.ok(ft.find(keyOf(20), 5000 + FRAG_TIMEOUT_MS) >= 0);
  });

  it('an entry goes as soon as every byte of its datagram was seen, in whatever order the later fragments come', () => {
    const ft = new FragTable(4);
    ft.store(keyOf(1), 1, 1000, 0);
    assert.equal(ft.hit(ft.find(keyOf(1), 0), false, 2000, 500, 0), 1, 'the last fragment first: length known, 1000..2000 missing');
    assert.equal(ft.size, 1);
    assert.equal(ft.hit(ft.find(keyOf(1), 0), true, 1000, 1000, 0), 1, 'the middle one: complete');
    assert.equal(ft.size, 0);
    assert.equal(ft.stats.completed, 1);
    assert.equal(ft.find(keyOf(1), 0), -1);
  });

  it('matches a Map model under 30,000 random stores, finds and sweeps (backward-shift deletion)', () => {
    const ft = new FragTable(256);
    const model = new Map<number, number>();
    let seed = 7;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let now = 0;
    for (let op = 0; op < 30_000; op++) {
      now += Math.floor(rnd() * 20);
      const n = Math.floor(rnd() * 1000);
      const e = model.get(n);
      const live = e !== undefined && now < e;
      if (e !== undefined && !live) model.delete(n);
      assert.equal(ft.find(keyOf(n), now) >= 0, live, `op ${op}`);
      if (!live && rnd() < 0.5) {
        for (const [m, x] of model) if (now >= x) model.delete(m);
        const stored = ft.store(keyOf(n), 0, 1000, now);
        // refused only when full of entries the model also holds live, or expired ones the bounded sweep missed
        if (stored) model.set(n, now + FRAG_TIMEOUT_MS);
        else assert.ok(model.size >= 200, `refused with ${model.size} live entries`);
      }
      if (op % 500 === 0) ft.expire(now);
    }
    assert.ok(ft.stats.expired > 100 && ft.stats.full > 0, JSON.stringify(ft.stats));
  });
});

/** A UDP datagram of `total` payload bytes from src to dst split into two IPv4 fragments (first: UDP header + 1472). */
function udpFrags(dstMac: number, srcMac: number, src: string, dst: string, sport: number, dport: number, id: number): [Uint8Array, Uint8Array] {
  const first = frame().eth({ dst: dstMac, src: srcMac }).ipv4({ src, dst, id, mf: true }).udp({ sport, dport, length: 8 + 2000, checksum: 0 }).payload(new Uint8Array(1472)).bytes();
  const later = frame().eth({ dst: dstMac, src: srcMac }).ipv4({ src, dst, id, fragmentOffset: 185, protocol: 17 }).payload(new Uint8Array(528)).bytes();
  return [first, later];
}

const statefulOut: ExtendedAclSpec[] = [
  { direction: 'out', action: 'allow', weight: 100, protocol: 'udp', stateful: true },
  { direction: 'in', action: 'deny', weight: 1 },
];

describe('fragments through extended ACLs', () => {
  it('first allowed (tracked connection) -> later allowed; first denied -> later denied; counted', () => {
    const t = three({ extendedAcls: statefulOut });
    const req = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: IP_A, dst: IP_B }).udp({ sport: 5000, dport: 7 }).payload(new Uint8Array(20)).bytes();
    assert.equal(t.send('a', req).b, 1);
    const [f1, f2] = udpFrags(MAC_A, MAC_B, IP_B, IP_A, 7, 5000, 0x1234);
    assert.equal(t.send('b', f1).a, 1, 'the first fragment of the reply: tracked connection');
    assert.equal(t.send('b', f2).a, 1, 'its later fragment: the first one\'s verdict');
    const [g1, g2] = udpFrags(MAC_A, MAC_C, IP_C, IP_A, 7, 5000, 0x1234);
    assert.equal(t.send('c', g1).a, 0, 'same IP ID from another host: no connection');
    assert.equal(t.send('c', g2).a, 0, 'its later fragment: denied as its first');
    assert.equal(t.drops('c')['extended-acl-deny'], 2);
    const fs = t.hits().fragments!;
    assert.equal(fs.stored, 2);
    assert.equal(fs.hits, 2);
    assert.equal(fs.unknown, 0);
    // the later fragment without a first one, with rules that judge it without ports: the in deny (no port rule in)
    const [, h2] = udpFrags(MAC_A, MAC_B, IP_B, IP_A, 7, 5000, 0x999);
    assert.equal(t.send('b', h2).a, 0);
    assert.equal(t.drops('b')['extended-acl-deny'], 1, 'unambiguous: denied by the in deny rule');
    assert.equal(t.hits().fragments!.unknown, 1);
    assert.equal(t.hits().fragments!.unknownDropped, 0);
  });

  it('a later fragment whose first was not seen, with rules that need ports: acl-fragment-unknown; out of order then in order', () => {
    const t = three({ extendedAcls: [{ direction: 'in', action: 'allow', weight: 100, protocol: 'udp', localPort: 53 }, { direction: 'in', action: 'deny', weight: 1 }] });
    const [f1, f2] = udpFrags(MAC_A, MAC_B, IP_B, IP_A, 5353, 53, 77);
    assert.equal(t.send('b', f2).a, 0, 'the later fragment first: unknown');
    assert.equal(t.drops('b')['acl-fragment-unknown'], 1);
    assert.equal(t.send('b', f1).a, 1, 'the first fragment: allowed by the port rule');
    assert.equal(t.send('b', f2).a, 1, 'the later fragment again: now known');
    const st = t.hits().fragments!;
    assert.deepEqual([st.unknown, st.unknownDropped, st.stored, st.hits, st.completed, st.size], [1, 1, 1, 1, 1, 0], 'complete: forgotten');
    const [g1, g2] = udpFrags(MAC_A, MAC_B, IP_B, IP_A, 5353, 54, 78);
    assert.equal(t.send('b', g1).a, 0, 'first fragment to port 54: denied');
    assert.equal(t.send('b', g2).a, 0);
    assert.equal(t.drops('b')['acl-fragment-unknown'], 1, 'not unknown: the first fragment decided');
    assert.equal(t.drops('b')['extended-acl-deny'], 2);
    // the rules change: the remembered verdicts are forgotten
    const [k1, k2] = udpFrags(MAC_A, MAC_B, IP_B, IP_A, 5353, 53, 79);
    assert.equal(t.send('b', k1).a, 1, 'a first fragment remembered, its later one not sent yet');
    t.setA({ extendedAcls: [{ direction: 'in', action: 'deny', weight: 100, protocol: 'udp', localPort: 53 }, { direction: 'in', action: 'allow', weight: 1 }] });
    assert.equal(t.send('b', k2).a, 0, 'first forgotten; a deny rule with a port above the allow: ambiguous');
    assert.equal(t.drops('b')['acl-fragment-unknown'], 2);
  });

  it('unambiguous without ports: no rule matches the protocol (port ACLs decide), or a port-less rule outweighs every port rule', () => {
    const t = three({
      extendedAcls: [{ direction: 'in', action: 'allow', weight: 10, protocol: 'tcp', localPort: 22 }, { direction: 'in', action: 'deny', weight: 5, protocol: 'tcp' }, { direction: 'in', action: 'allow', weight: 50, protocol: 'udp' }, { direction: 'in', action: 'deny', weight: 20, protocol: 'udp', localPort: 9 }],
      acls: [{ direction: 'in', action: 'deny', remote: `${IP_C}/32` }],
    });
    const later = (src: string, from: number, proto: number, id: number): Uint8Array =>
      frame().eth({ dst: MAC_A, src: from }).ipv4({ src, dst: IP_A, id, fragmentOffset: 100, protocol: proto }).payload(new Uint8Array(100)).bytes();
    assert.equal(t.send('b', later(IP_B, MAC_B, 17, 1)).a, 1, 'UDP: the port-less allow (50) outweighs the port deny (20)');
    assert.equal(t.send('b', later(IP_B, MAC_B, 6, 2)).a, 0, 'TCP: the port allow (10) outweighs the port-less deny (5): ambiguous');
    assert.equal(t.drops('b')['acl-fragment-unknown'], 1);
    assert.equal(t.send('b', later(IP_B, MAC_B, 47, 3)).a, 1, 'GRE: no extended rule, no port ACL: allowed');
    assert.equal(t.send('c', later(IP_C, MAC_C, 47, 4)).a, 0, 'GRE from C: the port ACL denies');
    assert.equal(t.drops('c')['acl-deny'], 1);
  });

  it('a tiny first fragment (cut before its ports) is judged like a later one', () => {
    const t = three({ extendedAcls: [{ direction: 'in', action: 'allow', weight: 100, protocol: 'tcp', localPort: 22 }, { direction: 'in', action: 'deny', weight: 1 }] });
    const tiny = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: IP_B, dst: IP_A, id: 5, mf: true, protocol: 6 }).payload(new Uint8Array([0x9c, 0x40, 0, 22, 0, 0, 0, 0])).bytes();
    assert.equal(t.send('b', tiny).a, 0);
    assert.equal(t.drops('b')['acl-fragment-unknown'], 1);
    const rest = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: IP_B, dst: IP_A, id: 5, fragmentOffset: 1, protocol: 6 }).payload(new Uint8Array(40)).bytes();
    assert.equal(t.send('b', rest).a, 0, 'the rest gets the tiny first fragment\'s verdict');
    assert.equal(t.hits().fragments!.hits, 1);
  });

  it('IPv6: a fragment header with offset 0 and M set is a first fragment; the later ones follow its verdict', () => {
    const t = three({ extendedAcls: statefulOut });
    const A6 = 'fd00::1';
    const B6 = 'fd00::2';
    const req = frame().eth({ dst: MAC_B, src: MAC_A }).ipv6({ src: A6, dst: B6 }).udp({ sport: 5000, dport: 7 }).payload(new Uint8Array(20)).bytes();
    assert.equal(t.send('a', req).b, 1);
    const first = (id: number, sport: number): Uint8Array =>
      frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, ext: [{ type: 44, more: true, id }] }).udp({ sport, dport: 5000, length: 1408 + 400, checksum: 0 }).payload(new Uint8Array(1400)).bytes();
    const later = (id: number): Uint8Array =>
      frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, nextHeader: 17, ext: [{ type: 44, fragmentOffset: 176, id }] }).payload(new Uint8Array(400)).bytes();
    assert.equal(t.send('b', first(0x80000001, 7)).a, 1);
    assert.equal(t.send('b', later(0x80000001)).a, 1, 'same 32-bit identification');
    assert.equal(t.send('b', first(0x80000002, 8)).a, 0, 'another source port: not the connection');
    assert.equal(t.send('b', later(0x80000002)).a, 0);
    assert.equal(t.send('b', later(0x80000003)).a, 0, 'unknown: the in deny decides');
    const atomic = frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, ext: [{ type: 44, id: 9 }] }).udp({ sport: 7, dport: 5000 }).payload(new Uint8Array(20)).bytes();
    assert.equal(t.send('b', atomic).a, 1, 'an atomic fragment is a whole datagram: the connection admits it');
    const fs = t.hits().fragments!;
    assert.deepEqual([fs.stored, fs.hits, fs.unknown], [2, 2, 1]);
  });

  it('IPv6: a first fragment whose header chain never reaches its upper layer is dropped acl-fragment-unknown, and so are its later fragments', () => {
    const t = three({ extendedAcls: [{ direction: 'in', action: 'deny', weight: 100, protocol: 'udp' }, { direction: 'in', action: 'allow', weight: 1 }] });
    const B6 = 'fd00::2';
    const A6 = 'fd00::1';
    // the fragment header and 8 destination options headers: more than flow.ts walks (the UDP header is behind them)
    const ext = [{ type: 44, more: true, id: 11 }, ...Array.from({ length: 8 }, () => ({ type: 60 }))];
    const first = frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, ext }).udp({ sport: 7, dport: 53 }).payload(new Uint8Array(16)).bytes();
    assert.equal(t.send('b', first).a, 0, 'not judged as protocol 60 by the allow rule: its UDP deny could not be seen');
    const later = frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, nextHeader: 60, ext: [{ type: 44, fragmentOffset: 100, id: 11 }] }).payload(new Uint8Array(64)).bytes();
    assert.equal(t.send('b', later).a, 0);
    assert.equal(t.drops('b')['acl-fragment-unknown'], 2);
    // a chain flow.ts walks to the end: the first fragment is judged as UDP
    const ok = frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, ext: [{ type: 44, more: true, id: 12 }, { type: 60 }] }).udp({ sport: 7, dport: 53 }).payload(new Uint8Array(16)).bytes();
    assert.equal(t.send('b', ok).a, 0, 'a first fragment with a short chain: judged as UDP (denied)');
    assert.equal(t.drops('b')['extended-acl-deny'], 1);
  });
});
