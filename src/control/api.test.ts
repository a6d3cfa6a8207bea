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
import type { VirtualizationStatus } from '../virtualization/api.js';
import type { HostNetworkInput } from '../virtualization/model.js';
import { memoryPort } from '../io/memory.js';
import { run } from '../cli/xsctl.js';
import { type ApiServer, MAX_BODY_BYTES, startApi } from './api.js';
import { ApiClient } from './client.js';
import { Controller } from './controller.js';
import { jsonLogger } from './log.js';
import { Reconciler } from './reconciler.js';
import { openSqliteStore, type SqliteStore } from './store.js';

const CAPTURE = fileURLToPath(new URL('./fixtures/ext-capture.js', import.meta.url));
const FILTER = fileURLToPath(new URL('./fixtures/ext-filter.js', import.meta.url));
const REJECT = fileURLToPath(new URL('./fixtures/ext-reject.js', import.meta.url));

/**
 * Switch.setVirtualization is wired by the lead (until then a no-op with a null status): this Switch answers
 * virtualization() from the input it was given when the real layer reports nothing, so the routes can be tested.
 */
class StatusSwitch extends Switch {
  private input: HostNetworkInput | null = null;
  override setVirtualization(input: HostNetworkInput | null): void {
    this.input = input;
    super.setVirtualization(input);
  }
  override virtualization(): VirtualizationStatus | null {
    const real = super.virtualization();
    const i = this.input;
    if (real !== null || i === null) return real;
    const ours = i.network.providerAddresses.filter((p) => p.host === i.host && p.switch === i.switchName);
    return {
      host: i.host, switchName: i.switchName, providerAddresses: ours.map((p) => p.address), underlayMtu: i.underlayMtu, routerMac: i.network.routerMac,
      vsids: i.network.routingDomains.flatMap((rd) => rd.subnets.map((sn) => ({
        vsid: sn.vsid, rdid: rd.id, rdName: rd.name, prefix: sn.prefix ?? '', gateway: sn.gateway, tenantMtu: i.underlayMtu - 42,
        records: i.network.lookupRecords.filter((r) => r.vsid === sn.vsid).length, localRecords: 0,
      }))),
      records: [],
      arp: [{ address: '192.0.2.254', mac: null, state: 'incomplete', ageMs: 0 }],
      counters: {},
    };
  }
}

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
    createSwitch: (name) => new StatusSwitch({ name, log: { info: () => undefined, warn: () => undefined } }),
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
    // policy keys merge one by one (mirror beside keys other features add); null removes one
    const mirrorOf = async (): Promise<unknown> => ((await ok('GET', '/v1/switches/sw0/ports/vm1')) as Record<string, unknown>)['mirror'];
    await ok('PATCH', '/v1/switches/sw0/ports/vm1', { policy: { mirror: 'source' } });
    assert.equal(await mirrorOf(), 'source');
    await refused('PATCH', '/v1/switches/sw0/ports/vm1', { policy: { mirror: 'sideways' } }, 400, /must be source, destination or none/);
    await ok('PATCH', '/v1/switches/sw0/ports/vm1', { policy: { mirror: null } });
    assert.equal(await mirrorOf(), 'none');
    const doc = (await ok('GET', '/v1/desired')) as { document: { switches: { ports: Record<string, unknown>[] }[] } };
    assert.equal(doc.document.switches[0]!.ports[0]!['policy'], undefined, 'the stored document is normalized: no empty policy');
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

  it('refuses a body over 16 MiB and keeps serving', async () => {
    const big = JSON.stringify({ switches: [], pad: 'x'.repeat(MAX_BODY_BYTES) });
    const rev = await store.revision();
    const r = await c.raw('PUT', '/v1/desired', big, { 'content-type': 'application/json' });
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.status, 413);
    assert.match(String((r.body as Record<string, unknown>)['error']), /larger than 16777216 bytes \(16 MiB\)/);
    // Chunked (no content-length), too.
    const status = await new Promise<number>((res, rej) => {
      const req = request({ socketPath: socket, method: 'PUT', path: '/v1/desired', agent: false }, (resp) => {
        resp.resume();
        resp.on('end', () => res(resp.statusCode ?? 0));
      });
      req.on('error', rej);
      const chunk = 'x'.repeat(1 << 20);
      for (let i = 0; i <= MAX_BODY_BYTES >> 20; i++) req.write(chunk);
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
    await refused('PUT', '/v1/desired', { switches: [{ name: 'sw0' }], network: { providerAddresses: [{ host: 'h', switch: 'sw0', address: '2001:db8::1/64' }] } }, 400, /IPv6 provider addresses are not supported yet/);
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

const RED = '{11111111-2222-3333-4444-000000000001}';
const network = {
  providerAddresses: [{ host: 'h1', switch: 'sw0', address: '192.0.2.1/24' }, { host: 'h2', switch: 'sw0', address: '192.0.2.2/24' }],
  routingDomains: [{ id: RED, name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] }],
  lookupRecords: [
    { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:01', pa: '192.0.2.1', rule: 'encap', vm: 'vm1' },
    { ca: '10.0.0.6', vsid: 5001, mac: '02:00:00:00:00:02', pa: '192.0.2.2', rule: 'encap' },
  ],
};

describe('API: network', () => {
  it('applies a document with network: and serves the policy, records and the switch layer', async () => {
    // The uplink is `lo`: the reconciler reads its MAC and MTU from this namespace's sysfs (memory ports here).
    const doc = { switches: [{ name: 'sw0', uplink: { interface: 'lo' }, ports: [{ name: 'vm1', interface: { tap: 'xa-n1' }, mac: '02:00:00:00:00:01', vsid: 5001 }] }], network };
    const r = (await ok('PUT', '/v1/desired', doc)) as { actions: { op: string }[] };
    assert.deepEqual(r.actions.map((a) => a.op), ['create-switch', 'add-port', 'add-port', 'set-virtualization']);
    const n = (await ok('GET', '/v1/network')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(n), ['routerMac', 'providerAddresses', 'providerRoutes', 'remotes', 'routingDomains', 'lookupRecords', 'customerRoutes']);
    assert.equal(n['routerMac'], '02:58:53:00:00:01');
    assert.deepEqual(n['providerAddresses'], [{ host: 'h1', switch: 'sw0', address: '192.0.2.1/24', vlan: 0 }, { host: 'h2', switch: 'sw0', address: '192.0.2.2/24', vlan: 0 }]);
    const recs = (await ok('GET', '/v1/network/records')) as Record<string, unknown>[];
    assert.deepEqual(recs.map((x) => [x['switch'], x['ca'], x['vsid'], x['pa'], x['rule'], x['vm'], x['host'], x['local']]), [
      ['sw0', '10.0.0.5', 5001, '192.0.2.1', 'encap', 'vm1', 'h1', true],
      ['sw0', '10.0.0.6', 5001, '192.0.2.2', 'encap', null, 'h2', false],
    ]);
    const v = (await ok('GET', '/v1/switches/sw0/virtualization')) as Record<string, unknown>;
    assert.equal(v['switchName'], 'sw0');
    assert.equal(v['host'], 'h1');
    assert.deepEqual(v['providerAddresses'], ['192.0.2.1/24']);
    assert.equal(v['underlayMtu'], 65536, 'the MTU of lo, read from sysfs');
    const vs = (await ok('GET', '/v1/network/vsids')) as Record<string, unknown>[];
    assert.deepEqual(vs.map((x) => [x['switch'], x['vsid'], x['rdid'], x['prefix']]), [['sw0', 5001, RED, '10.0.0.0/24']]);
    assert.ok(Array.isArray(await ok('GET', '/v1/network/arp')));
    const port = ((await ok('GET', '/v1/switches/sw0/ports')) as Record<string, unknown>[]).find((p) => p['name'] === 'uplink')!;
    assert.equal(reconciler.switch('sw0')!.ports.get('uplink')!.cfg.mtu, 65536, `uplink ${JSON.stringify(port)}`);
    await refused('GET', '/v1/switches/nope/virtualization', undefined, 404, /no switch named nope/);
    // xsctl's readable views of the same answers.
    const cli = async (...args: string[]): Promise<string> => {
      let out = '';
      const code = await run(['--socket', socket, ...args], { env: {}, cwd: dir, io: { out: (x) => { out += x; }, err: (x) => { out += x; } } });
      assert.equal(code, 0, out);
      return out;
    };
    const virt = await cli('virt', 'sw0');
    assert.match(virt, /^KEY\s+VALUE\nswitch\s+sw0\nhost\s+h1\nprovider addresses\s+192\.0\.2\.1\/24\nunderlay MTU\s+65536\n/);
    assert.match(virt, /\nVSIDS\nVSID\s+ROUTING-DOMAIN\s+PREFIX\s+GATEWAY\s+TENANT-MTU\s+RECORDS\s+LOCAL\n5001\s+red \{11111111-2222-3333-4444-000000000001\}\s+10\.0\.0\.0\/24\s+10\.0\.0\.1\s+\d+\s+2\s+\d+\n/);
    assert.match(virt, /\nPA ARP CACHE\n/);
    assert.match(await cli('vsid', 'list'), /^SWITCH\s+VSID\s+ROUTING-DOMAIN\s+PREFIX\s+GATEWAY\s+TENANT-MTU\s+RECORDS\s+LOCAL\nsw0\s+5001\s+red /);
    assert.match(await cli('record', 'list'), /\nsw0\s+10\.0\.0\.5\s+5001\s+02:00:00:00:00:01\s+192\.0\.2\.1\s+encap\s+vm1\s+local\nsw0\s+10\.0\.0\.6 .* remote\n$/);
    assert.match(await cli('arp'), /^SWITCH\s+ADDRESS\s+MAC\s+STATE\s+AGE\n/);
  });

  it('edits lookup records one by one, live, each a new revision', async () => {
    const rev = await store.revision();
    // Live migration: 10.0.0.6 now lives behind our PA.
    await ok('PATCH', '/v1/network/records/5001/10.0.0.6', { pa: '192.0.2.1' });
    assert.equal(await store.revision(), rev + 1);
    const objs = new Map((await store.objects()).map((o) => [o.key, o]));
    assert.equal(objs.get('/xswitch/network/records/5001/10.0.0.6')!.modRevision, rev + 1);
    assert.ok(objs.get('/xswitch/network/records/5001/10.0.0.5')!.modRevision < rev + 1);
    const recs = (await ok('GET', '/v1/network/records')) as Record<string, unknown>[];
    assert.deepEqual(recs.map((x) => [x['ca'], x['local']]), [['10.0.0.5', true], ['10.0.0.6', true]]);
    assert.equal(reconciler.switch('sw0')!.virt!.network.lookupRecords[1]!.pa, '192.0.2.1', 'the switch has the new policy');
    await ok('PATCH', '/v1/network/records/5001/10.0.0.6', { rule: 'vxlan', mac: '02:00:00:00:00:0B' });
    await ok('POST', '/v1/network/records', { ca: '10.0.0.7', vsid: 5001, mac: '02:00:00:00:00:07', pa: '192.0.2.2', rule: 'rewrite' }, 201);
    const n = (await ok('GET', '/v1/network')) as { lookupRecords: Record<string, unknown>[] };
    assert.deepEqual(n.lookupRecords.map((x) => [x['ca'], x['rule'], x['mac'], x['vm']]), [
      ['10.0.0.5', 'encap', '02:00:00:00:00:01', 'vm1'], ['10.0.0.6', 'vxlan', '02:00:00:00:00:0b', null], ['10.0.0.7', 'rewrite', '02:00:00:00:00:07', null],
    ]);
    await ok('DELETE', '/v1/network/records/5001/10.0.0.7');
    assert.equal(((await ok('GET', '/v1/network')) as { lookupRecords: unknown[] }).lookupRecords.length, 2);
  });

  it('refuses bad record edits with the field, and changes nothing', async () => {
    await refused('PATCH', '/v1/network/records/5001/10.0.0.99', { pa: '192.0.2.1' }, 404, /no lookup record for CA 10\.0\.0\.99 in VSID 5001/);
    await refused('DELETE', '/v1/network/records/5002/10.0.0.5', undefined, 404, /no lookup record/);
    const b = await refused('PATCH', '/v1/network/records/5001/10.0.0.6', { pa: 'nope' }, 400, /invalid document: 1 error: network\.lookupRecords\[1\]\.pa/);
    assert.equal(b['field'], 'network.lookupRecords[1].pa');
    assert.equal((await refused('PATCH', '/v1/network/records/5001/10.0.0.6', { ca: '10.0.0.9' }, 400, /only pa, rule, mac and vm/))['field'], 'ca');
    assert.equal((await refused('PATCH', '/v1/network/records/x/10.0.0.6', { pa: '192.0.2.1' }, 400, /VSID must be a number/))['field'], 'vsid');
    assert.equal((await refused('PATCH', '/v1/network/records/5001/ten', { pa: '192.0.2.1' }, 400, /CA must be an IPv4 or IPv6 address/))['field'], 'ca');
    await refused('PATCH', '/v1/network/records/5001/10.0.0.6', { vm: 'vm1' }, 400, /02:00:00:00:00:0b is not the MAC of port vm1 of switch sw0 \(02:00:00:00:00:01\)/);
    await refused('POST', '/v1/network/records', { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:09', pa: '192.0.2.2' }, 409, /already has a lookup record for CA 10\.0\.0\.5/);
    const out = await refused('POST', '/v1/network/records', { ca: '10.0.9.5', vsid: 5001, mac: '02:00:00:00:00:09', pa: '192.0.2.2' }, 400, /outside its subnet/);
    assert.equal(out['field'], 'network.lookupRecords[2].ca');
    await refused('PUT', '/v1/network', [1], 400, /network section/);
    const whole = await refused('PUT', '/v1/network', { ...network, routingDomains: [{ id: RED, name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24' }, { vsid: 5002, prefix: '10.0.0.128/25' }] }] }, 400, /overlaps/);
    assert.equal(whole['field'], 'network.routingDomains[0].subnets[1].prefix');
  });

  it('replaces the whole section with PUT /v1/network, and removes it with null', async () => {
    const r = (await ok('PUT', '/v1/network', { ...network, routerMac: '02:58:53:00:00:02' })) as { actions: { op: string }[] };
    assert.deepEqual(r.actions.map((a) => a.op), ['set-virtualization']);
    assert.equal(((await ok('GET', '/v1/network')) as Record<string, unknown>)['routerMac'], '02:58:53:00:00:02');
    // A PA of this host on a switch without an uplink is refused.
    await refused('PUT', '/v1/network', { ...network, providerAddresses: [{ host: 'h1', switch: 'sw9', address: '192.0.2.1/24' }] }, 400, /this host \(h1\) has no switch "sw9"/);
    const cleared = (await ok('PUT', '/v1/network', null)) as { actions: { op: string }[] };
    assert.deepEqual(cleared.actions.map((a) => a.op), ['clear-virtualization']);
    assert.deepEqual(((await ok('GET', '/v1/network')) as { lookupRecords: unknown[] }).lookupRecords, []);
    await refused('GET', '/v1/switches/sw0/virtualization', undefined, 404, /switch sw0 has no virtualization policy: the network policy gives host h1 no provider address on it/);
    assert.deepEqual(await ok('GET', '/v1/network/records'), []);
    assert.deepEqual((await store.objects()).filter((o) => o.key.startsWith('/xswitch/network/')), []);
    await ok('DELETE', '/v1/switches/sw0');
  });
});
