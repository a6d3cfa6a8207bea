// virtualization/gro.test.ts: receive coalescing of decapsulated TCP/IPv4 segments on memory batches: every merge
// rule and flush condition, checksums (a bad one is never merged), the super-frame's bytes against the concatenation
// of the segments, segmentFrame giving the segments back byte for byte, and no allocation per batch.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batch, GSO_NONE, GSO_TCPV4, GSO_UDP_L4, HEADROOM, slotSizeFor } from '../dataplane/frame.js';
import { completeChecksum, segmentFrame } from '../dataplane/offload.js';
import { measureAllocation } from '../../test/fixtures/virtualization/kit.js';
import { be16, be32, payload, put16, put32, refSum } from '../../test/helpers/bytes.js';
import { GRO_MAX_FLOWS, Gro } from './gro.js';

const ETH = 14;

interface SegOpts {
  seq: number;
  pay: Uint8Array;
  id?: number;
  flags?: number;
  ack?: number;
  win?: number;
  tos?: number;
  ttl?: number;
  df?: boolean;
  mf?: boolean;
  src?: number;
  dst?: number;
  sport?: number;
  dport?: number;
  tsval?: number;
  dstMac?: number;
  srcMac?: number;
  ipOptions?: boolean;
  badTcpCsum?: boolean;
  badIpCsum?: boolean;
  /** TCP options bytes (default: NOP NOP timestamps). */
  noOptions?: boolean;
}

/** Ethernet + IPv4 + TCP (NOP NOP TS, 12 bytes of options) + payload, checksums right unless told otherwise. */
function seg(o: SegOpts): Uint8Array {
  const ihl = o.ipOptions ? 24 : 20;
  const thl = o.noOptions ? 20 : 32;
  const f = new Uint8Array(ETH + ihl + thl + o.pay.length);
  const dm = o.dstMac ?? 0x020000000006;
  const sm = o.srcMac ?? 0x020000000005;
  put16(f, 0, Math.floor(dm / 2 ** 32));
  put32(f, 2, dm % 2 ** 32);
  put16(f, 6, Math.floor(sm / 2 ** 32));
  put32(f, 8, sm % 2 ** 32);
  put16(f, 12, 0x0800);
  const l3 = ETH;
  f[l3] = 0x40 | (ihl / 4);
  f[l3 + 1] = o.tos ?? 0;
  put16(f, l3 + 2, ihl + thl + o.pay.length);
  put16(f, l3 + 4, o.id ?? 100);
  f[l3 + 6] = (o.df ?? true ? 0x40 : 0) | (o.mf ? 0x20 : 0);
  f[l3 + 8] = o.ttl ?? 64;
  f[l3 + 9] = 6;
  put32(f, l3 + 12, o.src ?? 0x0a000005);
  put32(f, l3 + 16, o.dst ?? 0x0a000006);
  if (o.ipOptions) f.set([1, 1, 1, 0], l3 + 20);
  put16(f, l3 + 10, ~refSum(f, l3, l3 + ihl) & 0xffff);
  if (o.badIpCsum) f[l3 + 11] = f[l3 + 11]! ^ 0x10;
  const l4 = l3 + ihl;
  put16(f, l4, o.sport ?? 40000);
  put16(f, l4 + 2, o.dport ?? 5201);
  put32(f, l4 + 4, o.seq >>> 0);
  put32(f, l4 + 8, o.ack ?? 0x11223344);
  f[l4 + 12] = (thl / 4) << 4;
  f[l4 + 13] = o.flags ?? 0x10;
  put16(f, l4 + 14, o.win ?? 502);
  if (!o.noOptions) {
    f.set([1, 1, 8, 10], l4 + 20);
    put32(f, l4 + 24, o.tsval ?? 1000);
    put32(f, l4 + 28, 2000);
  }
  f.set(o.pay, l4 + thl);
  const tl = thl + o.pay.length;
  const ps = refSum(f, l3 + 12, l3 + 20) + 6 + tl;
  put16(f, l4 + 16, ~refSum(f, l4, l4 + tl, ps) & 0xffff);
  if (o.badTcpCsum) f[l4 + 16] = f[l4 + 16]! ^ 0x01;
  return f;
}

