// control/reconciler.test.ts: the reconciler on a real Switch with memory ports: apply, live updates, reorder,
// removal, and whole rejection when an extension factory or a back end fails.
import assert from 'node:assert/strict';
import { tunnelNames } from './uplink-bridge.js';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Switch } from '../dataplane/switch.js';
import { ManualClock } from '../dataplane/types.js';
import { type MemoryPort, memoryPort } from '../io/memory.js';
import { type Desired, validateDocument } from './config.js';
import type { HostNetworkInput } from '../virtualization/model.js';
import { type OpenPort, type PortOpenSpec, type ReadLink, Reconciler } from './reconciler.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
const CAPTURE = fixture('ext-capture');
const FILTER = fixture('ext-filter');
const FORWARDING = fixture('ext-forwarding');
const REJECT = fixture('ext-reject');
const NOT_EXT = fixture('not-an-extension');

function desired(doc: unknown): Desired {
  const v = validateDocument(doc);
  assert.ok(v.ok, JSON.stringify(v));
  return v.value;
}

const quiet = { info: (): void => undefined, warn: (): void => undefined };

/** A reconciler over memory ports; `refuse` decides which opens fail. */
function harness(refuse: (s: PortOpenSpec) => boolean = () => false) {
  const opened: { spec: PortOpenSpec; port: MemoryPort }[] = [];
  const openPort: OpenPort = (spec) => {
    if (refuse(spec)) return { error: `no such device ${spec.ifname}` };
    const port = memoryPort(spec.ifname);
    opened.push({ spec, port });
    return port;
  };
  const clock = new ManualClock(1000);
  const r = new Reconciler({ openPort, createSwitch: (name) => new Switch({ name, clock, log: quiet }), start: false, log: quiet });
  const port = (ifname: string): MemoryPort => {
    const all = opened.filter((o) => o.spec.ifname === ifname);
    assert.ok(all.length > 0, `no port opened on ${ifname}`);
    return all[all.length - 1]!.port;
  };
  return { r, opened, port };
}

function broadcastFrame(src: number): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, src], 6);
  f[12] = 0x88; // EtherType 0x88b5 (IEEE local experimental): a zero payload is no valid IPv4 header
  f[13] = 0xb5;
  return f;
}

const twoPorts = (extra: Record<string, unknown> = {}) => ({
  switches: [{
    name: 'sw0',
    ports: [
      { name: 'vm1', interface: { tap: 'm-vm1' } },
      { name: 'vm2', interface: { tap: 'm-vm2' } },
    ],
    ...extra,
  }],
});

