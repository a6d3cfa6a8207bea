// virtualization/policy-table.test.ts: compiling a NetworkSpec for one host: locality, tenant isolation of the
// indexes, tenant MTU per VSID, provider next hops, customer routes, the numeric hash map.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIpv4Address } from '../wire/addresses.js';
import { compilePolicy, KEY_SPLIT, NumberMap, type DomainEntry } from './policy-table.js';
import { BLUE, hostInput, MAC5, MAC6, MAC7, RED, spec } from './virtualization.test-kit.js';

const ip = (s: string): number => parseIpv4Address(s)!;

describe('policy-table: records and locality', () => {
  it('records are local when their PA is one of this host switch PAs', () => {
    const a = compilePolicy(hostInput('host-a', spec()));
    const b = compilePolicy(hostInput('host-b', spec()));
    assert.deepEqual(a.ownPaList.map((p) => p.text), ['192.0.2.1/24']);
    assert.equal(a.byVsidMac(5001, MAC5)!.local, true);
    assert.equal(a.byVsidMac(5001, MAC6)!.local, false);
    assert.equal(b.byVsidMac(5001, MAC5)!.local, false);
    assert.equal(b.byVsidMac(5001, MAC6)!.local, true);
    assert.equal(a.subnets.get(5001)!.records, 2);
    assert.equal(a.subnets.get(5001)!.localRecords, 1);
  });

  it('a PA of the same host on another switch is not ours', () => {
    const s = spec();
    const t = compilePolicy({ ...hostInput('host-a', s), switchName: 'sw1' });
    assert.equal(t.ownPaList.length, 0);
    assert.equal(t.records.every((r) => !r.local), true);
  });

  it('the same CA and MAC in two routing domains are two separate records', () => {
    const t = compilePolicy(hostInput('host-a', spec()));
    const red = t.byVsidMac(5001, MAC6)!;
    const blue = t.byVsidMac(6001, MAC6)!;
    assert.notEqual(red, blue);
    assert.equal(red.subnet.domain.id, RED);
    assert.equal(blue.subnet.domain.id, BLUE);
    assert.equal(red.subnet.domain.byCa.get(ip('10.0.0.6')), red);
    assert.equal(blue.subnet.domain.byCa.get(ip('10.0.0.6')), blue);
    // a VSID of blue never finds a red MAC index and vice versa
    assert.equal(t.byVsidMac(5003, MAC6), undefined);
    assert.equal(t.subnets.get(5002)!.domain, t.subnets.get(5001)!.domain);
    assert.notEqual(t.subnets.get(6001)!.domain, t.subnets.get(5001)!.domain);
  });

  it('rewrite records are indexed by their own PA; those PAs are not tunnel sources', () => {
    const t = compilePolicy(hostInput('host-a', spec({ rule: 'rewrite' })));
    const r = t.rewriteByPa.get(ip('192.0.2.16'))!;
    assert.equal(r.caText, '10.0.0.6');
    assert.equal(r.vsid, 5001);
    assert.equal(r.local, false);
    assert.equal(t.rewriteByPa.get(ip('192.0.2.15'))!.local, true);
    assert.equal(t.ownPas.get(ip('192.0.2.15'))!.rewrite, true);
    assert.equal(t.ownPas.get(ip(PA_A_ADDR))!.rewrite, false);
    assert.equal(t.sourcePaFor(ip('192.0.2.16'))!.addr, ip(PA_A_ADDR));
  });
});

const PA_A_ADDR = '192.0.2.1';

