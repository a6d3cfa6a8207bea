// policy/acl-related.test.ts: ICMP/ICMPv6 errors RELATED to a tracked connection through a real Switch with memory
// ports. A port allows outbound TCP/UDP/echo statefully and denies inbound: an error quoting one of its connections
// (quoted source = the port's side) passes and is counted; one quoting other ports or addresses, a truncated
// quote, a quote of the wrong direction or an error addressed elsewhere is judged by the rules (denied).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, MAC_C } from '../dataplane/switch.test-kit.js';
import { three } from './acl.test-kit.js';
import type { ExtendedAclSpec } from './extended-acl.js';

const IP_A = '10.0.0.1';
const IP_B = '10.0.0.2';
/** A router on the path (port c). */
const IP_R = '10.0.1.3';

const statefulOut: ExtendedAclSpec[] = [
  { direction: 'out', action: 'allow', weight: 100, protocol: 'tcp', stateful: true },
  { direction: 'out', action: 'allow', weight: 90, protocol: 'udp', stateful: true },
  { direction: 'out', action: 'allow', weight: 80, protocol: 'icmp', stateful: true },
  { direction: 'in', action: 'deny', weight: 1 },
];

/** The IP packet of frame f (no Ethernet header), cut to its IP header + `l4` bytes. */
function quoteOf(f: Uint8Array, l4 = 8, ipHeader = 20): Uint8Array {
  return f.slice(14, 14 + ipHeader + l4);
}

const tcp4 = (src: string, dst: string, sport: number, dport: number, flags = 'A'): Uint8Array =>
  frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src, dst, df: true }).tcp({ sport, dport, flags }).payload(new Uint8Array(64)).bytes();
const icmpErr4 = (from: number, src: string, dst: string, type: number, code: number, quote: Uint8Array): Uint8Array =>
  frame().eth({ dst: MAC_A, src: from }).ipv4({ src, dst }).icmp({ type, code, ...(type === 3 && code === 4 ? { mtu: 1400 } : {}) }).payload(quote).bytes();

describe('RELATED ICMP errors (IPv4)', () => {
  it('fragmentation needed quoting our TCP connection passes and is counted; other quotes are denied', () => {
    const t = three({ extendedAcls: statefulOut });
    assert.equal(t.send('a', tcp4(IP_A, IP_B, 40000, 80, 'S')).b, 1, 'A opens TCP to B');
    const ours = quoteOf(tcp4(IP_A, IP_B, 40000, 80));
    const ct0 = t.hits().connections!;
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, ours)).a, 1, 'frag needed from a router on the path');
    assert.equal(t.send('b', icmpErr4(MAC_B, IP_B, IP_A, 3, 4, ours)).a, 1, 'frag needed from the peer');
    const ct1 = t.hits().connections!;
    assert.equal(ct1.related - ct0.related, 2);
    assert.equal(ct1.hits - ct0.hits, 2, 'counted as frames of the connection');
    const denied0 = t.drops('c')['extended-acl-deny'] ?? 0;
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_A, IP_B, 40001, 80)))).a, 0, 'another local port');
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_A, IP_B, 40000, 81)))).a, 0, 'another remote port');
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_A, '10.0.0.9', 40000, 80)))).a, 0, 'another remote address');
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_B, IP_A, 80, 40000)))).a, 0, 'the wrong direction (as if A had received it)');
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_A, IP_B, 40000, 80), 4))).a, 0, 'truncated: 4 bytes of L4');
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_A, IP_B, 40000, 80), 0, 12))).a, 0, 'truncated: cut IP header');
    // the quote is ours but the error is addressed to another local address (a broadcast MAC gets it to a)
    const elsewhere = frame().eth({ dst: MAC_A, src: MAC_C }).ipv4({ src: IP_R, dst: '10.0.0.7' }).icmp({ type: 3, code: 4, mtu: 1400 }).payload(ours).bytes();
    assert.equal(t.send('c', elsewhere).a, 0, 'addressed to an address that did not send the quoted packet');
    assert.equal((t.drops('c')['extended-acl-deny'] ?? 0) - denied0, 7, 'each judged by the in deny rule');
    assert.equal(t.hits().connections!.related, ct1.related);
  });

  it('the other error types: dest unreachable codes, time exceeded, parameter problem; not redirect or echo', () => {
    const t = three({ extendedAcls: statefulOut });
    t.send('a', tcp4(IP_A, IP_B, 40000, 80, 'S'));
    const ours = quoteOf(tcp4(IP_A, IP_B, 40000, 80));
    for (const [type, code] of [[3, 0], [3, 1], [3, 3], [3, 13], [11, 0], [11, 1], [12, 0]] as const) {
      assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, type, code, ours)).a, 1, `type ${type} code ${code}`);
    }
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 5, 1, ours)).a, 0, 'a redirect is never related');
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 4, 0, ours)).a, 0, 'source quench (deprecated) is not');
    assert.equal(t.hits().connections!.related, 7);
  });

  it('UDP port unreachable and time exceeded for our echo (traceroute); an error about a connection after it expired is denied', () => {
    const t = three({ extendedAcls: statefulOut });
    const u = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: IP_A, dst: IP_B }).udp({ sport: 5000, dport: 33434 }).payload(new Uint8Array(20)).bytes();
    assert.equal(t.send('a', u).b, 1);
    assert.equal(t.send('b', icmpErr4(MAC_B, IP_B, IP_A, 3, 3, quoteOf(u))).a, 1, 'port unreachable');
    const echo = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: IP_A, dst: IP_B, ttl: 1 }).icmp({ type: 8, id: 99, seq: 1 }).payload(new Uint8Array(32)).bytes();
    assert.equal(t.send('a', echo).b, 1);
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 11, 0, quoteOf(echo))).a, 1, 'time exceeded about our echo request');
    const otherId = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: IP_A, dst: IP_B }).icmp({ type: 8, id: 98, seq: 1 }).bytes();
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 11, 0, quoteOf(otherId))).a, 0, 'another echo identifier');
    t.clock.advance(241_000); // past the default idle timeout
    assert.equal(t.send('b', icmpErr4(MAC_B, IP_B, IP_A, 3, 3, quoteOf(u))).a, 0, 'the connection expired');
  });

  it('an error the port sends out about a connection opened towards it passes (the quote went in)', () => {
    const t = three({
      extendedAcls: [
        { direction: 'in', action: 'allow', weight: 100, protocol: 'udp', localPort: 53, stateful: true },
        { direction: 'out', action: 'deny', weight: 1 },
      ],
    });
    const q = frame().eth({ dst: MAC_A, src: MAC_B }).ipv4({ src: IP_B, dst: IP_A }).udp({ sport: 5353, dport: 53 }).payload(new Uint8Array(20)).bytes();
    assert.equal(t.send('b', q).a, 1);
    const out = (quote: Uint8Array, src = IP_A): Uint8Array => frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src, dst: IP_B }).icmp({ type: 3, code: 3 }).payload(quote).bytes();
    assert.equal(t.send('a', out(quoteOf(q))).b, 1, 'port unreachable back to B');
    const reversed = frame().eth({ dst: MAC_B, src: MAC_A }).ipv4({ src: IP_A, dst: IP_B }).udp({ sport: 53, dport: 5353 }).payload(new Uint8Array(20)).bytes();
    assert.equal(t.send('a', out(quoteOf(reversed))).b, 0, 'quoting a packet A would have sent: wrong direction');
    assert.equal(t.send('a', out(quoteOf(q), '10.0.0.8')).b, 0, 'sent from another address than the quoted destination');
  });

  it('errors that quote nothing tracked are judged by the rules as before', () => {
    const t = three({ extendedAcls: [...statefulOut, { direction: 'in', action: 'allow', weight: 50, protocol: 'icmp' }] });
    assert.equal(t.send('c', icmpErr4(MAC_C, IP_R, IP_A, 3, 4, quoteOf(tcp4(IP_A, IP_B, 1, 2)))).a, 1, 'an in allow icmp rule admits it');
    assert.equal(t.hits().extendedAcls[4]!.frames, 1);
  });
});