/** A run of n contiguous segments of `mss` bytes (the last `last` bytes if given), IDs incrementing. */
function run(n: number, mss: number, opt: Partial<SegOpts> & { last?: number; seq0?: number; id0?: number } = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  let seq = opt.seq0 ?? 0xfffff000; // wraps inside the run
  for (let k = 0; k < n; k++) {
    const len = k === n - 1 && opt.last !== undefined ? opt.last : mss;
    out.push(seg({ ...opt, seq, pay: payload(len, seq), id: ((opt.id0 ?? 0xfffe) + k) & 0xffff }));
    seq = (seq + len) >>> 0;
  }
  return out;
}

/** A batch (64 KB slots unless told) holding the frames as decap leaves them: inner frame, vsid, l3Off 14. */
function batchOf(frames: readonly Uint8Array[], slotFrame = 65600, vsid = 5001): Batch {
  const b = new Batch(Math.max(frames.length, 1), slotSizeFor(slotFrame));
  frames.forEach((f, i) => loadSlot(b, i, f, vsid));
  b.count = frames.length;
  return b;
}
function loadSlot(b: Batch, i: number, f: Uint8Array, vsid: number): void {
  const m = b.meta[i]!;
  m.reset();
  // an NVGRE packet's inner frame starts 42 bytes into the slot's frame
  m.off = b.slotStart(i) + HEADROOM + 42;
  m.len = f.length;
  b.slab.set(f, m.off);
  m.vsid = vsid;
  m.etherType = be16(f, 12);
  m.l3Off = 14;
  m.dstMac = 0x020000000006;
  m.srcMac = 0x020000000005;
}
const bytes = (b: Batch, i: number): Uint8Array => b.slab.slice(b.meta[i]!.off, b.meta[i]!.off + b.meta[i]!.len);

/** What run() left: per frame index, how many segments it stands for (0 = merged away). */
function shape(b: Batch): number[] {
  const r: number[] = [];
  for (let i = 0; i < b.count; i++) {
    const m = b.meta[i]!;
    if (m.consumed) r.push(0);
    else if (m.gsoType === GSO_NONE) r.push(1);
    else r.push(Math.ceil((m.len - m.hdrLen) / m.gsoSize));
  }
  return r;
}

/** Check super-frame i of b against segments segs: bytes, meta, and segmentFrame giving them back. */
function checkSuper(b: Batch, i: number, segs: readonly Uint8Array[]): void {
  const m = b.meta[i]!;
  const first = segs[0]!;
  const thl = (first[ETH + 20 + 12]! >>> 4) * 4;
  const hdr = ETH + 20 + thl;
  assert.equal(m.gsoType, GSO_TCPV4);
  assert.equal(m.gsoSize, first.length - hdr);
  assert.equal(m.hdrLen, hdr);
  assert.equal(m.needsCsum, true);
  assert.equal(m.csumStart, ETH + 20);
  assert.equal(m.csumOffset, 16);
  const got = bytes(b, i);
  // payload: the concatenation
  let total = 0;
  for (const s of segs) total += s.length - hdr;
  assert.equal(got.length, hdr + total);
  let at = hdr;
  for (const s of segs) {
    assert.deepEqual(got.subarray(at, at + s.length - hdr), s.subarray(hdr));
    at += s.length - hdr;
  }
  // headers: the first segment's but IP total length and checksum, PSH of the last, TCP checksum = pseudo sum
  const l3 = ETH;
  const l4 = l3 + 20;
  assert.equal(be16(got, l3 + 2), 20 + thl + total);
  assert.equal(refSum(got, l3, l3 + 20), 0xffff, 'IPv4 header checksum');
  const lastFlags = segs[segs.length - 1]![l4 + 13]!;
  assert.equal(got[l4 + 13], first[l4 + 13]! | (lastFlags & 0x08));
  assert.equal(be16(got, l4 + 16), refSum(got, l3 + 12, l3 + 20, 6 + thl + total), 'pseudo-header seed');
  for (let k = 0; k < hdr; k++) {
    if ((k >= l3 + 2 && k < l3 + 4) || (k >= l3 + 10 && k < l3 + 12) || k === l4 + 13 || k === l4 + 16 || k === l4 + 17) continue;
    assert.equal(got[k], first[k], `header byte ${k}`);
  }
  // completing the checksum gives a valid TCP checksum over the whole
  const c = new Batch(1, slotSizeFor(70000));
  const cm = c.meta[0]!;
  cm.copyFrom(m);
  cm.off = HEADROOM;
  c.slab.set(got, HEADROOM);
  completeChecksum(c.slab, cm);
  assert.equal(refSum(c.slab, HEADROOM + l4, HEADROOM + got.length, refSum(got, l3 + 12, l3 + 20, 6 + thl + total)), 0xffff);
  // segmentFrame: the original segments, byte for byte
  const out = new Batch(64, slotSizeFor(16384));
  const n = segmentFrame(b, i, out, 0, 64);
  assert.equal(n, segs.length);
  for (let k = 0; k < n; k++) assert.deepEqual(bytes(out, k), segs[k], `segment ${k}`);
}

