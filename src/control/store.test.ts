// control/store.test.ts: the SQLite store: revisions per object, conflicts, reopening, and refusing broken files.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { EMPTY_NETWORK } from '../virtualization/model.js';
import { type Desired, validateDocument } from './config.js';
import { openSqliteStore, type SqliteStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'xs-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `s${++n}.db`);

function desired(doc: unknown): Desired {
  const v = validateDocument(doc);
  assert.ok(v.ok, JSON.stringify(v));
  return v.value;
}

function open(path: string, host = 'h1'): SqliteStore {
  const r = openSqliteStore(path, host);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.store;
}

const doc1 = desired({
  switches: [
    { name: 'sw0', ports: [{ name: 'vm1', interface: { tap: 'xs-vm1' } }, { name: 'vm2', interface: { tap: 'xs-vm2' }, vsid: 5001 }] },
    { name: 'sw1', extensions: [{ name: 'c', path: '/c.js', config: { k: 1 } }], ports: [] },
  ],
});

describe('SqliteStore', () => {
  it('starts empty at revision 0', async () => {
    const s = open(fresh());
    const l = await s.load();
    assert.ok(l.ok);
    assert.equal(l.revision, 0);
    assert.deepEqual(l.desired.switches, []);
    s.close();
  });

  it('stores per-object keys under the host prefix with create/mod revisions', async () => {
    const s = open(fresh());
    const p = await s.put(doc1);
    assert.ok(p.ok);
    assert.equal(p.revision, 1);
    const objs = await s.objects();
    assert.deepEqual(objs.map((o) => o.key), [
      '/xswitch/hosts/h1/meta',
      '/xswitch/hosts/h1/switches/sw0',
      '/xswitch/hosts/h1/switches/sw0/ports/vm1',
      '/xswitch/hosts/h1/switches/sw0/ports/vm2',
      '/xswitch/hosts/h1/switches/sw1',
    ]);
    assert.ok(objs.every((o) => o.createRevision === 1 && o.modRevision === 1));
    // Change one port: only that object moves.
    const doc2 = desired({ switches: [
      { name: 'sw0', ports: [{ name: 'vm1', interface: { tap: 'xs-vm1' } }, { name: 'vm2', interface: { tap: 'xs-vm2' }, vsid: 5002 }] },
      { name: 'sw1', extensions: [{ name: 'c', path: '/c.js', config: { k: 1 } }], ports: [] },
    ] });
    const p2 = await s.put(doc2, 1);
    assert.ok(p2.ok);
    assert.equal(p2.revision, 2);
    const by = new Map((await s.objects()).map((o) => [o.key, o]));
    assert.equal(by.get('/xswitch/hosts/h1/switches/sw0/ports/vm2')!.modRevision, 2);
    assert.equal(by.get('/xswitch/hosts/h1/switches/sw0/ports/vm2')!.createRevision, 1);
    assert.equal(by.get('/xswitch/hosts/h1/switches/sw0/ports/vm1')!.modRevision, 1);
    assert.deepEqual(await s.changes(1), [{ revision: 2, key: '/xswitch/hosts/h1/switches/sw0/ports/vm2', op: 'put' }]);
    // The same document again changes nothing and keeps the revision.
    const p3 = await s.put(doc2);
    assert.ok(p3.ok);
    assert.equal(p3.revision, 2);
    assert.equal(p3.changed, 0);
    s.close();
  });

  it('refuses a put at a stale revision and changes nothing', async () => {
    const s = open(fresh());
    assert.ok((await s.put(doc1)).ok);
    const before = await s.objects();
    const r = await s.put(desired({ switches: [] }), 0);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.conflict && r.revision === 1);
    assert.deepEqual(await s.objects(), before);
    assert.equal(await s.revision(), 1);
    s.close();
  });

  it('keeps data across reopen, deletes removed objects and logs the deletions', async () => {
    const path = fresh();
    const s = open(path);
    assert.ok((await s.put(doc1)).ok);
    const d2 = desired({ switches: [{ name: 'sw1', extensions: [{ name: 'c', path: '/c.js', config: { k: 1 } }], ports: [] }] });
    assert.ok((await s.put(d2)).ok);
    s.close();
    const s2 = open(path);
    const l = await s2.load();
    assert.ok(l.ok);
    assert.equal(l.revision, 2);
    assert.deepEqual(l.desired, { host: 'h1', switches: d2.switches, network: EMPTY_NETWORK });
    const dels = (await s2.changes(1)).filter((c) => c.op === 'delete').map((c) => c.key).sort();
    assert.deepEqual(dels, ['/xswitch/hosts/h1/switches/sw0', '/xswitch/hosts/h1/switches/sw0/ports/vm1', '/xswitch/hosts/h1/switches/sw0/ports/vm2']);
    s2.close();
  });

  it('keeps hosts apart', async () => {
    const path = fresh();
    const a = open(path, 'ha');
    assert.ok((await a.put(doc1)).ok);
    a.close();
    const b = open(path, 'hb');
    const l = await b.load();
    assert.ok(l.ok);
    assert.equal(l.desired.switches.length, 0);
    b.close();
  });

  it('refuses a file that is not a database, and leaves it untouched', () => {
    const path = fresh();
    const junk = 'this is not sqlite, it is a text file that happens to be long enough\n'.repeat(100);
    writeFileSync(path, junk);
    const r = openSqliteStore(path, 'h1');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /unreadable: .*not a database.*refusing to start/);
  });

  it('refuses a foreign SQLite database and one with damaged objects', async () => {
    const path = fresh();
    const db = new Database(path);
    db.exec('CREATE TABLE stuff (x)');
    db.close();
    const r = openSqliteStore(path, 'h1');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /no xswitch schema/);

    const p2 = fresh();
    const s = open(p2);
    assert.ok((await s.put(doc1)).ok);
    s.close();
    const raw = new Database(p2);
    raw.prepare("UPDATE objects SET value = '{broken' WHERE key LIKE '%/ports/vm1'").run();
    raw.close();
    const s2 = open(p2);
    const l = await s2.load();
    assert.equal(l.ok, false);
    assert.match(l.ok ? '' : l.error, /ports\/vm1 is not valid JSON/);
    s2.close();

    const p3 = fresh();
    const s3 = open(p3);
    assert.ok((await s3.put(doc1)).ok);
    s3.close();
    const raw3 = new Database(p3);
    raw3.prepare("DELETE FROM objects WHERE key LIKE '%/ports/vm2'").run();
    raw3.close();
    const s4 = open(p3);
    const l4 = await s4.load();
    assert.equal(l4.ok, false);
    assert.match(l4.ok ? '' : l4.error, /ports\/vm2: missing/);
    s4.close();
  });

  it('lets one daemon at a time use a store', async () => {
    const path = fresh();
    const a = open(path);
    assert.ok((await a.put(doc1)).ok);
    const b = openSqliteStore(path, 'h1');
    assert.equal(b.ok, false);
    assert.match(b.ok ? '' : b.error, /locked by another process/);
    a.close();
    const c = open(path);
    const l = await c.load();
    assert.ok(l.ok && l.desired.switches.length === 2);
    c.close();
  });

  it('refuses a store path that is a directory', () => {
    const r = openSqliteStore(dir, 'h1');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /not a regular file/);
  });

  it('stores the network policy as one object per record, domain, PA and route under /xswitch/network/', async () => {
    const path = fresh();
    const s = open(path, 'host-a');
    const RED = '{11111111-2222-3333-4444-000000000001}';
    const net = (pa6: string, extra: Record<string, unknown> = {}) => ({
      routerMac: '02:58:53:00:00:09',
      providerAddresses: [{ host: 'host-b', switch: 'sw0', address: '192.0.2.2/24', vlan: 7 }],
      providerRoutes: [{ host: 'host-a', prefix: '0.0.0.0/0', nextHop: '192.0.2.254' }],
      remotes: [{ pa: '192.0.2.100', flowId: 3 }],
      routingDomains: [{ id: RED, name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] }],
      lookupRecords: [
        { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:05', pa: '192.0.2.2', rule: 'encap' },
        { ca: '10.0.0.6', vsid: 5001, mac: '02:00:00:00:00:06', pa: pa6, rule: 'vxlan', vm: 'x' },
      ],
      customerRoutes: [{ rdid: RED, vsid: 5001, prefix: '10.0.0.0/24', nextHop: '0.0.0.0' }],
      ...extra,
    });
    const d1 = desired({ host: 'host-a', switches: [{ name: 'sw0' }], network: net('192.0.2.2') });
    assert.ok((await s.put(d1)).ok);
    const objs = await s.objects();
    assert.deepEqual(objs.map((o) => o.key), [
      '/xswitch/hosts/host-a/meta',
      '/xswitch/hosts/host-a/switches/sw0',
      '/xswitch/network/customer-routes/{11111111-2222-3333-4444-000000000001}/5001/10.0.0.0_24',
      '/xswitch/network/meta',
      '/xswitch/network/provider-addresses/192.0.2.2',
      '/xswitch/network/provider-routes/host-a/0.0.0.0_0',
      '/xswitch/network/records/5001/10.0.0.5',
      '/xswitch/network/records/5001/10.0.0.6',
      '/xswitch/network/remotes/192.0.2.100',
      '/xswitch/network/routing-domains/{11111111-2222-3333-4444-000000000001}',
    ]);
    assert.deepEqual(objs.find((o) => o.key.endsWith('records/5001/10.0.0.6'))!.value, { ca: '10.0.0.6', vsid: 5001, mac: '02:00:00:00:00:06', pa: '192.0.2.2', rule: 'vxlan', vm: 'x' });
    assert.deepEqual(objs.find((o) => o.key.endsWith('/network/meta'))!.value, { routerMac: '02:58:53:00:00:09' });

    // A live migration: one record's PA changes; only that object moves.
    const d2 = desired({ host: 'host-a', switches: [{ name: 'sw0' }], network: net('192.0.2.100') });
    const p2 = await s.put(d2, 1);
    assert.ok(p2.ok && p2.revision === 2 && p2.changed === 1);
    assert.deepEqual(await s.changes(1), [{ revision: 2, key: '/xswitch/network/records/5001/10.0.0.6', op: 'put' }]);
    const by = new Map((await s.objects()).map((o) => [o.key, o]));
    assert.equal(by.get('/xswitch/network/records/5001/10.0.0.6')!.modRevision, 2);
    assert.equal(by.get('/xswitch/network/records/5001/10.0.0.6')!.createRevision, 1);
    assert.equal(by.get('/xswitch/network/records/5001/10.0.0.5')!.modRevision, 1);
    assert.equal(by.get('/xswitch/network/meta')!.modRevision, 1);
    s.close();

    // Reopened: the same canonical value.
    const s2 = open(path, 'host-a');
    const l = await s2.load();
    assert.ok(l.ok, l.ok ? '' : l.error);
    assert.deepEqual(l.desired, d2);
    // The network without switches, then none at all: every network object is deleted.
    const d3 = desired({ host: 'host-a', network: net('192.0.2.100', { customerRoutes: [], remotes: [] }) });
    assert.ok((await s2.put(d3)).ok);
    const l3 = await s2.load();
    assert.ok(l3.ok, l3.ok ? '' : l3.error);
    assert.deepEqual(l3.desired, d3);
    const dels = (await s2.changes(2)).filter((c) => c.op === 'delete').map((c) => c.key);
    assert.deepEqual(dels.sort(), ['/xswitch/hosts/host-a/switches/sw0', '/xswitch/network/customer-routes/{11111111-2222-3333-4444-000000000001}/5001/10.0.0.0_24', '/xswitch/network/remotes/192.0.2.100']);
    assert.ok((await s2.put(desired({ host: 'host-a' }))).ok);
    assert.deepEqual((await s2.objects()).filter((o) => o.key.startsWith('/xswitch/network/')), []);
    s2.close();
  });

  it('refuses network objects without their meta, and unknown network keys', async () => {
    const path = fresh();
    const s = open(path, 'h1');
    assert.ok((await s.put(desired({ network: { routingDomains: [{ id: '{11111111-2222-3333-4444-000000000001}', name: 'red', subnets: [] }] } }))).ok);
    s.close();
    const raw = new Database(path);
    raw.prepare("INSERT INTO objects VALUES ('/xswitch/network/tunnels/x', '{}', 1, 1)").run();
    raw.close();
    const s2 = open(path, 'h1');
    const l = await s2.load();
    assert.match(l.ok ? '' : l.error, /\/xswitch\/network\/tunnels\/x: not a network object/);
    s2.close();
    const raw2 = new Database(path);
    raw2.prepare("DELETE FROM objects WHERE key = '/xswitch/network/meta'").run();
    raw2.close();
    const s3 = open(path, 'h1');
    const l3 = await s3.load();
    assert.match(l3.ok ? '' : l3.error, /\/xswitch\/network\/meta is missing but 2 network objects exist/);
    s3.close();
  });
});
