// control/api.test.ts: the HTTP API in-process on a temp socket (real store, real Switch, memory ports), driven
// by xsctl's client: clear errors for bad requests, and nothing changes when a request is refused.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Switch } from '../dataplane/switch.js';
import { memoryPort } from '../io/memory.js';
import { type ApiServer, MAX_BODY_BYTES, startApi } from './api.js';
import { ApiClient } from './client.js';
import { Controller } from './controller.js';
import { jsonLogger } from './log.js';
import { Reconciler } from './reconciler.js';
import { openSqliteStore, type SqliteStore } from './store.js';

const CAPTURE = fileURLToPath(new URL('./fixtures/ext-capture.js', import.meta.url));
const FILTER = fileURLToPath(new URL('./fixtures/ext-filter.js', import.meta.url));
const REJECT = fileURLToPath(new URL('./fixtures/ext-reject.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'xs-api-'));
const socket = join(dir, 'sub', 'api.sock');
const log = jsonLogger('error', () => undefined);
let store: SqliteStore;
let reconciler: Reconciler;
let api: ApiServer;
const c = new ApiClient({ socket, timeoutMs: 10_000 });

before(async () => {
  const s = openSqliteStore(join(dir, 'xs.db'), 'h1');
  assert.ok(s.ok);
  store = s.store;
  reconciler = new Reconciler({
    openPort: (spec) => (spec.ifname.startsWith('bad') ? { error: 'No such device' } : memoryPort(spec.ifname)),
    createSwitch: (name) => new Switch({ name, log: { info: () => undefined, warn: () => undefined } }),
    start: false,
    log,
  });
  const ctl = new Controller(store, reconciler, log, { version: 'test', host: 'h1', socket });
  assert.deepEqual(await ctl.restore(), { ok: true });
  const a = await startApi(ctl, socket, log);
  assert.ok(a.ok, a.ok ? '' : a.error);
  api = a.api;
});

after(async () => {
  await api.close();
  reconciler.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ok(method: string, path: string, body?: unknown, status = 200): Promise<unknown> {
  const r = await c.call(method, path, body);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.status, status, JSON.stringify(r.body));
  return r.body;
}

async function refused(method: string, path: string, body: unknown, status: number, error: RegExp): Promise<Record<string, unknown>> {
  const rev = await store.revision();
  const doc = await c.call('GET', '/v1/desired');
  const r = await c.call(method, path, body);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.status, status, JSON.stringify(r.body));
  const b = r.body as Record<string, unknown>;
  assert.match(String(b['error']), error);
  assert.equal(await store.revision(), rev, 'the store did not move');
  assert.deepEqual(await c.call('GET', '/v1/desired'), doc, 'the desired document did not change');
  return b;
}

describe('API', () => {
  it('serves status on a 0600 socket', async () => {
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    const s = (await ok('GET', '/v1/status')) as Record<string, unknown>;
    assert.equal(s['host'], 'h1');
    assert.equal(s['revision'], 0);
    assert.match(String(s['store']), /^sqlite:/);
  });

  it('refuses a second server on a live socket', async () => {
    const again = await startApi(new Controller(store, reconciler, log, { version: 't', host: 'h1', socket }), socket, log);
    assert.equal(again.ok, false);
    assert.match(again.ok ? '' : again.error, /already listens/);
  });

  it('builds state with imperative calls, each a new revision', async () => {
    assert.deepEqual(await ok('POST', '/v1/switches', { name: 'sw0' }, 201), { revision: 1, actions: [{ op: 'create-switch', switch: 'sw0' }] });
    await ok('POST', '/v1/switches/sw0/ports', { name: 'vm1', interface: { tap: 'xa-vm1' }, mac: '02:00:00:00:00:01' }, 201);
    await ok('POST', '/v1/switches/sw0/ports', { name: 'vm2', interface: { tap: 'xa-vm2' }, vlan: { mode: 'access', id: 10 } }, 201);
    await ok('PATCH', '/v1/switches/sw0/ports/vm2', { vlan: null, vsid: 5001 });
    await ok('POST', '/v1/switches/sw0/extensions', { name: 'f', path: FILTER }, 201);
    await ok('POST', '/v1/switches/sw0/extensions', { name: 'c', path: CAPTURE, position: 0 }, 201);
    await ok('PATCH', '/v1/switches/sw0/extensions/f', { enabled: false });
    const ports = (await ok('GET', '/v1/switches/sw0/ports')) as Record<string, unknown>[];
    assert.deepEqual(ports.map((p) => [p['name'], p['vsid'], p['vlan'], p['mac'], typeof p['id']]), [
      ['vm1', 0, { mode: 'none' }, '02:00:00:00:00:01', 'number'],
      ['vm2', 5001, { mode: 'none' }, null, 'number'],
    ]);
    const exts = (await ok('GET', '/v1/switches/sw0/extensions')) as Record<string, unknown>[];
    assert.deepEqual(exts.map((e) => [e['name'], e['kind'], e['enabled'], e['position'], e['path']]), [['c', 'capture', true, 0, CAPTURE], ['f', 'filter', false, 1, FILTER]]);
    assert.deepEqual(await ok('GET', '/v1/switches'), [{ name: 'sw0', ports: 2, extensions: 2, uplink: null, running: true }]);
    const d = (await ok('GET', '/v1/desired')) as { revision: number; document: unknown };
    assert.equal(d.revision, 7);
    const counters = (await ok('GET', '/v1/switches/sw0/counters')) as { switch: Record<string, unknown>; ports: Record<string, unknown> };
    assert.deepEqual(Object.keys(counters.ports), ['vm1', 'vm2']);
    assert.equal(counters.switch['rxFrames'], 0);
    assert.deepEqual(Object.keys(((await ok('GET', '/v1/switches/sw0/counters?port=vm2')) as { ports: object }).ports), ['vm2']);
    assert.deepEqual(await ok('GET', '/v1/switches/sw0/macs'), []);
  });

  it('answers bad JSON, unknown routes and methods with clear errors', async () => {
    const bad = await c.raw('PUT', '/v1/desired', '{"switches": [', { 'content-type': 'application/json' });
    assert.ok(bad.ok);
    assert.equal(bad.status, 400);
    assert.match(String((bad.body as Record<string, unknown>)['error']), /not valid JSON/);
    await refused('GET', '/v1/nothing', undefined, 404, /no such API route: GET \/v1\/nothing/);
    await refused('DELETE', '/v1/status', undefined, 405, /not allowed/);
    await refused('POST', '/v1/switches', [1, 2], 400, /must be a JSON object/);
  });

  it('refuses a body over 1 MiB and keeps serving', async () => {
    const big = JSON.stringify({ switches: [], pad: 'x'.repeat(MAX_BODY_BYTES) });
    const rev = await store.revision();
    const r = await c.raw('PUT', '/v1/desired', big, { 'content-type': 'application/json' });
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.status, 413);
    assert.match(String((r.body as Record<string, unknown>)['error']), /larger than 1048576 bytes/);
    // Chunked (no content-length), too.
    const status = await new Promise<number>((res, rej) => {
      const req = request({ socketPath: socket, method: 'PUT', path: '/v1/desired', agent: false }, (resp) => {
        resp.resume();
        resp.on('end', () => res(resp.statusCode ?? 0));
      });
      req.on('error', rej);
      for (let i = 0; i < 20; i++) req.write('x'.repeat(100_000));
      req.end();
    });
    assert.equal(status, 413);
    assert.equal(await store.revision(), rev);
    await ok('GET', '/v1/status');
  });

  it('lists validation errors by path and changes nothing', async () => {
    const b = await refused('POST', '/v1/switches/sw0/ports', { name: 'vm3', interface: { tap: 'xa-vm3' }, vlan: { mode: 'access', id: 5000 }, mac: 'ff:ff:ff:ff:ff:ff' }, 400, /invalid document: 2 errors/);
    assert.deepEqual((b['errors'] as { path: string }[]).map((e) => e.path), ['switches[0].ports[2].mac', 'switches[0].ports[2].vlan.id']);
    assert.equal(b['field'], 'switches[0].ports[2].mac');
    await refused('PUT', '/v1/desired', { switches: [{ name: 'sw0', ports: [{ name: 'p', interface: { tap: 'bad-p' } }] }] }, 400, /cannot open TAP bad-p: No such device/);
    await refused('PUT', '/v1/desired', { network: {} }, 400, /not supported yet/);
    await refused('PUT', '/v1/desired', { host: 'other', switches: [] }, 400, /for host "other"/);
    await refused('POST', '/v1/switches/sw0/extensions', { name: 'r', path: REJECT }, 400, /switches\[0\]\.extensions\[2\]\.config: extension "r" rejected its config/);
    await refused('POST', '/v1/switches/sw0/extensions', { name: 'f2', path: FILTER, position: 0 }, 400, /filter extension "f2" comes after|capture extension "c" comes after filter/);
    await refused('PUT', '/v1/switches/sw0/extensions-order', { order: ['f', 'c'] }, 400, /capture extension "c" comes after filter extension "f"/);
    await refused('PUT', '/v1/switches/sw0/extensions-order', { order: ['c'] }, 400, /missing: f/);
    await refused('PATCH', '/v1/switches/sw0/ports/vm1', { name: 'other' }, 400, /cannot be renamed/);
    await refused('PATCH', '/v1/switches/sw0/extensions/c', { path: '/x.js' }, 400, /only enabled and config/);
  });

  it('answers 404 and 409 where they belong', async () => {
    await refused('DELETE', '/v1/switches/nope', undefined, 404, /no switch named nope/);
    await refused('GET', '/v1/switches/nope/ports', undefined, 404, /no switch named nope/);
    await refused('DELETE', '/v1/switches/sw0/ports/nope', undefined, 404, /has no port nope/);
    await refused('DELETE', '/v1/switches/sw0/extensions/nope', undefined, 404, /has no extension nope/);
    await refused('GET', '/v1/switches/sw0/counters?port=nope', undefined, 404, /has no port nope/);
    await refused('POST', '/v1/switches', { name: 'sw0' }, 409, /already exists/);
    await refused('POST', '/v1/switches/sw0/ports', { name: 'vm1', interface: { tap: 'zz' } }, 409, /already has a port vm1/);
    const rev = await store.revision();
    const r = await c.call('PUT', '/v1/desired', { switches: [] }, { 'if-match': String(rev - 1) });
    assert.ok(r.ok);
    assert.equal(r.status, 409);
    assert.match(String((r.body as Record<string, unknown>)['error']), /revision conflict/);
    assert.ok((await c.call('GET', '/v1/switches/sw0')).ok);
  });

  it('applies a whole document with If-Match and dry-run, and reorders extensions', async () => {
    const d = (await ok('GET', '/v1/desired')) as { revision: number; document: { switches: Record<string, unknown>[] } };
    const doc = d.document;
    (doc.switches[0]!['ports'] as unknown[]).pop();
    const dry = (await ok('PUT', '/v1/desired?dryRun=1', doc)) as Record<string, unknown>;
    assert.deepEqual(dry['actions'], [{ op: 'remove-port', switch: 'sw0', port: 'vm2' }]);
    assert.equal(await store.revision(), d.revision);
    const r = await c.call('PUT', '/v1/desired', doc, { 'if-match': `"${d.revision}"` });
    assert.ok(r.ok);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(await store.revision(), d.revision + 1);
    await ok('PUT', '/v1/switches/sw0/extensions-order', { order: ['c', 'f'] });
    await ok('DELETE', '/v1/switches/sw0/extensions/f');
    await ok('DELETE', '/v1/switches/sw0/ports/vm1');
    await ok('DELETE', '/v1/switches/sw0');
    assert.deepEqual(await ok('GET', '/v1/switches'), []);
    assert.equal(reconciler.switch('sw0'), undefined);
  });
});
