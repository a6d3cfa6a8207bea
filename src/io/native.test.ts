// io/native.test.ts: the addon's batch calls and polling on a FIFO (no root: the read()/write() path TAP fds take),
// its bounds checks, and the virtio-net header reader/writer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameMeta, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_UDP_TUNNEL_IPV4, GSO_UDP_TUNNEL_IPV6 } from '../dataplane/frame.js';
import { EAGAIN, loadNative, parseVnetHdr, writeVnetHdr, type XsNet } from './native.js';

const nat = loadNative();
const skip = 'error' in nat ? nat.error : false;

function withFifo(fn: (x: XsNet, fd: number) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const x = nat as XsNet;
    const dir = mkdtempSync(join(tmpdir(), 'xsnet-'));
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', [path]);
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      await fn(x, fd);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'sendBatch/recvBatch move frames through a read()/write() fd, into caller-owned slots',
  { skip },
  withFifo((x, fd) => {
    const slab = new Uint8Array(4096);
    const offs = Uint32Array.of(100, 600);
    const lens = Uint32Array.of(3, 5);
    slab.set([1, 2, 3], 100);
    slab.set([4, 5, 6, 7, 8], 600);
    assert.equal(x.sendBatch(fd, slab, offs, lens, 2), 2);
    // A FIFO is a byte stream: one read takes both "frames"; a TAP or socket keeps them apart.
    const roffs = Uint32Array.of(1000, 2000);
    const caps = Uint32Array.of(64, 64);
    const rlens = new Uint32Array(2);
    const tcis = Int32Array.of(7, 7);
    assert.equal(x.recvBatch(fd, slab.buffer, roffs, caps, rlens, tcis, 2), 1);
    assert.equal(rlens[0], 8);
    assert.equal(tcis[0], -1, 'no tag outside AF_PACKET');
    assert.deepEqual([...slab.subarray(1000, 1008)], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(x.recvBatch(fd, slab, roffs, caps, rlens, tcis, 2), 0, 'nothing pending is 0, not an error');
  }),
);

test(
  'the addon refuses slots outside the slab and bad arguments with -errno, never a throw',
  { skip },
  withFifo((x, fd) => {
    const slab = new Uint8Array(1024);
    const lens = new Uint32Array(1);
    const tcis = new Int32Array(1);
    assert.equal(x.recvBatch(fd, slab, Uint32Array.of(1000), Uint32Array.of(64), lens, tcis, 1), -14, 'EFAULT');
    assert.equal(x.sendBatch(fd, slab, Uint32Array.of(1020), Uint32Array.of(8), 1), -14, 'EFAULT');
    assert.equal(x.recvBatch(fd, slab, Uint32Array.of(0), Uint32Array.of(64), lens, tcis, 2), -22, 'max > arrays');
    const bad = x.recvBatch as unknown as (...a: unknown[]) => number;
    assert.equal(bad(fd, 'nope', 1, 2, 3, 4, 5), -22);
    assert.ok(x.openTap('a-name-longer-than-15', true) < 0);
    assert.ok(x.ifindex('xsno-such-if') < 0);
  }),
);

test(
  'pollStart calls back from the event loop (not inside the call), pollStop ends it',
  { skip },
  withFifo(async (x, fd) => {
    const slab = new Uint8Array(256);
    let calls = 0;
    const h = x.pollStart(fd, () => {
      calls++;
      // Drain, so level-triggered readiness ends.
      const lens = new Uint32Array(4);
      x.recvBatch(fd, slab, Uint32Array.of(0, 64, 128, 192), Uint32Array.of(64, 64, 64, 64), lens, new Int32Array(4), 4);
    });
    assert.notEqual(typeof h, 'number');
    x.sendBatch(fd, Uint8Array.of(9, 9), Uint32Array.of(0), Uint32Array.of(2), 1);
    assert.equal(calls, 0, 'no call from inside sendBatch or pollStart');
    const end = performance.now() + 2000;
    while (calls === 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
    assert.ok(calls >= 1, 'callback ran');
    assert.equal(x.pollStop(h as Exclude<typeof h, number>), 0);
    assert.equal(x.pollStop(h as Exclude<typeof h, number>), 0, 'idempotent');
    const before = calls;
    x.sendBatch(fd, Uint8Array.of(9, 9), Uint32Array.of(0), Uint32Array.of(2), 1);
    await new Promise((r) => setTimeout(r, 50)); // bounded check that nothing more arrives
    assert.equal(calls, before, 'no callback after pollStop');
    assert.ok(EAGAIN > 0);
  }),
);

test('parseVnetHdr reads a kernel header and flags inconsistent ones as bad-vnet-hdr', () => {
  const u8 = new Uint8Array(64);
  const m = new FrameMeta();
  // TCPv4 GSO, needs csum at 34 + 16, gso_size 1448, hdr_len 66 (little-endian).
  u8.set([1, GSO_TCPV4, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0]);
  assert.equal(parseVnetHdr(u8, 0, 65000, m), true);
  assert.deepEqual(
    [m.needsCsum, m.gsoType, m.hdrLen, m.gsoSize, m.csumStart, m.csumOffset, m.dataValid, m.drop],
    [true, GSO_TCPV4, 66, 1448, 34, 16, false, null],
  );
  m.reset();
  u8.set([2, GSO_NONE, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(parseVnetHdr(u8, 0, 60, m), true);
  assert.equal(m.dataValid, true);

  const bad: Array<[number[], number, string]> = [
    [[0, 9, 0, 0, 0xa8, 5, 0, 0, 0, 0], 9000, 'unknown gso type'],
    [[1, GSO_TCPV4, 66, 0, 0, 0, 34, 0, 16, 0], 9000, 'gso without a size'],
    [[1, GSO_NONE, 0, 0, 0, 0, 34, 0, 16, 0], 50, 'checksum field past the end'],
    [[1, GSO_NONE, 0, 0, 0, 0, 4, 0, 16, 0], 100, 'checksum start inside the Ethernet header'],
    [[0, GSO_ECN, 0, 0, 0, 0, 0, 0, 0, 0], 100, 'ECN without a gso type'],
    [[1, GSO_UDP_L4, 0, 0, 0x78, 5, 34, 0, 6, 0], 40, 'gso frame too short for its headers'],
  ];
  for (const [h, len, why] of bad) {
    m.reset();
    u8.set(h);
    assert.equal(parseVnetHdr(u8, 0, len, m), false, why);
    assert.equal(m.drop, 'bad-vnet-hdr', why);
  }
});

test('writeVnetHdr writes what parseVnetHdr reads (10- and 12-byte forms)', () => {
  const m = new FrameMeta();
  m.gsoType = GSO_TCPV4 | GSO_ECN;
  m.gsoSize = 1448;
  m.hdrLen = 66;
  m.needsCsum = true;
  m.csumStart = 34;
  m.csumOffset = 16;
  for (const n of [10, 12]) {
    const u8 = new Uint8Array(16).fill(0xee);
    writeVnetHdr(u8, 2, m, n);
    const back = new FrameMeta();
    assert.equal(parseVnetHdr(u8, 2, 65000, back), true);
    assert.deepEqual(
      [back.gsoType, back.gsoSize, back.hdrLen, back.needsCsum, back.csumStart, back.csumOffset],
      [m.gsoType, 1448, 66, true, 34, 16],
    );
    assert.equal(u8[2 + n], 0xee, 'nothing written past the header');
    if (n === 12) assert.deepEqual([u8[12], u8[13]], [0, 0], 'num_buffers zeroed');
  }
  const plain = new FrameMeta();
  const u8 = new Uint8Array(12).fill(0xff);
  writeVnetHdr(u8, 0, plain, 12);
  assert.deepEqual([...u8], new Array(12).fill(0), 'no offload: an all-zero header');
});

test('24-byte tunnel header: VXLAN-in-IPv4 super-frame fields at the kernel layout (virtio_net_hdr_v1_hash_tunnel)', () => {
  // outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 = inner IPv4 at 64, inner TCP at 84
  const m = new FrameMeta();
  m.gsoType = GSO_UDP_TUNNEL_IPV4 | GSO_TCPV4;
  m.gsoSize = 1398;
  m.hdrLen = 84 + 32;
  m.needsCsum = true;
  m.csumStart = 84;
  m.csumOffset = 16;
  m.outerThOff = 34;
  m.innerNhOff = 64;
  const u8 = new Uint8Array(30).fill(0xee);
  writeVnetHdr(u8, 3, m, 24);
  assert.deepEqual([...u8.subarray(3, 27)], [
    1, 0x21, 116, 0, 0x76, 0x05, 84, 0, 16, 0, // flags NEEDS_CSUM only (no UDP_TUNNEL_CSUM 0x8), gso_type 0x21
    0, 0, // num_buffers
    0, 0, 0, 0, 0, 0, 0, 0, // hash_value, hash_report, padding
    34, 0, 64, 0, // outer_th_offset, inner_nh_offset
  ]);
  assert.deepEqual([u8[2], u8[27]], [0xee, 0xee], 'nothing written outside the header');
  const back = new FrameMeta();
  assert.equal(parseVnetHdr(u8, 3, 60000, back, 24), true);
  assert.deepEqual(
    [back.gsoType, back.gsoSize, back.hdrLen, back.csumStart, back.csumOffset, back.outerThOff, back.innerNhOff],
    [0x21, 1398, 116, 84, 16, 34, 64],
  );
  // a frame without tunnel GSO leaves the tunnel fields zero in the 24-byte form
  const plain = new FrameMeta();
  plain.gsoType = GSO_TCPV4;
  plain.gsoSize = 1448;
  plain.outerThOff = 34; // stale: must not leak into the header
  const z = new Uint8Array(24).fill(0xff);
  writeVnetHdr(z, 0, plain, 24);
  assert.deepEqual([...z.subarray(10, 24)], new Array(14).fill(0));
  assert.equal(GSO_UDP_TUNNEL_IPV6 | GSO_TCPV6, 0x44);
});

test('parseVnetHdr refuses tunnel headers the kernel would refuse', () => {
  const good = [1, 0x21, 116, 0, 0x76, 0x05, 84, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 34, 0, 64, 0];
  const m = new FrameMeta();
  const u8 = new Uint8Array(24);
  u8.set(good);
  assert.equal(parseVnetHdr(u8, 0, 60000, m, 24), true);
  const bad: Array<[number, number, string, number?]> = [
    [1, 0x61, 'both outer families'],
    [1, 0x23, 'UDP (UFO) inside'],
    [0, 0, 'no partial checksum'],
    [20, 10, 'outer transport header inside the outer IP header'],
    [22, 36, 'inner network header inside the outer UDP header'],
    [6, 70, 'inner transport header inside the inner IP header'],
  ];
  for (const [at, v, why] of bad) {
    u8.set(good);
    u8[at] = v;
    m.reset();
    assert.equal(parseVnetHdr(u8, 0, 60000, m, 24), false, why);
    assert.equal(m.drop, 'bad-vnet-hdr', why);
  }
  u8.set(good);
  m.reset();
  assert.equal(parseVnetHdr(u8, 0, 60000, m, 12), false, 'tunnel gso type in a header without the offsets');
});
