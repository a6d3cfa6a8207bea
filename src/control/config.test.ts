// control/config.test.ts: document validation lists every error with its path; normal documents round-trip.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDocumentText, resolveExtensionPaths, toDocument, validateDocument } from './config.js';

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
    assert.deepEqual(sw.uplink, { interface: 'eth1', offload: true });
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

  it('rejects network: as not supported yet, and policy/acls likewise', () => {
    const e = errorsOf({ network: { routingDomains: [] }, switches: [{ name: 's', ports: [{ name: 'p', interface: { tap: 't' }, policy: {}, acls: [] }] }] });
    assert.match(e.get('network')!, /not supported yet/);
    assert.match(e.get('switches[0].ports[0].policy')!, /not supported yet/);
    assert.match(e.get('switches[0].ports[0].acls')!, /not supported yet/);
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