describe('policy-table: tenant MTU', () => {
  it('NVGRE 42, VXLAN 50, rewrite 0 against the underlay MTU', () => {
    assert.equal(compilePolicy(hostInput('host-a', spec({ rule: 'encap' }))).subnets.get(5001)!.tenantMtu, 1458);
    assert.equal(compilePolicy(hostInput('host-a', spec({ rule: 'vxlan' }))).subnets.get(5001)!.tenantMtu, 1450);
    assert.equal(compilePolicy(hostInput('host-a', spec({ rule: 'rewrite' }))).subnets.get(5001)!.tenantMtu, 1500);
    assert.equal(compilePolicy(hostInput('host-a', spec({ rule: 'encap' }), 1542)).subnets.get(5001)!.tenantMtu, 1500);
  });

  it('the largest overhead over the remote records of the VSID; per record the rule own MTU', () => {
    const s = spec({
      rule: 'rewrite',
      extraRecords: [{ ca: '10.0.0.9', vsid: 5001, mac: '02:00:00:00:00:09', pa: '192.0.2.2', rule: 'vxlan', vm: null }],
    });
    const t = compilePolicy(hostInput('host-a', s));
    assert.equal(t.subnets.get(5001)!.tenantMtu, 1450);
    assert.equal(t.subnets.get(6001)!.tenantMtu, 1500);
    assert.equal(t.byVsidMac(5001, MAC6)!.mtu, 1500);
    assert.equal(t.byVsidMac(5001, 0x02_00_00_00_00_09)!.mtu, 1450);
  });

  it('a VSID without remote records assumes NVGRE', () => {
    const s = spec({ hostOf: { vm6: 'host-a', vm7: 'host-a' } });
    const t = compilePolicy(hostInput('host-a', s, 1500));
    assert.equal(t.subnets.get(5001)!.maxRemoteOverhead, -1);
    assert.equal(t.subnets.get(5001)!.tenantMtu, 1458);
  });
});

describe('policy-table: underlay next hops', () => {
  it('on-link PAs are their own next hop; provider routes by longest prefix; none = 0', () => {
    const extra = [
      { ca: '10.0.0.20', vsid: 5001, mac: '02:00:00:00:00:20', pa: '203.0.113.9', rule: 'encap' as const, vm: null },
      { ca: '10.0.0.21', vsid: 5001, mac: '02:00:00:00:00:21', pa: '198.51.100.9', rule: 'encap' as const, vm: null },
    ];
    const routes = [
      { host: 'host-a', prefix: '0.0.0.0/0', nextHop: '192.0.2.254' },
      { host: 'host-a', prefix: '198.51.100.0/24', nextHop: '192.0.2.253' },
      { host: 'host-b', prefix: '203.0.113.0/24', nextHop: '192.0.2.99' },
    ];
    const t = compilePolicy(hostInput('host-a', spec({ extraRecords: extra, providerRoutes: routes })));
    assert.equal(t.byVsidMac(5001, MAC6)!.nextHop, ip('192.0.2.2'));
    assert.equal(t.byVsidMac(5001, 0x02_00_00_00_00_20)!.nextHop, ip('192.0.2.254'));
    assert.equal(t.byVsidMac(5001, 0x02_00_00_00_00_21)!.nextHop, ip('192.0.2.253'));
    assert.deepEqual(
      t.nextHops.map((n) => n.ip).sort(),
      [ip('192.0.2.2'), ip('192.0.2.254'), ip('192.0.2.253')].sort(),
    );
    assert.equal(t.nextHops.every((n) => n.srcPa === ip('192.0.2.1')), true);
    const nr = compilePolicy(hostInput('host-a', spec({ extraRecords: extra })));
    assert.equal(nr.byVsidMac(5001, 0x02_00_00_00_00_20)!.nextHop, 0);
    assert.equal(nr.nextHopSet.has(0), false);
  });

  it('fixed FlowIDs per remote PA; VLAN of the PA', () => {
    const t = compilePolicy(hostInput('host-a', spec({ remotes: [{ pa: '192.0.2.2', flowId: 42 }], paVlan: 30 })));
    assert.equal(t.byVsidMac(5001, MAC6)!.flowId, 42);
    assert.equal(t.byVsidMac(5001, MAC6)!.vlan, 30);
    assert.equal(t.byVsidMac(5001, MAC5)!.flowId, -1);
  });
});

