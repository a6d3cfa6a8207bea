// control/config.test.ts: document validation lists every error with its path; normal documents round-trip.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_NETWORK } from '../virtualization/model.js';
import { parseDocumentText, portDoc, resolveExtensionPaths, toDocument, validateDocument } from './config.js';

function errorsOf(doc: unknown): Map<string, string> {
  const v = validateDocument(doc);
  assert.equal(v.ok, false, 'document should be rejected');
  if (v.ok) return new Map();
  return new Map(v.errors.map((e) => [e.path, e.message]));
}

const good = {
  host: 'h1',
  switches: [{
    name: 'sw0',
    uplink: { interface: 'eth1' },
    extensions: [{ name: 'count', path: '/x/count.js', config: { a: 1 } }],
    ports: [
      { name: 'vm1', interface: { tap: 'xs-vm1' }, mac: '02:00:00:00:00:0A', vlan: { mode: 'access', id: 10 } },
      { name: 'vm2', interface: { veth: 'veth-b' }, vlan: { mode: 'trunk', allowed: [10, 20], native: 10 }, vsid: 5001, offload: false },
      { name: 'host', interface: { internal: true }, up: false, macLimit: 5 },
    ],
  }],
};

describe('validateDocument', () => {
  it('accepts a full document and fills defaults', () => {
    const v = validateDocument(good);
    assert.ok(v.ok, JSON.stringify(v));
    const sw = v.value.switches[0]!;
    assert.equal(sw.ports[0]!.mac, '02:00:00:00:00:0a');
    assert.equal(sw.ports[0]!.offload, true);
    assert.equal(sw.ports[0]!.up, true);
    assert.equal(sw.ports[0]!.vsid, 0);
    assert.deepEqual(sw.ports[2]!.vlan, { mode: 'none' });
    assert.equal(sw.extensions[0]!.enabled, true);
    assert.deepEqual(sw.uplink, { interface: 'eth1', offload: true, tunnelOffload: false, qos: {} });
  });

  it('uplink.tunnelOffload: opt-in, boolean, needs offload, and round-trips', () => {
    const doc = (uplink: unknown): unknown => ({ switches: [{ name: 'sw0', uplink, ports: [] }] });
    const v = validateDocument(doc({ interface: 'up0', tunnelOffload: true }));
    assert.ok(v.ok, JSON.stringify(v));
    assert.deepEqual(v.value.switches[0]!.uplink, { interface: 'up0', offload: true, tunnelOffload: true, qos: {} });
    const out = toDocument(v.value) as { switches: { uplink: unknown }[] };
    assert.deepEqual(out.switches[0]!.uplink, { interface: 'up0', tunnelOffload: true });
    const again = validateDocument(JSON.parse(JSON.stringify(out)));
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
    assert.match(errorsOf(doc({ interface: 'up0', tunnelOffload: 'yes' })).get('switches[0].uplink.tunnelOffload')!, /true or false/);
    assert.match(errorsOf(doc({ interface: 'up0', offload: false, tunnelOffload: true })).get('switches[0].uplink.tunnelOffload')!, /needs offload/);
    const plain = validateDocument(doc({ interface: 'up0', offload: false }));
    assert.ok(plain.ok);
    assert.deepEqual((toDocument(plain.value) as { switches: { uplink: unknown }[] }).switches[0]!.uplink, { interface: 'up0', offload: false });
  });

  it('round-trips through toDocument', () => {
    const v = validateDocument(good);
    assert.ok(v.ok);
    const again = validateDocument(JSON.parse(JSON.stringify(toDocument(v.value))));
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
  });

  it('accepts an empty document (no switches)', () => {
    for (const d of [{}, null, { switches: [] }]) {
      const v = validateDocument(d);
      assert.ok(v.ok);
      assert.equal(v.value.switches.length, 0);
    }
  });

  it('lists every error with its path', () => {
    const e = errorsOf({
      switchez: [],
      switches: [
        {
          name: 'sw0',
          ports: [
            { name: 'vm1', interface: { tap: 'xs-vm1' }, mac: '01:00:5e:00:00:01' },
            { name: 'vm1', interface: { tap: 'xs-vm2' } },
            { name: 'vm3', interface: { tap: 'xs-vm1' }, vlan: { mode: 'access', id: 4095 } },
            { name: 'vm4', interface: { tap: 'a-very-long-interface-name' }, vsid: 100 },
            { name: 'vm5', interface: { tap: 'ok5' }, vlan: { mode: 'trunk', allowed: [10, 10], native: 30 }, mac: 'zz' },
            { name: 'vm6', interface: { tap: 'ok6' }, vlan: { mode: 'trunk', allowed: [] }, speed: 10 },
            { name: 'bad/name', interface: { tap: 'has space' } },
          ],
        },
        { name: 'sw0', ports: [] },
      ],
    });
    assert.match(e.get('switchez')!, /unknown key/);
    assert.match(e.get('switches[0].ports[0].mac')!, /unicast/);
    assert.match(e.get('switches[0].ports[1].name')!, /already defined at switches\[0\]\.ports\[0\]/);
    assert.match(e.get('switches[0].ports[2].interface.tap')!, /already used at switches\[0\]\.ports\[0\]\.interface\.tap/);
    assert.match(e.get('switches[0].ports[2].vlan.id')!, /1\.\.4094, got 4095/);
    assert.match(e.get('switches[0].ports[3].interface.tap')!, /longer than 15/);
    assert.match(e.get('switches[0].ports[3].vsid')!, /4096\.\.16777214/);
    assert.match(e.get('switches[0].ports[4].vlan.allowed[1]')!, /listed twice/);
    assert.match(e.get('switches[0].ports[4].vlan.native')!, /not in the allowed list/);
    assert.match(e.get('switches[0].ports[4].mac')!, /not a MAC/);
    assert.match(e.get('switches[0].ports[5].vlan.allowed')!, /non-empty/);
    assert.match(e.get('switches[0].ports[5].speed')!, /unknown key "speed"/);
    assert.match(e.get('switches[0].ports[6].name')!, /'\/'/);
    assert.match(e.get('switches[0].ports[6].interface.tap')!, /whitespace/);
    assert.match(e.get('switches[1].name')!, /already defined at switches\[0\]/);
    assert.equal(e.size, 15, [...e.keys()].join('\n'));
  });

  it('takes guards, mirror, QoS and acls; checks QoS values', () => {
    const all = validateDocument({ network: { routingDomains: [] }, switches: [{ name: 's', ports: [{ name: 'p', interface: { tap: 't' }, policy: { maxMbps: 100, mirror: 'source', dhcpGuard: true }, acls: [] }] }] });
    assert.ok(all.ok, JSON.stringify(all));
    const q = errorsOf({ switches: [{ name: 's', ports: [{ name: 'p', interface: { tap: 't' }, policy: { maxMbps: 0, minWeight: 101, minMbps: 5, linkMbps: 'fast' } }] }] });
    assert.match(q.get('switches[0].ports[0].policy.maxMbps')!, /1\.\.400000/);
    assert.match(q.get('switches[0].ports[0].policy.minWeight')!, /1\.\.100/);
    assert.match(q.get('switches[0].ports[0].policy.linkMbps')!, /Mbit/);
    const ok = validateDocument({ switches: [{ name: 's', ports: [{ name: 'p', interface: { tap: 't' }, policy: { maxMbps: 50, minWeight: 3, linkMbps: 100, dhcpGuard: true } }] }] });
    assert.ok(ok.ok, JSON.stringify(ok));
    const up = validateDocument({ switches: [{ name: 's', uplink: { interface: 'up0', policy: { linkMbps: 1000, pcpWeights: [1, 1, 1, 2, 1, 4, 1, 1] } } }] });
    assert.ok(up.ok, JSON.stringify(up));
    if (up.ok) assert.deepEqual(up.value.switches[0]!.uplink!.qos, { linkMbps: 1000, pcpWeights: [1, 1, 1, 2, 1, 4, 1, 1] });
    const bad = errorsOf({ switches: [{ name: 's', uplink: { interface: 'up0', policy: { dhcpGuard: true, pcpWeights: [1, 2] } } }] });
    assert.match(bad.get('switches[0].uplink.policy.dhcpGuard')!, /unknown key/);
    assert.ok(bad.has('switches[0].uplink.policy.pcpWeights'));
    if (ok.ok) {
      assert.deepEqual(ok.value.switches[0]!.ports[0]!.qos, { maxMbps: 50, minWeight: 3, linkMbps: 100 });
      assert.deepEqual(portDoc(ok.value.switches[0]!.ports[0]!)['policy'], { dhcpGuard: true, maxMbps: 50, minWeight: 3, linkMbps: 100 });
    }
  });

  it('uplink.policy.mirror: source / destination / none, round-trips, bad values refused', () => {
    const doc = (uplink: unknown): unknown => ({ switches: [{ name: 'sw0', uplink, ports: [] }] });
    const v = validateDocument(doc({ interface: 'up0', policy: { mirror: 'source' } }));
    assert.ok(v.ok, JSON.stringify(v));
    assert.deepEqual(v.value.switches[0]!.uplink, { interface: 'up0', offload: true, tunnelOffload: false, qos: {}, mirror: 'source' });
    const out = toDocument(v.value) as { switches: { uplink: unknown }[] };
    assert.deepEqual(out.switches[0]!.uplink, { interface: 'up0', policy: { mirror: 'source' } });
    const again = validateDocument(JSON.parse(JSON.stringify(out)));
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
    const none = validateDocument(doc({ interface: 'up0', policy: { mirror: 'none' } }));
    assert.ok(none.ok);
    assert.deepEqual(none.value.switches[0]!.uplink, { interface: 'up0', offload: true, tunnelOffload: false, qos: {} });
    assert.match(errorsOf(doc({ interface: 'up0', policy: { mirror: 'out' } })).get('switches[0].uplink.policy.mirror')!, /must be source, destination or none/);
    assert.match(errorsOf(doc({ interface: 'up0', mirror: 'source' })).get('switches[0].uplink.mirror')!, /unknown key/);
  });

  it('validates policy.mirror, normalizes it, and round-trips', () => {
    const doc = (policy: unknown): unknown => ({ switches: [{ name: 's', ports: [
      { name: 'a', interface: { tap: 'ta' }, policy },
      { name: 'm1', interface: { tap: 't1' }, policy: { mirror: 'destination' } },
      { name: 'm2', interface: { tap: 't2' }, policy: { mirror: 'destination' } },
    ] }] });
    const ok = validateDocument(doc({ mirror: 'source' }));
    assert.ok(ok.ok, JSON.stringify(ok));
    const ports = ok.value.switches[0]!.ports;
    assert.deepEqual(ports.map((p) => p.mirror), ['source', 'destination', 'destination'], 'several destinations are fine');
    assert.deepEqual(portDoc(ports[0]!)['policy'], { mirror: 'source' });
    const none = validateDocument(doc({ mirror: 'none' }));
    assert.ok(none.ok);
    assert.equal(none.value.switches[0]!.ports[0]!.mirror, 'none');
    assert.equal(portDoc(none.value.switches[0]!.ports[0]!)['policy'], undefined, 'none is the default: not written back');
    assert.equal(validateDocument(doc(undefined)).ok, true);
    for (const bad of ['both', 1, true, 'Source']) {
      const e = errorsOf(doc({ mirror: bad }));
      assert.match(e.get('switches[0].ports[0].policy.mirror')!, /must be source, destination or none/, String(bad));
    }
    assert.match(errorsOf(doc('source')).get('switches[0].ports[0].policy')!, /must be an object/);
    assert.match(errorsOf(doc({ mirorr: 'source' })).get('switches[0].ports[0].policy.mirorr')!, /unknown key/);
  });

  it('validates port ACLs and extended ACLs with per-path errors, normalizes them, and round-trips', () => {
    const port = (acls: unknown, extendedAcls: unknown): unknown => ({ switches: [{ name: 's', ports: [{ name: 'p', interface: { tap: 't' }, acls, extendedAcls }] }] });
    const e = errorsOf(port(
      [{ direction: 'sideways', action: 'deny', remote: '10.0.0.0/24' }, { direction: 'in', action: 'deny', remote: '10.0.0.5/24' },
        { direction: 'in', action: 'allow' }, { direction: 'out', action: 'meter', local: '10.0.0.1', remote: 'fd00::/64' }, { direction: 'in', action: 'deny', remote: '02:00:00:00:00:zz' }],
      [{ direction: 'out', action: 'allow', weight: 5, protocol: 'tcp', remotePort: '90-80' }, { direction: 'both', action: 'deny', weight: 5 },
        { direction: 'out', action: 'deny', weight: 5 }, { direction: 'in', action: 'allow', weight: 1, protocol: 'icmp', localPort: 22 },
        { direction: 'in', action: 'deny', weight: 2, stateful: true }, { direction: 'in', action: 'allow', weight: 3, idleTimeoutSec: 5 },
        { direction: 'in', action: 'allow', weight: 0, protocol: 'sctp' }, { direction: 'in', action: 'allow', weight: 4, remoteAddress: '02:00:00:00:00:01' }],
    ));
    const want: [string, RegExp][] = [
      ['switches[0].ports[0].acls[0].direction', /one of in, out, both/],
      ['switches[0].ports[0].acls[1].remote', /host bits set/],
      ['switches[0].ports[0].acls[2]', /needs a local or remote address/],
      ['switches[0].ports[0].acls[3].remote', /mixes IPv4 \(local\) and IPv6 \(remote\)/],
      ['switches[0].ports[0].acls[4].remote', /not an IP prefix/],
      ['switches[0].ports[0].extendedAcls[0].remotePort', /range out of order/],
      ['switches[0].ports[0].extendedAcls[2].weight', /weight 5 is already used for direction out at switches\[0\]\.ports\[0\]\.extendedAcls\[0\]/],
      ['switches[0].ports[0].extendedAcls[3].localPort', /ports need protocol tcp or udp/],
      ['switches[0].ports[0].extendedAcls[4].stateful', /only allow rules can be stateful/],
      ['switches[0].ports[0].extendedAcls[5].idleTimeoutSec', /stateful rules only/],
      ['switches[0].ports[0].extendedAcls[6].weight', /must be an integer 1\.\./],
      ['switches[0].ports[0].extendedAcls[6].protocol', /tcp, udp, icmp or an IP protocol number/],
      ['switches[0].ports[0].extendedAcls[7].remoteAddress', /only IP prefixes/],
    ];
    for (const [path, re] of want) assert.match(e.get(path) ?? `(no error at ${path}: ${[...e.keys()].join(', ')})`, re, path);
    const ok = validateDocument(port(
      [{ direction: 'in', action: 'deny', remote: '10.0.9.0/24' }, { direction: 'both', action: 'meter', local: '02-00-00-00-00-0A' }],
      [{ direction: 'out', action: 'allow', weight: 10, protocol: 6, remotePort: '1024-2048', stateful: true, idleTimeoutSec: 2, remoteAddress: '10.0.0.2' }],
    ));
    assert.ok(ok.ok, JSON.stringify(ok));
    if (!ok.ok) return;
    const p = ok.value.switches[0]!.ports[0]!;
    assert.deepEqual(p.acls, [{ direction: 'in', action: 'deny', remote: '10.0.9.0/24' }, { direction: 'both', action: 'meter', local: '02:00:00:00:00:0a' }]);
    assert.deepEqual(p.extendedAcls, [{ direction: 'out', action: 'allow', weight: 10, protocol: 'tcp', remoteAddress: '10.0.0.2/32', remotePort: '1024-2048', stateful: true, idleTimeoutSec: 2 }]);
    const again = validateDocument(toDocument(ok.value));
    assert.deepEqual(again, ok);
  });

  it('checks interface kinds, types, vsid 0, internal default names, uplink', () => {
    const e = errorsOf({
      switches: [{
        name: 'a-very-long-sw',
        uplink: { interface: 'eth1', mtu: 9000 },
        ports: [
          { name: 'p0', interface: { tap: 'x', veth: 'y' } },
          { name: 'p1', interface: {} },
          { name: 'p2', interface: { internal: true } },
          { name: 'p3', interface: { tap: 'eth1' }, vsid: 0, up: 'yes', macLimit: -1 },
          { name: 'uplink', interface: { tap: 'u' } },
          'not a port',
        ],
      }],
    });
    assert.match(e.get('switches[0].uplink.mtu')!, /unknown key/);
    assert.match(e.get('switches[0].ports[0].interface')!, /choose one/);
    assert.match(e.get('switches[0].ports[1].interface')!, /needs one of tap, veth, internal/);
    assert.match(e.get('switches[0].ports[2].interface.name')!, /default internal TAP name .* longer than 15/);
    assert.match(e.get('switches[0].ports[3].interface.tap')!, /already used at switches\[0\]\.uplink\.interface/);
    assert.match(e.get('switches[0].ports[3].up')!, /true or false/);
    assert.match(e.get('switches[0].ports[3].macLimit')!, /0\.\.1000000/);
    assert.equal(e.has('switches[0].ports[3].vsid'), false, 'vsid 0 means none');
    assert.match(e.get('switches[0].ports[4].name')!, /external port/);
    assert.match(e.get('switches[0].ports[5]')!, /must be an object/);
  });

  it('checks extensions: names, duplicates, absolute paths, config type', () => {
    const e = errorsOf({
      switches: [{
        name: 'sw0',
        extensions: [
          { name: 'a', path: 'relative.js' },
          { name: 'a', path: '/abs.js', config: [1] },
          { name: 'bad name', path: '/abs.js', enabled: 1 },
          { path: '/abs.js', order: 3 },
        ],
      }],
    });
    assert.match(e.get('switches[0].extensions[0].path')!, /must be absolute/);
    assert.match(e.get('switches[0].extensions[1].config')!, /must be an object/);
    assert.match(e.get('switches[0].extensions[2].name')!, /invalid name/);
    assert.match(e.get('switches[0].extensions[2].enabled')!, /true or false/);
    assert.match(e.get('switches[0].extensions[3].name')!, /must be a string/);
    assert.match(e.get('switches[0].extensions[3].order')!, /unknown key/);
  });

  it('rejects a document that is not an object', () => {
    for (const d of [[], 'text', 3]) assert.match(errorsOf(d).get('')!, /must be an object/);
    assert.match(errorsOf({ switches: {} }).get('switches')!, /must be a list/);
  });
});

