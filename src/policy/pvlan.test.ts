// policy/pvlan.test.ts: private VLAN reachability on a switch with memory ports: isolated, two communities and a
// promiscuous port on primary 10, plus a trunk; unicast after learning and broadcast, blocked frames counted.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BROADCAST, eth, rig, tagOf } from '../dataplane/switch.test-kit.js';
import type { PortConfig } from '../dataplane/switch-api.js';
import { type PrivateVlanType, pvlanAllows, PrivateVlan } from './pvlan.js';

const pv = (type: PrivateVlanType, secondary: number[] = []): Partial<PortConfig> => ({ vlan: { mode: 'private', primary: 10, type, secondary } });
const MAC: Record<string, number> = { i1: 0x02_00_00_00_01_01, i2: 0x02_00_00_00_01_02, c1: 0x02_00_00_00_02_01, c2: 0x02_00_00_00_02_02, d1: 0x02_00_00_00_03_01, p: 0x02_00_00_00_04_01, t: 0x02_00_00_00_05_01 };

function pvlanRig() {
  const r = rig({
    i1: pv('isolated', [11]), i2: pv('isolated', [11]),
    c1: pv('community', [12]), c2: pv('community', [12]), d1: pv('community', [13]),
    p: pv('promiscuous'),
    t: { vlan: { mode: 'trunk', allowed: [10] } },
  });
  // everyone announces itself (broadcast) so unicast is known afterwards
  for (const n of Object.keys(MAC)) r.port[n]!.inject(n === 't' ? eth(BROADCAST, MAC[n]!, { vid: 10 }) : eth(BROADCAST, MAC[n]!));
  r.sw.poll();
  for (const n of Object.keys(MAC)) r.port[n]!.takeSent();
  return r;
}

const REACH: Record<string, string[]> = {
  i1: ['p', 't'],
  i2: ['p', 't'],
  c1: ['c2', 'p', 't'],
  c2: ['c1', 'p', 't'],
  d1: ['p', 't'],
  p: ['i1', 'i2', 'c1', 'c2', 'd1', 't'],
  t: ['i1', 'i2', 'c1', 'c2', 'd1', 'p'],
};

