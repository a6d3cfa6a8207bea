// policy/extended-acl.ts: extended port ACLs with the semantics of Hyper-V's Add-VMNetworkAdapterExtendedAcl: a
// direction, allow/deny, optional protocol, local/remote address prefixes and ports (a port or a range), an explicit
// weight (higher wins; unique per port and direction) and `stateful` allow rules whose connections admit their
// return traffic (conntrack.ts) until idle for idleTimeoutSec. Extended ACLs match IP frames only and are evaluated
// before port ACLs: a matching extended rule (or a tracked connection) decides; otherwise port ACLs decide.
//
// Lookup: one tuple-space classifier per direction over a 12-word key [family, protocol, local IP x4, remote IP x4,
// local port, remote port], priority = weight. A port range is split into power-of-two aligned (value, mask) blocks
// (rangeToMasks), so each rule is a few masked keys; `icmp` without an address is two keys (ICMP on IPv4, ICMPv6
// on IPv6). Cost per frame: one hash probe per distinct mask shape, stopping early once no shape can beat the best
// weight found; independent of the number of rules.

import { type ClassifierEntry, NO_MATCH, rangeToMasks, TupleClassifier } from './classifier.js';
import { familyOf, isRecord, parseRuleAddress, prefixWords, ruleAddressField, ruleList, type RuleAddress, type RuleError, typeName, unknownKeys } from './addr.js';
import { ACL_DIRECTIONS, type AclDirection, DIR_OUT } from './acl.js';
import { type Flow, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from './flow.js';

export type ExtendedAclProtocol = 'tcp' | 'udp' | 'icmp' | number;

/** A validated extended ACL rule. Ports are normalized to a number or "lo-hi". */
export interface ExtendedAclSpec {
  readonly direction: AclDirection;
  readonly action: 'allow' | 'deny';
  readonly protocol?: ExtendedAclProtocol;
  readonly localAddress?: string;
  readonly remoteAddress?: string;
  readonly localPort?: number | string;
  readonly remotePort?: number | string;
  readonly weight: number;
  readonly stateful?: boolean;
  readonly idleTimeoutSec?: number;
}

export const MAX_EXTENDED_ACL_RULES = 100_000;
export const WEIGHT_MAX = 1_000_000;
export const DEFAULT_IDLE_TIMEOUT_SEC = 240;
export const IDLE_TIMEOUT_MAX_SEC = 86_400;
/** Most classifier entries the rules of one port may expand to (a port range is up to 30 aligned blocks). */
export const MAX_CLASSIFIER_ENTRIES = 1_000_000;

function blocks(x: number | string | undefined): number {
  if (x === undefined) return 1;
  const r = parsePortRange(x);
  return typeof r === 'string' ? 1 : rangeToMasks(r[0], r[1]).length;
}

const KEYS = ['direction', 'action', 'protocol', 'localAddress', 'remoteAddress', 'localPort', 'remotePort', 'weight', 'stateful', 'idleTimeoutSec'];

/** "80" / 80 -> [80, 80]; "1000-2000" -> [1000, 2000]; or a reason. */
export function parsePortRange(v: unknown): [number, number] | string {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 65535) return `must be a port 0..65535 or a range "lo-hi", got ${v}`;
    return [v, v];
  }
  if (typeof v !== 'string') return `must be a port 0..65535 or a range "lo-hi", got ${typeName(v)}`;
  const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(v);
  if (m === null) return `"${v}" is not a port or a range like "1024-65535"`;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535) return `"${v}": ports are 0..65535`;
  if (lo > hi) return `"${v}": range out of order (${lo} > ${hi})`;
  return [lo, hi];
}

function protoNumber(p: ExtendedAclProtocol, family: 0 | 4 | 6): number[] {
  if (p === 'tcp') return [PROTO_TCP];
  if (p === 'udp') return [PROTO_UDP];
  if (p === 'icmp') return family === 4 ? [PROTO_ICMP] : family === 6 ? [PROTO_ICMPV6] : [PROTO_ICMP, PROTO_ICMPV6];
  return [p];
}

