// policy/ipv6-chain.test.ts: extended ACLs judge IPv6 by its upper layer, behind any extension headers Linux's
// ip6tables would skip (hop-by-hop, routing, destination options, AH); a packet whose chain never reaches its upper
// layer (more than 8 headers, or a header cut short) cannot be judged and is dropped 'acl-ipv6-chain-unknown'
// instead of being matched as protocol 60 or 51 (which let it past a "deny udp").

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame } from '../../test/helpers/frame-builder.js';
import { MAC_A, MAC_B } from '../dataplane/switch.test-kit.js';
import { three } from './acl.test-kit.js';

const A6 = 'fd00::1';
const B6 = 'fd00::2';
type Ext = { type: number; lengthByte?: number };

function udp6(ext: Ext[]): Uint8Array {
  return frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, ext }).udp({ sport: 7, dport: 53 }).payload(new Uint8Array(16)).bytes();
}
function tcp6(ext: Ext[]): Uint8Array {
  return frame().eth({ dst: MAC_A, src: MAC_B }).ipv6({ src: B6, dst: A6, ext }).tcp({ sport: 7, dport: 80, flags: 'S' }).bytes();
}
const opts = (n: number): Ext[] => Array.from({ length: n }, () => ({ type: 60 }));

describe('extended ACLs and the IPv6 extension header chain', () => {
  const rules = { extendedAcls: [{ direction: 'in' as const, action: 'deny' as const, weight: 100, protocol: 'udp' as const }, { direction: 'in' as const, action: 'allow' as const, weight: 1 }] };

  it('UDP behind AH or a few options headers is judged as UDP; TCP behind AH as TCP', () => {
    const t = three(rules);
    assert.equal(t.send('b', udp6([{ type: 51 }])).a, 0, 'UDP behind AH: denied as UDP, not allowed as protocol 51');
    assert.equal(t.send('b', udp6([{ type: 0 }, { type: 60 }, { type: 43 }, { type: 51 }, { type: 60 }])).a, 0);
    assert.equal(t.send('b', tcp6([{ type: 51 }])).a, 1, 'TCP behind AH: the allow rule');
    assert.equal(t.send('b', udp6(opts(8))).a, 0, '8 headers: walked to the end');
    assert.equal(t.drops('b')['extended-acl-deny'], 3);
    assert.equal(t.drops('b')['acl-ipv6-chain-unknown'] ?? 0, 0);
  });

  it('a chain longer than 8 headers or cut short is dropped acl-ipv6-chain-unknown, whatever the rules allow', () => {
    const t = three(rules);
    assert.equal(t.send('b', udp6(opts(9))).a, 0, 'UDP behind 9 headers: not allowed as protocol 60');
    assert.equal(t.send('b', tcp6(opts(9))).a, 0, 'TCP too: nothing can know it is TCP');
    // a destination options header claiming 64 bytes more than the packet has
    assert.equal(t.send('b', udp6([{ type: 60, lengthByte: 8 }])).a, 0);
    assert.equal(t.drops('b')['acl-ipv6-chain-unknown'], 3);
  });

  it('a port without extended ACLs forwards such packets (port ACLs match addresses only)', () => {
    const t = three({ acls: [{ direction: 'in', action: 'allow', remote: 'fd00::/64' }] });
    assert.equal(t.send('b', udp6(opts(9))).a, 1);
    assert.equal(t.drops('b')['acl-ipv6-chain-unknown'] ?? 0, 0);
  });
});
