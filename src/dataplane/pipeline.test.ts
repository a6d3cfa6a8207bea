// dataplane/pipeline.test.ts: the extension pipeline through a real Switch on memory ports: capture isolation,
// filter drops and egress exclusion, forwarding override, call order, run-time reorder without loss, fault
// isolation and disabling, clone / originate / inject paths, chain validation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  CaptureExtension,
  Extension,
  FilterBatch,
  FilterExtension,
  ForwardingExtension,
  ReadonlyBatch,
} from '../extensions/api.js';
import type { ExtensionBinding } from './switch-api.js';
import { BROADCAST, MAC_A, MAC_B, MAC_C, MAC_D, eth, markOf, rig, tagOf } from './switch.test-kit.js';
import { seconds } from './types.js';

const bind = (...exts: Extension[]): ExtensionBinding[] => exts.map((e) => ({ name: e.name, extension: e, enabled: true }));

describe('pipeline: capture extensions', () => {
  it('cannot drop or modify: no API for it, and casts / prototype patches do not reach the slab', () => {
    const { sw, port } = rig({ a: {}, b: {} });
    let realSlab: Uint8Array | null = null;
    const seen: unknown[] = [];
    const spy = {
      kind: 'filter',
      name: 'spy',
      ingress(f: FilterBatch) {
        realSlab = f.slab; // a filter legitimately has the slab: use it to recognise a leak
      },
    } satisfies FilterExtension;
    const evil = {
      kind: 'capture',
      name: 'evil',
      observe(frames: ReadonlyBatch) {
        const loose = frames as unknown as Record<string, unknown>;
        for (const k of ['slab', 'batch', 'b', 'meta', 'view', 'dv', 'buffer', '_b']) seen.push(loose[k]);
        for (const k of Reflect.ownKeys(frames)) seen.push(loose[k as string]);
        for (const k of Object.getOwnPropertyNames(Object.getPrototypeOf(frames))) {
          if (k === 'constructor') continue;
          const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(frames), k)!;
          if (d.get !== undefined) seen.push(d.get.call(frames));
        }
        assert.equal(typeof loose['drop'], 'undefined', 'no drop()');
        assert.equal(typeof loose['setLength'], 'undefined');
        // patch the typed array methods copyTo could use, and try to catch the slab through them
        const sub = Uint8Array.prototype.subarray;
        const set = Uint8Array.prototype.set;
        Object.defineProperty(Uint8Array, Symbol.species, {
          configurable: true,
          get() {
            return function (this: unknown, ...a: unknown[]) {
              seen.push(a[0]);
              return new (Function.prototype.bind.apply(Uint8Array, [null, ...a]) as unknown as new () => Uint8Array)();
            };
          },
        });
        Uint8Array.prototype.subarray = function (this: Uint8Array, ...a: [number?, number?]) {
          seen.push(this);
          return sub.apply(this, a);
        };
        Uint8Array.prototype.set = function (this: Uint8Array, src: ArrayLike<number>, o?: number) {
          seen.push(src);
          return set.call(this, src, o);
        };
        try {
          const copy = new Uint8Array(64);
          assert.equal(frames.copyTo(0, copy), 60);
          copy[0] = 0x55; // writing the copy changes nothing in the switch
          const big = new Uint8Array(400);
          assert.equal(frames.copyTo(1, big), 300);
          assert.equal(big[14], 4);
        } finally {
          Uint8Array.prototype.subarray = sub;
          Uint8Array.prototype.set = set;
          delete (Uint8Array as unknown as Record<symbol, unknown>)[Symbol.species]; // back to the inherited one
        }
        assert.equal(frames.byte(0, 60), -1, 'reads past the frame return -1');
        assert.equal(frames.u16(0, 0), (MAC_B / 2 ** 32) >>> 0);
      },
    } satisfies CaptureExtension;
    sw.setExtensions(bind(evil, spy));
    const f = eth(MAC_B, MAC_A, { mark: 3 });
    const g = eth(MAC_B, MAC_A, { mark: 4, len: 300 });
    port.a!.inject(f);
    port.a!.inject(g);
    sw.poll();
    assert.deepEqual(port.b!.takeSent(), [f, g], 'delivered unchanged');
    assert.ok(realSlab !== null);
    const slabBuf = (realSlab as Uint8Array).buffer;
    for (const v of seen) {
      if (v instanceof Uint8Array || v instanceof DataView) assert.notEqual(v.buffer, slabBuf, 'capture reached the slab');
      assert.notEqual(v, slabBuf, 'capture reached the slab buffer');
      assert.ok(!(typeof v === 'object' && v !== null && 'meta' in v), 'capture reached a Batch');
    }
    assert.equal(sw.extensions()[0]!.faults, 0);
  });
});