/** Validate the `extendedAcls:` list of a port. */
export function checkExtendedAcls(v: unknown, path: string): { value: ExtendedAclSpec[]; errors: RuleError[] } {
  const errors: RuleError[] = [];
  const value: ExtendedAclSpec[] = [];
  if (v === undefined || v === null) return { value, errors };
  const list = ruleList(v, path, MAX_EXTENDED_ACL_RULES);
  if (!Array.isArray(list)) return { value, errors: [list as RuleError] };
  /** weight -> path, per direction in/out ('both' claims both). */
  const seen = [new Map<number, string>(), new Map<number, string>()];
  let entries = 0;
  let tooMany = false;
  list.forEach((r, k) => {
    const p = `${path}[${k}]`;
    if (!isRecord(r)) {
      errors.push({ path: p, message: `must be a rule like { direction: out, action: allow, protocol: tcp, remotePort: 80, weight: 10 }, got ${typeName(r)}` });
      return;
    }
    const before = errors.length;
    unknownKeys(r, p, KEYS, errors);
    const dir = r['direction'];
    const dirOk = typeof dir === 'string' && (ACL_DIRECTIONS as readonly string[]).includes(dir);
    if (!dirOk) errors.push({ path: `${p}.direction`, message: `must be one of in, out, both, got ${typeName(dir)}` });
    const act = r['action'];
    if (act !== 'allow' && act !== 'deny') errors.push({ path: `${p}.action`, message: `must be allow or deny, got ${typeName(act)}` });
    let protocol: ExtendedAclProtocol | undefined;
    const pr = r['protocol'];
    if (pr !== undefined && pr !== null) {
      if (pr === 'tcp' || pr === 'udp' || pr === 'icmp') protocol = pr;
      else if (typeof pr === 'number' && Number.isInteger(pr) && pr >= 0 && pr <= 255) {
        protocol = pr === PROTO_TCP ? 'tcp' : pr === PROTO_UDP ? 'udp' : pr === PROTO_ICMP ? 'icmp' : pr;
      } else errors.push({ path: `${p}.protocol`, message: `must be tcp, udp, icmp or an IP protocol number 0..255, got ${typeName(pr)}` });
    }
    const addr = (key: 'localAddress' | 'remoteAddress'): RuleAddress | null => ruleAddressField(r, p, key, false, errors);
    const la = addr('localAddress');
    const ra = addr('remoteAddress');
    const lf = familyOf(la);
    const rf = familyOf(ra);
    if (lf !== 0 && rf !== 0 && lf !== rf) errors.push({ path: `${p}.remoteAddress`, message: `mixes IPv${lf} (localAddress) and IPv${rf} (remoteAddress)` });
    const port = (key: 'localPort' | 'remotePort'): number | string | undefined => {
      const x = r[key];
      if (x === undefined || x === null) return undefined;
      const pr2 = parsePortRange(x);
      if (typeof pr2 === 'string') {
        errors.push({ path: `${p}.${key}`, message: pr2 });
        return undefined;
      }
      if (protocol !== 'tcp' && protocol !== 'udp') {
        errors.push({ path: `${p}.${key}`, message: `ports need protocol tcp or udp (protocol is ${protocol === undefined ? 'any' : String(protocol)})` });
        return undefined;
      }
      return pr2[0] === pr2[1] ? pr2[0] : `${pr2[0]}-${pr2[1]}`;
    };
    const localPort = port('localPort');
    const remotePort = port('remotePort');
    const w = r['weight'];
    let weight = 0;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > WEIGHT_MAX) {
      errors.push({ path: `${p}.weight`, message: `must be an integer 1..${WEIGHT_MAX} (higher wins), got ${typeName(w)}` });
    } else {
      weight = w;
      if (dirOk) {
        for (const d of dir === 'both' ? [0, 1] : dir === 'out' ? [1] : [0]) {
          const prev = seen[d]!.get(w);
          if (prev !== undefined) errors.push({ path: `${p}.weight`, message: `weight ${w} is already used for direction ${d === 1 ? 'out' : 'in'} at ${prev}: weights are unique per port and direction` });
          else seen[d]!.set(w, p);
        }
      }
    }
    const st = r['stateful'];
    let stateful = false;
    if (st !== undefined && st !== null) {
      if (typeof st !== 'boolean') errors.push({ path: `${p}.stateful`, message: `must be true or false, got ${typeName(st)}` });
      else stateful = st;
    }
    if (stateful && act === 'deny') errors.push({ path: `${p}.stateful`, message: 'only allow rules can be stateful' });
    const it = r['idleTimeoutSec'];
    let idle: number | undefined;
    if (it !== undefined && it !== null) {
      if (typeof it !== 'number' || !Number.isInteger(it) || it < 1 || it > IDLE_TIMEOUT_MAX_SEC) {
        errors.push({ path: `${p}.idleTimeoutSec`, message: `must be an integer 1..${IDLE_TIMEOUT_MAX_SEC} seconds, got ${typeName(it)}` });
      } else if (!stateful) errors.push({ path: `${p}.idleTimeoutSec`, message: 'applies to stateful rules only (set stateful: true)' });
      else idle = it;
    }
    if (errors.length !== before) return;
    entries += blocks(localPort) * blocks(remotePort) * (protocol === 'icmp' ? 2 : 1) * (dir === 'both' ? 2 : 1);
    if (entries > MAX_CLASSIFIER_ENTRIES) {
      if (!tooMany) {
        tooMany = true;
        errors.push({ path: p, message: `the rules up to here expand to more than ${MAX_CLASSIFIER_ENTRIES} classifier entries (each port range splits into up to 30 aligned blocks, local x remote): use fewer or wider-aligned ranges` });
      }
      return;
    }
    const s: { -readonly [K in keyof ExtendedAclSpec]: ExtendedAclSpec[K] } = { direction: dir as AclDirection, action: act as 'allow' | 'deny', weight };
    if (protocol !== undefined) s.protocol = protocol;
    if (la !== null) s.localAddress = la.text;
    if (ra !== null) s.remoteAddress = ra.text;
    if (localPort !== undefined) s.localPort = localPort;
    if (remotePort !== undefined) s.remotePort = remotePort;
    if (stateful) s.stateful = true;
    if (idle !== undefined) s.idleTimeoutSec = idle;
    value.push(s);
  });
  return { value, errors };
}

