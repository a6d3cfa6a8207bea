// control/store.test.ts: the SQLite store: revisions per object, conflicts, reopening, and refusing broken files.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
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
    assert.deepEqual(l.desired, { host: 'h1', switches: d2.switches });
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
});