describe('parseDocumentText / resolveExtensionPaths', () => {
  it('parses YAML and JSON, reports syntax errors without throwing', () => {
    const y = parseDocumentText('switches:\n  - name: sw0\n');
    assert.ok(y.ok);
    assert.deepEqual(y.value, { switches: [{ name: 'sw0' }] });
    const j = parseDocumentText('{"switches": []}');
    assert.ok(j.ok);
    const bad = parseDocumentText('switches: [\n  - {');
    assert.equal(bad.ok, false);
    const dup = parseDocumentText('host: a\nhost: b\n');
    assert.equal(dup.ok, false, 'duplicate keys are an error');
  });

  it('resolves relative extension paths against a base directory', () => {
    const doc = { switches: [{ name: 's', extensions: [{ name: 'a', path: '../x/a.js' }, { name: 'b', path: '/abs/b.js' }, 'junk'] }] };
    resolveExtensionPaths(doc, '/work/examples');
    assert.equal(doc.switches[0]!.extensions[0]!.constructor, Object);
    assert.deepEqual((doc.switches[0]!.extensions as unknown[]).slice(0, 2), [{ name: 'a', path: '/work/x/a.js' }, { name: 'b', path: '/abs/b.js' }]);
  });
});

const RED = '{11111111-2222-3333-4444-000000000001}';
const BLUE = '{11111111-2222-3333-4444-000000000002}';