export const EXT_KEY_WIDTH = 12;
const K_FAMILY = 0;
const K_PROTO = 1;
const K_LIP = 2;
const K_RIP = 6;
const K_LPORT = 10;
const K_RPORT = 11;

/** Fill an extended-ACL (and conntrack) key for flow f seen from the port in direction dir (0 in, 1 out). */
export function extKey(f: Flow, dir: number, key: Uint32Array): void {
  const l = dir === DIR_OUT ? f.src : f.dst;
  const r = dir === DIR_OUT ? f.dst : f.src;
  key[K_FAMILY] = f.family;
  key[K_PROTO] = f.proto;
  key[K_LIP] = l[0]!;
  key[K_LIP + 1] = l[1]!;
  key[K_LIP + 2] = l[2]!;
  key[K_LIP + 3] = l[3]!;
  key[K_RIP] = r[0]!;
  key[K_RIP + 1] = r[1]!;
  key[K_RIP + 2] = r[2]!;
  key[K_RIP + 3] = r[3]!;
  key[K_LPORT] = dir === DIR_OUT ? f.sport : f.dport;
  key[K_RPORT] = dir === DIR_OUT ? f.dport : f.sport;
}

function portsCleared(w: ArrayLike<number>): Uint32Array {
  const c = Uint32Array.from(w);
  c[K_LPORT] = 0;
  c[K_RPORT] = 0;
  return c;
}

