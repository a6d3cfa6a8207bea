// wire/addresses.test.ts: IPv4/IPv6 address and prefix parsing/formatting, including '::' compression (RFC 5952).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatIpv4Address,
  formatIpv6Address,
  formatPrefix,
  ipv4PrefixContains,
  ipv6PrefixContains,
  parseIpv4Address,
  parseIpv4Prefix,
  parseIpv6Address,
  parseIpv6Prefix,
  parsePrefix,
  prefixContains,
} from './addresses.js';

const hex = (a: Uint8Array | null): string | null => (a === null ? null : Buffer.from(a).toString('hex'));

describe('IPv4 addresses', () => {
  it('parses dotted quads to uint32 and formats back', () => {
    assert.equal(parseIpv4Address('10.0.0.1'), 0x0a000001);
    assert.equal(parseIpv4Address('255.255.255.255'), 0xffffffff);
    assert.equal(parseIpv4Address('0.0.0.0'), 0);
    assert.equal(parseIpv4Address('192.168.200.7'), 0xc0a8c807);
    assert.equal(formatIpv4Address(0xc0a8c807), '192.168.200.7');
    assert.equal(formatIpv4Address(0xffffffff), '255.255.255.255');
  });
  it('rejects malformed input with null', () => {
    for (const s of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.-4', 'a.b.c.d', '1..2.3', ' 1.2.3.4', '1.2.3.4/8'])
      assert.equal(parseIpv4Address(s), null, s);
  });
});

describe('IPv6 addresses', () => {
  it('parses full, compressed and IPv4-embedded forms', () => {
    assert.equal(hex(parseIpv6Address('2001:db8::1')), '20010db8000000000000000000000001');
    assert.equal(hex(parseIpv6Address('::')), '0'.repeat(32));
    assert.equal(hex(parseIpv6Address('::1')), '0'.repeat(31) + '1');
    assert.equal(hex(parseIpv6Address('fe80::')), 'fe80' + '0'.repeat(28));
    assert.equal(hex(parseIpv6Address('1:2:3:4:5:6:7:8')), '00010002000300040005000600070008');
    assert.equal(hex(parseIpv6Address('::ffff:10.0.0.1')), '00000000000000000000ffff0a000001');
    assert.equal(hex(parseIpv6Address('FD00:0:0:0:0:0:0:ABCD')), 'fd00000000000000000000000000abcd');
  });
  it('rejects malformed input with null', () => {
    for (const s of ['', ':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', '1:2:3:4:5:6:7::8', '::1.2.3', '::ffff:256.0.0.1', '1.2.3.4'])
      assert.equal(parseIpv6Address(s), null, s);
  });
  it('formats per RFC 5952: lower case, longest zero run compressed, first on ties, no single-group ::', () => {
    const f = (s: string): string => formatIpv6Address(parseIpv6Address(s)!);
    assert.equal(f('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(f('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(f('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
    assert.equal(f('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(f('::'), '::');
    assert.equal(f('ff02::1:ff00:2'), 'ff02::1:ff00:2');
    assert.equal(f('1:0:0:0:0:0:0:0'), '1::');
  });
  it('round-trips random addresses', () => {
    let x = 12345;
    for (let i = 0; i < 2000; i++) {
      const a = new Uint8Array(16);
      for (let j = 0; j < 16; j++) {
        x = (x * 1103515245 + 12345) >>> 0;
        a[j] = (x >>> 16) % 4 === 0 ? 0 : x >>> 24; // many zero bytes, so runs get compressed
      }
      assert.equal(hex(parseIpv6Address(formatIpv6Address(a))), hex(a));
    }
  });
});

describe('prefixes', () => {
  it('parses, contains, formats IPv4 prefixes', () => {
    const p = parseIpv4Prefix('10.0.0.0/24');
    assert.ok(p.ok);
    assert.equal(p.value.mask, 0xffffff00);
    assert.ok(ipv4PrefixContains(p.value, parseIpv4Address('10.0.0.255')!));
    assert.ok(!ipv4PrefixContains(p.value, parseIpv4Address('10.0.1.0')!));
    assert.equal(formatPrefix(p.value), '10.0.0.0/24');
    const all = parseIpv4Prefix('0.0.0.0/0');
    assert.ok(all.ok && ipv4PrefixContains(all.value, 0xffffffff));
    const host = parseIpv4Prefix('192.0.2.7');
    assert.ok(host.ok && host.value.length === 32 && ipv4PrefixContains(host.value, 0xc0000207));
  });
  it('host bits: cleared by default, an error with strict', () => {
    const p = parseIpv4Prefix('10.0.0.5/24');
    assert.ok(p.ok && formatPrefix(p.value) === '10.0.0.0/24');
    const s = parseIpv4Prefix('10.0.0.5/24', true);
    assert.ok(!s.ok && s.reason.includes('host bits'));
  });
  it('rejects bad prefixes with a reason', () => {
    for (const s of ['10.0.0.0/33', '10.0.0.0/', '10.0.0/8', '10.0.0.0/08', '10.0.0.0/-1', 'x/8']) {
      const r = parseIpv4Prefix(s);
      assert.ok(!r.ok && r.reason.length > 0, s);
    }
    const r6 = parseIpv6Prefix('fd00::/129');
    assert.ok(!r6.ok && r6.reason.includes('exceeds'));
  });
  it('IPv6 prefixes on and off byte boundaries', () => {
    const p = parseIpv6Prefix('fd00:1:2::/48');
    assert.ok(p.ok);
    assert.ok(ipv6PrefixContains(p.value, parseIpv6Address('fd00:1:2:ffff::1')!));
    assert.ok(!ipv6PrefixContains(p.value, parseIpv6Address('fd00:1:3::1')!));
    const q = parseIpv6Prefix('fe80::/10');
    assert.ok(q.ok);
    assert.ok(ipv6PrefixContains(q.value, parseIpv6Address('febf::1')!));
    assert.ok(!ipv6PrefixContains(q.value, parseIpv6Address('fec0::1')!));
    const h = parseIpv6Prefix('fd00::1:2/112');
    assert.ok(h.ok && formatPrefix(h.value) === 'fd00::1:0/112');
  });
  it('parsePrefix picks the family; prefixContains refuses the other family', () => {
    const a = parsePrefix('10.1.0.0/16');
    const b = parsePrefix('2001:db8::/32');
    assert.ok(a.ok && a.value.family === 4 && b.ok && b.value.family === 6);
    assert.ok(prefixContains(a.value, 0x0a01ffff));
    assert.ok(!prefixContains(a.value, parseIpv6Address('2001:db8::1')!));
    assert.ok(prefixContains(b.value, parseIpv6Address('2001:db8::1')!));
    assert.ok(!prefixContains(b.value, 0x0a01ffff));
  });
});
