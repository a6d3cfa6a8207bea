// policy/guards.test.ts: DHCP guard, router guard, MAC spoofing guard, 802.1p trust and storm control on a switch
// with memory ports (the real Switch data path), counted by reason; the storm bucket on a manual clock.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import type { FilterExtension } from '../extensions/api.js';
import { BROADCAST, MAC_A, MAC_B, MAC_C, eth, rig, tagOf } from '../dataplane/switch.test-kit.js';
import { DEFAULT_POLICY, type PortPolicy } from './policy.js';
import { StormBucket, stormBurst } from './storm.js';
import { PortGuards, guardFrame } from './guards.js';
import { Batch, HEADROOM } from '../dataplane/frame.js';
import { prng } from '../../test/helpers/prng.js';

const pol = (o: Partial<PortPolicy>): PortPolicy => ({ ...DEFAULT_POLICY, ...o });

const dhcpOffer = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: BROADCAST }).ipv4({ src: '10.0.0.66', dst: '255.255.255.255' }).udp({ sport: 67, dport: 68 })
    .dhcp({ op: 2, messageType: 2, yiaddr: '10.0.0.50' }).bytes();
const dhcpDiscover = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: BROADCAST }).ipv4({ src: '0.0.0.0', dst: '255.255.255.255' }).udp({ sport: 68, dport: 67 })
    .dhcp({ op: 1, messageType: 1 }).bytes();
const dhcp6Advertise = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: 0x33_33_00_01_00_02 }).ipv6({ src: 'fe80::66', dst: 'ff02::1:2' }).udp({ sport: 547, dport: 546 })
    .payload(new Uint8Array([2, 0, 0, 1, 0, 0, 0, 0])).bytes();
const dhcp6Solicit = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: 0x33_33_00_01_00_02 }).ipv6({ src: 'fe80::66', dst: 'ff02::1:2' }).udp({ sport: 546, dport: 547 })
    .payload(new Uint8Array([1, 0, 0, 1, 0, 0, 0, 0])).bytes();
const ra = (src = MAC_A, ext = false): Uint8Array =>
  frame().eth({ src, dst: 0x33_33_00_00_00_01 }).ipv6({ src: 'fe80::1', dst: 'ff02::1', hopLimit: 255, ...(ext ? { ext: [{ type: 60 }] } : {}) })
    .icmpv6({ type: 134, code: 0 }).bytes();
const icmp6Redirect = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: MAC_B }).ipv6({ src: 'fe80::1', dst: 'fe80::2', hopLimit: 255 })
    .icmpv6({ type: 137, code: 0, target: 'fe80::3', destination: '2001:db8::1' }).bytes();
const icmpRedirect = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: MAC_B }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).icmp({ type: 5, code: 1, gateway: '10.0.0.66' }).bytes();
const echo = (src = MAC_A, dst = MAC_B): Uint8Array =>
  frame().eth({ src, dst }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).icmp({ type: 8, id: 1, seq: 1 }).bytes();
const ns = (src = MAC_A): Uint8Array =>
  frame().eth({ src, dst: 0x33_33_ff_00_00_02 }).ipv6({ src: 'fe80::1', dst: 'ff02::1:ff00:2', hopLimit: 255 })
    .icmpv6({ type: 135, code: 0, target: 'fe80::2' }).bytes();

