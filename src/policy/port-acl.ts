// policy/port-acl.ts: the ACL state of one port (compiled port ACLs, compiled extended ACLs, connection table)
// and its verdict for a frame in one direction. Order, as in Windows: a tracked connection admits its frames; else
// the extended ACL of highest weight decides (a stateful allow tracks the connection); else the most specific port
// ACL decides; nothing matching = allow. Meter port ACLs count every frame they match, whatever decided. Called by the built-in port policy stage with the frame's Flow, parsed
// once per frame.

import type { Millis } from '../dataplane/types.js';
import { type AclSpec, AclTable, DIR_IN, DIR_OUT } from './acl.js';
import { ConnTrack, type ConnEntry, type ConnTrackStats, DEFAULT_CONNTRACK_LIMIT } from './conntrack.js';
import { EXT_KEY_WIDTH, type ExtendedAclSpec, ExtendedAclTable, extKey } from './extended-acl.js';
import { NO_MATCH } from './classifier.js';
import type { Flow } from './flow.js';

export { DIR_IN, DIR_OUT } from './acl.js';

export const VERDICT_ALLOW = 0;
export const VERDICT_ACL_DENY = 1;
export const VERDICT_EXTENDED_DENY = 2;

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
  readonly connectionList?: ConnEntry[];
}

export class PortAcl {
  acl: AclTable | null = null;
  ext: ExtendedAclTable | null = null;
  ct: ConnTrack | null = null;
  private aclText = '';
  private extText = '';
  private readonly key = new Uint32Array(EXT_KEY_WIDTH);

  constructor(private readonly conntrackLimit = DEFAULT_CONNTRACK_LIMIT) {}

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
    }
  }

  /** The verdict for flow f crossing this port in direction dir (DIR_IN into the VM, DIR_OUT from it). */
  evaluate(f: Flow, dir: number, now: Millis): number {
    const v = this.evaluateExtended(f, dir, now);
    const acl = this.acl;
    if (acl === null) return v < 0 ? VERDICT_ALLOW : v;
    // meter rules count whatever decided; allow/deny port ACLs decide only when no extended ACL did
    return acl.evaluate(f, dir, v < 0) ? VERDICT_ACL_DENY : v < 0 ? VERDICT_ALLOW : v;
  }

  /** The extended verdict, or -1 when no tracked connection and no extended rule decided. */
  private evaluateExtended(f: Flow, dir: number, now: Millis): number {
    const ext = this.ext;
    if (ext !== null && f.family !== 0) {
      const k = this.key;
      extKey(f, dir, k);
      const ct = this.ct;
      if (ct !== null && ct.size > 0) {
        const s = ct.find(k, now);
        if (s >= 0 && ct.admits(s, f, dir)) {
          ct.update(s, f, dir, now);
          return VERDICT_ALLOW;
        }
      }
      const r = ext.lookup(k, dir);
      if (r !== NO_MATCH) {
        ext.hitFrames[r] = ext.hitFrames[r]! + 1;
        ext.hitBytes[r] = ext.hitBytes[r]! + f.len;
        if (ext.deny[r] === 1) return VERDICT_EXTENDED_DENY;
        const idle = ext.idleMs[r]!;
        if (idle > 0 && ct !== null) ct.create(k, f, dir, r, idle, now);
        return VERDICT_ALLOW;
      }
    }
    return -1;
  }

  expire(now: Millis): void {
    if (this.ct !== null) this.ct.expire(now);
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
    };
    return withConnections && ct !== null ? { ...st, connectionList: ct.entries(now) } : st;
  }
}
