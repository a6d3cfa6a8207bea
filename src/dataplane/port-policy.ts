// dataplane/port-policy.ts: built-in port policy at the switch edge, between the forwarding decision and egress.
// It enforces the VSID rule (a destination in another virtual subnet is excluded; external ports carry
// every VSID: the virtualization layer below them encapsulates) and the port ACLs of src/policy (out-direction
// rules of the input port drop the frame; in-direction rules of a destination exclude that destination).
// sourceAclVerdict gives the input port's out-direction verdict alone, for a frame the virtualization layer answers
// in place (ICMP errors) instead of forwarding: the sender's ACLs judge the original before any answer.

import type { Batch, FrameMeta } from './frame.js';
import type { PortTable } from './port-table.js';
import type { DropReason } from './drop.js';
import type { Millis } from './types.js';
import { Flow } from '../policy/flow.js';
import {
  DIR_IN, DIR_OUT, type PortAcl, VERDICT_ACL_DENY, VERDICT_ALLOW, VERDICT_CHAIN_UNKNOWN, VERDICT_EXTENDED_DENY,
} from '../policy/port-acl.js';

/** The L3/L4 fields of the frame being checked, parsed once per frame for every ACL it meets. */
const aclFlow = new Flow();
/** The same for sourceAclVerdict, called from forwarding (between two frames' uses of aclFlow, never inside). */
const probeFlow = new Flow();

/**
 * For frames [lo, hi) not dropped and not trusted: drop a frame its input port's out-direction ACLs deny; exclude
 * destinations that are gone, down, the input port, in another VSID, or denied by their in-direction ACLs. A frame
 * left with no live destination is dropped with the most telling reason.
 */
export function applyPortPolicy(b: Batch, lo: number, hi: number, ports: PortTable, now: Millis = 0): void {
  for (let i = lo; i < hi; i++) {
    const m = b.meta[i]!;
    if (m.drop !== null) continue;
    aclFlow.invalidate();
    if (!m.trusted) {
      const r = aclOut(b, i, ports, now);
      if (r !== null) {
        m.drop = r;
        continue;
      }
    }
    let acl: DropReason | null = null;
    let denied: DropReason | null;
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
      } else if (p.acl !== null && !m.trusted && (denied = aclIn(b, i, p.acl, now)) !== null) {
        d.exclude(k);
        acl = denied;
      } else {
        live++;
      }
    }
    if (live === 0) {
      m.drop = acl !== null ? acl : vsid > 0 ? 'vsid-mismatch' : down > 0 ? 'port-down' : hairpin > 0 ? 'hairpin' : 'no-destination';
    }
  }
}

// ---- port ACLs (src/policy): out = frames from the VM (its input port), in = frames to the VM (each destination)

function aclOut(b: Batch, i: number, ports: PortTable, now: Millis): DropReason | null {
  const m = b.meta[i]!;
  const p = ports.get(m.inPort);
  return p === undefined || p.acl === null ? null : aclVerdict(b.slab, m, p.acl, DIR_OUT, now, aclFlow, true);
}

function aclIn(b: Batch, i: number, acl: PortAcl, now: Millis): DropReason | null {
  return aclVerdict(b.slab, b.meta[i]!, acl, DIR_IN, now, aclFlow, true);
}

/**
 * The verdict of frame m's input port's out-direction ACLs (null = allowed, else the drop reason), exactly as
 * applyPortPolicy would give it, for a frame the switch answers in place instead of forwarding (ICMP errors of
 * the virtualization layer): rule hits count, but no connection is recorded for a packet that never leaves
 * (PortAcl.evaluate track = false). Trusted frames bypass ACLs, as in applyPortPolicy. Slow path.
 */
export function sourceAclVerdict(slab: Uint8Array, m: FrameMeta, ports: PortTable, now: Millis): DropReason | null {
  if (m.trusted) return null;
  const p = ports.get(m.inPort);
  if (p === undefined || p.acl === null) return null;
  probeFlow.invalidate();
  return aclVerdict(slab, m, p.acl, DIR_OUT, now, probeFlow, false);
}

/** The ACLs' verdict on frame m in direction dir: null = allowed, else the drop reason. */
function aclVerdict(slab: Uint8Array, m: FrameMeta, acl: PortAcl, dir: number, now: Millis, f: Flow, track: boolean): DropReason | null {
  f.parse(slab, m);
  const v = acl.evaluate(f, dir, now, track);
  if (v === VERDICT_ALLOW) return null;
  if (v === VERDICT_ACL_DENY) return 'acl-deny';
  if (v === VERDICT_EXTENDED_DENY) return 'extended-acl-deny';
  return v === VERDICT_CHAIN_UNKNOWN ? 'acl-ipv6-chain-unknown' : 'acl-fragment-unknown';
}
