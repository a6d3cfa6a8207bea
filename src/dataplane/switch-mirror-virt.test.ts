// dataplane/switch-mirror-virt.test.ts: port mirroring beside network virtualization, two whole switches joined by
// the test (the virtualization test kit's red tenant): a source VM's traffic to and from a VM on the other host is
// copied as customer frames (CAs, MACs), even with IP rewrite, which changes the frame's bytes in place for the
// uplink; a destination uplink gets no copies (the virtualization layer owns its sends), the tunnel still works.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { memoryPort, type MemoryPort } from '../io/memory.js';
import type { LookupRule } from '../virtualization/model.js';
import { hostInput, MAC5, MAC6, spec, vsidOf } from '../virtualization/virtualization.test-kit.js';
import { portCfg, RecordingLogger } from './switch.test-kit.js';
import { Switch } from './switch.js';
import { ManualClock } from './types.js';
import type { MirrorMode } from '../policy/mirror.js';

interface Host {
  sw: Switch;
  uplink: MemoryPort;
  vm: MemoryPort;
  mon: MemoryPort;
}

function host(name: 'host-a' | 'host-b', rule: LookupRule, vmMirror: MirrorMode, uplinkMirror: MirrorMode): Host {
  const sw = new Switch({ name: 'sw0', clock: new ManualClock(1_000_000), log: new RecordingLogger() });
  const uplink = memoryPort('uplink', { maxFrameBytes: 2048 });
  sw.addPort(uplink, portCfg('uplink', { kind: 'external', mirror: uplinkMirror }));
  const vm = memoryPort('vm');
  const mac = name === 'host-a' ? MAC5 : MAC6;
  sw.addPort(vm, portCfg('vm', { vsid: vsidOf('red', 1), mac, mirror: vmMirror }));
  const mon = memoryPort('mon');
  sw.addPort(mon, portCfg('mon', { mirror: 'destination' }));
  sw.setVirtualization(hostInput(name, spec({ rule })));
  return { sw, uplink, vm, mon };
}

function exchange(a: Host, b: Host): void {
  for (let round = 0; round < 20; round++) {
    a.sw.poll();
    b.sw.poll();
    const ab = a.uplink.takeSent();
    const ba = b.uplink.takeSent();
    if (ab.length === 0 && ba.length === 0) return;
    for (const f of ab) b.uplink.inject(f);
    for (const f of ba) a.uplink.inject(f);
  }
  throw new Error('the underlay never went quiet');
}

function udp(src: number, dst: number, sip: string, dip: string, mark: number): Uint8Array {
  const f = frame().eth({ src, dst }).ipv4({ src: sip, dst: dip, df: true }).udp({ sport: 4000, dport: 5000 }).payload(32).bytes();
  f[42] = mark;
  return f;
}

for (const rule of ['encap', 'rewrite'] as const) {
  describe(`mirror with network virtualization (${rule})`, () => {
    it('copies are customer frames, both directions; a destination uplink gets none and the tunnel works', () => {
      const a = host('host-a', rule, 'source', 'destination');
      const b = host('host-b', rule, 'none', 'none');
      exchange(a, b);
      for (const h of [a, b]) {
        h.vm.takeSent();
        h.mon.takeSent();
      }
      const m0 = a.sw.switchCounters().mirrored ?? 0; // the setup's announcements to the VM were copied too
      const out = udp(MAC5, MAC6, '10.0.0.5', '10.0.0.6', 1);
      a.vm.inject(out);
      exchange(a, b);
      const back = udp(MAC6, MAC5, '10.0.0.6', '10.0.0.5', 2);
      b.vm.inject(back);
      exchange(a, b);
      assert.equal(b.vm.takeSent().length, 1, 'the original crossed');
      assert.equal(a.vm.takeSent().length, 1, 'the reply crossed back');
      const copies = a.mon.takeSent();
      assert.equal(copies.length, 2, 'the egress to the uplink and the ingress from it');
      assert.deepEqual(copies[0], out, 'the frame as the VM sent it: CAs, not PAs (copied before encapsulation or rewrite)');
      assert.deepEqual(copies[1]!.subarray(0, 12), back.subarray(0, 12), 'the decapsulated frame: customer MACs');
      assert.deepEqual(copies[1]!.subarray(26, 34), back.subarray(26, 34), 'customer IPs');
      assert.equal((a.sw.switchCounters().mirrored ?? 0) - m0, 2);
      assert.deepEqual(b.mon.takeSent(), [], 'nothing mirrored on the other host');
    });
  });
}
