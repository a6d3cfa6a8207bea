// virtualization/gro-switch.test.ts: receive coalescing through whole Switches (memory ports): a VM's TCP super-frame
// crosses the underlay as MTU-size NVGRE/VXLAN segments, the receiving switch coalesces them again: a VM port with
// offload gets one super-frame, a VM port without offload gets the segments back byte for byte (the switch's
// existing software segmentation); counters show it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { portCfg, RecordingLogger } from '../dataplane/switch.test-kit.js';
import { Switch } from '../dataplane/switch.js';
import { GSO_NONE, GSO_TCPV4 } from '../dataplane/frame.js';
import { ManualClock } from '../dataplane/types.js';
import { memoryPort, type MemoryPort } from '../io/memory.js';
import type { LookupRule } from './model.js';
import { hostInput, MAC5, MAC6, spec, vsidOf } from './virtualization.test-kit.js';
import { put16, put32, refSum } from '../../test/helpers/bytes.js';

const ETH = 14;

interface Host {
  sw: Switch;
  uplink: MemoryPort;
  vm: Record<string, MemoryPort>;
}

/** Host A: red-vm5, blue-vm5 (offload). Host B: red-vm6 with offload, blue-vm6 without. Uplinks carry 64 KB. */
function hosts(rule: LookupRule): { a: Host; b: Host } {
  const s = spec({ rule });
  const mk = (name: 'host-a' | 'host-b', vms: [string, number, boolean][]): Host => {
    const sw = new Switch({ name: 'sw0', clock: new ManualClock(1_000_000), log: new RecordingLogger() });
    const uplink = memoryPort('uplink', { offload: true });
    sw.addPort(uplink, portCfg('uplink', { kind: 'external' }));
    const vm: Record<string, MemoryPort> = {};
    for (const [key, mac, offload] of vms) {
      vm[key] = memoryPort(key, { offload });
      sw.addPort(vm[key]!, portCfg(key, { vsid: vsidOf(key.startsWith('red') ? 'red' : 'blue', 1), mac }));
    }
    sw.setVirtualization(hostInput(name, s, 1500));
    return { sw, uplink, vm };
  };
  const a = mk('host-a', [['red-vm5', MAC5, true], ['blue-vm5', MAC5, true]]);
  const b = mk('host-b', [['red-vm6', MAC6, true], ['blue-vm6', MAC6, false]]);
  exchange(a, b); // PA ARP, announcements
  for (const h of [a, b]) for (const p of Object.values(h.vm)) p.takeSent();
  return { a, b };
}

/** Poll both, move underlay frames across; returns what went A -> B. */
function exchange(a: Host, b: Host): Uint8Array[] {
  const ab: Uint8Array[] = [];
  for (let round = 0; round < 20; round++) {
    a.sw.poll();
    b.sw.poll();
    const x = a.uplink.takeSent();
    const y = b.uplink.takeSent();
    if (x.length === 0 && y.length === 0) return ab;
    for (const f of x) {
      ab.push(f);
      b.uplink.inject(f);
    }
    for (const f of y) a.uplink.inject(f);
  }
  throw new Error('the underlay never went quiet');
}