describe('Reconciler', () => {
  it('creates a switch with ports that forward frames', async () => {
    const h = harness();
    const res = await h.r.reconcile(desired(twoPorts()));
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual(res.actions.map((a) => a.op), ['create-switch', 'add-port', 'add-port']);
    const rs = h.r.switch('sw0')!;
    assert.ok(h.port('m-vm1').inject(broadcastFrame(1)));
    rs.sw.poll();
    assert.equal(h.port('m-vm2').takeSent().length, 1);
    assert.equal(h.r.running.switches.length, 1);
    // The same document again is a no-op.
    const again = await h.r.reconcile(desired(twoPorts()));
    assert.ok(again.ok);
    assert.equal(again.actions.length, 0);
  });

  it('updates a port live (same id), and recreates it when its interface changes', async () => {
    const h = harness();
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const id = h.r.switch('sw0')!.ports.get('vm2')!.id;
    const doc = twoPorts();
    (doc.switches[0]!.ports[1] as Record<string, unknown>)['vlan'] = { mode: 'access', id: 10 };
    const res = await h.r.reconcile(desired(doc));
    assert.ok(res.ok);
    assert.deepEqual(res.actions, [{ op: 'update-port', switch: 'sw0', port: 'vm2' }]);
    assert.equal(h.r.switch('sw0')!.ports.get('vm2')!.id, id);
    // vm1 (VLAN 0) and vm2 (VLAN 10) no longer share a broadcast domain.
    h.port('m-vm1').inject(broadcastFrame(1));
    h.r.switch('sw0')!.sw.poll();
    assert.equal(h.port('m-vm2').takeSent().length, 0);

    const old = h.port('m-vm2');
    (doc.switches[0]!.ports[1] as Record<string, unknown>)['interface'] = { tap: 'm-vm2b' };
    const res2 = await h.r.reconcile(desired(doc));
    assert.ok(res2.ok);
    assert.deepEqual(res2.actions.map((a) => a.op), ['remove-port', 'add-port']);
    assert.equal(old.inject(broadcastFrame(9)), false, 'the old back end is closed');
  });

  it('binds extensions in order, reorders them keeping their state, and removes them', async () => {
    const h = harness();
    const exts = [
      { name: 'cap1', path: CAPTURE },
      { name: 'cap2', path: CAPTURE, config: { label: 'two' } },
      { name: 'filt', path: FILTER },
      { name: 'fwd', path: FORWARDING },
    ];
    assert.ok((await h.r.reconcile(desired(twoPorts({ extensions: exts })))).ok);
    const sw = h.r.switch('sw0')!.sw;
    assert.deepEqual(sw.extensions().map((e) => [e.name, e.kind, e.position]), [['cap1', 'capture', 0], ['cap2', 'capture', 1], ['filt', 'filter', 2], ['fwd', 'forwarding', 3]]);
    h.port('m-vm1').inject(broadcastFrame(1));
    sw.poll();
    assert.equal(h.port('m-vm2').takeSent().length, 1, 'the forwarding extension floods');
    const cap1 = h.r.switch('sw0')!.chain[0]!.ext;

    // Swap the two captures: same instances, new positions, stats kept.
    const swapped = [exts[1]!, exts[0]!, exts[2]!, exts[3]!];
    const res = await h.r.reconcile(desired(twoPorts({ extensions: swapped })));
    assert.ok(res.ok);
    assert.deepEqual(res.actions.map((a) => a.op), ['set-extensions']);
    assert.deepEqual(sw.extensions().map((e) => e.name), ['cap2', 'cap1', 'filt', 'fwd']);
    assert.equal(h.r.switch('sw0')!.chain[1]!.ext, cap1);
    assert.equal(sw.extensions().find((e) => e.name === 'cap1')!.stats['frames'], 1);

    // A filter before a capture breaks class order: rejected by path, nothing changes.
    const bad = [exts[2]!, exts[0]!, exts[1]!, exts[3]!];
    const rej = await h.r.reconcile(desired(twoPorts({ extensions: bad })));
    assert.equal(rej.ok, false);
    assert.ok(!rej.ok);
    assert.deepEqual(rej.errors.map((e) => e.path), ['switches[0].extensions[1]']);
    assert.match(rej.errors[0]!.message, /capture extension "cap1" comes after filter extension "filt"/);
    assert.deepEqual(sw.extensions().map((e) => e.name), ['cap2', 'cap1', 'filt', 'fwd']);

    // Two forwarding extensions: rejected.
    const two = [...exts, { name: 'fwd2', path: FORWARDING }];
    const rej2 = await h.r.reconcile(desired(twoPorts({ extensions: two })));
    assert.ok(!rej2.ok && rej2.errors.some((e) => e.path === 'switches[0].extensions[4]' && /second forwarding/.test(e.message)));

    // New config for the filter: a new instance, which drops everything; then disabled, it drops nothing.
    const dropping = [exts[0]!, { name: 'filt', path: FILTER, config: { dropAll: true } }];
    assert.ok((await h.r.reconcile(desired(twoPorts({ extensions: dropping })))).ok);
    assert.deepEqual(sw.extensions().map((e) => e.name), ['cap1', 'filt']);
    h.port('m-vm1').inject(broadcastFrame(1));
    sw.poll();
    assert.equal(h.port('m-vm2').takeSent().length, 0);
    const disabled = [exts[0]!, { name: 'filt', path: FILTER, config: { dropAll: true }, enabled: false }];
    assert.ok((await h.r.reconcile(desired(twoPorts({ extensions: disabled })))).ok);
    h.port('m-vm1').inject(broadcastFrame(1));
    sw.poll();
    assert.equal(h.port('m-vm2').takeSent().length, 1, 'a disabled filter does not drop');

    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    assert.deepEqual(sw.extensions(), []);
  });

  it('rejects the whole document when a factory refuses, throws, or the module is not an extension', async () => {
    const h = harness();
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const before = h.r.running;
    const nOpened = h.opened.length;
    const doc = twoPorts({ extensions: [
      { name: 'ok', path: CAPTURE },
      { name: 'refuses', path: REJECT },
      { name: 'throws', path: REJECT, config: { throw: true } },
      { name: 'notext', path: NOT_EXT },
      { name: 'missing', path: '/nonexistent/ext.js' },
    ] });
    doc.switches[0]!.ports.push({ name: 'vm3', interface: { tap: 'm-vm3' } });
    const res = await h.r.reconcile(desired(doc));
    assert.equal(res.ok, false);
    assert.ok(!res.ok);
    const by = new Map(res.errors.map((e) => [e.path, e.message]));
    assert.match(by.get('switches[0].extensions[1].config')!, /rejected its config: config rejected/);
    assert.match(by.get('switches[0].extensions[2].config')!, /factory exploded/);
    assert.match(by.get('switches[0].extensions[3].path')!, /no default export/);
    assert.match(by.get('switches[0].extensions[4].path')!, /cannot load extension module/);
    assert.equal(res.errors.length, 4);
    assert.deepEqual(h.r.running, before);
    assert.equal(h.opened.length, nOpened, 'no back end was opened');
    assert.equal(h.r.switch('sw0')!.ports.has('vm3'), false);
  });

  it('changes nothing when a new back end cannot be opened', async () => {
    const h = harness((s) => s.ifname.startsWith('bad'));
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const doc = {
      switches: [
        { name: 'sw1', ports: [{ name: 'a', interface: { tap: 'm-a' } }] },
        { name: 'sw0', ports: [{ name: 'vm1', interface: { tap: 'm-vm1' } }, { name: 'b', interface: { veth: 'bad-b' } }] },
      ],
    };
    const res = await h.r.reconcile(desired(doc));
    assert.ok(!res.ok);
    assert.deepEqual(res.errors.map((e) => e.path), ['switches[1].ports[1].interface']);
    assert.match(res.errors[0]!.message, /AF_PACKET socket on bad-b: no such device/);
    assert.equal(res.state, 'unchanged');
    assert.equal(h.r.switch('sw1'), undefined);
    assert.ok(h.r.switch('sw0')!.ports.has('vm2'), 'vm2 still runs');
    assert.equal(h.port('m-a').inject(broadcastFrame(1)), false, 'the back end opened ahead was closed again');
  });

  it('rolls back when a failure comes after deletions', async () => {
    // Reopening the same TAP with other offload settings closes the old one first; make the reopen fail.
    const h = harness((s) => s.ifname === 'm-vm2' && !s.offload);
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const before = h.r.running;
    const doc = twoPorts();
    (doc.switches[0]!.ports[1] as Record<string, unknown>)['offload'] = false;
    doc.switches[0]!.ports.splice(0, 1);
    const res = await h.r.reconcile(desired(doc));
    assert.ok(!res.ok);
    assert.equal(res.state, 'rolled-back');
    assert.deepEqual(res.errors.map((e) => e.path), ['switches[0].ports[0].interface']);
    assert.deepEqual(h.r.running, before);
    const rs = h.r.switch('sw0')!;
    assert.deepEqual([...rs.ports.keys()].sort(), ['vm1', 'vm2']);
    assert.equal(rs.ports.get('vm2')!.open.offload, true);
    h.port('m-vm1').inject(broadcastFrame(1));
    rs.sw.poll();
    assert.equal(h.port('m-vm2').takeSent().length, 1, 'traffic flows again after the rollback');
  });

  it('says when even the rollback failed, and what runs then', async () => {
    let broken = false;
    const h = harness((s) => {
      if (s.ifname === 'm-vm2' && !s.offload) broken = true;
      return broken && s.ifname === 'm-vm2';
    });
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const doc = twoPorts();
    (doc.switches[0]!.ports[1] as Record<string, unknown>)['offload'] = false;
    const res = await h.r.reconcile(desired(doc));
    assert.ok(!res.ok);
    assert.equal(res.state, 'inconsistent');
    assert.deepEqual(res.errors.map((e) => e.path), ['switches[0].ports[1].interface', 'switches[0].ports[1].interface']);
    assert.match(res.errors[1]!.message, /^rollback: /);
    assert.deepEqual(h.r.running.switches[0]!.ports.map((p) => p.name), ['vm1']);
  });

  it('opens uplinks as external AF_PACKET ports and internal ports as TAPs named <switch>-int', async () => {
    const h = harness();
    const res = await h.r.reconcile(desired({ switches: [{ name: 'br', uplink: { interface: 'eth9' }, ports: [{ name: 'host', interface: { internal: true } }] }] }));
    assert.ok(res.ok);
    assert.deepEqual(h.opened.map((o) => o.spec), [
      { role: 'external', backend: 'packet', ifname: 'eth9', offload: true, tunnel: null },
      { role: 'internal', backend: 'tap', ifname: 'br-int', offload: true, tunnel: null },
    ]);
    assert.deepEqual([...h.r.switch('br')!.ports.values()].map((p) => p.cfg.kind), ['external', 'internal']);
  });

  it('uplink.tunnelOffload: the uplink opens with its bridge and TAP names; toggling it re-opens the uplink', async () => {
    const h = harness();
    const doc = (tunnelOffload: boolean): Record<string, unknown> =>
      ({ switches: [{ name: 'br', uplink: { interface: 'eth9', tunnelOffload }, ports: [] }] });
    assert.ok((await h.r.reconcile(desired(doc(true)))).ok);
    const names = tunnelNames('br');
    assert.match(names.bridge, /^xsbr-[0-9a-f]{8}$/);
    assert.match(names.tap, /^xstx-[0-9a-f]{8}$/);
    assert.deepEqual(tunnelNames('br'), names, 'deterministic');
    assert.notEqual(tunnelNames('br2').bridge, names.bridge);
    assert.deepEqual(h.opened.map((o) => o.spec), [{ role: 'external', backend: 'packet', ifname: 'eth9', offload: true, tunnel: names }]);
    assert.deepEqual(h.r.running.switches[0]!.uplink, { interface: 'eth9', offload: true, tunnelOffload: true, qos: {} });
    assert.deepEqual((await h.r.reconcile(desired(doc(true)))).ok && h.opened.length, 1, 'unchanged: nothing re-opened');
    const res = await h.r.reconcile(desired(doc(false)));
    assert.ok(res.ok);
    assert.deepEqual(res.actions.map((a) => `${a.op} ${'port' in a ? a.port : ''}`), ['remove-port uplink', 'add-port uplink']);
    assert.deepEqual(h.opened[1]!.spec.tunnel, null);
    assert.deepEqual(h.r.running.switches[0]!.uplink, { interface: 'eth9', offload: true, tunnelOffload: false, qos: {} });
  });

  it('clears a fault-disable on request', async () => {
    const h = harness();
    assert.ok((await h.r.reconcile(desired(twoPorts({ extensions: [{ name: 'bad', path: FILTER, config: { fault: true } }] })))).ok);
    const sw = h.r.switch('sw0')!.sw;
    for (let i = 0; i < 50 && sw.extensions()[0]!.disabledReason === null; i++) {
      h.port('m-vm1').inject(broadcastFrame(1));
      sw.poll();
    }
    const st = sw.extensions()[0]!;
    assert.notEqual(st.disabledReason, null, 'repeated faults disable the extension');
    assert.equal(st.enabled, false);
    assert.equal(h.r.clearFault('sw0', 'bad'), true);
    assert.equal(sw.extensions()[0]!.disabledReason, null);
    assert.equal(sw.extensions()[0]!.enabled, true);
    assert.equal(h.r.clearFault('sw0', 'bad'), false, 'nothing to clear any more');
  });

  it('deletes switches and closes their ports', async () => {
    const h = harness();
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const res = await h.r.reconcile(desired({ switches: [] }));
    assert.ok(res.ok);
    assert.deepEqual(res.actions, [{ op: 'delete-switch', switch: 'sw0' }]);
    assert.equal(h.r.switch('sw0'), undefined);
    assert.equal(h.port('m-vm1').inject(broadcastFrame(1)), false);
  });
});