describe('guards on the switch data path', () => {
  it('DHCP guard drops DHCPv4/v6 server messages from the port, counted dhcp-guard; client messages pass', () => {
    const r = rig({ a: { policy: pol({ dhcpGuard: true }) }, b: {}, c: {} });
    for (const f of [dhcpOffer(), dhcp6Advertise(), dhcpDiscover(), dhcp6Solicit()]) r.port.a!.inject(f);
    r.sw.poll();
    const got = r.port.b!.takeSent();
    assert.equal(got.length, 2, 'the two client messages are flooded');
    assert.equal(r.sw.portCounters(r.id.a!).drops['dhcp-guard'], 2);
    // the same offer from an unguarded port goes through
    r.port.c!.inject(dhcpOffer(MAC_C));
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, 1);
  });

  it('a DHCP relay forwarding a BOOTREQUEST (67 -> 67, op 1) is not a server message', () => {
    const r = rig({ a: { policy: pol({ dhcpGuard: true }) }, b: {} });
    r.port.a!.inject(frame().eth({ src: MAC_A, dst: MAC_B }).ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 67, dport: 67 }).dhcp({ op: 1, messageType: 1 }).bytes());
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, 1);
  });

  it('router guard drops RAs (also behind an extension header), ICMPv6 and ICMPv4 redirects; neighbour solicitation passes', () => {
    const r = rig({ a: { policy: pol({ routerGuard: true }) }, b: {} });
    for (const f of [ra(), ra(MAC_A, true), icmp6Redirect(), icmpRedirect(), ns(), echo()]) r.port.a!.inject(f);
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, 2, 'NS and echo pass');
    assert.equal(r.sw.portCounters(r.id.a!).drops['router-guard'], 4);
  });

  it('guards off (no policy) pass all of these', () => {
    const r = rig({ a: {}, b: {} });
    for (const f of [dhcpOffer(), dhcp6Advertise(), ra(), icmpRedirect()]) r.port.a!.inject(f);
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, 4);
  });

  it('MAC spoofing guard: only the port MAC is accepted, a spoofed source is dropped and never learned', () => {
    const r = rig({ a: { mac: MAC_A, policy: pol({ macSpoofing: false }) }, b: {}, c: {} });
    r.port.a!.inject(eth(BROADCAST, MAC_C, { mark: 1 })); // spoofing C
    r.port.a!.inject(eth(BROADCAST, MAC_A, { mark: 2 }));
    r.sw.poll();
    assert.deepEqual(r.port.b!.takeSent().map((f) => f[14]), [2]);
    assert.equal(r.sw.portCounters(r.id.a!).drops['mac-spoof'], 1);
    assert.equal(r.sw.macTable().some((e) => e.mac === MAC_C), false, 'spoofed MAC not learned');
    // live change: spoofing allowed again
    r.sw.updatePort(r.id.a!, { name: 'a', kind: 'vm', mac: MAC_A, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0, policy: pol({ macSpoofing: true }) });
    r.port.a!.inject(eth(BROADCAST, MAC_C, { mark: 3 }));
    r.sw.poll();
    assert.deepEqual(r.port.b!.takeSent().map((f) => f[14]), [3]);
  });

  it('trustPriority false resets the PCP to 0 (seen on a trunk), trusted ports keep it', () => {
    const r = rig({
      u: { vlan: { mode: 'trunk', allowed: [10] }, policy: pol({ trustPriority: false }) },
      t: { vlan: { mode: 'trunk', allowed: [10] } },
      o: { vlan: { mode: 'trunk', allowed: [10] } },
    });
    r.port.u!.inject(eth(BROADCAST, MAC_A, { vid: 10, pcp: 5 }));
    r.port.t!.inject(eth(BROADCAST, MAC_B, { vid: 10, pcp: 5 }));
    r.sw.poll();
    const got = r.port.o!.takeSent().map((f) => tagOf(f));
    assert.deepEqual(got, [{ vid: 10, pcp: 0 }, { vid: 10, pcp: 5 }]);
  });

  it('storm control: broadcast/multicast/unknown unicast over the limit dropped, known unicast not counted', () => {
    const r = rig({ a: { policy: pol({ stormLimit: 100 }) }, b: {} });
    const burst = stormBurst(100);
    // B becomes known
    r.port.b!.inject(eth(MAC_A, MAC_B));
    r.sw.poll();
    r.port.b!.takeSent();
    r.port.a!.takeSent();
    for (let k = 0; k < 50; k++) r.port.a!.inject(eth(BROADCAST, MAC_A));
    for (let k = 0; k < 50; k++) r.port.a!.inject(eth(MAC_B, MAC_A)); // known unicast: never limited
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, burst + 50);
    assert.equal(r.sw.portCounters(r.id.a!).drops['storm-control'], 50 - burst);
    // one second later: 100 more tokens, capped at the burst
    r.clock.advance(1000);
    for (let k = 0; k < 50; k++) r.port.a!.inject(eth(0x02_00_00_00_99_99, MAC_A)); // unknown unicast
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, burst);
    // the other port is not limited
    for (let k = 0; k < 50; k++) r.port.b!.inject(eth(BROADCAST, MAC_B));
    r.sw.poll();
    assert.equal(r.port.a!.takeSent().length, 50);
  });

  it('storm control holds a steady flood to its rate on the switch clock', () => {
    const r = rig({ a: { policy: pol({ stormLimit: 1000 }) }, b: { mem: { keepSent: false } } });
    // 10 s of a 5000 fps flood, 1 ms steps
    for (let ms = 0; ms < 10_000; ms++) {
      for (let k = 0; k < 5; k++) r.port.a!.inject(eth(BROADCAST, MAC_A));
      r.sw.poll();
      r.clock.advance(1);
    }
    const passed = r.port.b!.sentFrames;
    assert.ok(passed >= 10_000 && passed <= 10_000 + stormBurst(1000) + 1, `passed ${passed}`);
  });

  it('frames an extension originates as the switch bypass the guards; on behalf of the port they do not', () => {
    const r = rig({ a: { policy: pol({ dhcpGuard: true }) }, b: {} });
    const ext: FilterExtension = {
      kind: 'filter',
      name: 'inj',
      tick(ctx) {
        ctx.originate(dhcpOffer(), { as: 'switch' });
        ctx.originate(dhcpOffer(), { as: r.id.a! });
      },
    };
    r.sw.setExtensions([{ name: 'inj', enabled: true, extension: ext }]);
    r.sw.tick();
    assert.equal(r.port.b!.takeSent().length, 1);
    assert.equal(r.sw.portCounters(r.id.a!).drops['dhcp-guard'], 1);
  });
});