/** Two hosts, two tenants with the same CAs and MACs (issue3.md's document). */
function netDoc(): Record<string, unknown> {
  return {
    host: 'host-a',
    switches: [{
      name: 'sw0',
      uplink: { interface: 'up0' },
      ports: [
        { name: 'vm1', interface: { tap: 'xsab1t1' }, mac: '02:00:00:00:00:01', vsid: 5001 },
        { name: 'vm2', interface: { tap: 'xsab1t2' }, mac: '02:00:00:00:00:01', vsid: 6001 },
      ],
    }],
    network: {
      routerMac: '02:58:53:00:00:AA',
      providerAddresses: [
        { host: 'host-b', switch: 'sw0', address: '192.0.2.2/24' },
        { host: 'host-a', switch: 'sw0', address: '192.0.2.1/24' },
        { host: 'host-a', switch: 'sw0', address: '192.0.2.11/24' },
      ],
      providerRoutes: [{ host: 'host-a', prefix: '0.0.0.0/0', nextHop: '192.0.2.254' }],
      remotes: [{ pa: '192.0.2.100', flowId: 42 }],
      routingDomains: [
        { id: BLUE.toUpperCase(), name: 'blue', subnets: [{ vsid: 6001, prefix: '10.0.0.0/24' }] },
        { id: RED.slice(1, -1), name: 'red', subnets: [{ vsid: 5002, prefix: '10.0.1.0/24', gateway: '10.0.1.1' }, { vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] },
      ],
      lookupRecords: [
        { ca: '10.0.0.6', vsid: 5001, mac: '02:00:00:00:00:02', pa: '192.0.2.2', rule: 'encap' },
        { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:01', pa: '192.0.2.1', rule: 'encap', vm: 'vm1' },
        { ca: '10.0.0.5', vsid: 6001, mac: '02:00:00:00:00:01', pa: '192.0.2.11', rule: 'rewrite', vm: 'vm2' },
        { ca: '10.0.1.7', vsid: 5002, mac: '02:00:00:00:00:07', pa: '192.0.2.100', vm: null },
      ],
      customerRoutes: [{ rdid: RED, vsid: 5001, prefix: '10.0.0.0/24', nextHop: '0.0.0.0' }],
    },
  };
}

describe('validateDocument: network', () => {
  it('gives a canonical, sorted NetworkSpec', () => {
    const v = validateDocument(netDoc());
    assert.ok(v.ok, JSON.stringify(v));
    const n = v.value.network;
    assert.equal(n.routerMac, '02:58:53:00:00:aa');
    assert.deepEqual(n.routingDomains.map((r) => [r.id, r.name, r.subnets.map((s) => [s.vsid, s.prefix, s.gateway])]), [
      [RED, 'red', [[5001, '10.0.0.0/24', '10.0.0.1'], [5002, '10.0.1.0/24', '10.0.1.1']]],
      [BLUE, 'blue', [[6001, '10.0.0.0/24', null]]],
    ]);
    assert.deepEqual(n.providerAddresses, [
      { host: 'host-a', switch: 'sw0', address: '192.0.2.1/24', vlan: 0 },
      { host: 'host-a', switch: 'sw0', address: '192.0.2.11/24', vlan: 0 },
      { host: 'host-b', switch: 'sw0', address: '192.0.2.2/24', vlan: 0 },
    ]);
    assert.deepEqual(n.lookupRecords.map((r) => [r.vsid, r.ca, r.rule, r.vm]), [
      [5001, '10.0.0.5', 'encap', 'vm1'], [5001, '10.0.0.6', 'encap', null], [5002, '10.0.1.7', 'encap', null], [6001, '10.0.0.5', 'rewrite', 'vm2'],
    ]);
    assert.deepEqual(n.remotes, [{ pa: '192.0.2.100', flowId: 42 }]);
    assert.deepEqual(n.customerRoutes, [{ rdid: RED, vsid: 5001, prefix: '10.0.0.0/24', nextHop: '0.0.0.0' }]);
  });

  it('round-trips through toDocument, leaving out empty optional lists', () => {
    const v = validateDocument(netDoc());
    assert.ok(v.ok);
    const doc = JSON.parse(JSON.stringify(toDocument(v.value))) as { network: Record<string, unknown> };
    const again = validateDocument(doc);
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
    const small = validateDocument({ network: { routingDomains: [{ id: RED, name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24' }] }] } });
    assert.ok(small.ok);
    assert.deepEqual(toDocument(small.value), { switches: [], network: { providerAddresses: [], routingDomains: [{ id: RED, name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24' }] }], lookupRecords: [] } });
    const none = validateDocument({ switches: [] });
    assert.ok(none.ok);
    assert.equal(none.value.network, EMPTY_NETWORK);
    assert.deepEqual(toDocument(none.value), { switches: [] });
  });

  it('accepts IPv6 prefixes, gateways and CAs (dual-stack and IPv6-only subnets) and reads them back canonically', () => {
    const v = validateDocument({ network: {
      providerAddresses: [{ host: 'h', switch: 'sw0', address: '192.0.2.1/24' }],
      routingDomains: [{ id: RED, name: 'red', subnets: [
        { vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1', prefix6: 'FD00:1:0:0::/64', gateway6: 'fd00:1::1' },
        { vsid: 5002, prefix6: 'fd00:2::/64' },
      ] }],
      lookupRecords: [
        { ca: 'fd00:1::5', vsid: 5001, mac: '02:00:00:00:00:05', pa: '192.0.2.1', rule: 'vxlan' },
        { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:05', pa: '192.0.2.1' },
        { ca: 'fd00:2:0::7', vsid: 5002, mac: '02:00:00:00:00:07', pa: '192.0.2.2' },
      ],
      customerRoutes: [
        { rdid: RED, vsid: 5001, prefix: 'fd00:99::/64', nextHop: 'fd00:2::7' },
        { rdid: RED, vsid: 5001, prefix: 'fd00:98::/64', nextHop: '0::0' },
        { rdid: RED, vsid: 5001, prefix: '10.9.0.0/16', nextHop: '10.0.0.5' },
      ],
    } });
    assert.ok(v.ok, v.ok ? '' : v.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
    const rd = v.value.network.routingDomains[0]!;
    assert.deepEqual(rd.subnets, [
      { vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1', prefix6: 'fd00:1::/64', gateway6: 'fd00:1::1' },
      { vsid: 5002, prefix: null, gateway: null, prefix6: 'fd00:2::/64', gateway6: null },
    ]);
    assert.deepEqual(v.value.network.lookupRecords.map((r) => r.ca), ['10.0.0.5', 'fd00:1::5', 'fd00:2::7']);
    assert.deepEqual(v.value.network.customerRoutes.map((r) => `${r.prefix} ${r.nextHop}`), ['10.9.0.0/16 10.0.0.5', 'fd00:98::/64 ::', 'fd00:99::/64 fd00:2::7']);
    const again = validateDocument(JSON.parse(JSON.stringify(toDocument(v.value))));
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
  });

  it('rejects IPv6 policy errors by path', () => {
    const e = errorsOf({ network: {
      providerAddresses: [{ host: 'h', switch: 'sw0', address: '192.0.2.1/24' }],
      routingDomains: [{ id: RED, name: 'red', subnets: [
        { vsid: 5001, prefix6: 'fd00:1::/64', gateway6: 'fd00:1::1' },
        { vsid: 5002, prefix6: 'fd00:1:0:0:8000::/65' },
        { vsid: 5003, prefix6: 'fd00:3::1/64' },
        { vsid: 5004 },
        { vsid: 5005, prefix6: '10.0.0.0/24', gateway: '10.0.0.1' },
        { vsid: 5006, prefix6: 'fd00:6::/64', gateway6: 'ff02::1' },
        { vsid: 5007, prefix6: 'fd00:7::/64', gateway6: 'fd00:9::1' },
      ] }, { id: BLUE, name: 'blue', subnets: [{ vsid: 6001, prefix6: 'fd00:1::/64' }] }],
      lookupRecords: [
        { ca: 'fd00:1::5', vsid: 5001, mac: '02:00:00:00:00:05', pa: '192.0.2.1' },
        { ca: 'fd00:1::5', vsid: 5001, mac: '02:00:00:00:00:06', pa: '192.0.2.1' },
        { ca: 'fd00:2::5', vsid: 5001, mac: '02:00:00:00:00:07', pa: '192.0.2.1' },
        { ca: 'fd00:1::8', vsid: 5001, mac: '02:00:00:00:00:08', pa: '192.0.2.8', rule: 'rewrite' },
        { ca: '10.0.0.9', vsid: 5001, mac: '02:00:00:00:00:09', pa: '192.0.2.1' },
        { ca: 'fd00:1::5', vsid: 6001, mac: '02:00:00:00:00:05', pa: '192.0.2.1' },
        { ca: 'fd00:1::zz', vsid: 6001, mac: '02:00:00:00:00:0a', pa: '192.0.2.1' },
        { ca: 'fd00:1::b', vsid: 6001, mac: '02:00:00:00:00:0b', pa: 'fd00::1' },
      ],
      customerRoutes: [
        { rdid: RED, vsid: 5001, prefix: 'fd00:97::/64', nextHop: '10.0.0.1' },
        { rdid: RED, vsid: 5001, prefix: 'fd00:96::/64', nextHop: 'fd00:9::1' },
        { rdid: RED, vsid: 5001, prefix: 'fd00:95::1/64', nextHop: '::' },
      ],
    } });
    const want: [string, RegExp][] = [
      ['network.routingDomains[0].subnets[1].prefix6', /fd00:1:0:0:8000::\/65 overlaps fd00:1::\/64 at network\.routingDomains\[0\]\.subnets\[0\] in the same routing domain/],
      ['network.routingDomains[0].subnets[2].prefix6', /host bits set \(did you mean fd00:3::\/64\?\)/],
      ['network.routingDomains[0].subnets[3].prefix', /needs an IPv4 prefix \(prefix\), an IPv6 prefix \(prefix6\) or both/],
      ['network.routingDomains[0].subnets[4].prefix6', /not an IPv6 prefix/],
      ['network.routingDomains[0].subnets[4].gateway', /an IPv4 gateway needs an IPv4 prefix/],
      ['network.routingDomains[0].subnets[5].gateway6', /ff02::1 is not a unicast address/],
      ['network.routingDomains[0].subnets[6].gateway6', /fd00:9::1 is outside the subnet fd00:7::\/64/],
      ['network.lookupRecords[1].ca', /CA fd00:1::5 is already used at network\.lookupRecords\[0\]/],
      ['network.lookupRecords[2].ca', /fd00:2::5 is outside its subnet fd00:1::\/64 \(VSID 5001\)/],
      ['network.lookupRecords[3].rule', /IP rewrite is IPv4-only: the IPv6 CA fd00:1::8 needs rule encap or vxlan/],
      ['network.lookupRecords[4].ca', /10\.0\.0\.9 is an IPv4 CA but its subnet \(VSID 5001\) has no IPv4 prefix/],
      ['network.lookupRecords[6].ca', /not an IPv6 address/],
      ['network.lookupRecords[7].pa', /IPv6 provider address/],
      ['network.customerRoutes[0].nextHop', /an IPv6 route needs an IPv6 next hop/],
      ['network.customerRoutes[1].nextHop', /fd00:9::1 is in no IPv6 subnet of routing domain/],
      ['network.customerRoutes[2].prefix', /host bits set/],
    ];
    for (const [path, re] of want) assert.match(e.get(path) ?? `(no error at ${path}: ${[...e.keys()].join(', ')})`, re, path);
    assert.equal(e.size, want.length, [...e].map(([k, m]) => `${k}: ${m}`).join('\n'));
  });

  it('rejects every policy error by path', () => {
    const d = netDoc();
    const n = d['network'] as Record<string, unknown[]>;
    n['routingDomains']!.push(
      { id: RED, name: 'dup', subnets: [] },
      { id: 'not-a-guid', name: 'x', subnets: [] },
      { id: '{11111111-2222-3333-4444-000000000003}', name: 'green', subnets: [
        { vsid: 4095, prefix: '10.9.0.0/24' },
        { vsid: 7001, prefix: '10.9.0.0/16' },
        { vsid: 7002, prefix: '10.8.0.5/24' },
        { vsid: 6001, prefix: '10.7.0.0/24', gateway: '10.6.0.1' },
        { vsid: 7003, prefix: 'fd00::/64' },
      ] },
    );
    n['lookupRecords']!.push(
      { ca: '10.0.0.77', vsid: 9999, mac: '02:00:00:00:00:09', pa: '192.0.2.2' },
      { ca: '10.0.5.1', vsid: 5001, mac: '02:00:00:00:00:09', pa: '192.0.2.2' },
      { ca: '10.0.1.7', vsid: 5002, mac: '02:00:00:00:00:09', pa: '192.0.2.2' },
      { ca: '10.0.0.8', vsid: 5001, mac: '01:00:5e:00:00:01', pa: '192.0.2.2' },
      { ca: '10.0.0.9', vsid: 5001, mac: '00:00:00:00:00:00', pa: '192.0.2.2' },
      { ca: 'fd00::9', vsid: 5001, mac: '02:00:00:00:00:09', pa: '192.0.2.2' },
      { ca: '10.0.0.10', vsid: 5001, mac: '02:00:00:00:00:0a', pa: '192.0.2.11', rule: 'encap' },
      { ca: '10.0.0.11', vsid: 5001, mac: '02:00:00:00:00:0b', pa: '192.0.2.2', rule: 'gre' },
      { ca: '10.0.0.12', vsid: 5001, mac: '02:00:00:00:00:0c', pa: '192.0.2.1', vm: 'vm2' },
      { ca: '10.0.0.13', vsid: 5001, mac: '02:00:00:00:00:0d', pa: '192.0.2.1', vm: 'vm9' },
      { ca: '10.0.0.14', vsid: 5001, mac: '02:00:00:00:00:0e', pa: '192.0.2.1', vm: 'vm1' },
    );
    n['providerAddresses']!.push(
      { host: 'host-a', switch: 'sw7', address: '192.0.2.3/24' },
      { host: 'host-b', switch: 'sw0', address: '192.0.2.2/24' },
      { host: 'host-c', switch: 'sw0', address: '192.0.2.4' },
    );
    n['customerRoutes']!.push(
      { rdid: '{11111111-2222-3333-4444-00000000000f}', vsid: 5001, prefix: '10.5.0.0/16', nextHop: '0.0.0.0' },
      { rdid: RED, vsid: 6001, prefix: '10.5.0.0/16', nextHop: '10.99.0.1' },
    );
    const e = errorsOf(d);
    const want: [string, RegExp][] = [
      ['network.routingDomains[2].id', /already defined at network\.routingDomains\[1\]/],
      ['network.routingDomains[3].id', /not a GUID/],
      ['network.routingDomains[4].subnets[0].vsid', /4096\.\.16777214, got 4095/],
      ['network.routingDomains[4].subnets[1].prefix', /10\.9\.0\.0\/16 overlaps 10\.9\.0\.0\/24 at network\.routingDomains\[4\]\.subnets\[0\]/],
      ['network.routingDomains[4].subnets[2].prefix', /host bits set \(did you mean 10\.8\.0\.0\/24\?\)/],
      ['network.routingDomains[4].subnets[3].vsid', /VSID 6001 is already a subnet at network\.routingDomains\[0\]\.subnets\[0\]/],
      ['network.routingDomains[4].subnets[3].gateway', /10\.6\.0\.1 is outside the subnet 10\.7\.0\.0\/24/],
      ['network.routingDomains[4].subnets[4].prefix', /"fd00::\/64" is an IPv6 prefix: give it as prefix6/],
      ['network.lookupRecords[4].vsid', /VSID 9999 is no subnet/],
      ['network.lookupRecords[5].ca', /10\.0\.5\.1 is outside its subnet 10\.0\.0\.0\/24/],
      ['network.lookupRecords[6].ca', /CA 10\.0\.1\.7 is already used at network\.lookupRecords\[3\]/],
      ['network.lookupRecords[7].mac', /must be unicast/],
      ['network.lookupRecords[8].mac', /all-zero/],
      ['network.lookupRecords[9].ca', /fd00::9 is an IPv6 CA but its subnet \(VSID 5001\) has no IPv6 prefix \(prefix6\)/],
      ['network.lookupRecords[10].pa', /192\.0\.2\.11 is also the PA of network\.lookupRecords\[2\]: an IP rewrite record needs a PA of its own/],
      ['network.lookupRecords[11].rule', /one of encap, rewrite, vxlan/],
      ['network.lookupRecords[12].vm', /port vm2 of switch sw0 is in VSID 6001, the record's VSID is 5001/],
      ['network.lookupRecords[13].vm', /switch sw0 .* has no port "vm9"/],
      ['network.lookupRecords[14].mac', /02:00:00:00:00:0e is not the MAC of port vm1 of switch sw0 \(02:00:00:00:00:01\)/],
      ['network.providerAddresses[3].switch', /this host \(host-a\) has no switch "sw7"/],
      ['network.providerAddresses[4].address', /192\.0\.2\.2 is already a provider address at network\.providerAddresses\[0\]/],
      ['network.customerRoutes[1].rdid', /unknown routing domain/],
      ['network.customerRoutes[2].vsid', /belongs to routing domain \{11111111-2222-3333-4444-000000000002\}, not/],
      ['network.customerRoutes[2].nextHop', /10\.99\.0\.1 is in no subnet/],
    ];
    for (const [path, re] of want) assert.match(e.get(path) ?? `(no error at ${path}: ${[...e.keys()].join(', ')})`, re, path);
    assert.equal(e.size, want.length, [...e].map(([k, m]) => `${k}: ${m}`).join('\n'));
  });

  it('checks PAs of this host against its switches; the daemon host decides when the document names none', () => {
    const d = netDoc();
    (d['switches'] as Record<string, unknown>[])[0]!['uplink'] = null;
    assert.match(errorsOf(d).get('network.providerAddresses[1].switch')!, /sw0 has no uplink/);
    delete d['host'];
    // Without a host every PA is someone else's...
    assert.ok(validateDocument(d).ok);
    // ...unless the daemon says which host it is.
    assert.match(validateDocument(d, { host: 'host-a' }).ok ? '' : 'rejected', /rejected/);
    assert.ok(validateDocument(d, { host: 'host-c' }).ok);
  });

  it('rejects unknown keys and wrong types in network', () => {
    const e = errorsOf({ network: { tunnels: [], routingDomains: {}, lookupRecords: [{ ca: 5, vsid: '5001', mac: 'x', pa: '1.2.3' }], remotes: [{ pa: '192.0.2.9', flowId: 256 }] } });
    assert.match(e.get('network.tunnels')!, /unknown key/);
    assert.match(e.get('network.routingDomains')!, /must be a list/);
    assert.match(e.get('network.lookupRecords[0].ca')!, /must be a string/);
    assert.match(e.get('network.lookupRecords[0].vsid')!, /a VSID/);
    assert.match(e.get('network.lookupRecords[0].mac')!, /not a MAC/);
    assert.match(e.get('network.lookupRecords[0].pa')!, /not an IPv4 address/);
    assert.match(e.get('network.remotes[0].flowId')!, /0\.\.255, got 256/);
  });
});