/** Memory ports that say how they were let go: close() (device deleted) or detach() (device kept, as xswitchd's
 * persistent TAPs); `adopt` names interfaces whose device "existed already" (re-attached). */
function keepHarness(refuse: (s: PortOpenSpec) => boolean = () => false, adopt: (s: PortOpenSpec) => boolean = () => false) {
  const ends: string[] = [];
  let opens = 0;
  let begins = 0;
  const openPort: OpenPort = (spec) => {
    if (refuse(spec)) return { error: `no such device ${spec.ifname}` };
    opens++;
    const port = memoryPort(spec.ifname);
    const close = port.close.bind(port);
    let ended = false; // the first way counts: later close() calls (the switch's own) find nothing left to do
    const end = (how: string): void => {
      if (!ended) ends.push(`${how} ${spec.ifname}`);
      ended = true;
      close();
    };
    return Object.assign(port, {
      adopted: adopt(spec) ? 'netns vm' : undefined,
      close: () => end('close'),
      detach: () => end('detach'),
    });
  };
  const clock = new ManualClock(1000);
  const r = new Reconciler({
    openPort, createSwitch: (name) => new Switch({ name, clock, log: quiet }), start: false, log: quiet,
    beforeOpen: () => { begins++; },
  });
  return { r, ends, opens: () => opens, begins: () => begins };
}

