// io/tap.test.ts: the TAP back end on real devices (root, namespaces with a per-run prefix): ARP answered by a
// namespace kernel, TCP super-frames (GSO) with offload, and offload -> plain TAP through software segmentation.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Batch, GSO_NONE, GSO_TCPV4, HEADROOM, slotSizeFor } from '../dataplane/frame.js';
import { completeChecksum, segmentFrame } from '../dataplane/offload.js';
import { openTapPort, type TapPort } from './tap.js';
import { loadNative } from './native.js';
import {
  addNs,
  collect,
  isRoot,
  killChild,
  nsSh,
  nsSpawn,
  runPrefix,
  sh,
  tryRun,
  waitFor,
  waitListening,
} from '../../test/helpers/ns-basic.js';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const skip = !isRoot() ? 'needs root (network namespaces)' : 'error' in loadNative() ? 'xsnet addon not built' : false;

const P = runPrefix();
const NS = [`${P}-a`, `${P}-b`, `${P}-c`];
const ports: TapPort[] = [];
const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), `${P}-`));

function open(name: string, offload: boolean): TapPort {
  const p = openTapPort(name, { offload });
  if ('error' in p) assert.fail(p.error);
  ports.push(p);
  return p;
}

/** Move a TAP into ns and give it a MAC and address there. */
function plug(tap: string, ns: string, mac: string, cidr: string): void {
  sh('ip', ['link', 'set', tap, 'netns', ns]);
  nsSh(ns, 'sysctl', ['-qw', `net.ipv6.conf.${tap}.disable_ipv6=1`]);
  sh('ip', ['-n', ns, 'link', 'set', tap, 'address', mac, 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', tap]);
}

/** ARP request who-has tip tell sip (from smac), into u8 at o; returns its length. */
function arpRequest(u8: Uint8Array, o: number, smac: number[], sip: number[], tip: number[]): number {
  u8.fill(0, o, o + 60);
  u8.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...smac, 0x08, 0x06], o);
  u8.set([0, 1, 8, 0, 6, 4, 0, 1, ...smac, ...sip, 0, 0, 0, 0, 0, 0, ...tip], o + 14);
  return 60;
}

/** Forward everything readable on `from` to `to`, segmenting / completing checksums when `to` has no offload. */
function bridge(from: TapPort, to: TapPort, seen: { frames: number; gso: number; maxLen: number; segmented: number }) {
  const rx = new Batch(64, slotSizeFor(from.maxFrameBytes));
  const seg = new Batch(64, slotSizeFor(to.maxFrameBytes));
  const idx = new Uint16Array(64);
  const segIdx = new Uint16Array(64);
  for (let k = 0; k < 64; k++) segIdx[k] = k;
  return (): void => {
    for (let round = 0; round < 16; round++) {
      const n = from.receive(rx, 0, rx.capacity);
      if (n === 0) return;
      let c = 0;
      for (let i = 0; i < n; i++) {
        const m = rx.meta[i]!;
        seen.frames++;
        if (m.len > seen.maxLen) seen.maxLen = m.len;
        if (m.drop !== null) continue;
        if ((m.gsoType & 0x7f) === GSO_TCPV4) seen.gso++;
        if (!to.offload && m.gsoType !== GSO_NONE) {
          if (c > 0) to.send(rx, idx, c); // keep order
          c = 0;
          const k = segmentFrame(rx, i, seg, 0, seg.capacity);
          if (k > 0) {
            seen.segmented++;
            to.send(seg, segIdx, k);
          }
          continue;
        }
        if (!to.offload && m.needsCsum) completeChecksum(rx.slab, m);
        idx[c++] = i;
      }
      if (c > 0) to.send(rx, idx, c);
    }
  };
}