function gro(frames: readonly Uint8Array[], slotFrame?: number): { b: Batch; merged: number; g: Gro } {
  const b = batchOf(frames, slotFrame);
  const g = new Gro();
  const merged = g.run(b, 0, b.count);
  return { b, merged, g };
}

describe('gro: merging', () => {
  for (const mss of [1448, 1406, 1401, 1403]) {
    it(`merges a run of MSS ${mss} segments with a smaller last one; bytes and segmentation round-trip`, () => {
      const segs = run(8, mss, { last: 1000 });
      const { b, merged, g } = gro(segs);
      assert.equal(merged, 7);
      assert.deepEqual(shape(b), [8, 0, 0, 0, 0, 0, 0, 0]);
      checkSuper(b, 0, segs);
      assert.equal(g.superFrames, 1);
      assert.equal(g.segments, 8);
    });
  }

  it('keeps merging across a batch of full segments; PSH on the last is kept on the super-frame', () => {
    const segs = run(6, 1448);
    segs[5] = run(6, 1448, { flags: 0x18 })[5]!;
    const { b } = gro(segs);
    assert.deepEqual(shape(b), [6, 0, 0, 0, 0, 0]);
    checkSuper(b, 0, segs);
  });

  it('PSH ends the run: it is merged, the next segment starts a new super-frame', () => {
    const segs = run(6, 1448);
    segs[2] = run(6, 1448, { flags: 0x18 })[2]!;
    const { b } = gro(segs);
    assert.deepEqual(shape(b), [3, 0, 0, 3, 0, 0]);
    checkSuper(b, 0, segs.slice(0, 3));
    checkSuper(b, 3, segs.slice(3));
  });

  it('a smaller segment ends the run; a larger one than the MSS is not merged', () => {
    const a = run(3, 1448, { last: 700 });
    const more = run(2, 1448, { seq0: (be32(a[2]!, 38) + 700) >>> 0, id0: 1 });
    const { b } = gro([...a, ...more]);
    assert.deepEqual(shape(b), [3, 0, 0, 2, 0]);
    checkSuper(b, 0, a);
    const big = [seg({ seq: 1, pay: payload(1000, 1) }), seg({ seq: 1001, pay: payload(1448, 2), id: 101 })];
    assert.deepEqual(shape(gro(big).b), [1, 1]);
  });

  it('end of the batch flushes: nothing is held for the next batch', () => {
    const segs = run(6, 1448);
    const g = new Gro();
    const b1 = batchOf(segs.slice(0, 3));
    const b2 = batchOf(segs.slice(3));
    g.run(b1, 0, 3);
    assert.deepEqual(shape(b1), [3, 0, 0]);
    checkSuper(b1, 0, segs.slice(0, 3)); // complete before the next batch
    g.run(b2, 0, 3);
    assert.deepEqual(shape(b2), [3, 0, 0]);
    assert.equal(g.superFrames, 2);
    assert.equal(g.segments, 6);
  });

  it('interleaved flows merge separately (up to GRO_MAX_FLOWS at once)', () => {
    const a = run(4, 1448, { sport: 1000 });
    const c = run(4, 1448, { sport: 2000 });
    const frames: Uint8Array[] = [];
    for (let k = 0; k < 4; k++) frames.push(a[k]!, c[k]!);
    const { b } = gro(frames);
    assert.deepEqual(shape(b), [4, 4, 0, 0, 0, 0, 0, 0]);
    checkSuper(b, 0, a);
    checkSuper(b, 1, c);
    // GRO_MAX_FLOWS flows round-robin: all merge; two more: the oldest open flow is flushed for a new one, nothing
    // is lost
    for (const flows of [GRO_MAX_FLOWS, GRO_MAX_FLOWS + 2]) {
      const many: Uint8Array[][] = [];
      for (let f = 0; f < flows; f++) many.push(run(3, 1448, { sport: 3000 + f }));
      const mixed: Uint8Array[] = [];
      for (let k = 0; k < 3; k++) for (const r of many) mixed.push(r[k]!);
      const res = gro(mixed);
      const s = shape(res.b);
      assert.equal(s.reduce((x, y) => x + y, 0), mixed.length);
      if (flows === GRO_MAX_FLOWS) {
        assert.equal(res.merged, 2 * flows);
        for (let f = 0; f < flows; f++) checkSuper(res.b, f, many[f]!);
      }
    }
  });

  it('a fixed IP ID merges with DF, not without; an ID out of step does not merge', () => {
    const fixed = run(3, 1448).map((f) => {
      const c = f.slice();
      put16(c, ETH + 4, 7);
      put16(c, ETH + 10, 0);
      put16(c, ETH + 10, ~refSum(c, ETH, ETH + 20) & 0xffff);
      return c;
    });
    assert.deepEqual(shape(gro(fixed).b), [3, 0, 0]);
    const noDf = run(3, 1448, { df: false }).map((f) => {
      const c = f.slice();
      put16(c, ETH + 4, 7);
      put16(c, ETH + 10, 0);
      put16(c, ETH + 10, ~refSum(c, ETH, ETH + 20) & 0xffff);
      return c;
    });
    assert.deepEqual(shape(gro(noDf).b), [1, 1, 1]);
    assert.deepEqual(shape(gro(run(3, 1448, { df: false })).b), [3, 0, 0], 'incrementing without DF');
    const jump = run(3, 1448);
    jump[2] = seg({ seq: be32(jump[2]!, 38), pay: jump[2]!.subarray(66), id: 500 });
    assert.deepEqual(shape(gro(jump).b), [2, 0, 1]);
  });
});

