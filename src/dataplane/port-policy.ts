// dataplane/port-policy.ts: built-in port policy at the switch edge, between the forwarding decision and egress.
// Today it enforces the VSID rule (a destination in another virtual subnet is excluded; external ports carry
// every VSID: the virtualization layer below them encapsulates); issue 4 adds ACLs, guards and QoS here.

import type { Batch } from './frame.js';
import type { PortTable } from './port-table.js';

/**
 * For frames [lo, hi) not dropped and not trusted: exclude destinations that are gone, down, the input port,
 * or in another VSID. A frame left with no live destination is dropped with the most telling reason.
 */
export function applyPortPolicy(b: Batch, lo: number, hi: number, ports: PortTable): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null) continue;
    const d = m.dest;
    let live = 0;
    let vsid = 0;
    let down = 0;
    let hairpin = 0;
    for (let k = 0; k < d.count; k++) {
      if (d.excluded(k)) continue;
      const p = ports.get(d.ports[k]!);
      if (p === undefined) {
        d.exclude(k);
      } else if (!m.trusted && p.id === m.inPort) {
        d.exclude(k);
        hairpin++;
      } else if (!m.trusted && p.vsid !== m.vsid && !p.external) {
        d.exclude(k);
        vsid++;
      } else if (!p.up) {
        d.exclude(k);
        down++;
      } else {
        live++;
      }
    }
    if (live === 0) {
      m.drop = vsid > 0 ? 'vsid-mismatch' : down > 0 ? 'port-down' : hairpin > 0 ? 'hairpin' : 'no-destination';
    }
  }
}