describe('pipeline: filters and forwarding', () => {
  it('a filter drops by its own rule, counted extension-drop against the port and the extension', () => {
    const { sw, port, id } = rig({ a: {}, b: {} });
    const noOdd = {
      kind: 'filter',
      name: 'no-odd',
      ingress(f) {
        for (let i = 0; i < f.count; i++) if (f.byte(i, 14) % 2 === 1) f.drop(i);
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(noOdd));
    for (let m = 0; m < 10; m++) port.a!.inject(eth(MAC_B, MAC_A, { mark: m }));
    sw.poll();
    assert.deepEqual(
      port.b!.takeSent().map(markOf),
      [0, 2, 4, 6, 8],
    );
    assert.equal(sw.portCounters(id.a!).drops['extension-drop'], 5);
    assert.equal(sw.extensions()[0]!.stats['switch.dropped'], 5);
  });

  it('a filter rewrites bytes in place and changes the VLAN out of band', () => {
    const { sw, port } = rig({ a: {}, t: { vlan: { mode: 'trunk', allowed: [42] } } });
    const retag = {
      kind: 'filter',
      name: 'retag',
      ingress(f) {
        for (let i = 0; i < f.count; i++) {
          f.slab[f.offset(i) + 14] = 0xee;
          f.setVlan(i, 42, 2);
          assert.equal(f.setLength(i, 50), true);
          assert.equal(f.setLength(i, 1e6), false);
        }
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(retag));
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    const out = port.t!.takeSent();
    assert.equal(out.length, 1);
    assert.deepEqual(tagOf(out[0]!), { vid: 42, pcp: 2 });
    assert.equal(out[0]!.length, 54);
    assert.equal(markOf(out[0]!), 0xee);
  });

  it('an egress filter excludes one destination of a flood', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, c: {}, d: {} });
    const notC = {
      kind: 'filter',
      name: 'not-c',
      egress(f) {
        for (let i = 0; i < f.count; i++) {
          assert.equal(f.destinationCount(i), 3);
          f.excludePort(i, id.c!);
        }
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(notC));
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 1);
    assert.equal(port.c!.takeSent().length, 0);
    assert.equal(port.d!.takeSent().length, 1);
  });

  it('a forwarding extension overrides built-in forwarding (no learning, its destinations only)', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, c: {} });
    const allToC = {
      kind: 'forwarding',
      name: 'all-to-c',
      forward(f) {
        for (let i = 0; i < f.count; i++) if (!f.isDropped(i)) f.addDestination(i, id.c!);
      },
    } satisfies ForwardingExtension;
    sw.setExtensions(bind(allToC));
    port.b!.inject(eth(BROADCAST, MAC_B));
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    assert.equal(port.c!.takeSent().length, 2);
    assert.equal(port.b!.takeSent().length + port.a!.takeSent().length, 0);
    assert.equal(sw.macTable().length, 0, 'built-in learning does not run');
    // a forwarding extension that chooses nothing: no-destination
    const nothing = { kind: 'forwarding', name: 'nothing', forward() {} } satisfies ForwardingExtension;
    sw.setExtensions(bind(nothing));
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    assert.equal(sw.portCounters(id.a!).drops['no-destination'], 1);
    // disabled: built-in forwarding is back
    sw.setExtensions([{ name: 'nothing', extension: nothing, enabled: false }]);
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 1);
    assert.equal(port.c!.takeSent().length, 1);
  });
});