describe('Reconciler: devices that outlive the daemon (persistent TAPs)', () => {
  it('deletes the device of a removed port or switch, keeps every device on shutdown', async () => {
    const h = keepHarness();
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    assert.equal(h.begins(), 1, 'beforeOpen once per apply');
    const one = twoPorts();
    one.switches[0]!.ports.splice(1, 1);
    assert.ok((await h.r.reconcile(desired(one))).ok);
    assert.deepEqual(h.ends, ['close m-vm2'], 'removed through apply: deleted');
    assert.ok((await h.r.reconcile(desired({ switches: [] }))).ok);
    assert.deepEqual(h.ends, ['close m-vm2', 'close m-vm1'], 'switch deleted: its ports\' devices too');
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    h.r.close();
    assert.deepEqual(h.ends.slice(2).sort(), ['detach m-vm1', 'detach m-vm2'], 'daemon stop: devices stay');
  });

  it('keeps the device when the same interface is re-opened (offload changed), so the port re-attaches to it', async () => {
    const h = keepHarness();
    assert.ok((await h.r.reconcile(desired(twoPorts()))).ok);
    const doc = twoPorts();
    (doc.switches[0]!.ports[1] as Record<string, unknown>)['offload'] = false;
    const res = await h.r.reconcile(desired(doc));
    assert.ok(res.ok && res.actions.some((a) => a.op === 'remove-port') && res.actions.some((a) => a.op === 'add-port'));
    assert.deepEqual(h.ends, ['detach m-vm2']);
    assert.equal(h.opens(), 3);
  });

  it('undoing a failed apply deletes devices it made and keeps those it re-attached to', async () => {
    const h = keepHarness((s) => s.ifname === 'bad-b', (s) => s.ifname === 'm-vm2');
    const doc = {
      switches: [{ name: 'sw0', ports: [
        { name: 'vm1', interface: { tap: 'm-vm1' } }, { name: 'vm2', interface: { tap: 'm-vm2' } },
        { name: 'b', interface: { veth: 'bad-b' } },
      ] }],
    };
    const res = await h.r.reconcile(desired(doc));
    assert.ok(!res.ok && res.state === 'unchanged');
    assert.deepEqual(h.ends.sort(), ['close m-vm1', 'detach m-vm2'], 'a restore that fails on one port leaves the VMs\' NICs');
  });
});