/** The classifier entries of one rule (a port range and `icmp` on both families expand to several). */
export function extendedEntries(s: ExtendedAclSpec, id: number): ClassifierEntry[] {
  const la = s.localAddress === undefined ? null : parseRuleAddress(s.localAddress, false);
  const ra = s.remoteAddress === undefined ? null : parseRuleAddress(s.remoteAddress, false);
  if (typeof la === 'string' || typeof ra === 'string') throw new Error(`invalid extended ACL rule ${JSON.stringify(s)}`);
  const family = (familyOf(la) || familyOf(ra)) as 0 | 4 | 6;
  const range = (x: number | string | undefined): { value: number; mask: number }[] => {
    if (x === undefined) return [{ value: 0, mask: 0 }];
    const r = parsePortRange(x);
    if (typeof r === 'string') throw new Error(r);
    return rangeToMasks(r[0], r[1]);
  };
  const protos: (number | null)[] = s.protocol === undefined ? [null] : protoNumber(s.protocol, family);
  const out: ClassifierEntry[] = [];
  for (const proto of protos) {
    for (const lp of range(s.localPort)) {
      for (const rp of range(s.remotePort)) {
        const value = new Uint32Array(EXT_KEY_WIDTH);
        const mask = new Uint32Array(EXT_KEY_WIDTH);
        // ICMPv6 on an address-less icmp rule pins the family too (58 on IPv4 is not ICMP)
        const fam = family !== 0 ? family : proto === PROTO_ICMP ? 4 : proto === PROTO_ICMPV6 && s.protocol === 'icmp' ? 6 : 0;
        if (fam !== 0) {
          value[K_FAMILY] = fam;
          mask[K_FAMILY] = 0xffffffff;
        } else {
          // any address: IP frames of either family, never non-IP (family 0): match on "family != 0" is not a
          // mask, so the evaluator skips non-IP frames before the lookup
        }
        if (proto !== null) {
          value[K_PROTO] = proto;
          mask[K_PROTO] = 0xffffffff;
        }
        if (la !== null && la.kind === 'ip') prefixWords(la.prefix, value, mask, K_LIP);
        if (ra !== null && ra.kind === 'ip') prefixWords(ra.prefix, value, mask, K_RIP);
        value[K_LPORT] = lp.value;
        mask[K_LPORT] = lp.mask;
        value[K_RPORT] = rp.value;
        mask[K_RPORT] = rp.mask;
        out.push({ value, mask, priority: s.weight, id });
      }
    }
  }
  return out;
}

/** ExtendedAclTable.portless: no extended rule can match, whatever the ports (the port ACLs decide). */
export const PL_FALLTHROUGH = -1;
/** Rules with ports could allow or deny: the verdict needs the ports. */
export const PL_AMBIGUOUS = -2;
/** Only port rules that allow can match: allow for some ports, the port ACLs decide for the others. */
export const PL_ALLOW_OR_FALLTHROUGH = -3;
/** Only port rules that deny can match. */
export const PL_DENY_OR_FALLTHROUGH = -4;

/** The compiled extended ACLs of one port: classifier per direction, per-rule hit counters. */
export class ExtendedAclTable {
  readonly rules: readonly ExtendedAclSpec[];
  readonly hitFrames: Float64Array;
  readonly hitBytes: Float64Array;
  /** Idle timeout (ms) of each rule, 0 for stateless rules. */
  readonly idleMs: Float64Array;
  readonly deny: Uint8Array;
  readonly hasStateful: boolean;
  private readonly cls: TupleClassifier[];
  private readonly has = [false, false];
  /**
   * For frames without ports (later IP fragments), per direction: the rules that name no port; the allow and
   * the deny rules that name a port, with their ports wildcarded (projected onto the other fields).
   */
  private readonly noPort: TupleClassifier[];
  private readonly portAllow: TupleClassifier[];
  private readonly portDeny: TupleClassifier[];
  private readonly scratch = new Uint32Array(EXT_KEY_WIDTH);

