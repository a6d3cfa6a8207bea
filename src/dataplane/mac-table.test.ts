// dataplane/mac-table.test.ts: the learning table against a Map model (random operations), aging, limits, flush,
// and a 100,000-MAC flood that leaves it at its limit, through the switch as well.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MacTable, learningDomain } from './mac-table.js';
import { BROADCAST, eth, rig } from './switch.test-kit.js';
import { NO_PORT, asPortId, type PortId } from './types.js';
import { prng } from '../../test/helpers/prng.js';


/** A random locally administered unicast MAC (group bit clear). */
const randMac = (r: () => number): number =>
  ((Math.floor(r() * 0x1_0000) & 0xfeff) | 0x0200) * 0x1_0000_0000 + Math.floor(r() * 0x1_0000_0000);

describe('MacTable', () => {
  it('matches a Map model under random learn / lookup / flush', () => {
    const r = prng(7);
    const t = new MacTable({ limit: 1000, limitPerPort: 1000, agingMs: 1e12 });
    const model = new Map<string, PortId>();
    const macs = Array.from({ length: 300 }, () => randMac(r));
    for (let step = 0; step < 50_000; step++) {
      const mac = macs[Math.floor(r() * macs.length)]!;
      const dom = Math.floor(r() * 3);
      const key = `${dom}/${mac}`;
      const op = r();
      if (op < 0.5) {
        const port = asPortId(Math.floor(r() * 6));
        t.learnMac(dom, mac, port, 0);
        model.set(key, port);
      } else if (op < 0.999) {
        assert.equal(t.lookupMac(dom, mac, 0), model.get(key) ?? NO_PORT, `step ${step}`);
      } else {
        const port = asPortId(Math.floor(r() * 6));
        t.flushPort(port);
        for (const [k, p] of model) if (p === port) model.delete(k);
      }
      assert.equal(t.size, model.size);
    }
  });

  it('ages entries by the clock passed in, and expire() frees their slots', () => {
    const t = new MacTable({ limit: 2, limitPerPort: 2, agingMs: 1000 });
    assert.equal(t.learnMac(1, 0xa, asPortId(1), 0), 'learned');
    assert.equal(t.learnMac(1, 0xb, asPortId(1), 500), 'learned');
    assert.equal(t.learnMac(1, 0xc, asPortId(1), 600), 'refused');
    assert.equal(t.lookupMac(1, 0xa, 1000), 1);
    assert.equal(t.lookupMac(1, 0xa, 1001), NO_PORT);
    assert.equal(t.expire(1600), 1);
    assert.equal(t.size, 0);
    assert.equal(t.learnMac(1, 0xc, asPortId(1), 1600), 'learned');
  });

  it('per-port limit: a new MAC over it is refused; a MAC moving onto a full port is forgotten', () => {
    const t = new MacTable({ limit: 100, limitPerPort: 2, agingMs: 1e9 });
    t.learnMac(0, 1, asPortId(0), 0);
    t.learnMac(0, 2, asPortId(0), 0);
    assert.equal(t.learnMac(0, 3, asPortId(0), 0), 'refused');
    t.setPortLimit(asPortId(0), 3);
    assert.equal(t.learnMac(0, 3, asPortId(0), 0), 'learned');
    t.learnMac(0, 9, asPortId(1), 0);
    t.learnMac(0, 8, asPortId(1), 0);
    assert.equal(t.learnMac(0, 1, asPortId(1), 0), 'refused');
    assert.equal(t.lookupMac(0, 1, 0), NO_PORT);
    assert.equal(t.portCount(asPortId(0)), 2, 'MAC 1 was forgotten');
    assert.equal(t.learnMac(0, 9, asPortId(0), 0), 'moved', 'port 0 has room again');
    assert.equal(t.portCount(asPortId(0)), 3);
    assert.equal(t.portCount(asPortId(1)), 1);
    assert.equal(t.learnMac(0, 8, asPortId(0), 0), 'refused', 'port 0 full: 8 forgotten rather than misdelivered');
    assert.equal(t.lookupMac(0, 8, 0), NO_PORT);
    assert.equal(t.portCount(asPortId(1)), 0);
  });

  it('VLAN and VSID learning domains never collide', () => {
    assert.notEqual(learningDomain(4095, 0), learningDomain(0, 1));
    const t = new MacTable({ limit: 10, limitPerPort: 10, agingMs: 1e9 });
    t.learnMac(learningDomain(5, 0), 0xab, asPortId(1), 0);
    t.learnMac(learningDomain(0, 5), 0xab, asPortId(2), 0);
    assert.equal(t.lookupMac(learningDomain(5, 0), 0xab, 0), 1);
    assert.equal(t.lookupMac(learningDomain(0, 5), 0xab, 0), 2);
  });

  it('100,000 random source MACs leave the table at its limit with flat memory', () => {
    const t = new MacTable({ limit: 4096, limitPerPort: 1 << 20, agingMs: 1e12 });
    const cap = t.capacity;
    const r = prng(1);
    let refused = 0;
    for (let i = 0; i < 100_000; i++) if (t.learnMac(0, randMac(r), asPortId(i % 4), i) === 'refused') refused++;
    assert.equal(t.size, 4096);
    assert.equal(refused, 100_000 - 4096);
    assert.equal(t.capacity, cap, 'no growth');
  });

  it('a MAC flood through the switch: table == switch limit, per-port limit enforced, frames still flooded', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, c: { macLimit: 10 } }, { macLimit: 1000, macLimitPerPort: 100_000 });
    const r = prng(3);
    for (let i = 0; i < 100_000; i++) {
      port.a!.inject(eth(BROADCAST, randMac(r)));
      if (i % 1000 === 999) {
        sw.poll();
        port.b!.takeSent();
        port.c!.takeSent();
      }
    }
    for (let i = 0; i < 50; i++) port.c!.inject(eth(BROADCAST, 0x0200_0000_1000 + i));
    sw.poll();
    const st = sw.macStats();
    assert.equal(st.size, 1000);
    assert.equal(sw.macTable().length, 1000);
    assert.equal(sw.frameTotals().forwarded, 100_050, 'frames with unlearned MACs are still forwarded');
    assert.equal(sw.macTable().filter((e) => e.port === id.c).length, 0, 'switch table already full');
    assert.ok(st.refused >= 99_000);
    assert.equal(port.b!.takeSent().length, 50);
  });
});
