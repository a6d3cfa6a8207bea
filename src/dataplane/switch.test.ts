// dataplane/switch.test.ts: the Switch on memory ports: learning, flooding, aging, VLANs, VSIDs, drops by reason,
// tx refusals, software offload towards a port without virtio-net header, event-loop operation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checksumValid, pseudoSumIpv4 } from '../wire/checksum.js';
import { frame } from '../../test/helpers/frame-builder.js';
import { IPPROTO_TCP } from '../wire/ipv4.js';
import { GSO_TCPV4 } from './frame.js';
import { BROADCAST, MAC_A, MAC_B, MAC_C, MAC_D, eth, getGc, markOf, rig, tagOf } from './switch.test-kit.js';
import { minutes, seconds } from './types.js';
import type { ForwardingExtension } from '../extensions/api.js';

describe('switch: removed ports', () => {
  it('a removed port is not kept alive by the switch (its state, back end and rx slab can be collected)', async () => {
    const gc = getGc();
    const r = rig({ a: {}, b: {}, c: {} });
    r.port.a!.inject(eth(BROADCAST, MAC_A));
    r.sw.poll(); // the flood sends to b and c
    assert.equal(r.port.c!.takeSent().length, 1);
    const ref = new WeakRef(r.port.c!);
    r.sw.removePort(r.id.c!);
    delete r.port.c;
    await new Promise((res) => setImmediate(res)); // a WeakRef keeps its target until the job ends
    gc();
    gc();
    assert.equal(ref.deref(), undefined, 'the switch still references the removed port');
    r.port.a!.inject(eth(BROADCAST, MAC_A));
    r.sw.poll();
    assert.equal(r.port.b!.takeSent().length, 2, 'forwarding goes on');
  });
});

describe('switch: egress MTU', () => {
  it("a frame longer than a destination port's MTU is not sent there and counted; other destinations get it", () => {
    const jumboPort = { mtu: 9000, mem: { maxFrameBytes: 9018 } };
    const { sw, port, id } = rig({ a: jumboPort, b: {}, c: jumboPort });
    const jumbo = eth(BROADCAST, MAC_A, { len: 4000, mark: 1 });
    port.a!.inject(jumbo);
    sw.poll();
    assert.deepEqual(port.c!.takeSent(), [jumbo]);
    assert.equal(port.b!.takeSent().length, 0);
    assert.equal(sw.portCounters(id.b!).drops['egress-oversize'], 1);
    port.b!.inject(eth(MAC_A, MAC_B, { len: 1514 }));
    sw.poll();
    assert.equal(port.a!.takeSent().length, 1);
    port.a!.inject(eth(MAC_B, MAC_A, { len: 1514, mark: 2 })); // exactly the MTU: delivered
    port.a!.inject(eth(MAC_B, MAC_A, { len: 1515, mark: 3 }));
    sw.poll();
    assert.deepEqual(port.b!.takeSent().map(markOf), [2]);
    assert.equal(sw.portCounters(id.b!).drops['egress-oversize'], 2);
    assert.equal(sw.portCounters(id.a!).drops['egress-oversize'] ?? 0, 0);
  });
});