  constructor(rules: readonly ExtendedAclSpec[]) {
    this.rules = rules;
    this.hitFrames = new Float64Array(rules.length);
    this.hitBytes = new Float64Array(rules.length);
    this.idleMs = new Float64Array(rules.length);
    this.deny = new Uint8Array(rules.length);
    this.cls = [new TupleClassifier(EXT_KEY_WIDTH), new TupleClassifier(EXT_KEY_WIDTH)];
    this.noPort = [new TupleClassifier(EXT_KEY_WIDTH), new TupleClassifier(EXT_KEY_WIDTH)];
    this.portAllow = [new TupleClassifier(EXT_KEY_WIDTH), new TupleClassifier(EXT_KEY_WIDTH)];
    this.portDeny = [new TupleClassifier(EXT_KEY_WIDTH), new TupleClassifier(EXT_KEY_WIDTH)];
    const e: ClassifierEntry[][] = [[], []];
    const np: ClassifierEntry[][] = [[], []];
    const pa: ClassifierEntry[][] = [[], []];
    const pd: ClassifierEntry[][] = [[], []];
    let stateful = false;
    rules.forEach((r, i) => {
      this.deny[i] = r.action === 'deny' ? 1 : 0;
      if (r.stateful === true) {
        stateful = true;
        this.idleMs[i] = (r.idleTimeoutSec ?? DEFAULT_IDLE_TIMEOUT_SEC) * 1000;
      }
      const xs = extendedEntries(r, i);
      const ports = r.localPort !== undefined || r.remotePort !== undefined;
      // projected: the port words wildcarded (the blocks of a range collapse into one masked key)
      const ys = ports ? xs.map((x) => ({ ...x, value: portsCleared(x.value), mask: portsCleared(x.mask) })) : xs;
      const side = !ports ? np : r.action === 'deny' ? pd : pa;
      for (const d of r.direction === 'both' ? [0, 1] : r.direction === 'out' ? [1] : [0]) {
        for (const x of xs) e[d]!.push(x);
        for (const y of ys) side[d]!.push(y);
      }
    });
    this.hasStateful = stateful;
    for (let k = 0; k < 2; k++) {
      this.cls[k]!.setRules(e[k]!);
      this.has[k] = e[k]!.length > 0;
      this.noPort[k]!.setRules(np[k]!);
      this.portAllow[k]!.setRules(pa[k]!);
      this.portDeny[k]!.setRules(pd[k]!);
    }
  }

  /**
   * The extended decision for a frame whose ports are unknown (key built by extKey; its port words are ignored):
   * a rule index when the decision is the same whatever the ports (the best rule without ports, and no rule with
   * ports of the other action and a higher weight can match), else PL_FALLTHROUGH, PL_AMBIGUOUS,
   * PL_ALLOW_OR_FALLTHROUGH or PL_DENY_OR_FALLTHROUGH. Counts nothing.
   */
  portless(key: Uint32Array, dir: number): number {
    if (!this.has[dir]) return PL_FALLTHROUGH;
    const k = this.scratch;
    k.set(key);
    k[K_LPORT] = 0;
    k[K_RPORT] = 0;
    const p = this.noPort[dir]!.lookup(k);
    const a = this.portAllow[dir]!.lookup(k);
    const d = this.portDeny[dir]!.lookup(k);
    const aw = a === NO_MATCH ? -1 : this.rules[a]!.weight;
    const dw = d === NO_MATCH ? -1 : this.rules[d]!.weight;
    if (p !== NO_MATCH) {
      const pw = this.rules[p]!.weight;
      return (this.deny[p] === 1 ? aw : dw) > pw ? PL_AMBIGUOUS : p;
    }
    if (aw < 0 && dw < 0) return PL_FALLTHROUGH;
    if (dw < 0) return PL_ALLOW_OR_FALLTHROUGH;
    if (aw < 0) return PL_DENY_OR_FALLTHROUGH;
    return PL_AMBIGUOUS;
  }

  /** The matching rule of highest weight for a key built by extKey, or NO_MATCH. */
  lookup(key: Uint32Array, dir: number): number {
    return this.has[dir] ? this.cls[dir]!.lookup(key) : NO_MATCH;
  }

  /** Tuples (distinct mask shapes) per direction [in, out]: the lookup cost. */
  tupleCounts(): [number, number] {
    return [this.cls[0]!.tupleCount, this.cls[1]!.tupleCount];
  }
}