/**
 * A real Switch that also records the policies it is given (Switch.setVirtualization is wired by the lead; this
 * checks what the control plane hands over) and can be told to refuse the next one.
 */
class RecordingSwitch extends Switch {
  readonly inputs: (HostNetworkInput | null)[] = [];
  refuseNext = false;
  override setVirtualization(input: HostNetworkInput | null): void {
    if (this.refuseNext) {
      this.refuseNext = false;
      throw new Error('policy refused (test)');
    }
    this.inputs.push(input);
    super.setVirtualization(input);
  }
}

const RED = '{11111111-2222-3333-4444-000000000001}';
const UP_MAC = 0x02aa_0000_0001;

function virtHarness(opts: { host?: string; links?: Record<string, { mac: number; mtu: number }> } = {}) {
  const ports = new Map<string, MemoryPort>();
  const switches = new Map<string, RecordingSwitch>();
  const clock = new ManualClock(1000);
  const links = opts.links ?? { 'v-up0': { mac: UP_MAC, mtu: 1600 } };
  const readLink: ReadLink = (ifname) => links[ifname] ?? { error: 'no such interface in this network namespace' };
  const r = new Reconciler({
    openPort: (spec) => {
      const p = memoryPort(spec.ifname, { maxFrameBytes: 9216 });
      ports.set(spec.ifname, p);
      return p;
    },
    createSwitch: (name) => {
      const sw = new RecordingSwitch({ name, clock, log: quiet });
      switches.set(name, sw);
      return sw;
    },
    start: false,
    log: quiet,
    readLink,
    ...(opts.host === undefined ? {} : { host: opts.host }),
  });
  return { r, ports, switches };
}