describe('switch: learning and flooding', () => {
  it('floods unknown unicast, learns, then forwards unicast only to the learned port', () => {
    const { sw, port } = rig({ a: {}, b: {}, c: {} });
    port.a!.inject(eth(MAC_B, MAC_A, { mark: 1 }));
    assert.equal(sw.poll(), 1);
    assert.equal(port.b!.takeSent().length, 1);
    assert.equal(port.c!.takeSent().length, 1);
    assert.equal(port.a!.takeSent().length, 0, 'never back to the input port');
    port.b!.inject(eth(MAC_A, MAC_B, { mark: 2 }));
    sw.poll();
    const toA = port.a!.takeSent();
    assert.equal(toA.length, 1);
    assert.equal(markOf(toA[0]!), 2);
    assert.equal(port.c!.takeSent().length, 0, 'A is known: no flood');
    const t = sw.frameTotals();
    assert.equal(t.received, 2);
    assert.equal(t.forwarded, 2);
    assert.equal(sw.portCounters(sw.portId('a')!).txFrames, 1);
    assert.equal(sw.portCounters(sw.portId('a')!).rxFrames, 1);
  });

  it('broadcast goes to every other port; bytes arrive unchanged', () => {
    const { sw, port } = rig({ a: {}, b: {}, c: {}, d: {} });
    const f = eth(BROADCAST, MAC_A, { len: 100, mark: 7 });
    port.a!.inject(f);
    sw.poll();
    for (const n of ['b', 'c', 'd']) assert.deepEqual(port[n]!.takeSent(), [f]);
    assert.equal(port.a!.takeSent().length, 0);
  });

  it('ages MAC entries out on the injected clock (no sleep)', () => {
    const { sw, port, clock } = rig({ a: {}, b: {}, c: {} }, { macAgingMs: minutes(5) });
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    port.b!.takeSent();
    port.c!.takeSent();
    assert.equal(sw.macTable().length, 1);
    clock.advance(minutes(4));
    port.b!.inject(eth(MAC_A, MAC_B));
    sw.poll();
    assert.equal(port.c!.takeSent().length, 0, 'A still known after 4 min');
    assert.equal(port.a!.takeSent().length, 1);
    clock.advance(minutes(6));
    sw.poll();
    assert.deepEqual(
      sw.macTable().map((e) => e.mac),
      [],
      'both entries aged out',
    );
    port.b!.inject(eth(MAC_A, MAC_B));
    sw.poll();
    assert.equal(port.c!.takeSent().length, 1, 'A unknown again: flooded');
  });

  it('a MAC moving to another port is updated; unicast to the input port is a hairpin drop', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, c: {} });
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    port.c!.inject(eth(BROADCAST, MAC_A)); // A moved to c
    sw.poll();
    assert.equal(sw.macTable()[0]!.port, id.c);
    assert.equal(sw.macStats().moves, 1);
    for (const n of ['a', 'b', 'c']) port[n]!.takeSent();
    port.c!.inject(eth(MAC_A, MAC_C)); // to A, which lives on c itself
    sw.poll();
    assert.equal(sw.portCounters(id.c!).drops.hairpin, 1);
    assert.equal(port.a!.takeSent().length + port.b!.takeSent().length, 0);
  });

  it('a port update keeps its learned MACs unless VLAN, VSID, MAC, state or limit changed', () => {
    const { sw, port, id } = rig({ a: {}, b: {} });
    port.b!.inject(eth(BROADCAST, MAC_B));
    sw.poll();
    const base = { name: 'b', kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0 } as const;
    sw.updatePort(id.b!, { ...base, acls: [{ direction: 'in', action: 'deny', remote: '10.9.0.0/16' }] });
    assert.deepEqual(sw.macTable().map((e) => e.mac), [MAC_B], 'an ACL change keeps the MAC');
    sw.updatePort(id.b!, { ...base, vlan: { mode: 'access', id: 10 } });
    assert.equal(sw.macTable().length, 0, 'a VLAN change flushes it');
  });

  it('removing a port flushes its MACs; a down port gets nothing and unicast to it drops port-down', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, c: {} });
    port.b!.inject(eth(BROADCAST, MAC_B));
    port.c!.inject(eth(BROADCAST, MAC_C));
    sw.poll();
    assert.equal(sw.macTable().length, 2);
    sw.updatePort(id.a!, { name: 'a', kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0 });
    sw.removePort(id.c!);
    assert.deepEqual(
      sw.macTable().map((e) => e.mac),
      [MAC_B],
    );
    assert.equal(sw.portId('c'), undefined);
    const gen = sw.generation;
    sw.updatePort(id.b!, { name: 'b', kind: 'vm', mac: null, vlan: { mode: 'none' }, vsid: 0, up: false, macLimit: 0 });
    assert.ok(sw.generation > gen);
    port.b!.takeSent();
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 0, 'down port is not flooded');
    assert.equal(sw.portCounters(id.a!).drops['no-destination'], 1);
    const fwd = {
      kind: 'forwarding',
      name: 'to-b',
      forward(f) {
        for (let i = 0; i < f.count; i++) f.addDestination(i, id.b!);
      },
    } satisfies ForwardingExtension;
    sw.setExtensions([{ name: 'to-b', extension: fwd, enabled: true }]);
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 0);
    assert.equal(sw.portCounters(id.a!).drops['port-down'], 1);
  });
});