describe('guardFrame on hostile bytes', () => {
  it('50,000 random and truncated IPv4/IPv6/UDP/ICMP frames: a verdict or null, never a throw', () => {
    const rnd = prng(4);
    const g = new PortGuards({ ...DEFAULT_POLICY, dhcpGuard: true, routerGuard: true, macSpoofing: false, stormLimit: 1000, trustPriority: false }, MAC_A, null);
    const b = new Batch(1, 4096);
    const m = b.meta[0]!;
    const seeds = [dhcpOffer(), dhcp6Advertise(), ra(MAC_A, true), icmpRedirect(), icmp6Redirect()];
    let verdicts = 0;
    for (let n = 0; n < 50_000; n++) {
      const base = seeds[n % seeds.length]!;
      const len = 14 + Math.floor(rnd() * (base.length - 13));
      m.reset();
      m.off = HEADROOM;
      m.len = len;
      b.slab.set(base.subarray(0, len), m.off);
      // flip a few bytes past the MACs
      for (let k = 0; k < 3; k++) b.slab[m.off + 12 + Math.floor(rnd() * (len - 12))] = Math.floor(rnd() * 256);
      if (guardFrame(b.slab, m, g, null, true, n) !== null) verdicts++;
    }
    assert.ok(verdicts > 0);
  });
});

describe('StormBucket', () => {
  it('starts full, refills at the rate, caps at the burst, ignores a clock going backwards', () => {
    const s = new StormBucket(10);
    assert.equal(s.burst, 8);
    let n = 0;
    while (s.take(0)) n++;
    assert.equal(n, 8);
    assert.equal(s.take(99), false);
    assert.equal(s.take(100), true); // 0.1 s: one token
    assert.equal(s.take(50), false);
    let m = 0;
    while (s.take(100_000)) m++;
    assert.equal(m, 8);
  });
  it('burst is 100 ms of the rate, at least min(rate, 8)', () => {
    assert.equal(stormBurst(1), 1);
    assert.equal(stormBurst(50), 8);
    assert.equal(stormBurst(1000), 100);
  });
});
