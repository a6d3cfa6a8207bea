// policy/mirror.ts: port mirroring with the semantics of Hyper-V's PortMirroring (Set-VMNetworkAdapter
// -PortMirroring Source/Destination/None). Every frame a source port sent that the switch forwards (ingress), and
// every frame the switch delivers to a source port (egress), is copied to each destination port of the same
// switch. Decisions (documented in DESIGN.md §3 notes of the mirror work):
// - Copies are taken after the switch edge: what the extensions and the built-in policies (ACLs, VSID check)
//   dropped is not copied (its drop is counted instead); what a filter modified is copied as modified.
// - A copy is the frame as the switch holds it, tagged for the destination as ordinary egress would be: an access
//   destination gets every copy untagged; a trunk destination gets the frame's VLAN tag (untagged for its native
//   VLAN or VLAN 0) whether or not the VLAN is in its allowed list; a VLAN-unaware ('none') destination gets a tag
//   whenever the frame has a VLAN. Copies bypass the destination's VSID and ACL checks (a monitor port is an
//   operator's choice).
// - A destination never gets a copy of a frame it is already a live destination of (a flood), nor of a frame it
//   sent itself; copies are never mirrored again (they are only sends, never fed back into the pipeline).
// - Copies are sent after every normal send of the batch, so a destination's own traffic gets the tx queue first;
//   a copy the destination cannot take is counted 'mirror-tx-full' against it, the original is not affected.
// - A down destination gets no copies (nothing is counted: no copy was made).

import type { Batch, FrameMeta } from '../dataplane/frame.js';
import { DEST_EXCLUDED } from '../dataplane/frame.js';
import type { PortState, PortTable } from '../dataplane/port-table.js';

export type MirrorMode = 'none' | 'source' | 'destination';
export const MIRROR_MODES: readonly MirrorMode[] = ['none', 'source', 'destination'];

export const MIRROR_NONE = 0;
export const MIRROR_SOURCE = 1;
export const MIRROR_DESTINATION = 2;

export function mirrorCode(mode: MirrorMode | undefined): number {
  return mode === 'source' ? MIRROR_SOURCE : mode === 'destination' ? MIRROR_DESTINATION : MIRROR_NONE;
}

/** Is frame m copied: from a source port, or to a live source port? */
export function isMirrored(m: FrameMeta, ports: PortTable): boolean {
  const src = ports.get(m.inPort);
  if (src !== undefined && src.mirror === MIRROR_SOURCE) return true;
  const d = m.dest;
  for (let k = 0; k < d.count; k++) {
    if ((d.flags[k]! & DEST_EXCLUDED) !== 0) continue;
    const p = ports.get(d.ports[k]!);
    if (p !== undefined && p.up && p.mirror === MIRROR_SOURCE) return true;
  }
  return false;
}

/** Does destination port q get a copy of mirrored frame m (up, not its sender, not already a live destination)? */
export function takesCopy(m: FrameMeta, q: PortState, skipExternal: boolean): boolean {
  if (!q.up || q.id === m.inPort || (skipExternal && q.external)) return false;
  const d = m.dest;
  for (let k = 0; k < d.count; k++) {
    if (d.ports[k] === q.id && (d.flags[k]! & DEST_EXCLUDED) === 0) return false;
  }
  return true;
}

/**
 * For frames [lo, hi) not dropped: queue a copy on each destination port in `dests` (its txIdx/txFlags, from
 * txCount 0; the caller sends and resets) when the frame came from a source port or goes to a live source port.
 * Destinations that are external while `skipExternal` (the virtualization layer owns that port's sends) are left
 * alone. Returns the copies queued. Allocates nothing.
 */
export function collectMirror(b: Batch, lo: number, hi: number, ports: PortTable, dests: readonly PortState[], skipExternal: boolean): number {
  let copies = 0;
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null || !isMirrored(m, ports)) continue;
    for (let j = 0; j < dests.length; j++) {
      const q = dests[j]!;
      if (!takesCopy(m, q, skipExternal)) continue;
      const c = q.txCount;
      if (c > 0 && q.txIdx[c - 1] === i) continue;
      q.txIdx[c] = i;
      q.txFlags[c] = 0; // egress tagging of the destination's own VLAN mode (see the header)
      q.txCount = c + 1;
      copies++;
    }
  }
  return copies;
}