describe('switch: VLANs', () => {
  const ports = {
    acc10: { vlan: { mode: 'access' as const, id: 10 } },
    acc10b: { vlan: { mode: 'access' as const, id: 10 } },
    acc20: { vlan: { mode: 'access' as const, id: 20 } },
    trunk: { vlan: { mode: 'trunk' as const, allowed: [10, 20], native: 10 } },
    bare: { vlan: { mode: 'trunk' as const, allowed: [20, 30] } },
  };

  it('access -> trunk native goes untagged, other VLAN tagged with the PCP; trunk -> access untagged', () => {
    const { sw, port } = rig(ports);
    port.acc10!.inject(eth(BROADCAST, MAC_A, { mark: 1 }));
    sw.poll();
    assert.equal(tagOf(port.trunk!.takeSent()[0]!), null, 'native VLAN 10: untagged on the trunk');
    assert.equal(port.acc10b!.takeSent().length, 1);
    assert.equal(port.acc20!.takeSent().length, 0, 'other VLAN isolated');
    assert.equal(port.bare!.takeSent().length, 0, 'VLAN 10 not allowed on bare');

    port.acc20!.inject(eth(BROADCAST, MAC_B, { mark: 2 }));
    sw.poll();
    const t = port.trunk!.takeSent();
    assert.deepEqual(tagOf(t[0]!), { vid: 20, pcp: 0 });
    assert.equal(markOf(t[0]!), 2);
    assert.deepEqual(tagOf(port.bare!.takeSent()[0]!), { vid: 20, pcp: 0 });
    assert.equal(port.acc10!.takeSent().length, 0);

    // trunk ingress: tagged 20 with PCP 5 -> access 20 untagged; the bytes equal the untagged original
    const tagged = eth(MAC_B, MAC_C, { vid: 20, pcp: 5, mark: 3, len: 64 });
    port.trunk!.inject(tagged);
    sw.poll();
    const toB = port.acc20!.takeSent();
    assert.equal(toB.length, 1);
    assert.equal(tagOf(toB[0]!), null);
    assert.deepEqual(toB[0], eth(MAC_B, MAC_C, { mark: 3, len: 60 }));
    // the same frame flooded to bare goes out with its tag and PCP restored
    port.trunk!.inject(eth(BROADCAST, MAC_C, { vid: 20, pcp: 5, mark: 4 }));
    sw.poll();
    const toBare = port.bare!.takeSent();
    assert.deepEqual(tagOf(toBare[0]!), { vid: 20, pcp: 5 });
    assert.deepEqual(toBare[0], eth(BROADCAST, MAC_C, { vid: 20, pcp: 5, mark: 4 }));
    assert.equal(tagOf(port.acc20!.takeSent()[0]!), null);
  });

  it('untagged on a trunk goes to the native VLAN; a priority tag on an access port keeps its PCP', () => {
    const { sw, port } = rig(ports);
    port.trunk!.inject(eth(BROADCAST, MAC_C, { mark: 5 }));
    sw.poll();
    assert.equal(port.acc10!.takeSent().length, 1);
    assert.equal(port.acc20!.takeSent().length, 0);
    port.acc20!.inject(eth(BROADCAST, MAC_B, { vid: 0, pcp: 6, mark: 6 }));
    sw.poll();
    assert.deepEqual(tagOf(port.trunk!.takeSent()[0]!), { vid: 20, pcp: 6 });
    assert.deepEqual(tagOf(port.bare!.takeSent()[0]!), { vid: 20, pcp: 6 });
  });

  it('drops tagged-on-access, not-allowed, untagged without native, and QinQ by reason', () => {
    const { sw, port, id } = rig(ports);
    port.acc10!.inject(eth(BROADCAST, MAC_A, { vid: 10 }));
    port.trunk!.inject(eth(BROADCAST, MAC_C, { vid: 30 }));
    port.bare!.inject(eth(BROADCAST, MAC_D));
    port.bare!.inject(eth(BROADCAST, MAC_D, { vid: 20, innerVid: 5 }));
    port.bare!.inject(eth(BROADCAST, MAC_D, { vid: 20, tpid: 0x88a8 }));
    port.bare!.inject(eth(BROADCAST, MAC_D, { vid: 20, len: 17 }));
    sw.poll();
    assert.deepEqual(sw.portCounters(id.acc10!).drops, { 'vlan-tagged-on-access': 1 });
    assert.deepEqual(sw.portCounters(id.trunk!).drops, { 'vlan-not-allowed': 1 });
    assert.deepEqual(sw.portCounters(id.bare!).drops, { 'vlan-not-allowed': 1, 'qinq-not-allowed': 2, truncated: 1 });
    assert.equal(sw.frameTotals().forwarded, 0);
    assert.equal(sw.switchCounters().drops['qinq-not-allowed'], 2);
  });

  it("mode 'none' carries any VLAN through with its tag (trunk of all, native 0)", () => {
    const { sw, port } = rig({ x: {}, y: {}, t: { vlan: { mode: 'trunk', allowed: [7] } } });
    port.x!.inject(eth(BROADCAST, MAC_A, { vid: 7, pcp: 3, mark: 9 }));
    sw.poll();
    assert.deepEqual(tagOf(port.y!.takeSent()[0]!), { vid: 7, pcp: 3 });
    assert.deepEqual(tagOf(port.t!.takeSent()[0]!), { vid: 7, pcp: 3 });
    port.x!.inject(eth(BROADCAST, MAC_A, { mark: 9 }));
    sw.poll();
    assert.equal(tagOf(port.y!.takeSent()[0]!), null);
    assert.equal(port.t!.takeSent().length, 0, 'VLAN 0 is not on the trunk');
  });

  it('a forwarding extension can ask for preserveVlan / preservePriority per destination', () => {
    const { sw, port, id } = rig(ports);
    const fwd = {
      kind: 'forwarding',
      name: 'pv',
      forward(f) {
        for (let i = 0; i < f.count; i++) {
          f.addDestination(i, id.acc10!, { preserveVlan: true });
          f.addDestination(i, id.acc10b!, { preservePriority: true });
          f.addDestination(i, id.trunk!, {});
        }
      },
    } satisfies ForwardingExtension;
    sw.setExtensions([{ name: 'pv', extension: fwd, enabled: true }]);
    port.acc20!.inject(eth(MAC_A, MAC_B, { vid: 0, pcp: 4 }));
    sw.poll();
    assert.deepEqual(tagOf(port.acc10!.takeSent()[0]!), { vid: 20, pcp: 4 });
    assert.deepEqual(tagOf(port.acc10b!.takeSent()[0]!), { vid: 0, pcp: 4 });
    assert.deepEqual(tagOf(port.trunk!.takeSent()[0]!), { vid: 20, pcp: 4 });
  });
});

