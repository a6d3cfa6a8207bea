// policy/config.test.ts: `policy:` and `vlan: { mode: private }` in the document: accepted shapes, every error by
// path, QoS / mirroring keys still refused, and the round trip through toDocument.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toDocument, validateDocument } from '../control/config.js';
import { portConfig } from '../control/reconciler.js';

function errorsOf(doc: unknown): Map<string, string> {
  const v = validateDocument(doc);
  assert.equal(v.ok, false, 'document should be rejected');
  if (v.ok) return new Map();
  return new Map(v.errors.map((e) => [e.path, e.message]));
}
const sw = (ports: unknown[]): unknown => ({ switches: [{ name: 'sw0', ports }] });
const tap = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, interface: { tap: `t-${name}` }, ...extra });

describe('port policy in the document', () => {
  it('accepts guards, fills defaults, reaches PortConfig, and round-trips only what differs', () => {
    const v = validateDocument(sw([tap('vm1', { mac: '02:00:00:00:00:01', policy: { dhcpGuard: true, routerGuard: true, macSpoofing: false, stormLimit: 500, trustPriority: false } }), tap('vm2', { policy: { dhcpGuard: false } })]));
    assert.ok(v.ok, JSON.stringify(!v.ok && v.errors));
    const [p1, p2] = v.value.switches[0]!.ports;
    assert.deepEqual(p1!.policy, { dhcpGuard: true, routerGuard: true, macSpoofing: false, stormLimit: 500, trustPriority: false });
    assert.equal(p2!.policy, null, 'all defaults = no policy');
    assert.deepEqual(portConfig(p1!).policy, p1!.policy);
    assert.equal('policy' in portConfig(p2!), false);
    const doc = toDocument(v.value) as { switches: { ports: Record<string, unknown>[] }[] };
    assert.deepEqual(doc.switches[0]!.ports[0]!['policy'], { dhcpGuard: true, routerGuard: true, macSpoofing: false, stormLimit: 500, trustPriority: false });
    assert.equal(doc.switches[0]!.ports[1]!['policy'], undefined);
    const again = validateDocument(doc);
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
  });

  it('lists every policy error by path; QoS keys are checked, mirror by the document checker', () => {
    const e = errorsOf(sw([
      tap('a', { policy: { dhcpGuard: 'yes', stormLimit: -1, maxMbps: 100, minWeight: 50, minMbps: 10, mirror: 'sideways', bogus: 1 } }),
      tap('b', { policy: { macSpoofing: false } }),
      tap('c', { policy: [] }),
      tap('d', { policy: { stormLimit: 1.5 } }),
    ]));
    const p = 'switches[0].ports';
    assert.match(e.get(`${p}[0].policy.dhcpGuard`)!, /true or false/);
    assert.match(e.get(`${p}[0].policy.stormLimit`)!, /frames per second/);
    assert.match(e.get(`${p}[0].policy.mirror`)!, /source, destination or none/);
    assert.equal(e.has(`${p}[0].policy.maxMbps`), false);
    assert.match(e.get(`${p}[0].policy.minMbps`)!, /not both/);
    assert.match(e.get(`${p}[0].policy.bogus`)!, /unknown key/);
    assert.match(e.get(`${p}[1].policy.macSpoofing`)!, /needs the port's mac/);
    assert.match(e.get(`${p}[2].policy`)!, /must be an object/);
    assert.match(e.get(`${p}[3].policy.stormLimit`)!, /integer/);
  });
});

describe('private VLANs in the document', () => {
  it('accepts isolated, community and promiscuous (with or without a list) and round-trips', () => {
    const v = validateDocument(sw([
      tap('i', { vlan: { mode: 'private', primary: 10, type: 'isolated', secondary: 11 } }),
      tap('c', { vlan: { mode: 'private', primary: 10, type: 'community', secondary: 12 } }),
      tap('p', { vlan: { mode: 'private', primary: 10, type: 'promiscuous' } }),
      tap('q', { vlan: { mode: 'private', primary: 10, type: 'promiscuous', secondary: [11, 12] } }),
    ]));
    assert.ok(v.ok, JSON.stringify(!v.ok && v.errors));
    const ports = v.value.switches[0]!.ports;
    assert.deepEqual(ports[0]!.vlan, { mode: 'private', primary: 10, type: 'isolated', secondary: [11] });
    assert.deepEqual(ports[2]!.vlan, { mode: 'private', primary: 10, type: 'promiscuous', secondary: [] });
    const doc = toDocument(v.value) as { switches: { ports: Record<string, unknown>[] }[] };
    assert.deepEqual(doc.switches[0]!.ports[0]!['vlan'], { mode: 'private', primary: 10, type: 'isolated', secondary: 11 });
    assert.deepEqual(doc.switches[0]!.ports[2]!['vlan'], { mode: 'private', primary: 10, type: 'promiscuous' });
    const again = validateDocument(doc);
    assert.ok(again.ok);
    assert.deepEqual(again.value, v.value);
  });

  it('lists private VLAN errors by path, also across ports', () => {
    const p = 'switches[0].ports';
    const e = errorsOf(sw([
      tap('a', { vlan: { mode: 'private', primary: 5000, type: 'isolated', secondary: 11 } }),
      tap('b', { vlan: { mode: 'private', primary: 10, type: 'sideways', secondary: 11 } }),
      tap('c', { vlan: { mode: 'private', primary: 10, type: 'isolated' } }),
      tap('d', { vlan: { mode: 'private', primary: 10, type: 'community', secondary: [12, 13] } }),
      tap('e', { vlan: { mode: 'private', primary: 10, type: 'community', secondary: 10 } }),
      tap('f', { vlan: { mode: 'private', primary: 10, type: 'isolated', secondary: 11, extra: 1 } }),
    ]));
    assert.match(e.get(`${p}[0].vlan.primary`)!, /1\.\.4094/);
    assert.match(e.get(`${p}[1].vlan.type`)!, /isolated, community, promiscuous/);
    assert.match(e.get(`${p}[2].vlan.secondary`)!, /needs its secondary/);
    assert.match(e.get(`${p}[3].vlan.secondary`)!, /one secondary/);
    assert.match(e.get(`${p}[4].vlan.secondary`)!, /is the primary/);
    assert.match(e.get(`${p}[5].vlan.extra`)!, /unknown key/);
    const x = errorsOf(sw([
      tap('a', { vlan: { mode: 'private', primary: 10, type: 'isolated', secondary: 11 } }),
      tap('b', { vlan: { mode: 'private', primary: 10, type: 'community', secondary: 11 } }),
      tap('c', { vlan: { mode: 'private', primary: 20, type: 'isolated', secondary: 11 } }),
      tap('d', { vlan: { mode: 'private', primary: 20, type: 'community', secondary: 10 } }),
      tap('e', { vlan: { mode: 'access', id: 11 } }),
      tap('f', { vlan: { mode: 'access', id: 20 } }),
      tap('g', { vlan: { mode: 'trunk', allowed: [10, 11] } }),
    ]));
    assert.match(x.get(`${p}[1].vlan.secondary`)!, /isolated or community, not both/);
    assert.match(x.get(`${p}[2].vlan.secondary`)!, /belongs to primary 10/);
    assert.match(x.get(`${p}[3].vlan.secondary`)!, /primary VLAN of/);
    assert.match(x.get(`${p}[4].vlan.id`)!, /private VLAN secondary \(isolated, primary 10/);
    assert.equal(x.has(`${p}[5].vlan.id`), false, 'an access port of the primary is allowed');
    assert.equal(x.has(`${p}[6].vlan`), false, 'a trunk may carry secondaries');
  });
});