describe('private VLANs on the switch data path', () => {
  it('broadcast from each port reaches exactly its private VLAN peers', () => {
    const r = pvlanRig();
    for (const src of Object.keys(MAC)) {
      r.port[src]!.inject(src === 't' ? eth(BROADCAST, MAC[src]!, { vid: 10 }) : eth(BROADCAST, MAC[src]!));
      r.sw.poll();
      const got = Object.keys(MAC).filter((n) => r.port[n]!.takeSent().length > 0);
      assert.deepEqual(got.sort(), [...REACH[src]!].sort(), `broadcast from ${src}`);
    }
  });

  it('unicast matrix: allowed pairs delivered, the rest dropped as pvlan-blocked', () => {
    const r = pvlanRig();
    const names = Object.keys(MAC);
    let blocked = 0;
    for (const src of names) {
      for (const dst of names) {
        if (src === dst) continue;
        r.port[src]!.inject(src === 't' ? eth(MAC[dst]!, MAC[src]!, { vid: 10 }) : eth(MAC[dst]!, MAC[src]!));
        r.sw.poll();
        const got = names.filter((n) => r.port[n]!.takeSent().length > 0);
        const want = REACH[src]!.includes(dst) ? [dst] : [];
        if (want.length === 0) blocked++;
        assert.deepEqual(got, want, `${src} -> ${dst}`);
      }
    }
    const total = names.reduce((s, n) => s + (r.sw.portCounters(r.id[n]!).drops['pvlan-blocked'] ?? 0), 0);
    assert.equal(total, blocked);
    assert.ok(blocked > 10);
  });

  it('a trunk carrying only the primary (a promiscuous trunk) gets every private VLAN frame tagged with the primary', () => {
    const r = pvlanRig();
    r.port.i1!.inject(eth(BROADCAST, MAC.i1!));
    r.sw.poll();
    const f = r.port.t!.takeSent();
    assert.equal(f.length, 1);
    assert.deepEqual(tagOf(f[0]!), { vid: 10, pcp: 0 });
  });

  it('a trunk carrying the secondaries: isolated/community frames leave tagged with their secondary, tags coming in map back', () => {
    const r = rig({
      i1: pv('isolated', [11]), c1: pv('community', [12]), c2: pv('community', [12]), p: pv('promiscuous'),
      t2: { vlan: { mode: 'trunk', allowed: [10, 11, 12] } },
    });
    const names = ['i1', 'c1', 'c2', 'p', 't2'];
    const mac: Record<string, number> = { i1: MAC.i1!, c1: MAC.c1!, c2: MAC.c2!, p: MAC.p! };
    const tags: Record<string, number> = {};
    for (const n of ['i1', 'c1', 'p']) {
      r.port[n]!.inject(eth(BROADCAST, mac[n]!));
      r.sw.poll();
      const f = r.port.t2!.takeSent();
      assert.equal(f.length, 1, `${n} -> trunk`);
      tags[n] = tagOf(f[0]!)?.vid ?? -1;
      for (const x of names) r.port[x]!.takeSent();
    }
    assert.deepEqual(tags, { i1: 11, c1: 12, p: 10 });
    // from behind the trunk: tagged 11 = an isolated host, 12 = community 12, 10 = promiscuous
    const reach = (vid: number, src: number): string[] => {
      r.port.t2!.inject(eth(BROADCAST, src, { vid }));
      r.sw.poll();
      return names.filter((n) => r.port[n]!.takeSent().length > 0);
    };
    assert.deepEqual(reach(11, 0x02_00_00_00_0e_11), ['p']);
    assert.deepEqual(reach(12, 0x02_00_00_00_0e_12), ['c1', 'c2', 'p']);
    assert.deepEqual(reach(10, 0x02_00_00_00_0e_10), ['i1', 'c1', 'c2', 'p']);
    // the remote isolated host is learned in the primary: p answers it by unicast, tagged 10 (promiscuous) on the trunk
    r.port.p!.inject(eth(0x02_00_00_00_0e_11, MAC.p!));
    r.sw.poll();
    const back = r.port.t2!.takeSent();
    assert.equal(back.length, 1);
    assert.deepEqual(tagOf(back[0]!), { vid: 10, pcp: 0 });
    // i1's unicast to it leaves in the secondary: the switch behind the trunk isolates it there (RFC 5517 §3)
    r.port.i1!.inject(eth(0x02_00_00_00_0e_11, MAC.i1!));
    r.sw.poll();
    const iso = r.port.t2!.takeSent();
    assert.equal(iso.length, 1);
    assert.deepEqual(tagOf(iso[0]!), { vid: 11, pcp: 0 });
    // the remote community 12 host is reached by c1 but is not a destination for i1's broadcast
    r.port.i1!.inject(eth(BROADCAST, MAC.i1!));
    r.sw.poll();
    assert.deepEqual(names.filter((n) => r.port[n]!.takeSent().length > 0), ['p', 't2']);
  });

  it('a promiscuous port with a secondary list serves only those secondaries', () => {
    const s = (type: PrivateVlanType, sec: number[]): PrivateVlan => new PrivateVlan({ mode: 'private', primary: 10, type, secondary: sec });
    const p12 = s('promiscuous', [12]);
    assert.equal(pvlanAllows(s('community', [12]), p12), true);
    assert.equal(pvlanAllows(s('community', [13]), p12), false);
    assert.equal(pvlanAllows(s('isolated', [11]), p12), false);
    assert.equal(pvlanAllows(p12, s('isolated', [11])), false);
    assert.equal(pvlanAllows(p12, s('community', [12])), true);
    assert.equal(pvlanAllows(p12, s('promiscuous', [])), true);
    assert.equal(pvlanAllows(p12, null), true);
  });

  it('changing a port from isolated to community applies live', () => {
    const r = pvlanRig();
    r.port.i1!.inject(eth(MAC.i2!, MAC.i1!));
    r.sw.poll();
    assert.equal(r.port.i2!.takeSent().length, 0);
    r.sw.updatePort(r.id.i1!, { name: 'i1', kind: 'vm', mac: null, vsid: 0, up: true, macLimit: 0, vlan: { mode: 'private', primary: 10, type: 'community', secondary: [12] } });
    r.port.i1!.inject(eth(MAC.c1!, MAC.i1!));
    r.sw.poll();
    assert.equal(r.port.c1!.takeSent().length, 1);
  });
});
