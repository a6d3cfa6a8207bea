// io/packet.test.ts: the AF_PACKET back end on veth pairs in namespaces (root). The socket must be opened inside the
// namespace that holds the interface, so this file doubles as the child it spawns there (XS_PACKET_CHILD=mode).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { Batch, GSO_NONE, GSO_TCPV4, HEADROOM, slotSizeFor } from '../dataplane/frame.js';
import { openPacketPort, type PacketPort } from './packet.js';
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

const SELF = fileURLToPath(import.meta.url);
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

/* ---------------- child side: runs inside the switch namespace ---------------- */

function openOrDie(ifname: string, offload: boolean): PacketPort {
  const p = openPacketPort(ifname, { offload, ring: process.env['XS_RING'] === '1' });
  if ('error' in p) {
    console.log(JSON.stringify({ error: p.error }));
    process.exit(2);
  }
  return p;
}

/** dump: print every frame read on IF as a JSON line; stdin lines "send HEX" are sent. Ends on stdin close. */
function childDump(): void {
  const port = openOrDie(process.env['XS_IF']!, process.env['XS_OFFLOAD'] === '1');
  const rx = new Batch(64, slotSizeFor(port.maxFrameBytes));
  const tx = new Batch(1, slotSizeFor(port.maxFrameBytes));
  port.start(() => {
    const n = port.receive(rx, 0, rx.capacity);
    for (let i = 0; i < n; i++) {
      const m = rx.meta[i]!;
      const line = {
        len: m.len,
        offDelta: m.off - (rx.slotStart(i) + HEADROOM),
        hex: hex(rx.slab.subarray(m.off, m.off + Math.min(m.len, 256))),
        gsoType: m.gsoType,
        drop: m.drop,
      };
      console.log(JSON.stringify(line));
    }
  });
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (l) => {
    const [cmd, arg] = l.split(' ');
    if (cmd === 'send' && arg !== undefined) {
      const bytes = Buffer.from(arg, 'hex');
      const m = tx.meta[0]!;
      m.reset();
      m.off = HEADROOM;
      m.len = bytes.length;
      tx.slab.set(bytes, m.off);
      console.log(JSON.stringify({ sent: port.send(tx, Uint16Array.of(0), 1), errno: port.stats.lastErrno }));
    }
  });
  rl.on('close', () => {
    port.close();
    process.exit(0);
  });
  console.log(JSON.stringify({ ready: true }));
}

/** bridge: forward IF <-> IF2 until stdin closes, then print what passed. */
function childBridge(): void {
  const offload = process.env['XS_OFFLOAD'] === '1';
  const a = openOrDie(process.env['XS_IF']!, offload);
  const b = openOrDie(process.env['XS_IF2']!, offload);
  const seen = { frames: 0, gso: 0, maxLen: 0, needsCsum: 0 };
  const mk = (from: PacketPort, to: PacketPort) => {
    const rx = new Batch(64, slotSizeFor(from.maxFrameBytes));
    const idx = new Uint16Array(64);
    return (): void => {
      for (let r = 0; r < 16; r++) {
        const n = from.receive(rx, 0, rx.capacity);
        if (n === 0) return;
        let c = 0;
        for (let i = 0; i < n; i++) {
          const m = rx.meta[i]!;
          seen.frames++;
          if (m.len > seen.maxLen) seen.maxLen = m.len;
          if ((m.gsoType & 0x7f) === GSO_TCPV4) seen.gso++;
          if (m.needsCsum) seen.needsCsum++;
          if (m.drop === null) idx[c++] = i;
        }
        to.send(rx, idx, c);
      }
    };
  };
  a.start(mk(a, b));
  b.start(mk(b, a));
  const rl = createInterface({ input: process.stdin });
  rl.on('close', () => {
    console.log(JSON.stringify({ ...seen, stats: [a.stats, b.stats] }));
    a.close();
    b.close();
    process.exit(0);
  });
  console.log(JSON.stringify({ ready: true }));
}

