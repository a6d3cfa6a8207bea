// policy/port-acl.ts: the ACL state of one port (compiled port ACLs, compiled extended ACLs, connection table)
// and its verdict for a frame in one direction. Order, as in Windows: a tracked connection admits its frames; else
// the extended ACL of highest weight decides (a stateful allow tracks the connection); else the most specific port
// ACL decides; nothing matching = allow. Meter port ACLs count every frame they match, whatever decided. Called by the built-in port policy stage with the frame's Flow, parsed
// once per frame.
//
// RELATED ICMP errors (as Linux conntrack): an ICMP/ICMPv6 error (v4 dest unreachable incl. fragmentation needed,
// time exceeded, parameter problem; v6 dest unreachable, packet too big, time exceeded, parameter problem) that no
// entry admits is allowed when the packet it quotes (IP header + first 8 bytes of L4, bounds-checked in flow.ts)
// belongs to a tracked connection, seen in the opposite direction (the quoted packet is one the port's side sent
// when the error comes in, one it received when the error goes out), and the error is addressed to (or sent
// from) the quoted packet's local address. Counted in the connection table's hits and `related`; it does not
// refresh the connection. An error that quotes nothing tracked is judged by the rules as before.
//
// IP fragments (only on ports with extended ACLs; port ACLs match addresses, which every fragment carries): a
// first fragment is judged as any frame (a first fragment too short for its L4 header as a later one; an IPv6
// one whose extension header chain does not reach its upper layer is dropped 'acl-fragment-unknown') and its
// verdict is remembered (fragments.ts); a later fragment of the same datagram gets that verdict. A later fragment
// whose first fragment was not seen (lost, table full, or arriving after it: fragments are not held back) is
// judged by the rules that do not need ports when that is unambiguous (ExtendedAclTable.portless), else dropped
// 'acl-fragment-unknown'. Changing the extended rules forgets the remembered verdicts.
//
// Packets that never leave (evaluate with track = false): the virtualization layer answers an oversized or
// TTL-expired packet with an ICMP error in place of forwarding it, after the sender's ACLs judged it as if it were
// forwarded. Rule hits count; no connection is created, refreshed or advanced (the packet did not cross, and a
// connection recorded for it would admit inbound traffic the VM never caused). A first fragment's verdict is
// still remembered: it is the verdict its later fragments, dropped the same way, get.