describe('policy-table: customer routes', () => {
  it('longest prefix in the routing domain leads to its next-hop record; on-link needs a record', () => {
    const routes = [
      { rdid: RED, vsid: 5002, prefix: '172.16.0.0/12', nextHop: '10.0.1.7' },
      { rdid: RED, vsid: 5001, prefix: '172.16.5.0/24', nextHop: '10.0.0.6' },
      { rdid: RED, vsid: 5001, prefix: '10.0.0.0/24', nextHop: '0.0.0.0' },
    ];
    const t = compilePolicy(hostInput('host-a', spec({ customerRoutes: routes })));
    const route = (d: DomainEntry, ca: string) => t.customerRoute(d, Math.floor(ip(ca) / KEY_SPLIT), ip(ca) % KEY_SPLIT);
    const red = t.subnets.get(5001)!.domain;
    const blue = t.subnets.get(6001)!.domain;
    assert.equal(route(red, '172.17.1.1')!.mac, MAC7);
    assert.equal(route(red, '172.16.5.1')!.mac, MAC6);
    assert.equal(route(red, '10.0.0.6')!.mac, MAC6);
    assert.equal(route(red, '10.0.0.99'), undefined);
    assert.equal(route(blue, '172.17.1.1'), undefined);
  });
});

describe('policy-table: robustness', () => {
  it('unparsable entries are skipped with a warning, never thrown', () => {
    const s = spec();
    const bad = {
      ...s,
      providerAddresses: [...s.providerAddresses, { host: 'host-a', switch: 'sw0', address: 'nonsense', vlan: 0 }],
      lookupRecords: [...s.lookupRecords, { ca: '10.0.0.x', vsid: 5001, mac: 'zz', pa: '1.2.3.4', rule: 'encap' as const, vm: null }],
      customerRoutes: [{ rdid: '{nope}', vsid: 5001, prefix: '1.0.0.0/8', nextHop: '10.0.0.6' }],
    };
    const t = compilePolicy(hostInput('host-a', bad));
    assert.equal(t.warnings.length, 3);
    assert.equal(t.records.length, s.lookupRecords.length);
  });
});

describe('NumberMap', () => {
  it('48-bit keys: set, replace, get, grow, miss', () => {
    const m = new NumberMap<number>(4);
    const keys: number[] = [];
    let x = 0x1234_5678_9abc;
    for (let i = 0; i < 5000; i++) {
      x = (x * 48271 + 11) % 0xffff_ffff_ffff;
      keys.push(x);
      m.set(x, i);
    }
    m.set(keys[10]!, -1);
    assert.equal(m.size, new Set(keys).size);
    for (let i = 0; i < keys.length; i++) if (i !== 10 && keys.indexOf(keys[i]!) === i) assert.equal(m.get(keys[i]!), i);
    assert.equal(m.get(keys[10]!), -1);
    assert.equal(m.get(0xffff_ffff_ffff), undefined);
    assert.equal(m.get(0), undefined);
    // keys that differ only in the high 16 bits or only in the low 32 bits
    const n = new NumberMap<string>();
    n.set(0x0001_0000_0000, 'hi');
    n.set(0x0000_0000_0001, 'lo');
    n.set(0xffff_ffff, 'u32');
    assert.equal(n.get(0x0001_0000_0000), 'hi');
    assert.equal(n.get(1), 'lo');
    assert.equal(n.get(0xffff_ffff), 'u32');
    assert.deepEqual([...n.values()].sort(), ['hi', 'lo', 'u32']);
    // the data path's split lookup finds the same entries
    assert.equal(n.at(0, 1), 'lo');
    assert.equal(n.at(0x100, 0), 'hi');
    assert.equal(n.at(0xff, 0xffffff), 'u32');
    assert.equal(m.at(Math.floor(keys[7]! / KEY_SPLIT), keys[7]! % KEY_SPLIT), m.get(keys[7]!));
  });
});
