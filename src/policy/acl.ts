// policy/acl.ts: port ACLs with the semantics of Hyper-V's Add-VMNetworkAdapterAcl. A rule has a direction
// (in = frames the switch delivers to the port, i.e. into the VM; out = frames received from the port, i.e. from
// the VM; both), an action (allow, deny, meter) and a local and/or remote address: an IPv4/IPv6 prefix or a MAC.
// "local" is the VM's side: the source of an out frame, the destination of an in frame.
//
// Precedence (decided here, documented in the note): the most specific matching allow/deny rule decides. A rule's
// specificity is the sum over its two sides of: no address 0, IP prefix 1 + prefix length, MAC 200 (a MAC names
// one adapter, so it is more specific than any IP prefix, /128 included). On equal specificity deny beats allow,
// and then the earlier rule wins. No matching allow/deny rule = allow. Meter rules never decide: the most specific
// matching meter rule counts the frame (frames and bytes) whatever the decision. IP rules match IP frames only
// (an IPv4 rule IPv4 frames); MAC rules match every frame.
//
// Lookup: two tuple-space classifiers per direction (decision, meter) over a 13-word key
// [family, local IP x4, remote IP x4, local MAC hi, lo, remote MAC hi, lo]; cost grows with the number of
// distinct (local kind/length, remote kind/length) shapes, not with the number of rules.

import { type ClassifierEntry, NO_MATCH, TupleClassifier } from './classifier.js';
import { familyOf, isRecord, parseRuleAddress, prefixWords, ruleAddressField, ruleList, type RuleAddress, type RuleError, typeName, unknownKeys } from './addr.js';
import type { Flow } from './flow.js';

export type AclDirection = 'in' | 'out' | 'both';
export type AclAction = 'allow' | 'deny' | 'meter';

/** A validated port ACL rule (addresses normalized to "prefix/len" or "02:00:00:00:00:01"). */
export interface AclSpec {
  readonly direction: AclDirection;
  readonly action: AclAction;
  readonly local?: string;
  readonly remote?: string;
}

export const ACL_DIRECTIONS: readonly AclDirection[] = ['in', 'out', 'both'];
const ACL_ACTIONS: readonly AclAction[] = ['allow', 'deny', 'meter'];
/** Most port ACL rules on one port. */
export const MAX_ACL_RULES = 100_000;

/** Validate the `acls:` list of a port. */
export function checkAcls(v: unknown, path: string): { value: AclSpec[]; errors: RuleError[] } {
  const errors: RuleError[] = [];
  const value: AclSpec[] = [];
  if (v === undefined || v === null) return { value, errors };
  const list = ruleList(v, path, MAX_ACL_RULES);
  if (!Array.isArray(list)) return { value, errors: [list as RuleError] };
  list.forEach((r, k) => {
    const p = `${path}[${k}]`;
    if (!isRecord(r)) {
      errors.push({ path: p, message: `must be a rule like { direction: in, action: deny, remote: 10.0.9.0/24 }, got ${typeName(r)}` });
      return;
    }
    const before = errors.length;
    unknownKeys(r, p, ['direction', 'action', 'local', 'remote'], errors);
    const dir = r['direction'];
    if (typeof dir !== 'string' || !(ACL_DIRECTIONS as readonly string[]).includes(dir)) {
      errors.push({ path: `${p}.direction`, message: `must be one of in, out, both, got ${typeName(dir)}` });
    }
    const act = r['action'];
    if (typeof act !== 'string' || !(ACL_ACTIONS as readonly string[]).includes(act)) {
      errors.push({ path: `${p}.action`, message: `must be one of allow, deny, meter, got ${typeName(act)}` });
    }
    const addr = (key: 'local' | 'remote'): RuleAddress | null => ruleAddressField(r, p, key, true, errors);
    const local = addr('local');
    const remote = addr('remote');
    if (local === null && remote === null && errors.length === before) {
      errors.push({ path: p, message: 'needs a local or remote address (an IP prefix or a MAC; use 0.0.0.0/0 or ::/0 for any)' });
    }
    const lf = familyOf(local);
    const rf = familyOf(remote);
    if (lf !== 0 && rf !== 0 && lf !== rf) errors.push({ path: `${p}.remote`, message: `mixes IPv${lf} (local) and IPv${rf} (remote): a frame has one family` });
    if (errors.length !== before) return;
    const s: { -readonly [K in keyof AclSpec]: AclSpec[K] } = { direction: dir as AclDirection, action: act as AclAction };
    if (local !== null) s.local = local.text;
    if (remote !== null) s.remote = remote.text;
    value.push(s);
  });
  return { value, errors };
}

export const ACL_KEY_WIDTH = 13;
const K_FAMILY = 0;
const K_LIP = 1;
const K_RIP = 5;
const K_LMAC = 9;
const K_RMAC = 11;

function sideScore(a: RuleAddress | null): number {
  if (a === null) return 0;
  return a.kind === 'mac' ? 200 : 1 + a.prefix.length;
}

function sideWords(a: RuleAddress | null, value: Uint32Array, mask: Uint32Array, ipOff: number, macOff: number): void {
  if (a === null) return;
  if (a.kind === 'mac') {
    value[macOff] = Math.floor(a.mac / 0x1_0000_0000);
    mask[macOff] = 0xffff;
    value[macOff + 1] = a.mac >>> 0;
    mask[macOff + 1] = 0xffffffff;
    return;
  }
  prefixWords(a.prefix, value, mask, ipOff);
  value[K_FAMILY] = a.prefix.family;
  mask[K_FAMILY] = 0xffffffff;
}