/** iperf3 from NS[a] to server address dst in NS[b]; returns the JSON result's received bits/s. */
async function iperf(a: string, b: string, dst: string): Promise<number> {
  const server = nsSpawn(b, 15, 'iperf3', ['-s', '-1', '-B', dst]);
  children.push(server);
  const serverDone = collect(server);
  assert.ok(await waitListening(b, 5201), 'iperf3 server listening');
  const client = nsSpawn(a, 12, 'iperf3', ['-c', dst, '-t', '2', '--connect-timeout', '2000', '-J']);
  children.push(client);
  const r = await collect(client);
  await serverDone;
  assert.equal(r.code, 0, `iperf3 client failed: ${r.err}${r.out.slice(0, 400)}`);
  const j = JSON.parse(r.out) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
  assert.ok(j.end.sum_received.bytes > 0, 'bytes received');
  return j.end.sum_received.bits_per_second;
}

describe('TAP back end (real devices)', { skip }, () => {
  before(() => {
    for (const ns of NS) addNs(ns);
  });
  after(() => {
    for (const c of children) killChild(c);
    for (const p of ports) p.close();
    for (const ns of NS) tryRun('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('an ARP request sent into the TAP is answered by the namespace kernel', async () => {
    const tap = open(`${P}t1`, true);
    assert.equal(tap.kind, 'tap');
    assert.equal(tap.name, `${P}t1`);
    assert.ok(tap.maxFrameBytes >= 65535);
    plug(tap.name, NS[0]!, '02:00:00:00:00:05', '10.0.0.5/24');

    const b = new Batch(32, slotSizeFor(tap.maxFrameBytes));
    const m = b.meta[0]!;
    m.reset();
    m.off = b.slotStart(0) + HEADROOM;
    m.len = arpRequest(b.slab, m.off, [2, 0, 0, 0, 0, 0x99], [10, 0, 0, 99], [10, 0, 0, 5]);
    assert.equal(tap.send(b, Uint16Array.of(0), 1), 1, `send: errno ${tap.stats.lastErrno}`);

    let reply = -1;
    const rx = new Batch(32, slotSizeFor(tap.maxFrameBytes));
    tap.start(() => {
      const n = tap.receive(rx, 0, rx.capacity);
      for (let i = 0; i < n; i++) {
        const r = rx.meta[i]!;
        const u = rx.slab;
        const o = r.off;
        // ARP reply (op 2) from 10.0.0.5 to our MAC.
        if (r.len >= 42 && u[o + 12] === 0x08 && u[o + 13] === 0x06 && u[o + 21] === 2 && u[o + 5] === 0x99) {
          if (u[o + 28] === 10 && u[o + 31] === 5) reply = i;
        }
      }
    });
    const ok = await waitFor(() => reply >= 0, 3000);
    tap.stop();
    assert.ok(ok, 'ARP reply read from the TAP');
    const r = rx.meta[reply]!;
    assert.equal(r.off, rx.slotStart(reply) + HEADROOM, 'Ethernet header lands at slotStart + HEADROOM');
    assert.equal(r.gsoType, GSO_NONE);
    assert.equal(r.drop, null);
    // Sender MAC in the ARP body is the namespace's TAP address.
    assert.deepEqual([...rx.slab.subarray(r.off + 22, r.off + 28)], [2, 0, 0, 0, 0, 5]);
    assert.equal(tap.stats.rxErrors, 0);
  });

  test('a TCP stream between two offload TAPs moves GSO super-frames (gsoType TCPV4, len > MTU)', async () => {
    const a = open(`${P}t2`, true);
    const b = open(`${P}t3`, true);
    plug(a.name, NS[1]!, '02:00:00:00:00:15', '10.0.1.5/24');
    plug(b.name, NS[2]!, '02:00:00:00:00:16', '10.0.1.6/24');
    const ab = { frames: 0, gso: 0, maxLen: 0, segmented: 0 };
    const ba = { frames: 0, gso: 0, maxLen: 0, segmented: 0 };
    a.start(bridge(a, b, ab));
    b.start(bridge(b, a, ba));
    try {
      const bps = await iperf(NS[1]!, NS[2]!, '10.0.1.6');
      console.log(
        `# TAP(vnet) -> TAP(vnet) through the addon: ${(bps / 1e9).toFixed(2)} Gbit/s; ` +
          `${ab.frames} frames a->b, ${ab.gso} GSO, largest ${ab.maxLen} B; tx full ${b.stats.txFull}`,
      );
    } finally {
      a.stop();
      b.stop();
    }
    assert.ok(ab.gso > 0, 'gsoType TCPV4 frames read from the sending TAP');
    assert.ok(ab.maxLen > 1514, `a frame longer than the MTU (${ab.maxLen})`);
    assert.equal(a.stats.rxErrors + b.stats.txErrors, 0);
  });

  test('offload TAP -> plain TAP: super-frames segmented in software, checksums completed, TCP works', async () => {
    // Reuse the first namespace's address space: new TAPs in NS[1] (offload) and NS[2] (plain) on another subnet.
    const a = open(`${P}t4`, true);
    const c = open(`${P}t5`, false);
    assert.equal(c.offload, false);
    plug(a.name, NS[1]!, '02:00:00:00:00:25', '10.0.2.5/24');
    plug(c.name, NS[2]!, '02:00:00:00:00:26', '10.0.2.6/24');
    const ac = { frames: 0, gso: 0, maxLen: 0, segmented: 0 };
    const ca = { frames: 0, gso: 0, maxLen: 0, segmented: 0 };
    a.start(bridge(a, c, ac));
    c.start(bridge(c, a, ca));
    try {
      const bps = await iperf(NS[1]!, NS[2]!, '10.0.2.6');
      console.log(
        `# TAP(vnet) -> segmentFrame -> plain TAP: ${(bps / 1e9).toFixed(2)} Gbit/s; ` +
          `${ac.segmented} super-frames segmented, largest read ${ac.maxLen} B`,
      );
    } finally {
      a.stop();
      c.stop();
    }
    assert.ok(ac.segmented > 0, 'some super-frames were segmented');
    assert.equal(ca.gso, 0, 'a plain TAP never delivers GSO');
    assert.ok(ca.maxLen <= 1514, 'plain TAP frames fit the MTU');
  });

  test('small-frame batch rates through a TAP (printed, not asserted)', async () => {
    const t = open(`${P}t7`, true);
    plug(t.name, NS[0]!, '02:00:00:00:00:35', '10.0.3.5/24');
    // rx: trafgen in the namespace sends 64-byte frames out of the TAP; we read them in batches.
    const total = 200_000;
    const rx = new Batch(256, slotSizeFor(2048 + 12));
    let got = 0;
    let calls = 0;
    const drain = (): void => {
      let n: number;
      do {
        n = t.receive(rx, 0, rx.capacity);
        got += n;
        calls++;
      } while (n === rx.capacity);
    };
    sh('ip', ['-n', NS[0]!, 'link', 'set', t.name, 'txqueuelen', '10000']);
    t.start(drain);
    const cfg = join(tmp, 'small.cfg');
    writeFileSync(cfg, '{ 0x02,0,0,0,0,0x99, 0x02,0,0,0,0,0x35, 0x88,0xb5, fill(0x00, 46) }\n');
    const t0 = performance.now();
    const tg = nsSpawn(NS[0]!, 20, 'trafgen', ['--dev', t.name, '--conf', cfg, '--num', String(total), '--cpus', '1', '-q']);
    children.push(tg);
    const tr = await collect(tg);
    drain();
    const rxSecs = (performance.now() - t0) / 1000;
    t.stop();
    // tx: sendBatch of 64 frames at a time into the TAP (the namespace drops them: unknown EtherType).
    const tx = new Batch(64, slotSizeFor(2048 + 12));
    const idx = new Uint16Array(64);
    for (let i = 0; i < 64; i++) {
      idx[i] = i;
      const m = tx.meta[i]!;
      m.reset();
      m.off = tx.slotStart(i) + HEADROOM;
      m.len = 60;
      tx.slab.set([2, 0, 0, 0, 0, 0x35, 2, 0, 0, 0, 0, 0x99, 0x88, 0xb5], m.off);
    }
    let sent = 0;
    const t1 = performance.now();
    while (sent < total && performance.now() - t1 < 8000) sent += t.send(tx, idx, 64);
    const txSecs = (performance.now() - t1) / 1000;
    console.log(
      `# TAP(vnet) 64 B: trafgen sent ${total} (exit ${String(tr.code)}), recvBatch read ${got} in ` +
        `${rxSecs.toFixed(2)} s (${(got / rxSecs / 1e3).toFixed(0)} kpps, ${(got / Math.max(calls, 1)).toFixed(1)} per call); ` +
        `sendBatch ${sent} in ${txSecs.toFixed(2)} s (${(sent / txSecs / 1e3).toFixed(0)} kpps)`,
    );
    assert.ok(got > 0 && sent > 0);
  });

  test('a frame longer than the slot is cut at the slot and flagged oversize (no overrun)', async () => {
    const t = open(`${P}t8`, false);
    plug(t.name, NS[0]!, '02:00:00:00:00:45', '10.0.4.5/24');
    nsSh(NS[0]!, 'ip', ['neigh', 'replace', '10.0.4.9', 'lladdr', '02:00:00:00:00:49', 'dev', t.name]);
    const rx = new Batch(4, slotSizeFor(256));
    const guard = rx.slotStart(1); // first byte of the next slot
    rx.slab.fill(0xa5, guard, guard + 64);
    let big = -1;
    t.start(() => {
      const n = t.receive(rx, 0, 1); // one slot only: the next slot must stay untouched
      for (let i = 0; i < n; i++) if (rx.meta[i]!.drop === 'oversize') big = i;
    });
    const ping = nsSpawn(NS[0]!, 5, 'ping', ['-c', '1', '-W', '1', '-s', '1000', '10.0.4.9']);
    children.push(ping);
    const ok = await waitFor(() => big >= 0, 3000);
    t.stop();
    assert.ok(ok, 'the 1042-byte ICMP frame was read and flagged');
    assert.equal(rx.meta[big]!.len, 256, 'cut at the slot capacity');
    assert.deepEqual([...rx.slab.subarray(guard, guard + 64)], new Array(64).fill(0xa5), 'next slot untouched');
  });

  // One io_uring_enter per batch must keep the one-read-per-frame semantics: every frame, in queue order, none twice,
  // also when a round of reads meets an empty queue and frames arrive behind it; and the forced loop the same.
  for (const uring of [true, false]) {
    test(`frames sent into a TAP in bursts are read in order, none lost (${uring ? 'io_uring' : 'read() loop'})`, async () => {
      const x = loadNative();
      if ('error' in x) assert.fail(x.error);
      x.useIoUring(uring);
      try {
        const t = open(`${P}t${uring ? 'u' : 'l'}`, true);
        const ns = NS[1]!;
        plug(t.name, ns, '02:00:00:00:00:55', `10.0.5.${uring ? 5 : 6}/24`);
        // a queue bigger than everything sent: the kernel never drops, so a missing frame is ours
        sh('ip', ['-n', ns, 'link', 'set', t.name, 'txqueuelen', '20000']);
        const before = x.ioPath();
        assert.equal(before.path, uring ? 'io_uring' : 'syscalls', before.reason);
        const bursts = 40;
        const per = 250;
        const rx = new Batch(64, slotSizeFor(t.maxFrameBytes));
        const seqs: number[] = [];
        let bad = 0;
        const drain = (): void => {
          for (let round = 0; round < 64; round++) {
            const n = t.receive(rx, 0, rx.capacity);
            for (let i = 0; i < n; i++) {
              const m = rx.meta[i]!;
              const u8 = rx.slab;
              const o = m.off;
              if (m.len < 18 || u8[o + 12] !== 0x88 || u8[o + 13] !== 0xb5) continue; // not ours (none expected)
              if (m.drop !== null) bad++;
              seqs.push(((u8[o + 14]! << 24) | (u8[o + 15]! << 16) | (u8[o + 16]! << 8) | u8[o + 17]!) >>> 0);
            }
            if (n < rx.capacity) return;
          }
        };
        t.start(drain);
        // bursts with gaps between them: rounds of reads that run into an empty queue mid-round
        const py = [
          'import socket, struct, time',
          `s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("${t.name}", 0))`,
          'hdr = bytes([2,0,0,0,0,0x99, 2,0,0,0,0,0x55, 0x88,0xb5])',
          `for b in range(${bursts}):`,
          `    for k in range(${per}): s.send(hdr + struct.pack(">I", b * ${per} + k) + bytes(42))`,
          '    time.sleep(0.002 * (b % 4))',
        ].join('\n');
        const snd = nsSpawn(ns, 20, '/usr/bin/python3', ['-c', py]);
        children.push(snd);
        const r = await collect(snd);
        assert.equal(r.code, 0, `sender: ${r.err}`);
        await waitFor(() => seqs.length >= bursts * per, 5000);
        t.stop();
        drain();
        const after = x.ioPath();
        let outOfOrder = 0;
        for (let i = 1; i < seqs.length; i++) if (seqs[i]! !== seqs[i - 1]! + 1) outOfOrder++;
        console.log(
          `# ${after.path}: ${seqs.length} frames, ${after.uringBatches - before.uringBatches} enters, ` +
            `${after.loopBatches - before.loopBatches} loop batches, ${after.uringMoved - before.uringMoved} moved down`,
        );
        assert.equal(seqs[0], 0, 'first frame first');
        assert.equal(outOfOrder, 0, 'in order, none missing or twice');
        assert.equal(seqs.length, bursts * per, 'every frame read');
        assert.equal(bad, 0);
        if (uring) {
          // an idle port's first frame is read with read(); the rest of each batch through the ring
          assert.ok(after.uringFrames - before.uringFrames >= (bursts * per) / 2, 'the frames went through the ring');
          assert.equal(after.loopBatches, before.loopBatches, 'no batch fell back to the loop');
        } else {
          assert.equal(after.uringFrames, before.uringFrames, 'nothing through the ring when it is off');
          assert.ok(after.loopBatches > before.loopBatches);
        }
        // and back out: sendBatch writes in order (the namespace sees them in order on a packet socket)
        const cap = nsSpawn(ns, 10, '/usr/bin/python3', ['-c', [
          'import socket, sys',
          `s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5)); s.bind(("${t.name}", 0))`,
          's.settimeout(3); got = []',
          'try:',
          `    while len(got) < ${per}: got.append(int.from_bytes(s.recv(100)[14:18], "big"))`,
          'except Exception: pass',
          'print(",".join(map(str, got)))',
        ].join('\n')]);
        children.push(cap);
        const capDone = collect(cap);
        await new Promise((res) => setTimeout(res, 300)); // the capture socket is bound
        const tx = new Batch(per, slotSizeFor(t.maxFrameBytes));
        const idx = new Uint16Array(per);
        for (let i = 0; i < per; i++) {
          idx[i] = i;
          const m = tx.meta[i]!;
          m.reset();
          m.off = tx.slotStart(i) + HEADROOM;
          m.len = 60;
          tx.slab.fill(0, m.off, m.off + 60);
          tx.slab.set([2, 0, 0, 0, 0, 0x55, 2, 0, 0, 0, 0, 0x99, 0x88, 0xb5, 0, 0, i >> 8, i & 0xff], m.off);
        }
        let sent = 0;
        for (let tries = 0; tries < 100 && sent < per; tries++) sent += t.send(tx, idx.subarray(sent), per - sent);
        assert.equal(sent, per);
        const c = await capDone;
        const got = c.out.trim().split(',').filter((w) => w !== '').map(Number);
        assert.deepEqual(got, Array.from({ length: per }, (_, i) => i), 'written in order, every one');
        // the ring must not keep the TAP open (no fixed files): closing the port lets the device go
        t.close();
        const gone = await waitFor(() => tryRun('ip', ['-n', ns, 'link', 'show', t.name]) === false, 3000);
        assert.ok(gone, 'the TAP device is gone after close');
      } finally {
        x.useIoUring(true);
      }
    });
  }

  test('a closed TAP refuses quietly and counts it', () => {
    const t = open(`${P}t6`, false);
    t.close();
    t.close(); // idempotent
    const b = new Batch(2, slotSizeFor(t.maxFrameBytes));
    b.meta[0]!.reset();
    b.meta[0]!.off = HEADROOM;
    b.meta[0]!.len = 60;
    assert.equal(t.send(b, Uint16Array.of(0), 1), 0);
    assert.equal(t.stats.txErrors, 1);
    assert.equal(t.receive(b, 0, 2), 0);
  });
});
