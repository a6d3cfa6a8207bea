// policy/classifier.test.ts: the tuple-space classifier agrees with a linear scan on random rules and keys (seeded),
// range splitting covers exactly the range, and the extended-ACL compiler agrees with a direct rule evaluator.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prng } from '../../test/helpers/prng.js';
import { type ClassifierEntry, linearLookup, NO_MATCH, rangeToMasks, TupleClassifier } from './classifier.js';
import { DIR_IN, DIR_OUT } from './acl.js';
import { EXT_KEY_WIDTH, type ExtendedAclSpec, ExtendedAclTable, extKey, parsePortRange } from './extended-acl.js';
import { Flow, PROTO_TCP, PROTO_UDP } from './flow.js';

describe('rangeToMasks', () => {
  it('covers exactly [lo, hi] with disjoint aligned blocks', () => {
    const rnd = prng(7);
    for (let t = 0; t < 200; t++) {
      let lo = Math.floor(rnd() * 65536);
      let hi = Math.floor(rnd() * 65536);
      if (t % 3 === 0) hi = Math.min(65535, lo + Math.floor(rnd() * 300));
      if (lo > hi) [lo, hi] = [hi, lo];
      const blocks = rangeToMasks(lo, hi);
      assert.ok(blocks.length <= 30, `${blocks.length} blocks for ${lo}-${hi}`);
      let covered = 0;
      for (const b of blocks) covered += ((~b.mask) & 0xffff) + 1;
      assert.equal(covered, hi - lo + 1);
      for (const p of [lo, hi, Math.floor((lo + hi) / 2), lo - 1, hi + 1]) {
        if (p < 0 || p > 65535) continue;
        const inside = blocks.some((b) => ((p & b.mask) >>> 0) === b.value);
        assert.equal(inside, p >= lo && p <= hi, `port ${p} in ${lo}-${hi}`);
      }
    }
    assert.deepEqual(rangeToMasks(0, 65535), [{ value: 0, mask: 0xffff0000 & 0 }]);
  });
});

describe('TupleClassifier', () => {
  it('returns what a linear scan returns on 2,000 random rules x 5,000 keys (seed 1234)', () => {
    const rnd = prng(1234);
    const W = 4;
    const entries: ClassifierEntry[] = [];
    const lens = [0, 8, 16, 24, 32];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    // a small value space so keys actually hit rules
    const word = (): number => (Math.floor(rnd() * 4) << 24) | (Math.floor(rnd() * 4) << 16) | (Math.floor(rnd() * 4) << 8) | Math.floor(rnd() * 4);
    for (let id = 0; id < 2000; id++) {
      const value: number[] = [];
      const mask: number[] = [];
      for (let i = 0; i < W; i++) {
        const l = pick(lens);
        value.push(word() >>> 0);
        mask.push(l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0);
      }
      entries.push({ value, mask, priority: Math.floor(rnd() * 1e9) * 4096 + id, id });
    }
    const c = new TupleClassifier(W);
    c.setRules(entries);
    const key = new Uint32Array(W);
    let hits = 0;
    for (let t = 0; t < 5000; t++) {
      for (let i = 0; i < W; i++) key[i] = word() >>> 0;
      const want = linearLookup(entries, key);
      assert.equal(c.lookup(key), want, `key ${Array.from(key).join(',')}`);
      if (want !== NO_MATCH) hits++;
    }
    assert.ok(hits > 500, `only ${hits} keys matched a rule: the test would prove little`);
    assert.ok(c.tupleCount <= 5 ** W);
  });
});

/** Direct evaluation of extended rules on a flow, the reference for the compiled table. */
function refExtended(rules: readonly ExtendedAclSpec[], f: Flow, dir: number): number {
  let best = NO_MATCH;
  let bestW = -1;
  rules.forEach((r, i) => {
    if (r.direction !== 'both' && (r.direction === 'out') !== (dir === DIR_OUT)) return;
    const local = dir === DIR_OUT ? f.src[0]! : f.dst[0]!;
    const remote = dir === DIR_OUT ? f.dst[0]! : f.src[0]!;
    const lport = dir === DIR_OUT ? f.sport : f.dport;
    const rport = dir === DIR_OUT ? f.dport : f.sport;
    const inPrefix = (p: string | undefined, a: number): boolean => {
      if (p === undefined) return true;
      const [ip, len] = p.split('/');
      const n = ip!.split('.').reduce((x, o) => x * 256 + Number(o), 0);
      const m = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
      return ((a & m) >>> 0) === ((n & m) >>> 0);
    };
    const inRange = (p: number | string | undefined, x: number): boolean => {
      if (p === undefined) return true;
      const rr = parsePortRange(p) as [number, number];
      return x >= rr[0] && x <= rr[1];
    };
    const proto = r.protocol === undefined ? -1 : r.protocol === 'tcp' ? PROTO_TCP : r.protocol === 'udp' ? PROTO_UDP : r.protocol === 'icmp' ? 1 : r.protocol;
    if (proto !== -1 && proto !== f.proto) return;
    if (!inPrefix(r.localAddress, local) || !inPrefix(r.remoteAddress, remote)) return;
    if (!inRange(r.localPort, lport) || !inRange(r.remotePort, rport)) return;
    if (r.weight > bestW) {
      bestW = r.weight;
      best = i;
    }
  });
  return best;
}

