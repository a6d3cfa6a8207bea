// policy/conntrack.test.ts: the connection table against a Map model under random creates, lookups and expiry
// (backward-shift deletion keeps every entry findable), the bound (counted refusal), and the TCP state machine.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prng } from '../../test/helpers/prng.js';
import { CT_CLOSED, CT_CLOSING, CT_ESTABLISHED, CT_KEY_WIDTH, CT_SYN_SENT, ConnTrack } from './conntrack.js';
import { DIR_IN, DIR_OUT } from './acl.js';
import { Flow, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './flow.js';

function udpFlow(): Flow {
  const f = new Flow();
  f.family = 4;
  f.proto = PROTO_UDP;
  f.l4 = true;
  return f;
}

function keyOf(n: number): Uint32Array {
  const k = new Uint32Array(CT_KEY_WIDTH);
  k[0] = 4;
  k[1] = PROTO_UDP;
  k[2] = 0x0a000001;
  k[6] = 0x0a000000 + (n >>> 8);
  k[10] = 1000 + (n & 0xff);
  k[11] = 53;
  return k;
}

describe('ConnTrack', () => {
  it('matches a Map model under 50,000 random operations with expiry (seed 5)', () => {
    const rnd = prng(5);
    const ct = new ConnTrack(1024);
    const f = udpFlow();
    const model = new Map<number, number>(); // n -> expires
    let now = 0;
    for (let op = 0; op < 50_000; op++) {
      now += Math.floor(rnd() * 3);
      const n = Math.floor(rnd() * 3000);
      const k = keyOf(n);
      const exp = model.get(n);
      const live = exp !== undefined && now < exp;
      if (exp !== undefined && !live) model.delete(n);
      const s = ct.find(k, now);
      assert.equal(s >= 0, live, `op ${op} key ${n}`);
      if (live) {
        ct.update(s, f, DIR_OUT, now);
        model.set(n, now + 500);
      } else if (rnd() < 0.7) {
        // the model drops expired entries lazily too: count live ones for the bound
        for (const [m, e] of model) if (now >= e) model.delete(m);
        const r = ct.create(k, f, DIR_OUT, 0, 500, now);
        if (model.size >= 1024) assert.equal(r, -1);
        else {
          assert.ok(r >= 0);
          model.set(n, now + 500);
        }
      }
      if (op % 1000 === 0) ct.expire(now);
    }
    assert.ok(ct.stats.expired > 1000, `${ct.stats.expired} expired`);
  });

  it('is bounded: a full table refuses new connections and counts them', () => {
    const ct = new ConnTrack(100);
    const f = udpFlow();
    for (let n = 0; n < 150; n++) ct.create(keyOf(n), f, DIR_OUT, 0, 10_000, 0);
    assert.equal(ct.size, 100);
    assert.equal(ct.stats.refused, 50);
    assert.equal(ct.find(keyOf(120), 0), -1);
    assert.ok(ct.find(keyOf(99), 0) >= 0);
  });

  it('TCP: SYN -> SYN_SENT (30 s cap) -> SYN+ACK established (idle) -> FIN closing (10 s) -> RST closed (2 s)', () => {
    const ct = new ConnTrack(16);
    const f = new Flow();
    f.family = 4;
    f.proto = PROTO_TCP;
    f.l4 = true;
    const k = keyOf(1);
    k[1] = PROTO_TCP;
    f.tcpFlags = TCP_SYN;
    const s = ct.create(k, f, DIR_OUT, 0, 60_000, 0);
    assert.equal(ct.stateOf(s), CT_SYN_SENT);
    assert.equal(ct.find(k, 30_000), -1, 'a SYN_SENT entry lives 30 s, not the 60 s idle timeout');
    const s2 = ct.create(k, f, DIR_OUT, 0, 60_000, 0);
    f.tcpFlags = TCP_SYN | TCP_ACK;
    ct.update(s2, f, DIR_OUT, 1);
    assert.equal(ct.stateOf(s2), CT_SYN_SENT, 'SYN+ACK from the originator does not establish');
    ct.update(s2, f, DIR_IN, 1);
    assert.equal(ct.stateOf(s2), CT_ESTABLISHED);
    assert.ok(ct.find(k, 59_000) >= 0, 'established: the idle timeout');
    f.tcpFlags = TCP_FIN | TCP_ACK;
    ct.update(ct.find(k, 59_000), f, DIR_IN, 59_000);
    assert.equal(ct.stateOf(ct.find(k, 59_000)), CT_CLOSING);
    assert.equal(ct.find(k, 69_001), -1, 'closing: 10 s');
    const s3 = ct.create(k, f, DIR_OUT, 0, 60_000, 0); // picked up mid-stream (ACK): established
    assert.equal(ct.stateOf(s3), CT_ESTABLISHED);
    f.tcpFlags = TCP_RST;
    ct.update(s3, f, DIR_IN, 0);
    assert.equal(ct.stateOf(s3), CT_CLOSED);
    assert.equal(ct.find(k, 2000), -1, 'closed: 2 s');
    assert.equal(ct.create(k, f, DIR_OUT, 0, 60_000, 0), -1, 'a RST opens nothing');
  });
});