describe('switch: ingress checks', () => {
  it('runt, bad source MAC and oversize are dropped and counted per port and reason', () => {
    const { sw, port, id } = rig({ a: { mtu: 1000 }, b: {} });
    port.a!.inject(new Uint8Array(13));
    port.a!.inject(eth(MAC_B, BROADCAST));
    port.a!.inject(eth(MAC_B, 0));
    port.a!.inject(eth(MAC_B, 0x01_00_5e_00_00_01));
    port.a!.inject(eth(MAC_B, MAC_A, { len: 1015 }));
    port.a!.inject(eth(MAC_B, MAC_A, { len: 1014, mark: 1 }));
    port.a!.inject(eth(MAC_B, MAC_A, { len: 1018, vid: 0, mark: 2 })); // 1014 once the priority tag is out
    sw.poll();
    assert.deepEqual(sw.portCounters(id.a!).drops, { runt: 1, 'bad-src-mac': 3, oversize: 1 });
    assert.deepEqual(
      port.b!.takeSent().map((f) => f.length),
      [1014, 1014],
    );
    const t = sw.frameTotals();
    assert.equal(t.received, 7);
    assert.equal(t.dropped + t.forwarded, 7);
    assert.equal(sw.switchCounters().rxFrames, 7);
  });
});

describe('switch: VSID isolation', () => {
  it('floods stay in the VSID (plus the external port); a forced cross-VSID destination drops vsid-mismatch', () => {
    const { sw, port, id } = rig({ r1: { vsid: 5001 }, r2: { vsid: 5001 }, b1: { vsid: 6001 }, up: { kind: 'external' } });
    port.r1!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(port.r2!.takeSent().length, 1);
    assert.equal(port.up!.takeSent().length, 1);
    assert.equal(port.b1!.takeSent().length, 0);
    // same MAC in two VSIDs: separate learning domains
    port.b1!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.deepEqual(
      sw
        .macTable()
        .map((e) => e.vsid)
        .sort(),
      [5001, 6001],
    );
    const fwd = {
      kind: 'forwarding',
      name: 'leak',
      forward(f) {
        for (let i = 0; i < f.count; i++) f.addDestination(i, id.b1!);
      },
    } satisfies ForwardingExtension;
    sw.setExtensions([{ name: 'leak', extension: fwd, enabled: true }]);
    port.r1!.inject(eth(MAC_A, MAC_B));
    sw.poll();
    assert.equal(port.b1!.takeSent().length, 0);
    assert.equal(sw.portCounters(id.r1!).drops['vsid-mismatch'], 1);
  });
});

