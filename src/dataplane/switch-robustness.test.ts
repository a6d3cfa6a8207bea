// dataplane/switch-robustness.test.ts: 1,000,000 random and mutated frames (seeded) through an in-memory switch
// with every port kind, extensions that drop / clone / exclude / throw, and random offload metadata: nothing
// throws, and every frame that entered is accounted for (forwarded, dropped by a reason, or refused by every
// destination with that refusal counted).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CaptureExtension, FilterExtension } from '../extensions/api.js';
import { emitEthernet } from '../wire/ethernet.js';
import { IPPROTO_TCP, IPPROTO_UDP, emitIpv4 } from '../wire/ipv4.js';
import { DROP_REASON_LIST } from './drop.js';
import { rig } from './switch.test-kit.js';
import type { OffloadFields } from '../io/memory.js';
import { prng } from '../../test/helpers/prng.js';


describe('switch robustness', () => {
  it('1,000,000 random and mutated frames: no throw, every frame accounted for', () => {
    const r = prng(0x5eed);
    const ri = (n: number): number => Math.floor(r() * n);
    const mem = { keepSent: false };
    const { sw, port, clock } = rig(
      {
        none: { mem },
        acc10: { vlan: { mode: 'access', id: 10 }, mem },
        trunk: { vlan: { mode: 'trunk', allowed: [10, 20], native: 10 }, mem },
        bare: { vlan: { mode: 'trunk', allowed: [20, 30] }, mem },
        red: { vsid: 5001, mem },
        red2: { vsid: 5001, mem },
        up: { kind: 'external', mem },
        fat: { mem: { offload: true, keepSent: false } },
        small: { mtu: 1000, mem },
        down: { up: false, mem },
      },
      { macLimit: 256, macLimitPerPort: 64, macAgingMs: 5000 },
    );
    const names = Object.keys(port);
    const ids = names.map((n) => sw.portId(n)!);
    let copied = 0;
    const buf = new Uint8Array(64);
    const cap = {
      kind: 'capture',
      name: 'cap',
      observe(f) {
        for (let i = 0; i < f.count; i++) {
          copied += f.copyTo(i, buf, 0, f.byte(i, 14) & 0x1f, 64);
          copied += f.u32(i, f.length(i) - 4) >= 0 ? 0 : 1;
        }
      },
    } satisfies CaptureExtension;
    const fil = {
      kind: 'filter',
      name: 'fil',
      ingress(f, ctx) {
        for (let i = 0; i < f.count; i++) {
          const b = f.byte(i, 20);
          if (b === 0x42) f.drop(i);
          else if (b === 0x43) ctx.clone(f, i, { as: 'switch' });
          else if (b === 0x44) ctx.originate(new Uint8Array(ri(80)), { as: ids[ri(ids.length)]! });
          else if (b === 0x45 && f.byte(i, 21) === 0x45) throw new Error('fuzz fault');
          else if (b === 0x46) f.setLength(i, ri(3000));
          else if (b === 0x47) f.setVlan(i, ri(4096), ri(8));
        }
      },
      egress(f) {
        for (let i = 0; i < f.count; i++) if (f.byte(i, 22) === 0x11) f.excludeDestination(i, ri(4));
      },
    } satisfies FilterExtension;
    sw.setExtensions([
      { name: 'cap', extension: cap, enabled: true },
      { name: 'fil', extension: fil, enabled: true },
    ]);

    const macPool = Array.from({ length: 40 }, (_, k) => 0x0200_0000_0000 + k * 0x1_0001);
    macPool.push(0xffff_ffff_ffff, 0x0100_5e00_0001, 0);
    const valid = (): Uint8Array => {
      const tagged = r() < 0.3;
      const len = 60 + ri(1460);
      const f = new Uint8Array(len + (tagged ? 4 : 0));
      const tags = tagged ? [{ tpid: 0x8100, pcp: ri(8), dei: 0, vid: [0, 10, 20, 30, 40, 4095][ri(6)]! }] : [];
      let o = emitEthernet({ dst: macPool[ri(macPool.length)]!, src: macPool[ri(40)]!, tags, etherType: 0x0800 }, f, 0);
      const proto = r() < 0.5 ? IPPROTO_TCP : IPPROTO_UDP;
      o += emitIpv4({ src: 0x0a000001 + ri(10), dst: 0x0a000001 + ri(10), protocol: proto, totalLength: f.length - o }, f, o);
      const x = ri(256);
      for (let k = o; k < f.length; k++) f[k] = k < o + 16 ? ri(256) : (k ^ x) & 0xff;
      return f;
    };
    const mutate = (f0: Uint8Array): Uint8Array => {
      let f = f0;
      const kind = ri(8);
      if (kind === 0) f = f.subarray(0, ri(f.length + 1)); // truncated
      else if (kind === 1) for (let k = 1 + ri(8); k > 0; k--) f[ri(f.length)] = ri(256);
      else if (kind === 2) {
        const tag = Uint8Array.of(...[[0x81, 0], [0x88, 0xa8], [0x91, 0]][ri(3)]!, ri(256), ri(256));
        const g = new Uint8Array(f.length + 4);
        g.set(f.subarray(0, 12));
        g.set(tag, 12);
        g.set(f.subarray(12), 16);
        f = g;
      } else if (kind === 3) f = new Uint8Array(ri(20)); // small
      else if (kind === 4) {
        f = new Uint8Array(1400 + ri(9000)); // large (oversize, or refused by the port)
        f.set(f0.subarray(0, Math.min(f0.length, f.length)));
      } else if (kind === 5) {
        f = new Uint8Array(ri(2000));
        for (let k = 0; k < f.length; k++) f[k] = k < 64 ? ri(256) : (k * 7) & 0xff;
      }
      return f;
    };
    const offloadMeta = (): Partial<OffloadFields> => ({
      gsoType: [0, 0, 1, 3, 4, 5, 0x81, ri(256)][ri(8)]!,
      gsoSize: ri(3) === 0 ? 0 : ri(2000),
      hdrLen: ri(200),
      needsCsum: r() < 0.5,
      csumStart: ri(3) === 0 ? 34 : ri(3000),
      csumOffset: [6, 16, ri(100)][ri(3)]!,
    });

    const TOTAL = 1_000_000;
    let accepted = 0;
    let refusedByPort = 0;
    for (let n = 0; n < TOTAL; ) {
      for (let k = 0; k < 1000 && n < TOTAL; k++, n++) {
        const which = ri(names.length);
        const p = port[names[which]!]!;
        const f = r() < 0.5 ? valid() : mutate(valid());
        const ok = p.offload ? p.inject(f, offloadMeta()) : p.inject(f);
        if (ok) accepted++;
        else refusedByPort++;
      }
      sw.poll();
      if (n % 50_000 === 0) {
        clock.advance(1000 + ri(5000));
        sw.tick();
      }
    }
    sw.poll();
    const t = sw.frameTotals();
    const c = sw.switchCounters();
    assert.equal(t.received, accepted, 'every accepted frame was received');
    const rxErrors = names.map((nm) => port[nm]!.stats.rxErrors).reduce((a, b) => a + b, 0);
    assert.equal(rxErrors, refusedByPort, 'the rest was refused by the port (longer than it carries), counted there');
    assert.equal(t.received + t.injected, t.forwarded + t.dropped + t.undelivered, 'every frame ends one way');
    // port-down is counted both for a frame (its only destinations are down) and per destination (trusted frames)
    const frameDrops = DROP_REASON_LIST.filter((x) => !['tx-full', 'tx-error', 'gso-unsupported', 'egress-oversize', 'inject-invalid', 'inject-queue-full'].includes(x))
      .map((x) => c.drops[x] ?? 0)
      .reduce((a, b) => a + b, 0);
    assert.ok(frameDrops >= t.dropped && frameDrops - (c.drops['port-down'] ?? 0) <= t.dropped, 'frame drops counted by reason');
    const perDest = (c.drops['tx-full'] ?? 0) + (c.drops['tx-error'] ?? 0) + (c.drops['gso-unsupported'] ?? 0) + (c.drops['egress-oversize'] ?? 0);
    assert.ok(t.undelivered <= perDest, 'an undelivered frame has its refusals counted');
    assert.ok(t.forwarded > 100_000 && t.dropped > 100_000, JSON.stringify(t));
    assert.ok(sw.macStats().size <= 256);
    assert.ok(copied > 0);
    // the fuzz reached the interesting paths
    for (const reason of ['runt', 'truncated', 'oversize', 'bad-src-mac', 'qinq-not-allowed', 'vlan-not-allowed', 'vlan-tagged-on-access', 'extension-drop', 'hairpin', 'port-down-rx', 'extension-fault', 'gso-unsupported', 'egress-oversize'] as const) {
      assert.ok((c.drops[reason] ?? 0) > 0, `no ${reason} drop: ${JSON.stringify(c.drops)}`);
    }
    console.log(JSON.stringify({ accepted, refusedByPort, totals: t, drops: c.drops, ext: sw.extensions().map((e) => [e.name, e.faults, e.disabledReason]) }));
  });
});
