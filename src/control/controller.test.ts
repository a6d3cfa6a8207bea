// control/controller.test.ts: restore from the store after a restart, in part when some port cannot come up,
// reported (never silent) and healed by the next successful apply.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Switch } from '../dataplane/switch.js';
import { memoryPort } from '../io/memory.js';
import { validateDocument } from './config.js';
import { Controller, withoutFailing } from './controller.js';
import { jsonLogger } from './log.js';
import { Reconciler } from './reconciler.js';
import { openSqliteStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'xs-ctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const lines: string[] = [];
const log = jsonLogger('info', (l) => lines.push(l));

function controller(path: string, missing: Set<string>) {
  const s = openSqliteStore(path, 'h1');
  assert.ok(s.ok);
  const reconciler = new Reconciler({
    openPort: (spec) => (missing.has(spec.ifname) ? { error: 'No such device' } : memoryPort(spec.ifname)),
    createSwitch: (name) => new Switch({ name, log: { info: () => undefined, warn: () => undefined } }),
    start: false,
  });
  return { store: s.store, reconciler, ctl: new Controller(s.store, reconciler, log, { version: 't', host: 'h1', socket: '/nonexistent' }) };
}

describe('Controller restore', () => {
  it('restores everything it can, reports the rest, and heals on the next apply', async () => {
    const path = join(dir, 'a.db');
    const doc = {
      switches: [
        { name: 'sw0', ports: [{ name: 'p1', interface: { tap: 'ok-1' } }, { name: 'p2', interface: { veth: 'gone-2' } }] },
        { name: 'sw1', uplink: { interface: 'gone-up' }, ports: [{ name: 'p3', interface: { tap: 'ok-3' } }] },
      ],
    };
    const first = controller(path, new Set());
    assert.deepEqual(await first.ctl.restore(), { ok: true });
    const r = await first.ctl.applyDocument(doc);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    first.reconciler.close();
    first.store.close();

    // "Restart" with two interfaces gone.
    const second = controller(path, new Set(['gone-2', 'gone-up']));
    assert.deepEqual(await second.ctl.restore(), { ok: true });
    const st = second.ctl.status();
    const degraded = st['degraded'] as { path: string }[];
    assert.deepEqual(degraded.map((e) => e.path).sort(), ['switches[0].ports[1].interface', 'switches[1].uplink.interface']);
    assert.deepEqual([...second.reconciler.switch('sw0')!.ports.keys()], ['p1']);
    assert.deepEqual([...second.reconciler.switch('sw1')!.ports.keys()], ['p3']);
    assert.equal(second.ctl.desired.switches.length, 2, 'the stored desired state is kept whole');
    // the port list shows the port that is not running with the reason
    const listed = second.ctl.portList(second.ctl.desired.switches[0]!) as { name: string; id: number; error?: string }[];
    assert.deepEqual(listed.map((p) => [p.name, p.id >= 0, p.error]), [['p1', true, undefined], ['p2', false, 'cannot open AF_PACKET socket on gone-2: No such device']]);
    assert.ok(lines.some((l) => l.includes('only in part')));

    // An edit on top of the full desired state still fails on the missing port, clearly, and changes nothing.
    const rev = second.ctl.revision;
    const refused = await second.ctl.edit((d) => {
      (d.switches[0]!['ports'] as unknown[]).push({ name: 'p4', interface: { tap: 'ok-4' } });
      return undefined;
    });
    assert.equal(refused.status, 400);
    assert.match(JSON.stringify(refused.body), /gone-2: No such device/);
    assert.equal(second.ctl.revision, rev);
    assert.equal(second.reconciler.switch('sw0')!.ports.has('p4'), false);

    // Dropping what is gone heals it.
    const healed = await second.ctl.applyDocument({ switches: [{ name: 'sw0', ports: [doc.switches[0]!.ports[0]] }, { name: 'sw1', ports: doc.switches[1]!.ports }] });
    assert.equal(healed.status, 200, JSON.stringify(healed.body));
    assert.equal(second.ctl.status()['degraded'], null);
    assert.ok((second.ctl.portList(second.ctl.desired.switches[0]!) as { error?: string }[]).every((p) => p.error === undefined), 'reasons healed too');
    second.reconciler.close();
    second.store.close();
  });
});

describe('withoutFailing', () => {
  it('drops the network policy for errors under network, and gives up when nothing is left to drop', () => {
    const v = validateDocument({
      switches: [{ name: 'sw0', uplink: { interface: 'u0' }, ports: [] }],
      network: { routingDomains: [{ id: '{11111111-2222-3333-4444-000000000001}', name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24' }] }] },
    });
    assert.ok(v.ok);
    const d = withoutFailing(v.value, [{ path: 'network', message: 'refused' }]);
    assert.ok(d !== null);
    assert.equal(d.network.routingDomains.length, 0);
    assert.equal(d.switches[0]!.uplink!.interface, 'u0');
    assert.equal(withoutFailing(d, [{ path: 'network', message: 'refused' }]), null);
    const u = withoutFailing(v.value, [{ path: 'switches[0].uplink.interface', message: 'cannot read' }]);
    assert.ok(u !== null && u.switches[0]!.uplink === null && u.network === v.value.network);
  });
});