/**
 * Fill an ACL key for flow f seen from the port in direction dir (0 = in, 1 = out); MAC words only if `macs`. Out:
 * the MACs as the frame left the VM (a routed frame's source is still the VM, its destination the gateway); in: as
 * the frame reaches the VM.
 */
export function aclKey(f: Flow, dir: number, key: Uint32Array, macs = true): void {
  const l = dir === 1 ? f.src : f.dst;
  const r = dir === 1 ? f.dst : f.src;
  key[K_FAMILY] = f.family;
  key[K_LIP] = l[0]!;
  key[K_LIP + 1] = l[1]!;
  key[K_LIP + 2] = l[2]!;
  key[K_LIP + 3] = l[3]!;
  key[K_RIP] = r[0]!;
  key[K_RIP + 1] = r[1]!;
  key[K_RIP + 2] = r[2]!;
  key[K_RIP + 3] = r[3]!;
  if (!macs) return;
  const lm = dir === 1 ? f.sentSrcMac : f.dstMac;
  const rm = dir === 1 ? f.sentDstMac : f.srcMac;
  key[K_LMAC] = Math.floor(lm / 0x1_0000_0000);
  key[K_LMAC + 1] = lm >>> 0;
  key[K_RMAC] = Math.floor(rm / 0x1_0000_0000);
  key[K_RMAC + 1] = rm >>> 0;
}

/** One compiled rule's classifier entry (exported for the equivalence tests). */
export function aclEntry(s: AclSpec, id: number): ClassifierEntry {
  const value = new Uint32Array(ACL_KEY_WIDTH);
  const mask = new Uint32Array(ACL_KEY_WIDTH);
  const local = s.local === undefined ? null : parseRuleAddress(s.local, true);
  const remote = s.remote === undefined ? null : parseRuleAddress(s.remote, true);
  if (typeof local === 'string' || typeof remote === 'string') throw new Error(`invalid ACL rule ${JSON.stringify(s)}`);
  sideWords(local, value, mask, K_LIP, K_LMAC);
  sideWords(remote, value, mask, K_RIP, K_RMAC);
  const spec = sideScore(local) + sideScore(remote);
  const rank = s.action === 'deny' ? 2 : 1;
  // unique priorities: specificity, then deny over allow, then the earlier rule
  const priority = (spec * 4 + rank) * 1_048_576 + (1_048_575 - Math.min(id, 1_048_575));
  return { value, mask, priority, id };
}

export const DIR_IN = 0;
export const DIR_OUT = 1;

/** The compiled port ACLs of one port, with per-rule hit counters. */
export class AclTable {
  readonly rules: readonly AclSpec[];
  readonly hitFrames: Float64Array;
  readonly hitBytes: Float64Array;
  /** [in, out] */
  private readonly decide: TupleClassifier[];
  private readonly meter: TupleClassifier[];
  private readonly hasDecide = [false, false];
  private readonly hasMeter = [false, false];
  private readonly key = new Uint32Array(ACL_KEY_WIDTH);
  /** Some rule names a MAC (else the MAC words of the key stay 0 and are never looked at). */
  private readonly macs: boolean;

  constructor(rules: readonly AclSpec[]) {
    this.rules = rules;
    this.macs = rules.some((r) => (r.local !== undefined && !r.local.includes('/')) || (r.remote !== undefined && !r.remote.includes('/')));
    this.hitFrames = new Float64Array(rules.length);
    this.hitBytes = new Float64Array(rules.length);
    this.decide = [new TupleClassifier(ACL_KEY_WIDTH), new TupleClassifier(ACL_KEY_WIDTH)];
    this.meter = [new TupleClassifier(ACL_KEY_WIDTH), new TupleClassifier(ACL_KEY_WIDTH)];
    const d: ClassifierEntry[][] = [[], []];
    const m: ClassifierEntry[][] = [[], []];
    rules.forEach((r, i) => {
      const e = aclEntry(r, i);
      const target = r.action === 'meter' ? m : d;
      if (r.direction !== 'out') target[DIR_IN]!.push(e);
      if (r.direction !== 'in') target[DIR_OUT]!.push(e);
    });
    for (let k = 0; k < 2; k++) {
      this.decide[k]!.setRules(d[k]!);
      this.meter[k]!.setRules(m[k]!);
      this.hasDecide[k] = d[k]!.length > 0;
      this.hasMeter[k] = m[k]!.length > 0;
    }
  }

  /**
   * Evaluate flow f in direction dir: counts the meter rule and, when `decide`, the decisive rule; returns true
   * when denied. decide = false (an extended ACL already decided): metering only, so accounting sees every frame.
   */
  evaluate(f: Flow, dir: number, decide = true): boolean {
    const key = this.key;
    aclKey(f, dir, key, this.macs);
    if (this.hasMeter[dir]) {
      const r = this.meter[dir]!.lookup(key);
      if (r !== NO_MATCH) {
        this.hitFrames[r] = this.hitFrames[r]! + 1;
        this.hitBytes[r] = this.hitBytes[r]! + f.len;
      }
    }
    if (!decide || !this.hasDecide[dir]) return false;
    const r = this.decide[dir]!.lookup(key);
    if (r === NO_MATCH) return false;
    this.hitFrames[r] = this.hitFrames[r]! + 1;
    this.hitBytes[r] = this.hitBytes[r]! + f.len;
    return this.rules[r]!.action === 'deny';
  }

  /** The decisive rule for flow f in direction dir without counting (tests, trace). */
  match(f: Flow, dir: number): number {
    aclKey(f, dir, this.key, this.macs);
    return this.hasDecide[dir] ? this.decide[dir]!.lookup(this.key) : NO_MATCH;
  }
}