describe('switch: tx', () => {
  it('frames a port refuses are counted tx-full; the other destinations still get them', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, c: {} });
    port.b!.refuseAfter(1);
    port.a!.inject(eth(BROADCAST, MAC_A));
    port.a!.inject(eth(BROADCAST, MAC_A));
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 1);
    assert.equal(port.c!.takeSent().length, 3);
    assert.equal(sw.portCounters(id.b!).drops['tx-full'], 2);
    assert.equal(sw.frameTotals().forwarded, 3);
    port.c!.refuseAfter(0);
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(sw.frameTotals().undelivered, 1, 'every destination refused it');
  });

  it('segments a TCP GSO super-frame and completes checksums for a port without offload', () => {
    const { sw, port } = rig({ vm: { mem: { offload: true } }, plain: {}, fat: { mem: { offload: true } } });
    const mss = 1000;
    const payload = 3500;
    const f = frame()
      .eth({ dst: MAC_B, src: MAC_A })
      .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', df: true })
      .tcp({ sport: 1000, dport: 2000, seq: 1, ack: 1, flags: 'PA' })
      .payload(payload)
      .bytes();
    const len = f.length;
    // NEEDS_CSUM form: the TCP checksum field holds the folded pseudo-header sum
    const ps = pseudoSumIpv4(0x0a000001, 0x0a000002, IPPROTO_TCP, 20 + payload);
    f[34 + 16] = ps >>> 8;
    f[34 + 17] = ps & 0xff;
    port.vm!.inject(f, { gsoType: GSO_TCPV4, gsoSize: mss, hdrLen: 54, needsCsum: true, csumStart: 34, csumOffset: 16 });
    sw.poll();
    const segs = port.plain!.takeSent();
    assert.deepEqual(
      segs.map((s) => s.length),
      [1054, 1054, 1054, 554],
    );
    for (const s of segs) {
      const tcpLen = s.length - 34;
      assert.ok(checksumValid(s, 14, 20), 'IPv4 header checksum');
      assert.ok(checksumValid(s, 34, tcpLen, pseudoSumIpv4(0x0a000001, 0x0a000002, IPPROTO_TCP, tcpLen)), 'TCP checksum');
    }
    const big = port.fat!.takeSentWithMeta();
    assert.equal(big.length, 1, 'the offload port gets the super-frame as is');
    assert.equal(big[0]!.bytes.length, len);
    assert.equal(big[0]!.meta.gsoType, GSO_TCPV4);
  });
});

