// dataplane/switch-acl-virt.test.ts: ICMP errors the switch itself sends a VM (fragmentation needed / packet too big
// when an encapsulated frame would exceed the tenant MTU, virtualization/icmp-reply.ts) and a VM port whose stateful
// extended ACLs deny everything inbound but what its connections admit. The error is built in place of the VM's
// frame and marked trusted (layer.ts replied), so port policy never judges it: it reaches the VM whether or not the
// VM's connection is tracked, and the VM's rules do not count it. Checked here so a change to that path shows.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { memoryPort, type MemoryPort } from '../io/memory.js';
import { ca6Of, hostInput, MAC5, MAC6, spec, VMS, vsidOf } from '../virtualization/virtualization.test-kit.js';
import { portCfg, RecordingLogger } from './switch.test-kit.js';
import { Switch } from './switch.js';
import { ManualClock } from './types.js';
import type { ExtendedAclSpec } from '../policy/extended-acl.js';

const statefulOut: ExtendedAclSpec[] = [
  { direction: 'out', action: 'allow', weight: 100, protocol: 'udp', stateful: true },
  { direction: 'in', action: 'deny', weight: 1 },
];

function hostA(): { sw: Switch; vm: MemoryPort; uplink: MemoryPort } {
  const sw = new Switch({ name: 'sw0', clock: new ManualClock(1_000_000), log: new RecordingLogger() });
  const uplink = memoryPort('uplink', { maxFrameBytes: 2048 });
  sw.addPort(uplink, portCfg('uplink', { kind: 'external' }));
  const vm = memoryPort('vm', { maxFrameBytes: 2048 });
  sw.addPort(vm, portCfg('vm', { vsid: vsidOf('red', 1), mac: MAC5, extendedAcls: statefulOut }));
  sw.setVirtualization(hostInput('host-a', spec({ ipv6: true })));
  return { sw, vm, uplink };
}

const vm6 = VMS.find((v) => v.name === 'vm6')!;
const vm5 = VMS.find((v) => v.name === 'vm5')!;

describe('switch-originated ICMP errors and a VM port with stateful extended ACLs', () => {
  it('IPv4 fragmentation needed reaches the VM, its connection tracked or not; the in deny rule never sees it', () => {
    const h = hostA();
    const big = (sport: number): Uint8Array =>
      frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).udp({ sport, dport: 5000 }).payload(1452).bytes();
    const small = frame().eth({ src: MAC5, dst: MAC6 }).ipv4({ src: '10.0.0.5', dst: '10.0.0.6', df: true }).udp({ sport: 4000, dport: 5000 }).payload(20).bytes();
    h.vm.inject(small);
    h.sw.poll();
    assert.equal(h.sw.portAcl(h.sw.portId('vm')!)!.connections!.size, 1, 'the connection is tracked');
    for (const sport of [4000, 4001]) {
      h.vm.takeSent();
      h.vm.inject(big(sport));
      h.sw.poll();
      const back = h.vm.takeSent();
      assert.equal(back.length, 1, `fragmentation needed back to the VM (source port ${sport}, ${sport === 4000 ? '' : 'not '}tracked)`);
      const f = back[0]!;
      assert.equal(f[14 + 9], 1, 'ICMP');
      assert.deepEqual([f[34], f[35]], [3, 4]);
    }
    const st = h.sw.portAcl(h.sw.portId('vm')!)!;
    assert.equal(st.extendedAcls[1]!.frames, 0, 'the in deny rule did not judge the errors');
    assert.equal(st.connections!.related, 0, 'trusted: not even looked at');
  });

  it('IPv6 packet too big reaches the VM the same way', () => {
    const h = hostA();
    const big = frame().eth({ src: MAC5, dst: MAC6 }).ipv6({ src: ca6Of(vm5), dst: ca6Of(vm6) }).udp({ sport: 4000, dport: 5000 }).payload(1452).bytes();
    h.sw.poll();
    h.vm.takeSent(); // announcements of the new policy
    h.vm.inject(big);
    h.sw.poll();
    const back = h.vm.takeSent();
    assert.equal(back.length, 1, 'packet too big back to the VM');
    assert.equal(back[0]![14 + 40], 2, 'ICMPv6 type 2');
  });
});
