// policy/acl.test-kit.ts: a Switch with three memory ports for ACL tests: a (MAC_A, the port under test), b, c,
// every MAC learned; send a frame in on one port and count what each port sent.

import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B, MAC_C, portCfg, rig } from '../dataplane/switch.test-kit.js';
import type { PortConfig } from '../dataplane/switch-api.js';

/** Three ports a, b, c with port a's config `a`; MACs learned. */
export function three(a: Partial<PortConfig> = {}) {
  const r = rig({ a, b: {}, c: {} });
  const learn = (): void => {
    for (const [p, m] of [['a', MAC_A], ['b', MAC_B], ['c', MAC_C]] as const) r.port[p]!.inject(frame().eth({ dst: 0xffff_ffff_ffff, src: m }).bytes());
    r.sw.poll();
    for (const p of ['a', 'b', 'c']) r.port[p]!.takeSent();
  };
  learn();
  const send = (from: string, f: Uint8Array): Record<string, number> => {
    r.port[from]!.inject(f);
    r.sw.poll();
    return { a: r.port['a']!.takeSent().length, b: r.port['b']!.takeSent().length, c: r.port['c']!.takeSent().length };
  };
  const drops = (p: string) => r.sw.portCounters(r.id[p]!).drops;
  const hits = () => r.sw.portAcl(r.id['a']!)!;
  const setA = (over: Partial<PortConfig>): void => {
    r.sw.updatePort(r.id['a']!, portCfg('a', over));
    learn();
  };
  return { ...r, send, drops, hits, setA };
}

