// wire/fuzz.test.ts: property test: no parser throws, for any bytes and any (off, len), and what a parser accepts
// is self-consistent (lengths inside the window). 200k random and mutated inputs from a seeded PRNG.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { readCaptureFile } from '../../test/helpers/pcap.js';
import {
  parseIpv4Address,
  parseIpv4Prefix,
  parseIpv6Address,
  parseIpv6Prefix,
  parsePrefix,
} from './addresses.js';
import { ArpView, checkArp, parseArp } from './arp.js';
import { DhcpView, checkDhcp, parseDhcp } from './dhcp.js';
import { dissect } from './dissect.js';
import { parseEthernet, vlanTagCount } from './ethernet.js';
import { checkGre, checkNvgre, GreView, parseGre } from './gre.js';
import { checkIcmp, IcmpView, parseIcmp } from './icmp.js';
import { checkIcmpv6, Icmpv6View, parseIcmpv6 } from './icmpv6.js';
import { checkIpv4, Ipv4View, parseIpv4 } from './ipv4.js';
import { checkIpv6, Ipv6ExtWalker, parseIpv6 } from './ipv6.js';
import { checkTcp, parseTcp, TcpView } from './tcp.js';
import { checkUdp, parseUdp, UdpView } from './udp.js';
import { checkVxlan, parseVxlan, VxlanView } from './vxlan.js';
import { prng } from '../../test/helpers/prng.js';


const FIX = new URL('../../../test/fixtures/wire/', import.meta.url);

function seeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of readdirSync(FIX)) {
    if (!/\.pcap(ng)?$/.test(f)) continue;
    for (const r of readCaptureFile(new URL(f, FIX))) if (r.bytes.length <= 2048) out.push(r.bytes);
  }
  out.push(
    frame().eth().qinq(100, 10).ipv4({ options: new Uint8Array([1, 1, 7, 7, 4, 0, 0, 0, 0]) }).tcp({ options: new Uint8Array([2, 4, 5, 0xb4, 1, 3, 3, 7]) }).payload(8).bytes(),
    frame().eth().ipv6({ ext: [{ type: 0 }, { type: 43 }, { type: 44 }, { type: 51 }, { type: 60 }] }).udp().payload(4).bytes(),
    frame().eth().ipv4().gre({ checksum: true, key: 1, sequence: 2 }).eth().ipv6().icmpv6({ type: 134, sll: 1, options: [{ kind: 'mtu', mtu: 1500 }] }).bytes(),
  );
  return out;
}

interface Case {
  readonly name: string;
  run(u8: Uint8Array, off: number, len: number): void;
}