describe('gro: what does not merge', () => {
  const base = (): Uint8Array[] => run(3, 1448);
  /** Segment 2 of a 3-segment run rebuilt with one field changed: 1 and 2 must stay apart. */
  const variants: [string, Partial<SegOpts>][] = [
    ['another destination MAC', { dstMac: 0x020000000009 }],
    ['another source MAC', { srcMac: 0x020000000009 }],
    ['another TOS', { tos: 4 }],
    ['another TTL', { ttl: 63 }],
    ['DF differs', { df: false }],
    ['another source IP', { src: 0x0a000007 }],
    ['another destination IP', { dst: 0x0a000007 }],
    ['another source port', { sport: 40001 }],
    ['another destination port', { dport: 5202 }],
    ['another ACK number', { ack: 0x11223345 }],
    ['another window', { win: 503 }],
    ['another timestamp (options differ)', { tsval: 1001 }],
    ['no options', { noOptions: true }],
    ['IPv4 options', { ipOptions: true }],
    ['a fragment (MF)', { mf: true }],
    ['FIN', { flags: 0x11 }],
    ['SYN', { flags: 0x12 }],
    ['RST', { flags: 0x14 }],
    ['URG', { flags: 0x30 }],
    ['ECE', { flags: 0x50 }],
    ['CWR', { flags: 0x90 }],
    ['no ACK', { flags: 0x00 }],
    ['a bad TCP checksum', { badTcpCsum: true }],
    ['a bad IPv4 header checksum', { badIpCsum: true }],
  ];
  for (const [name, o] of variants) {
    it(`segment 2 with ${name}`, () => {
      const segs = base();
      const s2 = segs[1]!;
      const thl = (s2[ETH + 20 + 12]! >>> 4) * 4;
      segs[1] = seg({ seq: be32(s2, ETH + 24), pay: s2.subarray(ETH + 20 + thl), id: be16(s2, ETH + 4), ...o });
      const { b } = gro(segs);
      const s = shape(b);
      assert.equal(s[0], 1, 'segment 1 stays plain');
      assert.equal(s[1], 1, 'segment 2 is not merged');
      assert.deepEqual(bytes(b, 0), segs[0], 'segment 1 untouched');
      assert.deepEqual(bytes(b, 1), segs[1], 'segment 2 untouched');
    });
  }

  it('a sequence gap', () => {
    const segs = base();
    const s2 = segs[1]!;
    segs[1] = seg({ seq: be32(s2, ETH + 24) + 1, pay: s2.subarray(66), id: be16(s2, ETH + 4) });
    assert.deepEqual(shape(gro(segs).b).slice(0, 2), [1, 1]);
  });

  it('a bad checksum on the first segment: it passes alone, the next ones merge', () => {
    const segs = run(4, 1448);
    segs[0]![ETH + 20 + 16] = segs[0]![ETH + 20 + 16]! ^ 0x40;
    const { b } = gro(segs);
    assert.deepEqual(shape(b), [1, 3, 0, 0]);
    checkSuper(b, 1, segs.slice(1));
  });

  it('a bad checksum in the middle is not merged and ends the run', () => {
    const segs = run(5, 1448);
    segs[2]![ETH + 20 + 40] = segs[2]![ETH + 20 + 40]! ^ 0x01; // a payload byte
    const { b, merged } = gro(segs);
    assert.deepEqual(shape(b).slice(0, 3), [2, 0, 1]);
    assert.deepEqual(bytes(b, 2), segs[2]);
    checkSuper(b, 0, segs.slice(0, 2));
    assert.ok(merged >= 1);
  });

  it('DATA_VALID from the back end: not verified (merged even with a wrong checksum field)', () => {
    const segs = run(3, 1448);
    segs[1]![ETH + 20 + 16] = segs[1]![ETH + 20 + 16]! ^ 0x40;
    const b = batchOf(segs);
    for (let i = 0; i < 3; i++) b.meta[i]!.dataValid = true;
    new Gro().run(b, 0, 3);
    assert.deepEqual(shape(b), [3, 0, 0]);
  });

  it('DATA_VALID and CHECKSUM_PARTIAL segments: the payload is moved whole (odd sizes, every alignment)', () => {
    for (const pay of [1448, 1447, 1001]) {
      for (const mark of ['dataValid', 'partial'] as const) {
        const segs = run(4, pay);
        const b = batchOf(segs);
        for (let i = 0; i < 4; i++) {
          const m = b.meta[i]!;
          if (mark === 'dataValid') m.dataValid = true;
          else {
            m.needsCsum = true;
            m.csumStart = ETH + 20;
            m.csumOffset = 16;
          }
        }
        new Gro().run(b, 0, 4);
        assert.deepEqual(shape(b), [4, 0, 0, 0], `${mark} ${pay}`);
        checkSuper(b, 0, segs);
      }
    }
  });

  it('a pure ACK of the flow in between ends the run (the segments after it start the next one)', () => {
    const segs = run(4, 1448);
    const ackOnly = seg({ seq: be32(segs[2]!, ETH + 24), pay: new Uint8Array(0), id: 9 });
    const { b } = gro([segs[0]!, segs[1]!, ackOnly, segs[2]!, segs[3]!]);
    assert.deepEqual(shape(b), [2, 0, 1, 2, 0]);
  });

  it('a frame of the flow with IPv4 options or fragmented in between ends the run (nothing overtakes it)', () => {
    for (const o of [{ ipOptions: true }, { mf: true }] as Partial<SegOpts>[]) {
      const segs = run(4, 1448);
      const s3 = segs[2]!;
      const odd = seg({ seq: be32(s3, ETH + 24), pay: s3.subarray(66), id: 9, ...o });
      const { b } = gro([segs[0]!, segs[1]!, odd, s3, segs[3]!]);
      assert.deepEqual(shape(b), [2, 0, 1, 2, 0]);
    }
  });

  it('frames not from the tunnel (vsid 0), another VSID, a GSO frame or a dropped one are left alone', () => {
    const segs = run(3, 1448);
    const b = batchOf(segs);
    for (let i = 0; i < 3; i++) b.meta[i]!.vsid = 0;
    new Gro().run(b, 0, 3);
    assert.deepEqual(shape(b), [1, 1, 1]);
    const c = batchOf(segs);
    c.meta[1]!.vsid = 5002;
    new Gro().run(c, 0, 3);
    assert.deepEqual(shape(c), [1, 1, 1], 'another VSID is another flow; segment 3 does not continue segment 1');
    const d = batchOf(segs);
    d.meta[1]!.gsoType = GSO_UDP_L4;
    d.meta[1]!.gsoSize = 1000;
    new Gro().run(d, 0, 3);
    assert.equal(d.meta[0]!.gsoType, GSO_NONE);
    assert.equal(d.meta[1]!.consumed, false);
    const e = batchOf(segs);
    e.meta[1]!.drop = 'hairpin';
    new Gro().run(e, 0, 3);
    assert.equal(e.meta[1]!.consumed, false);
  });

  it('slot room: 2 KB slots never merge; 8 KB slots merge as many as fit', () => {
    const segs = run(10, 1448);
    assert.equal(gro(segs, 2048).merged, 0);
    const { b } = gro(segs, 8192);
    const s = shape(b);
    assert.ok(s[0]! >= 2 && s[0]! <= Math.floor((8192 - 66) / 1448) + 1, `first super-frame ${s[0]}`);
    assert.equal(s.reduce((x, y) => x + y, 0), 10);
    let at = 0;
    for (let i = 0; i < 10; i++) {
      if (s[i] === 0) continue;
      if (s[i]! > 1) checkSuper(b, i, segs.slice(at, at + s[i]!));
      at += s[i]!;
    }
  });

  it('IP total length stays <= 65535', () => {
    const segs = run(50, 1448);
    const { b } = gro(segs);
    const s = shape(b);
    assert.equal(s.reduce((x, y) => x + y, 0), 50);
    assert.ok(s[0]! < 50);
    let at = 0;
    for (let i = 0; i < 50; i++) {
      if (s[i] === 0) continue;
      assert.ok(be16(bytes(b, i), ETH + 2) <= 65535);
      if (s[i]! > 1) checkSuper(b, i, segs.slice(at, at + s[i]!));
      at += s[i]!;
    }
  });
});

describe('gro: cost', () => {
  it('allocates nothing per batch', () => {
    const segs = [...run(6, 1448, { sport: 1 }), ...run(6, 1406, { sport: 2, last: 999 })];
    const b = batchOf(segs);
    const g = new Gro();
    const reload = (): void => {
      for (let i = 0; i < segs.length; i++) loadSlot(b, i, segs[i]!, 5001);
    };
    const r = measureAllocation(() => {
      reload();
      g.run(b, 0, segs.length);
    }, 5_000, 3_000);
    assert.deepEqual(shape(b), [6, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0]);
    assert.equal(r.gcs, 0, `${r.gcs} GCs`);
    assert.ok(r.newSpaceBytes < 4096, `${r.newSpaceBytes} bytes`);
  });
});