/** host-a's document: sw0 with uplink v-up0 and vm1 in VSID 5001; vm1's record points at `pa`. */
function virtDoc(pa = '192.0.2.1', extra: Record<string, unknown> = {}) {
  return {
    host: 'host-a',
    switches: [{ name: 'sw0', uplink: { interface: 'v-up0' }, ports: [{ name: 'vm1', interface: { tap: 'v-vm1' }, mac: '02:00:00:00:00:01', vsid: 5001 }] }],
    network: {
      providerAddresses: [{ host: 'host-a', switch: 'sw0', address: '192.0.2.1/24' }, { host: 'host-b', switch: 'sw0', address: '192.0.2.2/24' }],
      routingDomains: [{ id: RED, name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] }],
      lookupRecords: [
        { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:01', pa, rule: 'encap', vm: 'vm1' },
        { ca: '10.0.0.6', vsid: 5001, mac: '02:00:00:00:00:02', pa: '192.0.2.2', rule: 'encap' },
      ],
      ...extra,
    },
  };
}

describe('Reconciler: network virtualization', () => {
  it('gives each uplink switch with a PA of this host its policy, and the uplink the interface MTU', async () => {
    const h = virtHarness();
    const d = desired(virtDoc());
    const res = await h.r.reconcile(d);
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual(res.actions.map((a) => a.op), ['create-switch', 'add-port', 'add-port', 'set-virtualization']);
    assert.deepEqual(res.actions[3], { op: 'set-virtualization', switch: 'sw0', providerAddresses: ['192.0.2.1/24'] });
    const sw = h.switches.get('sw0')!;
    assert.equal(sw.inputs.length, 1);
    assert.deepEqual(sw.inputs[0], { host: 'host-a', switchName: 'sw0', uplinkMac: UP_MAC, underlayMtu: 1600, network: d.network });
    assert.equal(h.r.switch('sw0')!.ports.get('uplink')!.cfg.mtu, 1600);
    // A 1600-byte underlay packet (1614-byte frame) is no longer 'oversize' on the external port.
    const big = new Uint8Array(1614);
    big.fill(0xff, 0, 6);
    big.set([0x02, 0, 0, 0, 0, 0x99, 0x88, 0xb5], 6);
    assert.ok(h.ports.get('v-up0')!.inject(big));
    sw.poll();
    const id = h.r.switch('sw0')!.ports.get('uplink')!.id;
    assert.equal(sw.portCounters(id).drops['oversize'] ?? 0, 0);
    assert.equal(sw.portCounters(id).rxFrames, 1);
    assert.deepEqual(h.r.running.network, d.network);
    // Again: nothing to do.
    const again = await h.r.reconcile(d);
    assert.ok(again.ok && again.actions.length === 0);
    assert.equal(sw.inputs.length, 1);
  });

  it('takes a network change alone to the switch (a record PA changes: live migration), and removes the policy', async () => {
    const h = virtHarness();
    assert.ok((await h.r.reconcile(desired(virtDoc()))).ok);
    const sw = h.switches.get('sw0')!;
    const moved = desired(virtDoc('192.0.2.2', {}));
    // vm1 moved to host-b: its record now points there (the port may stay until the VM is gone).
    const res = await h.r.reconcile(moved);
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual(res.actions, [{ op: 'set-virtualization', switch: 'sw0', providerAddresses: ['192.0.2.1/24'] }]);
    assert.equal(sw.inputs.length, 2);
    assert.equal(sw.inputs[1]!.network.lookupRecords.find((r) => r.ca === '10.0.0.5')!.pa, '192.0.2.2');
    // No PA of host-a any more: the policy is removed.
    const gone = virtDoc();
    (gone.network as Record<string, unknown>)['providerAddresses'] = [{ host: 'host-b', switch: 'sw0', address: '192.0.2.2/24' }];
    (gone.network as Record<string, unknown>)['lookupRecords'] = [];
    const res2 = await h.r.reconcile(desired(gone));
    assert.ok(res2.ok, JSON.stringify(res2));
    assert.deepEqual(res2.actions, [{ op: 'clear-virtualization', switch: 'sw0' }]);
    assert.equal(sw.inputs[2], null);
    assert.equal(h.r.switch('sw0')!.virt, null);
  });

  it('re-binds the policy when the uplink is re-opened, and leaves switches without a PA of this host alone', async () => {
    const h = virtHarness({ links: { 'v-up0': { mac: UP_MAC, mtu: 1500 }, 'v-up1': { mac: UP_MAC + 1, mtu: 9000 } } });
    const doc = virtDoc();
    (doc.switches as Record<string, unknown>[]).push({ name: 'sw1', uplink: { interface: 'v-up1' } });
    assert.ok((await h.r.reconcile(desired(doc))).ok);
    assert.deepEqual(h.switches.get('sw1')!.inputs, [], 'sw1 has no PA of host-a');
    assert.equal(h.r.switch('sw1')!.ports.get('uplink')!.cfg.mtu, 9000);
    (doc.switches[0] as Record<string, unknown>)['uplink'] = { interface: 'v-up0', offload: false };
    const res = await h.r.reconcile(desired(doc));
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual(res.actions.map((a) => a.op), ['remove-port', 'add-port', 'set-virtualization']);
    assert.equal(h.switches.get('sw0')!.inputs.length, 2);
  });

  it('takes this host from its options over the document, and refuses a PA whose uplink cannot be read', async () => {
    const h = virtHarness({ host: 'host-b' });
    assert.ok((await h.r.reconcile(desired(virtDoc()))).ok);
    assert.equal(h.switches.get('sw0')!.inputs[0]!.host, 'host-b', 'host-b owns 192.0.2.2 on its own sw0');
    const h2 = virtHarness({ links: {} });
    const res = await h2.r.reconcile(desired(virtDoc()));
    assert.ok(!res.ok);
    assert.equal(res.state, 'unchanged');
    assert.deepEqual(res.errors.map((e) => e.path), ['switches[0].uplink.interface']);
    assert.match(res.errors[0]!.message, /cannot read the MAC and MTU of v-up0 \(needed for provider address 192\.0\.2\.1\/24\): no such interface/);
    assert.equal(h2.r.switch('sw0'), undefined);
  });

  it('rolls back to the previous policy when the switch refuses the new one', async () => {
    const h = virtHarness();
    const d1 = desired(virtDoc());
    assert.ok((await h.r.reconcile(d1)).ok);
    const sw = h.switches.get('sw0')!;
    sw.refuseNext = true;
    const res = await h.r.reconcile(desired(virtDoc('192.0.2.2')));
    assert.ok(!res.ok);
    assert.equal(res.state, 'rolled-back');
    assert.deepEqual(res.errors.map((e) => [e.path, e.message]), [['network', 'switch sw0 refused the network policy: policy refused (test)']]);
    assert.deepEqual(h.r.running.network, d1.network);
    assert.deepEqual(h.r.switch('sw0')!.virt!.network, d1.network);
  });
});