/** Extensions that record their calls into `log`. */
function recorders(log: string[]) {
  const cap = (name: string) =>
    ({
      kind: 'capture',
      name,
      observe(_f, dir) {
        log.push(`${name}:${dir}`);
      },
    }) satisfies CaptureExtension;
  const fil = (name: string) =>
    ({
      kind: 'filter',
      name,
      ingress() {
        log.push(`${name}:ingress`);
      },
      egress() {
        log.push(`${name}:egress`);
      },
    }) satisfies FilterExtension;
  const fwd = {
    kind: 'forwarding',
    name: 'fwd',
    ingress() {
      log.push('fwd:ingress');
    },
    forward(f) {
      log.push('fwd:forward');
      for (let i = 0; i < f.count; i++) f.addDestination(i, 1 as never);
    },
    egress() {
      log.push('fwd:egress');
    },
  } satisfies ForwardingExtension;
  return { c1: cap('c1'), c2: cap('c2'), f1: fil('f1'), f2: fil('f2'), fwd };
}

describe('pipeline: order', () => {
  it('ingress in configured order, egress in reverse', () => {
    const { sw, port } = rig({ a: {}, b: {} });
    const log: string[] = [];
    const e = recorders(log);
    sw.setExtensions(bind(e.c2, e.c1, e.f1, e.f2, e.fwd));
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    assert.deepEqual(log, [
      'c2:ingress',
      'c1:ingress',
      'f1:ingress',
      'f2:ingress',
      'fwd:ingress',
      'fwd:forward',
      'fwd:egress',
      'f2:egress',
      'f1:egress',
      'c1:egress',
      'c2:egress',
    ]);
    assert.deepEqual(
      sw.extensions().map((s) => [s.name, s.position]),
      [
        ['c2', 0],
        ['c1', 1],
        ['f1', 2],
        ['f2', 3],
        ['fwd', 4],
      ],
    );
  });

  it('a reorder at run time takes effect on the next batch while other traffic keeps flowing without loss', () => {
    const { sw, port } = rig({ a: {}, b: {}, c: {}, d: {} });
    const log: string[] = [];
    const e = recorders(log);
    const keep = {
      kind: 'filter',
      name: 'count',
      ingress() {},
    } satisfies FilterExtension;
    sw.setExtensions(bind(e.f1, e.f2, keep));
    let sentCD = 0;
    let gotCD = 0;
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < 20; k++) {
        port.c!.inject(eth(MAC_D, MAC_C, { mark: k }));
        sentCD++;
      }
      port.a!.inject(eth(MAC_B, MAC_A));
      log.length = 0;
      sw.poll(1); // one batch per port per call
      sw.poll();
      if (round % 2 === 0) assert.deepEqual(log.slice(0, 2), ['f1:ingress', 'f2:ingress'], `round ${round}`);
      else assert.deepEqual(log.slice(0, 2), ['f2:ingress', 'f1:ingress'], `round ${round}`);
      gotCD += port.d!.takeSent().filter((x) => x[11] === (MAC_C & 0xff)).length;
      // reorder between batches, as the reconciler would
      sw.setExtensions(round % 2 === 0 ? bind(e.f2, e.f1, keep) : bind(e.f1, e.f2, keep));
    }
    assert.equal(gotCD, sentCD, 'no loss between c and d');
    assert.equal(sw.frameTotals().dropped, 0);
  });

  it('rejects a chain that breaks class order or has two forwarding extensions, with a clear message', () => {
    const { sw } = rig({ a: {} });
    const log: string[] = [];
    const e = recorders(log);
    assert.throws(() => sw.setExtensions(bind(e.f1, e.c1)), /capture extension after a later class/);
    const fwd2 = { ...e.fwd, name: 'fwd2' } satisfies ForwardingExtension;
    assert.throws(() => sw.setExtensions(bind(e.fwd, fwd2)), /more than one forwarding extension/);
    assert.throws(() => sw.setExtensions(bind(e.f1, e.f1)), /duplicate name/);
    assert.equal(sw.extensions().length, 0, 'nothing applied');
  });
});

