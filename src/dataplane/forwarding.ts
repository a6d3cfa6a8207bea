// dataplane/forwarding.ts: built-in forwarding, used when no forwarding extension is bound and enabled:
// learn the source MAC, look the destination up in the learning domain (VLAN, or VSID), else flood.

import type { LocalPorts, VirtualizationLayer } from '../virtualization/api.js';
import type { FrameTotals } from './counters.js';
import type { Batch, FrameMeta } from './frame.js';
import { learningDomain, type MacTable } from './mac-table.js';
import type { PortState, PortTable } from './port-table.js';
import { NO_PORT, type Millis } from './types.js';

/**
 * Set destinations for frames [lo, hi) of b that are not dropped and have none preset (`preset[i]` = 1).
 * Learns only from frames received on a port (not from frames an extension originated).
 */
export function forwardBuiltIn(
  b: Batch,
  lo: number,
  hi: number,
  preset: Uint8Array | null,
  macs: MacTable,
  ports: PortTable,
  now: Millis,
  totals: FrameTotals,
  virt: VirtualizationLayer | null = null,
  local: LocalPorts | null = null,
): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null || m.consumed || (preset !== null && preset[i] === 1)) continue;
    // filters may have rewritten the MACs: read them again, as int halves (no boxed doubles per frame)
    const u8 = b.slab;
    const o = m.off;
    const dstHi = (u8[o]! << 8) | u8[o + 1]!;
    const dstLo = (u8[o + 2]! << 24) | (u8[o + 3]! << 16) | (u8[o + 4]! << 8) | u8[o + 5]!;
    const srcHi = (u8[o + 6]! << 8) | u8[o + 7]!;
    const srcLo = (u8[o + 8]! << 24) | (u8[o + 9]! << 16) | (u8[o + 10]! << 8) | u8[o + 11]!;
    const domain = learningDomain(m.vlan, m.vsid);
    // group bit clear and not all zeros: a unicast source worth learning
    if (!m.originated && m.inPort !== NO_PORT && (srcHi & 0x100) === 0 && (srcHi | srcLo) !== 0) {
      const r = macs.learn(domain, srcHi, srcLo, m.inPort, now);
      if (r === 'refused') totals.macLearnRefused++;
      else if (r === 'moved') totals.macMoves++;
    }
    m.dest.clear();
    // a virtual subnet's frames follow the policy table, not learning and flooding (virtualization/api.ts)
    if (virt !== null && m.vsid !== 0) {
      virt.forward(b, i, local!, now);
      continue;
    }
    if ((dstHi & 0x100) !== 0) {
      flood(m, ports.list);
      continue;
    }
    const out = macs.lookup(domain, dstHi, dstLo, now);
    if (out === NO_PORT) {
      flood(m, ports.list);
    } else if (out === m.inPort) {
      m.drop = 'hairpin';
    } else {
      m.dest.add(out);
    }
  }
}

/** Every up port in the frame's domain except the one it came from, respecting VLAN membership. */
export function flood(m: FrameMeta, list: readonly PortState[]): void {
  for (let k = 0; k < list.length; k++) {
    const p = list[k]!;
    if (p.id === m.inPort || !p.up) continue;
    if (!p.vlan.member(m.vlan)) continue;
    if (p.vsid !== m.vsid && !p.external) continue;
    m.dest.add(p.id);
  }
}