import type { Millis } from '../dataplane/types.js';
import { type AclSpec, AclTable, DIR_IN, DIR_OUT } from './acl.js';
import { ConnTrack, type ConnEntry, type ConnTrackStats, DEFAULT_CONNTRACK_LIMIT } from './conntrack.js';
import { EXT_KEY_WIDTH, type ExtendedAclSpec, ExtendedAclTable, extKey, PL_ALLOW_OR_FALLTHROUGH, PL_AMBIGUOUS, PL_DENY_OR_FALLTHROUGH, PL_FALLTHROUGH } from './extended-acl.js';
import { NO_MATCH } from './classifier.js';
import { FRAG_KEY_WIDTH, fragKey, FragTable, type FragStats, DEFAULT_FRAG_LIMIT } from './fragments.js';
import { type Flow, FRAG_LATER, FRAG_NONE, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from './flow.js';

export { DIR_IN, DIR_OUT } from './acl.js';

export const VERDICT_ALLOW = 0;
export const VERDICT_ACL_DENY = 1;
export const VERDICT_EXTENDED_DENY = 2;
/** A later IP fragment whose first fragment was not seen, which the rules cannot judge without its ports. */
export const VERDICT_FRAGMENT_UNKNOWN = 3;
/** An IPv6 packet whose upper layer is unknown (Flow.chainUnknown): no rule can judge it, dropped. */
export const VERDICT_CHAIN_UNKNOWN = 4;

export interface AclRuleStatus {
  readonly index: number;
  readonly rule: AclSpec;
  readonly frames: number;
  readonly bytes: number;
}
export interface ExtendedAclRuleStatus {
  readonly index: number;
  readonly rule: ExtendedAclSpec;
  readonly frames: number;
  readonly bytes: number;
}
export interface PortAclStatus {
  readonly acls: AclRuleStatus[];
  readonly extendedAcls: ExtendedAclRuleStatus[];
  /** Tuples (distinct mask shapes) of the extended classifier per direction: the lookup cost. */
  readonly extendedTuples: { readonly in: number; readonly out: number };
  readonly connections: ConnTrackStats | null;
  /** Verdicts of first IP fragments (ports with extended ACLs). */
  readonly fragments: FragStats | null;
  readonly connectionList?: ConnEntry[];
}

export class PortAcl {
  acl: AclTable | null = null;
  ext: ExtendedAclTable | null = null;
  ct: ConnTrack | null = null;
  frags: FragTable | null = null;
  private aclText = '';
  private extText = '';
  private readonly key = new Uint32Array(EXT_KEY_WIDTH);
  /** The key of the connection an ICMP error quotes. */
  private readonly qkey = new Uint32Array(EXT_KEY_WIDTH);
  private readonly fkey = new Uint32Array(FRAG_KEY_WIDTH);

  constructor(
    private readonly conntrackLimit = DEFAULT_CONNTRACK_LIMIT,
    private readonly fragLimit = DEFAULT_FRAG_LIMIT,
  ) {}

  /** True when the port has no rule at all (the switch then skips it). */
  get empty(): boolean {
    return this.acl === null && this.ext === null;
  }

  /**
   * Install the rules (control path). Unchanged lists keep their tables and counters; new extended rules keep
   * the connection table only while there is a stateful rule (a connection outlives unrelated changes, but not
   * the removal of every rule that could have admitted it).
   */
  set(acls: readonly AclSpec[] | undefined, ext: readonly ExtendedAclSpec[] | undefined): void {
    const at = JSON.stringify(acls ?? []);
    if (at !== this.aclText) {
      this.aclText = at;
      this.acl = acls === undefined || acls.length === 0 ? null : new AclTable(acls);
    }
    const et = JSON.stringify(ext ?? []);
    if (et !== this.extText) {
      this.extText = et;
      this.ext = ext === undefined || ext.length === 0 ? null : new ExtendedAclTable(ext);
      if (this.ext === null || !this.ext.hasStateful) this.ct = null;
      else if (this.ct === null) this.ct = new ConnTrack(this.conntrackLimit);
      // the fragment table (about 250 KB) is made when the port sees its first fragment: most never do
      if (this.ext === null) this.frags = null;
      else if (this.frags !== null) this.frags.clear(); // verdicts of the old rules
    }
  }

  /**
   * The verdict for flow f crossing this port in direction dir (DIR_IN into the VM, DIR_OUT from it). track =
   * false for a packet that will not leave (the switch answers it in place, virtualization/layer.ts): rule hits
   * count as usual, but no connection is created, refreshed or advanced by it.
   */
  evaluate(f: Flow, dir: number, now: Millis, track = true): number {
    if (f.frag !== FRAG_NONE && this.ext !== null && f.family !== 0) {
      return this.evaluateFragment(f, dir, now, this.frags ?? (this.frags = new FragTable(this.fragLimit)), track);
    }
    if (f.chainUnknown && this.ext !== null) {
      // judged by its last extension header's type, a "deny udp" would let UDP behind 9 headers pass (port ACLs
      // match addresses only: they judge it as any frame)
      if (this.acl !== null) this.acl.evaluate(f, dir, false); // meter rules see every frame
      return VERDICT_CHAIN_UNKNOWN;
    }
    return this.evaluateWhole(f, dir, now, track);
  }

  private evaluateWhole(f: Flow, dir: number, now: Millis, track: boolean): number {
    const v = this.evaluateExtended(f, dir, now, track);
    const acl = this.acl;
    if (acl === null) return v < 0 ? VERDICT_ALLOW : v;
    // meter rules count whatever decided; allow/deny port ACLs decide only when no extended ACL did
    return acl.evaluate(f, dir, v < 0) ? VERDICT_ACL_DENY : v < 0 ? VERDICT_ALLOW : v;
  }

  /** The extended verdict, or -1 when no tracked connection and no extended rule decided. */
  private evaluateExtended(f: Flow, dir: number, now: Millis, track: boolean): number {
    const ext = this.ext;
    if (ext !== null && f.family !== 0) {
      const k = this.key;
      extKey(f, dir, k);
      const ct = this.ct;
      if (ct !== null && ct.size > 0) {
        const s = ct.find(k, now);
        if (s >= 0 && ct.admits(s, f, dir)) {
          if (track) ct.update(s, f, dir, now);
          else ct.stats.hits++; // admitted, but a packet that never leaves neither refreshes nor advances it
          return VERDICT_ALLOW;
        }
      }
      if (f.icmpError && ct !== null && ct.size > 0 && this.related(f, dir, now, ct)) return VERDICT_ALLOW;
      const r = ext.lookup(k, dir);
      if (r !== NO_MATCH) {
        ext.hitFrames[r] = ext.hitFrames[r]! + 1;
        ext.hitBytes[r] = ext.hitBytes[r]! + f.len;
        if (ext.deny[r] === 1) return VERDICT_EXTENDED_DENY;
        const idle = ext.idleMs[r]!;
        if (idle > 0 && ct !== null && track) ct.create(k, f, dir, r, idle, now);
        return VERDICT_ALLOW;
      }
    }
    return -1;
  }

  /**
   * Is ICMP error f (crossing in direction dir) about a tracked connection? The quoted packet went the other way:
   * its key is built from the quote seen in direction 1 - dir, and its local address must be the error's.
   */
  private related(f: Flow, dir: number, now: Millis, ct: ConnTrack): boolean {
    const q = this.qkey;
    const out = dir === DIR_IN; // the quoted packet left the port
    const l = out ? f.qSrc : f.qDst;
    const r = out ? f.qDst : f.qSrc;
    const el = dir === DIR_OUT ? f.src : f.dst; // the error's local address
    if (l[0] !== el[0] || l[1] !== el[1] || l[2] !== el[2] || l[3] !== el[3]) return false;
    q[0] = f.family;
    q[1] = f.qProto;
    q[2] = l[0]!;
    q[3] = l[1]!;
    q[4] = l[2]!;
    q[5] = l[3]!;
    q[6] = r[0]!;
    q[7] = r[1]!;
    q[8] = r[2]!;
    q[9] = r[3]!;
    q[10] = out ? f.qSport : f.qDport;
    q[11] = out ? f.qDport : f.qSport;
    const s = ct.find(q, now);
    if (s < 0) return false;
    ct.related(s);
    return true;
  }

  /** The verdict for an IP fragment (see the header): remembered from its first fragment, or judged without ports. */
  private evaluateFragment(f: Flow, dir: number, now: Millis, ft: FragTable, track: boolean): number {
    const fk = this.fkey;
    fragKey(f, dir, fk);
    if (f.frag === FRAG_LATER) {
      const s = ft.find(fk, now);
      if (s >= 0) {
        const v = ft.hit(s, f.fragMore, f.fragOffset, f.fragLen, now);
        if (this.acl !== null) this.acl.evaluate(f, dir, false); // meter rules see every frame
        return v;
      }
      ft.stats.unknown++;
      const v = this.evaluatePortless(f, dir);
      if (v === VERDICT_FRAGMENT_UNKNOWN) ft.stats.unknownDropped++;
      return v;
    }
    const p = f.proto;
    const needsL4 = p === PROTO_TCP || p === PROTO_UDP || p === PROTO_ICMP || p === PROTO_ICMPV6;
    let v: number;
    if (f.chainUnknown) {
      // an IPv6 first fragment whose header chain does not reach its upper layer (cut, or more extension headers
      // than flow.ts walks; RFC 7112 forbids it): its protocol is not known, so nothing can judge the datagram
      if (this.acl !== null) this.acl.evaluate(f, dir, false);
      v = VERDICT_FRAGMENT_UNKNOWN;
    } else if (f.l4 || !needsL4) {
      v = this.evaluateWhole(f, dir, now, track);
    } else {
      // a first fragment cut before its ports (RFC 1858's tiny fragment) is no better known than a later one
      v = this.evaluatePortless(f, dir);
    }
    ft.store(fk, v, f.fragLen, now);
    return v;
  }

  /** The verdict for a frame whose ports are unknown, or VERDICT_FRAGMENT_UNKNOWN when it depends on them. */
  private evaluatePortless(f: Flow, dir: number): number {
    const ext = this.ext!;
    const k = this.key;
    extKey(f, dir, k);
    const r = ext.portless(k, dir);
    const acl = this.acl;
    if (r >= 0) {
      ext.hitFrames[r] = ext.hitFrames[r]! + 1;
      ext.hitBytes[r] = ext.hitBytes[r]! + f.len;
      if (acl !== null) acl.evaluate(f, dir, false);
      return ext.deny[r] === 1 ? VERDICT_EXTENDED_DENY : VERDICT_ALLOW;
    }
    if (r === PL_AMBIGUOUS) {
      if (acl !== null) acl.evaluate(f, dir, false);
      return VERDICT_FRAGMENT_UNKNOWN;
    }
    const aclDeny = acl !== null && acl.evaluate(f, dir, true);
    if (r === PL_FALLTHROUGH) return aclDeny ? VERDICT_ACL_DENY : VERDICT_ALLOW;
    if (r === PL_ALLOW_OR_FALLTHROUGH) return aclDeny ? VERDICT_FRAGMENT_UNKNOWN : VERDICT_ALLOW;
    return r === PL_DENY_OR_FALLTHROUGH && aclDeny ? VERDICT_ACL_DENY : VERDICT_FRAGMENT_UNKNOWN;
  }

  expire(now: Millis): void {
    if (this.ct !== null) this.ct.expire(now);
    if (this.frags !== null) this.frags.expire(now);
  }

  status(now: Millis, withConnections = false): PortAclStatus {
    const acl = this.acl;
    const ext = this.ext;
    const tuples = ext === null ? [0, 0] : ext.tupleCounts();
    const ct = this.ct;
    const st: PortAclStatus = {
      acls: acl === null ? [] : acl.rules.map((rule, index) => ({ index, rule, frames: acl.hitFrames[index]!, bytes: acl.hitBytes[index]! })),
      extendedAcls: ext === null ? [] : ext.rules.map((rule, index) => ({ index, rule, frames: ext.hitFrames[index]!, bytes: ext.hitBytes[index]! })),
      extendedTuples: { in: tuples[0]!, out: tuples[1]! },
      connections: ct === null ? null : { ...ct.stats },
      fragments: this.frags === null ? null : { ...this.frags.stats },
    };
    return withConnections && ct !== null ? { ...st, connectionList: ct.entries(now) } : st;
  }
}