describe('pipeline: faults', () => {
  it('a throwing filter drops its batch as extension-fault, is disabled after 5 faults in 10 s, traffic continues', () => {
    const { sw, port, id, clock, log } = rig({ a: {}, b: {} });
    const bad = {
      kind: 'filter',
      name: 'bad',
      ingress() {
        throw new Error('boom');
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(bad));
    let delivered = 0;
    for (let k = 0; k < 8; k++) {
      port.a!.inject(eth(MAC_B, MAC_A));
      sw.poll();
      delivered += port.b!.takeSent().length;
      clock.advance(1000);
    }
    assert.equal(sw.portCounters(id.a!).drops['extension-fault'], 5);
    assert.equal(delivered, 3, 'after it is disabled frames flow again');
    const st = sw.extensions()[0]!;
    assert.equal(st.faults, 5);
    assert.equal(st.enabled, false);
    assert.match(st.disabledReason!, /5 faults in 10 s; last: boom/);
    assert.ok(log.lines.some((l) => l.level === 'warn' && /bad disabled/.test(l.msg)));
    // re-enabling (false -> true) clears the fault-disable
    sw.setExtensions([{ name: 'bad', extension: bad, enabled: false }]);
    sw.setExtensions(bind(bad));
    assert.equal(sw.extensions()[0]!.enabled, true);
  });

  it('faults spread over more than 10 s do not disable', () => {
    const { sw, port, clock } = rig({ a: {}, b: {} });
    const flaky = {
      kind: 'filter',
      name: 'flaky',
      ingress() {
        throw new Error('sometimes');
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(flaky));
    for (let k = 0; k < 10; k++) {
      port.a!.inject(eth(MAC_B, MAC_A));
      sw.poll();
      clock.advance(seconds(3));
    }
    assert.equal(sw.extensions()[0]!.faults, 10);
    assert.equal(sw.extensions()[0]!.enabled, true);
  });

  it('a throwing capture leaves frames untouched; a throwing forwarder drops; others keep working', () => {
    const { sw, port, id } = rig({ a: {}, b: {} });
    const cap = {
      kind: 'capture',
      name: 'cap',
      observe() {
        throw new Error('capture bug');
      },
    } satisfies CaptureExtension;
    sw.setExtensions(bind(cap));
    for (let k = 0; k < 7; k++) port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll(1);
    sw.poll();
    assert.equal(port.b!.takeSent().length, 7);
    assert.equal(sw.extensions()[0]!.faults >= 2, true);
    const fwd = {
      kind: 'forwarding',
      name: 'fwd',
      forward() {
        throw new TypeError('fwd bug');
      },
    } satisfies ForwardingExtension;
    sw.setExtensions(bind(cap, fwd));
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 0);
    assert.equal(sw.portCounters(id.a!).drops['extension-fault'], 1);
  });
});

describe('pipeline: originate, clone, inject', () => {
  it('a filter clones a frame to a mirror port; the clone enters after the filter', () => {
    const { sw, port, id } = rig({ a: {}, b: {}, mirror: {} });
    const log: string[] = [];
    const before = {
      kind: 'capture',
      name: 'before',
      observe(f, dir) {
        for (let i = 0; i < f.count; i++) if (dir === 'ingress') log.push(`before:${f.cloned(i) ? 'clone' : 'orig'}`);
      },
    } satisfies CaptureExtension;
    const mirror = {
      kind: 'filter',
      name: 'mirror',
      ingress(f, ctx) {
        for (let i = 0; i < f.count; i++) {
          log.push(`mirror:${f.cloned(i) ? 'clone' : 'orig'}`);
          if (!f.cloned(i)) assert.equal(ctx.clone(f, i, { as: 'switch', to: [id.mirror!] }), true);
        }
      },
    } satisfies FilterExtension;
    const after = {
      kind: 'filter',
      name: 'after',
      ingress(f) {
        for (let i = 0; i < f.count; i++) log.push(`after:${f.cloned(i) ? 'clone' : 'orig'}`);
      },
    } satisfies FilterExtension;
    port.b!.inject(eth(BROADCAST, MAC_B)); // learn B first: the original then goes to b only
    sw.poll();
    port.a!.takeSent();
    port.mirror!.takeSent();
    sw.setExtensions(bind(before, mirror, after));
    const f = eth(MAC_B, MAC_A, { mark: 9 });
    port.a!.inject(f);
    sw.poll();
    assert.deepEqual(port.mirror!.takeSent(), [f]);
    assert.equal(port.b!.takeSent().length, 1);
    assert.deepEqual(log, ['before:orig', 'mirror:orig', 'after:orig', 'after:clone']);
    const t = sw.frameTotals();
    assert.equal(t.injected, 1);
    assert.equal(t.forwarded, 3, 'the learning frame, the original, the clone');
  });

  it('a capture originates monitoring frames as the switch; on behalf of a port they get its VLAN policy', () => {
    const { sw, port, id } = rig({
      a: { vlan: { mode: 'access', id: 5 } },
      b: { vlan: { mode: 'access', id: 5 } },
      t: { vlan: { mode: 'trunk', allowed: [5, 9] } },
    });
    let once = true;
    const stats = {
      kind: 'capture',
      name: 'stats',
      observe(_f, dir, ctx) {
        if (dir !== 'ingress' || !once) return;
        once = false;
        assert.equal(ctx.originate(eth(BROADCAST, MAC_D, { vid: 9, mark: 0x51 }), { as: 'switch' }), true);
        assert.equal(ctx.originate(eth(BROADCAST, MAC_C, { mark: 0x52 }), { as: id.a! }), true);
        assert.equal(ctx.originate(eth(BROADCAST, MAC_C, { vid: 5, mark: 0x53 }), { as: id.a! }), true); // tagged on access
        assert.equal(ctx.originate(new Uint8Array(5), { as: 'switch' }), false);
        assert.equal(ctx.originate(eth(BROADCAST, MAC_C), { as: 12345 as never }), false);
      },
    } satisfies CaptureExtension;
    sw.setExtensions(bind(stats));
    port.b!.inject(eth(MAC_A, MAC_B, { mark: 1 }));
    sw.poll();
    const toT = port.t!.takeSent();
    assert.deepEqual(
      toT.map((x) => [markOf(x), tagOf(x)?.vid]),
      [
        [1, 5],
        [0x51, 9],
        [0x52, 5],
      ],
    );
    assert.deepEqual(
      port.b!.takeSent().map(markOf),
      [0x52],
      'on behalf of a: flooded in VLAN 5 but not back to a',
    );
    assert.deepEqual(
      port.a!.takeSent().map(markOf),
      [1],
    );
    assert.equal(sw.portCounters(id.a!).drops['vlan-tagged-on-access'], 1);
    assert.equal(sw.switchCounters().drops['inject-invalid'], 2);
  });

  it('tick() reaches extensions; frames originated there go out; a full queue is counted', () => {
    const { sw, port } = rig({ a: {}, b: {} });
    let ticks = 0;
    const beacon = {
      kind: 'capture',
      name: 'beacon',
      observe() {},
      tick(ctx) {
        ticks++;
        let ok = 0;
        for (let k = 0; k < 100; k++) if (ctx.originate(eth(BROADCAST, MAC_D, { mark: k }), { as: 'switch' })) ok++;
        assert.equal(ok, 64);
      },
    } satisfies CaptureExtension;
    sw.setExtensions(bind(beacon));
    sw.tick();
    assert.equal(ticks, 1);
    assert.equal(port.a!.takeSent().length, 64);
    assert.equal(port.b!.takeSent().length, 64);
    assert.equal(sw.switchCounters().drops['inject-queue-full'], 36);
  });

  it('an extension that clones every frame it sees is bounded: rounds per poll and the queue limit', () => {
    const { sw, port } = rig({ a: {}, b: {} });
    const storm = {
      kind: 'filter',
      name: 'storm',
      ingress(f, ctx) {
        for (let i = 0; i < f.count; i++) ctx.clone(f, i);
      },
    } satisfies FilterExtension;
    const first = {
      kind: 'capture',
      name: 'first',
      observe() {},
    } satisfies CaptureExtension;
    sw.setExtensions(bind(first, storm));
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    // clones enter after 'storm', so storm never sees its own clones: one clone only
    assert.equal(port.b!.takeSent().length, 2);
  });

  it('setExtensions called from inside a hook applies after the batch', () => {
    const { sw, port } = rig({ a: {}, b: {} }, { batchSize: 1 });
    const log: string[] = [];
    const e = recorders(log);
    const switcher = {
      kind: 'filter',
      name: 'switcher',
      ingress() {
        log.push('switcher');
        sw.setExtensions(bind(e.f1));
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(switcher));
    port.a!.inject(eth(MAC_B, MAC_A));
    port.a!.inject(eth(MAC_B, MAC_A));
    sw.poll();
    assert.deepEqual(sw.extensions().map((s) => s.name), ['f1']);
    assert.equal(log[0], 'switcher');
    assert.equal(log.includes('f1:ingress'), true, 'the second batch saw the new chain');
    assert.equal(port.b!.takeSent().length, 2);
  });

  it('attach and detach are called once; state of a kept extension survives a reorder', () => {
    const { sw } = rig({ a: {} });
    const calls: string[] = [];
    const mk = (name: string) =>
      ({
        kind: 'filter',
        name,
        attach(ctx) {
          calls.push(`attach:${name}:${ctx.switchName}:${ctx.ports().length}`);
        },
        detach() {
          calls.push(`detach:${name}`);
        },
      }) satisfies FilterExtension;
    const x = mk('x');
    const y = mk('y');
    sw.setExtensions(bind(x, y));
    sw.setExtensions(bind(y, x));
    sw.setExtensions(bind(y));
    sw.close();
    assert.deepEqual(calls, ['attach:x:sw0:1', 'attach:y:sw0:1', 'detach:x', 'detach:y']);
  });
});

describe('pipeline: trusted and on-behalf-of frames', () => {
  it("'switch' frames bypass port policy; frames on behalf of a port get its VSID check", () => {
    const { sw, port, id } = rig({ red: { vsid: 5001 }, blue: { vsid: 6001 } });
    let done = false;
    const gen = {
      kind: 'capture',
      name: 'gen',
      observe(_f, _dir, ctx) {
        if (done) return;
        done = true;
        ctx.originate(eth(MAC_B, MAC_D, { mark: 1 }), { as: 'switch', to: [id.blue!], vsid: 5001 });
        ctx.originate(eth(MAC_B, MAC_D, { mark: 2 }), { as: id.red!, to: [id.blue!] });
      },
    } satisfies CaptureExtension;
    sw.setExtensions(bind(gen));
    port.red!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.deepEqual(port.blue!.takeSent().map(markOf), [1]);
    assert.equal(sw.portCounters(id.red!).drops['vsid-mismatch'], 1);
  });
});

describe('pipeline: ports seen by extensions', () => {
  it('ctx.ports() and ctx.port(id) describe live ports; portEvent reports changes', () => {
    const { sw, id } = rig({ a: { vsid: 7 }, b: { vlan: { mode: 'access', id: 3 } } });
    const events: string[] = [];
    let names: string[] = [];
    const watcher = {
      kind: 'capture',
      name: 'watcher',
      observe() {},
      portEvent(e) {
        events.push(`${e.type}:${e.port.name}`);
      },
      tick(ctx) {
        names = ctx.ports().map((p) => `${p.name}/${p.vsid}/${p.vlanMode}/${p.accessVlan}`);
        assert.equal(ctx.port(id.a!)?.name, 'a');
      },
    } satisfies CaptureExtension;
    sw.setExtensions(bind(watcher));
    sw.removePort(id.b!);
    sw.tick();
    assert.deepEqual(names, ['a/7/none/0']);
    assert.deepEqual(events, ['disconnected:b', 'deleted:b']);
  });
});

void MAC_C;

describe('pipeline: trace', () => {
  it('traceFrame runs one frame through the real pipeline and reports every stage', () => {
    const { sw, port, id } = rig({ a: { vlan: { mode: 'access', id: 4 } }, b: { vlan: { mode: 'access', id: 4 } }, c: { vlan: { mode: 'access', id: 5 } } });
    const noter = {
      kind: 'filter',
      name: 'noter',
      ingress(f, ctx) {
        ctx.trace?.note('noter', `saw ${f.count}`);
      },
    } satisfies FilterExtension;
    sw.setExtensions(bind(noter));
    const notes = sw.traceFrame(id.a!, eth(BROADCAST, MAC_A));
    assert.deepEqual(
      notes.map((n) => `${n.stage}: ${n.verdict}`),
      [
        'rx: port a, 60 bytes',
        'classify: vlan 4 pcp 0 vsid 0',
        'noter: saw 1',
        'ingress noter: pass (vlan 4, 60 bytes, 0 destinations)',
        'forward built-in: b',
        'port policy: b',
        'egress noter: pass (vlan 4, 60 bytes, 1 destinations)',
        'tx: sent to b',
      ],
    );
    assert.equal(port.b!.takeSent().length, 1);
    assert.equal(port.c!.takeSent().length, 0);
    assert.match(sw.traceFrame(id.a!, eth(BROADCAST, MAC_A, { vid: 9 }))[1]!.verdict, /dropped: vlan-tagged-on-access/);
    port.a!.inject(eth(BROADCAST, MAC_A));
    sw.poll();
    assert.equal(port.b!.takeSent().length, 1, 'tracing is off again');
  });
});