/** bench: IF and IF2 are the two ends of one veth; push 64-byte frames through in batches and count. */
function childBench(): void {
  const a = openOrDie(process.env['XS_IF']!, false);
  const b = openOrDie(process.env['XS_IF2']!, false);
  const BATCH = 64;
  const tx = new Batch(BATCH, slotSizeFor(2048));
  const rx = new Batch(256, slotSizeFor(2048));
  const idx = new Uint16Array(BATCH);
  for (let i = 0; i < BATCH; i++) {
    idx[i] = i;
    const m = tx.meta[i]!;
    m.reset();
    m.off = tx.slotStart(i) + HEADROOM;
    m.len = 60;
    // Unicast to a MAC nobody owns, IPv4 ethertype: the receiving stack drops it early.
    tx.slab.set([2, 0, 0, 0, 0xee, 0xee, 2, 0, 0, 0, 0xee, 0x01, 0x88, 0xb5], m.off);
  }
  const total = 300_000;
  let sent = 0;
  let got = 0;
  let sendCalls = 0;
  let recvCalls = 0;
  const t0 = process.hrtime.bigint();
  const deadline = performance.now() + 8000;
  let n = 0;
  while (sent < total && performance.now() < deadline) {
    const k = a.send(tx, idx, BATCH);
    if (k > 0) sent += k;
    sendCalls++;
    do {
      n = b.receive(rx, 0, rx.capacity);
      got += n;
      recvCalls++;
    } while (n === rx.capacity);
  }
  const drainEnd = performance.now() + 300;
  while (got < sent && performance.now() < drainEnd) {
    got += b.receive(rx, 0, rx.capacity);
    recvCalls++;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    JSON.stringify({ sent, got, seconds: s, sendCalls, recvCalls, sendStats: a.stats, recvStats: b.stats }),
  );
  a.close();
  b.close();
}

/* ---------------- parent side: the tests ---------------- */

const mode = process.env['XS_PACKET_CHILD'];
if (mode === 'dump') childDump();
else if (mode === 'bridge') childBridge();
else if (mode === 'bench') childBench();
else parentTests();