// Each case parses, then (when accepted) reads every accessor of the view and checks lengths stay inside the window.
const CASES: Case[] = [
  {
    name: 'ethernet',
    run(u8, off, len) {
      const r = parseEthernet(u8, off, len);
      if (r.ok) assert.ok(r.value.payloadOffset <= len);
      vlanTagCount(u8, off, len);
    },
  },
  {
    name: 'arp',
    run(u8, off, len) {
      const r = parseArp(u8, off, len);
      if (checkArp(u8, off, len) === null) {
        assert.ok(r.ok);
        const v = new ArpView(u8, off);
        void [v.htype, v.ptype, v.hlen, v.plen, v.op, v.sha, v.spa, v.tha, v.tpa, v.isGratuitous];
      } else assert.ok(!r.ok && r.reason.length > 0);
    },
  },
  {
    name: 'ipv4',
    run(u8, off, len) {
      const r = parseIpv4(u8, off, len);
      if (r.ok) {
        assert.ok(checkIpv4(u8, off, len) === null);
        assert.ok(r.value.headerLength >= 20 && r.value.totalLength <= len && r.value.headerLength <= r.value.totalLength);
        const v = new Ipv4View(u8, off);
        assert.ok(Number.isInteger(v.src) && v.src >= 0 && v.src <= 0xffffffff);
        void [v.checksumOk, v.pseudoSum(), v.isFragment, v.payloadOffset, v.payloadLength];
      } else assert.ok(r.reason.length > 0);
    },
  },
  {
    name: 'ipv6',
    run(u8, off, len) {
      const r = parseIpv6(u8, off, len);
      if (r.ok) {
        assert.ok(checkIpv6(u8, off, len) === null);
        assert.ok(r.value.l4Offset >= 40 && r.value.l4Offset + r.value.l4Length <= len && r.value.l4Length >= 0);
        assert.ok(r.value.extensions.length <= 8);
      }
      const w = new Ipv6ExtWalker();
      assert.equal(w.walk(u8, off, len) === null, r.ok);
    },
  },
  {
    name: 'tcp',
    run(u8, off, len) {
      const r = parseTcp(u8, off, len);
      if (r.ok) {
        assert.ok(checkTcp(u8, off, len) === null && r.value.headerLength <= len && r.value.headerLength >= 20);
        const v = new TcpView(u8, off);
        void [v.seq, v.ack, v.flags, v.payloadOffset, v.checksumOk(len, 0)];
      }
    },
  },
  {
    name: 'udp',
    run(u8, off, len) {
      const r = parseUdp(u8, off, len);
      if (r.ok) {
        assert.ok(checkUdp(u8, off, len) === null && r.value.length <= len && r.value.length >= 8);
        void new UdpView(u8, off).checksumOk(0);
      }
    },
  },
  {
    name: 'icmp',
    run(u8, off, len) {
      const r = parseIcmp(u8, off, len);
      if (r.ok) {
        assert.ok(checkIcmp(u8, off, len) === null);
        const v = new IcmpView(u8, off);
        void [v.isError, v.isEcho, v.gateway, v.checksumOk(len)];
      }
    },
  },
  {
    name: 'icmpv6',
    run(u8, off, len) {
      const r = parseIcmpv6(u8, off, len, 0);
      if (r.ok) {
        assert.ok(checkIcmpv6(u8, off, len) === null);
        const v = new Icmpv6View(u8, off);
        void [v.linkAddr(len, 1), v.linkAddr(len, 2), v.findOption(len, 3), v.routerLifetime];
        for (const o of r.value.options) assert.ok(o.offset + o.length <= len && o.length >= 8);
      }
    },
  },
  {
    name: 'gre',
    run(u8, off, len) {
      const r = parseGre(u8, off, len);
      if (r.ok) {
        assert.ok(r.value.headerLength <= len);
        const v = new GreView(u8, off);
        void [v.key, v.sequence, v.vsid, v.flowId, v.payloadOffset];
      }
      checkNvgre(u8, off, len);
      if (checkGre(u8, off, len) !== null) assert.ok(!r.ok);
    },
  },
  {
    name: 'vxlan',
    run(u8, off, len) {
      const r = parseVxlan(u8, off, len);
      if (r.ok) {
        assert.ok(checkVxlan(u8, off, len) === null);
        assert.ok(new VxlanView(u8, off).vni <= 0xffffff);
      }
    },
  },
  {
    name: 'dhcp',
    run(u8, off, len) {
      const r = parseDhcp(u8, off, len);
      if (r.ok) {
        assert.ok(checkDhcp(u8, off, len) === null);
        const v = new DhcpView(u8, off);
        assert.equal(v.messageType(len), r.value.messageType);
        void [v.chaddr, v.findOption(len, 54)];
      }
    },
  },
  {
    name: 'dissect',
    run(u8, off, len) {
      const d = dissect(u8, off, len);
      for (const l of d.layers) assert.ok(l.offset >= off && l.offset <= off + len);
    },
  },
];

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const r = rnd();
  let b: Uint8Array;
  if (r < 0.2) {
    b = src.slice(0, Math.floor(rnd() * (src.length + 1))); // truncate
  } else if (r < 0.3) {
    const n = Math.floor(rnd() * 16); // grow with junk
    b = new Uint8Array(src.length + n);
    b.set(src);
    for (let i = src.length; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
  } else b = src.slice();
  const flips = 1 + Math.floor(rnd() * 6);
  for (let i = 0; i < flips && b.length > 0; i++) {
    const p = Math.floor(rnd() * b.length);
    // favour bytes that are lengths, flags and small numbers
    const pick = rnd();
    b[p] = pick < 0.3 ? 0 : pick < 0.45 ? 0xff : pick < 0.6 ? Math.floor(rnd() * 16) : Math.floor(rnd() * 256);
  }
  return b;
}

describe('wire parsers never throw', () => {
  it('200k random and mutated inputs to every parser; accepted input is self-consistent', (t) => {
    const rnd = prng(0x5eed_1234);
    const base = seeds();
    assert.ok(base.length > 150, `${base.length} seed frames`);
    const N = 200_000;
    let accepted = 0;
    for (let i = 0; i < N; i++) {
      let u8: Uint8Array;
      if (i % 4 === 0) {
        u8 = new Uint8Array(Math.floor(rnd() * 400));
        for (let j = 0; j < u8.length; j++) u8[j] = Math.floor(rnd() * 256);
      } else u8 = mutate(base[Math.floor(rnd() * base.length)]!, rnd);
      // mostly consistent windows at header boundaries, sometimes arbitrary (even past the buffer or negative)
      const c = CASES[i % CASES.length]!;
      const offs = [0, 14, 18, 22, 34, 38, 42, 50, 54, 62, 64, 76, 84];
      let off = rnd() < 0.8 ? offs[Math.floor(rnd() * offs.length)]! : Math.floor(rnd() * (u8.length + 8)) - 4;
      let len = u8.length - off;
      if (rnd() < 0.1) len += Math.floor(rnd() * 20) - 10;
      if (rnd() < 0.02) off = -Math.floor(rnd() * 5);
      try {
        c.run(u8, off, len);
        if (c.name === 'dissect' && dissect(u8, off, len).error === null) accepted++;
      } catch (err) {
        const hex = Buffer.from(u8).toString('hex');
        assert.fail(`${c.name} threw on input #${i} off=${off} len=${len} bytes=${hex}: ${String(err)}`);
      }
    }
    t.diagnostic(`${N} inputs, ${base.length} seed frames, dissect accepted ${accepted}`);
    assert.ok(accepted > 100, `dissect accepted ${accepted} inputs`); // the mutations still reach deep layers
  });

  it('address and prefix parsers take any string', () => {
    const rnd = prng(42);
    const alphabet = '0123456789abcdefABCDEF:./x- %';
    for (let i = 0; i < 20_000; i++) {
      let s = '';
      const n = Math.floor(rnd() * 48);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      parseIpv4Address(s);
      const a6 = parseIpv6Address(s);
      if (a6 !== null) assert.equal(a6.length, 16);
      for (const r of [parseIpv4Prefix(s), parseIpv6Prefix(s), parsePrefix(s, true)]) if (!r.ok) assert.ok(r.reason.length > 0);
    }
  });
});