describe('switch: event loop', () => {
  it('a busy port yields after its budget: another port is served while it still has frames queued', async () => {
    const { sw, port, id } = rig({ a: { mem: { keepSent: false } }, b: {}, c: { mem: { keepSent: false } } });
    let aPendingWhenB = -1;
    sw.setExtensions([
      {
        name: 'watch',
        enabled: true,
        extension: {
          kind: 'capture',
          name: 'watch',
          observe(f, dir) {
            if (dir === 'ingress' && f.inPort(0) === id.b) aPendingWhenB = port.a!.pending;
          },
        },
      },
    ]);
    sw.start();
    try {
      for (let i = 0; i < 64 * 40; i++) port.a!.inject(eth(MAC_C, MAC_A));
      port.b!.inject(eth(MAC_C, MAC_B));
      const deadline = Date.now() + seconds(5);
      while ((aPendingWhenB < 0 || port.a!.pending > 0) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      assert.ok(aPendingWhenB > 0, `b was served only after a drained (${aPendingWhenB} pending)`);
      assert.equal(port.a!.pending, 0);
    } finally {
      sw.close();
    }
  });

  it('start() forwards injected frames from the event loop, stop() ends it', async () => {
    const { sw, port } = rig({ a: {}, b: {} });
    sw.start();
    try {
      for (let i = 0; i < 2000; i++) port.a!.inject(eth(MAC_B, MAC_A));
      const deadline = Date.now() + seconds(5);
      let got = 0;
      while (got < 2000 && Date.now() < deadline) {
        await new Promise((r) => setImmediate(r));
        got += port.b!.takeSent().length;
      }
      assert.equal(got, 2000);
    } finally {
      sw.stop();
    }
    port.a!.inject(eth(MAC_B, MAC_A));
    await new Promise((r) => setImmediate(r));
    assert.equal(port.b!.takeSent().length, 0, 'stopped');
    sw.close();
  });
});

describe('switch: event-loop service', () => {
  it('reads a VM port it just sent to before returning: an answer already queued goes out in the same wake-up', async () => {
    const { sw, port } = rig({ a: {}, b: {} });
    const a = port.a!;
    const b = port.b!;
    // b answers like a VM kernel: the reply is queued before the send returns
    const send = b.send.bind(b);
    b.send = (batch, idx, count) => {
      const n = send(batch, idx, count);
      for (let k = 0; k < n; k++) b.inject(eth(MAC_A, MAC_B, { mark: 9 }));
      return n;
    };
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    sw.start();
    try {
      a.inject(eth(MAC_B, MAC_A, { mark: 1 })); // learn A, flood to b, b answers (learn B)
      for (let k = 0; k < 5; k++) await turn();
      a.takeSent();
      b.takeSent();
      a.inject(eth(MAC_B, MAC_A, { mark: 2 }));
      // one turn: a's wake-up has run; b's own wake-up (scheduled by its inject) has not
      await turn();
      assert.equal(b.takeSent().length, 1, 'the request reached b');
      assert.deepEqual(a.takeSent().map(markOf), [9], 'the answer came back in the same wake-up');
      assert.equal(b.pending, 0);
    } finally {
      sw.close();
    }
  });
});