function parentTests(): void {
  const skip = !isRoot() ? 'needs root (network namespaces)' : 'error' in loadNative() ? 'xsnet addon not built' : false;
  const P = runPrefix();
  const SW = `${P}-sw`; // the namespace where the port runs
  const PEER = `${P}-pa`; // peer with eth0, tx checksum offload off
  const G1 = `${P}-g1`; // two peers with offload on, for the GSO test
  const G2 = `${P}-g2`;
  const NS = [SW, PEER, G1, G2];
  const children: ChildProcess[] = [];

  function childEnv(m: string, extra: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, XS_PACKET_CHILD: m, ...extra };
    delete env['NODE_TEST_CONTEXT'];
    return env;
  }

  /** Start the child in SW; resolves once it printed {ready}. Lines after that go to `lines`. */
  async function startChild(m: string, extra: Record<string, string>, secs = 30) {
    const c = nsSpawn(SW, secs, process.execPath, [SELF], childEnv(m, extra));
    children.push(c);
    const lines: Array<Record<string, unknown>> = [];
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    createInterface({ input: c.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        lines.push({ raw: l });
      }
    });
    const ready = await waitFor(() => lines.some((l) => l['ready'] === true || 'error' in l), 10_000);
    assert.ok(ready && lines.some((l) => l['ready'] === true), `child ready: ${JSON.stringify(lines)} ${err}`);
    return { c, lines, err: () => err };
  }

  /** veth: `host` end in SW, eth0 in ns with mac/address, IPv6 off. */
  function veth(host: string, ns: string, mac: string, cidr: string, txOff: boolean): void {
    sh('ip', ['link', 'add', host, 'netns', SW, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    nsSh(SW, 'sysctl', ['-qw', `net.ipv6.conf.${host}.disable_ipv6=1`]);
    nsSh(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    sh('ip', ['-n', SW, 'link', 'set', host, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', mac, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', 'eth0']);
    if (txOff) nsSh(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  }

  describe('AF_PACKET back end (real devices)', { skip }, () => {
    before(() => {
      for (const ns of NS) addNs(ns);
      veth(`${P}v1`, PEER, '02:00:00:00:01:05', '10.0.1.5/24', true);
    });
    after(() => {
      for (const c of children) {
        c.stdin?.end();
        killChild(c);
      }
      for (const ns of NS) tryRun('ip', ['netns', 'del', ns]);
    });

    let gsoPeers = false;
    let benchPair = false;
    for (const ring of ['0', '1']) {
      const mode = ring === '1' ? 'TPACKET_V2 ring' : 'recvmmsg/sendmmsg';
      test(`${mode}: a VLAN tag the kernel moved into auxdata is re-inserted inline (scapy Dot1Q vlan 10)`, async () => {
        const ch = await startChild('dump', { XS_IF: `${P}v1`, XS_OFFLOAD: '0', XS_RING: ring });
        const marker = Buffer.from('xswitch-vlan-test').toString('hex');
        const py =
          'from scapy.all import Ether, Dot1Q, IP, UDP, Raw, sendp\n' +
          "sendp(Ether(src='02:00:00:00:01:05', dst='02:00:00:00:01:99')/Dot1Q(vlan=10, prio=3)/" +
          "IP(src='10.0.1.5', dst='10.0.1.99')/UDP(sport=1234, dport=5678)/Raw(b'xswitch-vlan-test'), " +
          "iface='eth0', count=2, verbose=0)\n";
        nsSh(PEER, '/usr/bin/python3', ['-c', py], 20_000);
        const found = await waitFor(() => ch.lines.some((l) => String(l['hex'] ?? '').includes(marker)), 5000);
        ch.c.stdin!.end();
        await collect(ch.c);
        assert.ok(found, `tagged frame received: ${JSON.stringify(ch.lines.slice(0, 5))}`);
        const f = ch.lines.find((l) => String(l['hex'] ?? '').includes(marker))!;
        const b = Buffer.from(String(f['hex']), 'hex');
        assert.equal(b.readUInt16BE(12), 0x8100, 'TPID re-inserted');
        assert.equal(b.readUInt16BE(14) & 0x0fff, 10, 'VID 10');
        assert.equal(b.readUInt16BE(14) >>> 13, 3, 'PCP 3');
        assert.equal(b.readUInt16BE(16), 0x0800, 'inner EtherType follows the tag');
        assert.equal(b.subarray(0, 6).toString('hex'), '020000000199', 'MACs moved with it');
        assert.equal(f['offDelta'], -4, 'the tag went into headroom (meta.off -= 4)');
        // 14 + 4 + 20 + 8 + 17 = 63 bytes: the wire frame, tag included.
        assert.equal(f['len'], 63);
      });

      test(`${mode}: a frame sent through the socket reaches the peer, and its ARP reply comes back untagged`, async () => {
        const ch = await startChild('dump', { XS_IF: `${P}v1`, XS_OFFLOAD: '0', XS_RING: ring });
        const arp = Buffer.alloc(60);
        Buffer.from('ffffffffffff020000000199' + '0806', 'hex').copy(arp, 0);
        Buffer.from('0001080006040001' + '020000000199' + '0a000163' + '000000000000' + '0a000105', 'hex').copy(arp, 14);
        ch.c.stdin!.write(`send ${arp.toString('hex')}\n`);
        const isReply = (l: Record<string, unknown>): boolean => {
          const h = String(l['hex'] ?? '');
          // to 02:..:01:99, ARP, op 2, sender 10.0.1.5
          return h.startsWith('020000000199') && h.slice(24, 28) === '0806' && h.slice(40, 44) === '0002' && h.slice(56, 64) === '0a000105';
        };
        const got = await waitFor(() => ch.lines.some(isReply), 5000);
        ch.c.stdin!.end();
        await collect(ch.c);
        assert.ok(ch.lines.some((l) => l['sent'] === 1), `sent: ${JSON.stringify(ch.lines.filter((l) => 'sent' in l))}`);
        assert.ok(got, `ARP reply received: ${JSON.stringify(ch.lines.slice(0, 6))}`);
        const r = ch.lines.find(isReply)!;
        assert.equal(r['offDelta'], 0, 'untagged frame at slotStart + HEADROOM');
        assert.equal(r['gsoType'], GSO_NONE);
      });

      test(`${mode}: with PACKET_VNET_HDR a TCP stream between two veth peers passes as GSO super-frames`, async () => {
        if (!gsoPeers) {
          veth(`${P}v2`, G1, '02:00:00:00:02:05', '10.0.2.5/24', false);
          veth(`${P}v3`, G2, '02:00:00:00:02:06', '10.0.2.6/24', false);
          gsoPeers = true;
        }
        const ch = await startChild('bridge', { XS_IF: `${P}v2`, XS_IF2: `${P}v3`, XS_OFFLOAD: '1', XS_RING: ring });
        const server = nsSpawn(G2, 15, 'iperf3', ['-s', '-1', '-B', '10.0.2.6']);
        children.push(server);
        const serverDone = collect(server);
        assert.ok(await waitListening(G2, 5201), 'iperf3 server listening');
        const client = nsSpawn(G1, 12, 'iperf3', ['-c', '10.0.2.6', '-t', '2', '--connect-timeout', '2000', '-J']);
        children.push(client);
        const r = await collect(client);
        await serverDone;
        ch.c.stdin!.end();
        await collect(ch.c);
        assert.equal(r.code, 0, `iperf3: ${r.err} ${r.out.slice(0, 300)}`);
        const j = JSON.parse(r.out) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
        const s = ch.lines.find((l) => 'frames' in l)!;
        console.log(
          `# AF_PACKET(vnet, ${mode}) bridge veth->veth: ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s; ` +
            `${String(s['frames'])} frames, ${String(s['gso'])} TCPV4 GSO, largest ${String(s['maxLen'])} B`,
        );
        assert.ok(j.end.sum_received.bytes > 0);
        assert.ok(Number(s['gso']) > 0, 'GSO frames seen');
        assert.ok(Number(s['maxLen']) > 1514, 'a frame longer than the MTU');
      });

      test(`${mode}: batch rate through the addon (printed, not asserted)`, async () => {
        if (!benchPair) {
          sh('ip', ['-n', SW, 'link', 'add', `${P}x1`, 'type', 'veth', 'peer', 'name', `${P}x2`]);
          for (const x of [`${P}x1`, `${P}x2`]) {
            nsSh(SW, 'sysctl', ['-qw', `net.ipv6.conf.${x}.disable_ipv6=1`]);
            sh('ip', ['-n', SW, 'link', 'set', x, 'up']);
          }
          benchPair = true;
        }
        const env = childEnv('bench', { XS_IF: `${P}x1`, XS_IF2: `${P}x2`, XS_RING: ring });
        const c = nsSpawn(SW, 20, process.execPath, [SELF], env);
        children.push(c);
        const r = await collect(c);
        assert.equal(r.code, 0, r.err);
        const j = JSON.parse(r.out.trim().split('\n').pop()!) as {
          sent: number;
          got: number;
          seconds: number;
          sendCalls: number;
          recvCalls: number;
        };
        console.log(
          `# AF_PACKET ${mode} 64 B veth->veth, batches of 64: sent ${j.sent} (${(j.sent / j.seconds / 1e3).toFixed(0)} kpps), ` +
            `received ${j.got} (${(j.got / j.seconds / 1e3).toFixed(0)} kpps) in ${j.seconds.toFixed(2)} s; ` +
            `${j.sendCalls} sendBatch, ${j.recvCalls} recvBatch calls`,
        );
        assert.ok(j.got > 0, 'frames crossed');
      });
    }
  });
}