/** A TCP super-frame from VM5 to VM6 (10.0.0.5 -> 10.0.0.6) as a VM's stack hands it over: CHECKSUM_PARTIAL. */
function superFrame(payLen: number, mss: number): { bytes: Uint8Array; meta: { gsoType: number; gsoSize: number; hdrLen: number; needsCsum: boolean; csumStart: number; csumOffset: number } } {
  const thl = 32;
  const f = new Uint8Array(ETH + 20 + thl + payLen);
  put16(f, 0, 0x0200);
  put32(f, 2, 6);
  put16(f, 6, 0x0200);
  put32(f, 8, 5);
  put16(f, 12, 0x0800);
  f[14] = 0x45;
  put16(f, 16, 20 + thl + payLen);
  put16(f, 18, 0x1234);
  f[20] = 0x40;
  f[22] = 64;
  f[23] = 6;
  put32(f, 26, 0x0a000005);
  put32(f, 30, 0x0a000006);
  put16(f, 24, ~refSum(f, 14, 34) & 0xffff);
  const l4 = 34;
  put16(f, l4, 40000);
  put16(f, l4 + 2, 5201);
  put32(f, l4 + 4, 0x80000000);
  put32(f, l4 + 8, 77);
  f[l4 + 12] = (thl / 4) << 4;
  f[l4 + 13] = 0x18;
  put16(f, l4 + 14, 500);
  f.set([1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0], l4 + 20);
  for (let i = 0; i < payLen; i++) f[l4 + thl + i] = (i * 31 + (i >>> 8)) & 0xff;
  put16(f, l4 + 16, refSum(f, 26, 34, 6 + thl + payLen)); // pseudo-header seed
  return { bytes: f, meta: { gsoType: GSO_TCPV4, gsoSize: mss, hdrLen: l4 + thl, needsCsum: true, csumStart: l4, csumOffset: 16 } };
}

for (const [rule, outer] of [['encap', 42], ['vxlan', 50]] as const) {
  describe(`GRO through two switches, ${rule}`, () => {
    it('the offload VM gets one super-frame, the other the original segments byte for byte; counters', () => {
      const { a, b } = hosts(rule);
      const mss = 1380; // inner IP 1432: within the VXLAN tenant MTU (1450) too
      const n = 12;
      const sf = superFrame(mss * n - 300, mss);
      a.vm['red-vm5']!.inject(sf.bytes, sf.meta);
      a.vm['blue-vm5']!.inject(sf.bytes, sf.meta);
      const wire = exchange(a, b);
      assert.equal(wire.length, 2 * n, 'MTU-size segments on the underlay');
      const inner = wire.map((f) => f.slice(outer));

      const red = b.vm['red-vm6']!.takeSentWithMeta();
      assert.equal(red.length, 1, 'one super-frame to the VM with offload');
      const r = red[0]!;
      assert.equal(r.meta.gsoType, GSO_TCPV4);
      assert.equal(r.meta.gsoSize, mss);
      assert.equal(r.meta.needsCsum, true);
      assert.equal(r.bytes.length, sf.bytes.length);

      assert.deepEqual(r.bytes, sf.bytes, 'the super-frame the VM on host A sent, header included');

      const blue = b.vm['blue-vm6']!.takeSent();
      assert.equal(blue.length, n, 'segments to the VM without offload');
      // host A polls red-vm5 before blue-vm5: the underlay carries red's segments, then blue's
      for (let k = 0; k < n; k++) assert.deepEqual(blue[k], inner[n + k], `segment ${k} as host A sent it`);

      const c = b.sw.switchCounters();
      assert.deepEqual(c.gro, { segments: 2 * n, superFrames: 2 });
      assert.equal(b.sw.frameTotals().merged, 2 * (n - 1));
      assert.equal(b.sw.portCounters(b.sw.portId('uplink')!).rxFrames >= 2 * n, true);
      assert.equal(a.sw.switchCounters().gro?.superFrames, 0);
    });

    it('a segment with a bad checksum is not merged and reaches the VM as it came', () => {
      const { a, b } = hosts(rule);
      const sf = superFrame(1380 * 6, 1380);
      a.vm['red-vm5']!.inject(sf.bytes, sf.meta);
      a.sw.poll();
      const wire = a.uplink.takeSent();
      assert.equal(wire.length, 6);
      const bad = wire[3]!.slice();
      bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
      for (let k = 0; k < 6; k++) b.uplink.inject(k === 3 ? bad : wire[k]!);
      b.sw.poll();
      const got = b.vm['red-vm6']!.takeSentWithMeta();
      assert.deepEqual(got.map((g) => (g.meta.gsoType === GSO_NONE ? 1 : Math.ceil((g.bytes.length - g.meta.hdrLen) / g.meta.gsoSize))), [3, 1, 2]);
      assert.deepEqual(got[1]!.bytes, bad.subarray(outer));
    });
  });
}