describe('checkExtendedAcls expansion bound', () => {
  it('refuses rules whose port ranges expand past the classifier limit, once, at the rule that crosses it', async () => {
    const { checkExtendedAcls, MAX_CLASSIFIER_ENTRIES } = await import('./extended-acl.js');
    // 1-65534 splits into 30 blocks: 30 x 30 x 2 (both) = 1800 entries per rule
    const rules = Array.from({ length: 600 }, (_, i) => ({ direction: 'both', action: 'deny', weight: i + 1, protocol: 'tcp', localPort: '1-65534', remotePort: '1-65534' }));
    const r = checkExtendedAcls(rules, 'x');
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors.slice(0, 3)));
    assert.equal(r.errors[0]!.path, `x[${Math.floor(MAX_CLASSIFIER_ENTRIES / 1800)}]`);
    assert.match(r.errors[0]!.message, /classifier entries/);
  });
});

describe('ExtendedAclTable', () => {
  it('agrees with a direct evaluation of 3,000 random rules on 20,000 random flows (seed 99)', () => {
    const rnd = prng(99);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const addr = (): number => ((10 << 24) | (Math.floor(rnd() * 2) << 16) | (Math.floor(rnd() * 4) << 8) | Math.floor(rnd() * 8)) >>> 0;
    const text = (a: number, len: number): string => {
      const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      const n = (a & m) >>> 0;
      return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
    };
    const rules: ExtendedAclSpec[] = [];
    const weights = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      let w = 1 + Math.floor(rnd() * 1_000_000);
      while (weights.has(w)) w = 1 + Math.floor(rnd() * 1_000_000);
      weights.add(w);
      const protocol = pick([undefined, 'tcp', 'udp', 'tcp', 'udp'] as const);
      const r: { -readonly [K in keyof ExtendedAclSpec]: ExtendedAclSpec[K] } = { direction: pick(['in', 'out', 'both'] as const), action: pick(['allow', 'deny'] as const), weight: w };
      if (protocol !== undefined) r.protocol = protocol;
      if (rnd() < 0.6) r.localAddress = text(addr(), pick([8, 16, 24, 29, 32]));
      if (rnd() < 0.6) r.remoteAddress = text(addr(), pick([8, 16, 24, 29, 32]));
      if (protocol !== undefined && rnd() < 0.5) {
        const lo = Math.floor(rnd() * 100);
        r.remotePort = rnd() < 0.5 ? lo : `${lo}-${lo + Math.floor(rnd() * 40)}`;
      }
      if (protocol !== undefined && rnd() < 0.3) r.localPort = Math.floor(rnd() * 100);
      rules.push(r);
    }
    const t = new ExtendedAclTable(rules);
    const f = new Flow();
    const key = new Uint32Array(EXT_KEY_WIDTH);
    let matched = 0;
    for (let n = 0; n < 20_000; n++) {
      f.family = 4;
      f.proto = pick([PROTO_TCP, PROTO_UDP, 1]);
      f.src[0] = addr();
      f.dst[0] = addr();
      f.sport = f.proto === 1 ? 0 : Math.floor(rnd() * 120);
      f.dport = f.proto === 1 ? 0 : Math.floor(rnd() * 120);
      for (const dir of [DIR_IN, DIR_OUT]) {
        extKey(f, dir, key);
        const want = refExtended(rules, f, dir);
        assert.equal(t.lookup(key, dir), want, `flow ${n} dir ${dir}`);
        if (want !== NO_MATCH) matched++;
      }
    }
    assert.ok(matched > 2000, `only ${matched} matches`);
    const [ti, to] = t.tupleCounts();
    console.log(JSON.stringify({ rules: rules.length, tuplesIn: ti, tuplesOut: to }));
  });
});