describe('RELATED ICMPv6 errors', () => {
  const A6 = 'fd00::1';
  const B6 = 'fd00::2';
  const R6 = 'fd00:1::1';
  const tcp6 = (src: string, dst: string, sport: number, dport: number, ext?: { type: number }[]): Uint8Array =>
    frame().eth({ dst: MAC_B, src: MAC_A }).ipv6({ src, dst, ...(ext === undefined ? {} : { ext }) }).tcp({ sport, dport, flags: 'A' }).payload(new Uint8Array(64)).bytes();
  const err6 = (type: number, code: number, quote: Uint8Array, dst = A6): Uint8Array =>
    frame().eth({ dst: MAC_A, src: MAC_C }).ipv6({ src: R6, dst }).icmpv6({ type, code, ...(type === 2 ? { mtu: 1280 } : {}) }).payload(quote).bytes();

  it('packet too big, dest unreachable, time exceeded, parameter problem quoting our connection pass; others do not', () => {
    const t = three({ extendedAcls: statefulOut });
    assert.equal(t.send('a', frame().eth({ dst: MAC_B, src: MAC_A }).ipv6({ src: A6, dst: B6 }).tcp({ sport: 40000, dport: 443, flags: 'S' }).bytes()).b, 1);
    const ours = tcp6(A6, B6, 40000, 443).slice(14, 14 + 40 + 8);
    for (const type of [2, 1, 3, 4]) assert.equal(t.send('c', err6(type, 0, ours)).a, 1, `ICMPv6 type ${type}`);
    // the quote behind an extension header is walked
    const withExt = tcp6(A6, B6, 40000, 443, [{ type: 60 }]).slice(14, 14 + 48 + 8);
    assert.equal(t.send('c', err6(2, 0, withExt)).a, 1, 'quote with a destination options header');
    assert.equal(t.hits().connections!.related, 5);
    assert.equal(t.send('c', err6(2, 0, tcp6(A6, B6, 40000, 444).slice(14, 14 + 48))).a, 0, 'another port');
    assert.equal(t.send('c', err6(2, 0, tcp6(B6, A6, 443, 40000).slice(14, 14 + 48))).a, 0, 'the wrong direction');
    assert.equal(t.send('c', err6(2, 0, ours.slice(0, 44))).a, 0, 'truncated: 4 bytes of L4');
    assert.equal(t.send('c', err6(2, 0, ours.slice(0, 30))).a, 0, 'truncated: cut IPv6 header');
    assert.equal(t.send('c', err6(2, 0, ours, 'fd00::7')).a, 0, 'addressed elsewhere');
    assert.equal(t.send('c', err6(137, 0, ours)).a, 0, 'a redirect is not an error');
    assert.equal(t.hits().connections!.related, 5);
  });
});
