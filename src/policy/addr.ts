// policy/addr.ts: rule addresses (an IPv4/IPv6 prefix or a MAC) for ACL specs: parsing with a reason, and the
// (value, mask) words the classifiers key on.

import { ipv4Mask, parsePrefix, type Prefix } from '../wire/addresses.js';
import { formatMac, parseMac } from '../wire/ethernet.js';

export type RuleAddress =
  | { readonly kind: 'ip'; readonly prefix: Prefix; readonly text: string }
  | { readonly kind: 'mac'; readonly mac: number; readonly text: string };

/** A path-tagged problem in a rule (the control plane reports it as a ConfigError). */
export interface RuleError {
  readonly path: string;
  readonly message: string;
}

const MAC_RE = /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/;

/** "10.0.0.0/24", "10.0.0.5" (a /32), "fd00::/64", or a MAC "02:00:00:00:00:01"; host bits must be zero. */
export function parseRuleAddress(s: string, allowMac: boolean): RuleAddress | string {
  if (MAC_RE.test(s)) {
    if (!allowMac) return `"${s}" is a MAC address: only IP prefixes are allowed here`;
    const m = parseMac(s.replace(/-/g, ':'));
    if (m === null) return `"${s}" is not a MAC address`;
    return { kind: 'mac', mac: m, text: formatMac(m) };
  }
  const p = parsePrefix(s, true);
  if (!p.ok) return `"${s}" is not an IP prefix like 10.0.0.0/24 or fd00::/64${allowMac ? ' or a MAC like 02:00:00:00:00:01' : ''}: ${p.reason}`;
  const v = p.value;
  const text = v.family === 4 ? s.includes('/') ? s : `${s}/32` : s.includes('/') ? s.toLowerCase() : `${s.toLowerCase()}/128`;
  return { kind: 'ip', prefix: v, text };
}

/** Write an IP prefix's value and mask into 4 words each at off (IPv4 in word 0). */
export function prefixWords(p: Prefix, value: Uint32Array, mask: Uint32Array, off: number): void {
  if (p.family === 4) {
    value[off] = p.addr >>> 0;
    mask[off] = ipv4Mask(p.length);
    return;
  }
  for (let i = 0; i < 4; i++) {
    const a = p.addr;
    value[off + i] = ((a[4 * i]! << 24) | (a[4 * i + 1]! << 16) | (a[4 * i + 2]! << 8) | a[4 * i + 3]!) >>> 0;
    const bits = Math.max(0, Math.min(32, p.length - 32 * i));
    mask[off + i] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }
}

export function familyOf(a: RuleAddress | null): 0 | 4 | 6 {
  return a === null || a.kind === 'mac' ? 0 : a.prefix.family;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Unknown keys of a rule object, each as an error. */
export function unknownKeys(v: Record<string, unknown>, path: string, allowed: readonly string[], errs: RuleError[]): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) errs.push({ path: `${path}.${k}`, message: `unknown key "${k}" (allowed: ${allowed.join(', ')})` });
}

/** A list of rules at `path` (present: the caller checks null first): the list, or the one error if it is not a list or has more than `max` rules. */
export function ruleList(v: unknown, path: string, max: number): readonly unknown[] | RuleError {
  if (!Array.isArray(v)) return { path, message: `must be a list of rules, got ${typeName(v)}` };
  if (v.length > max) return { path, message: `has ${v.length} rules, at most ${max} are allowed` };
  return v;
}

/** Optional address field `key` of rule `r` at path `p`: an IP prefix (or a MAC, with allowMac), else an error. */
export function ruleAddressField(r: Record<string, unknown>, p: string, key: string, allowMac: boolean, errors: RuleError[]): RuleAddress | null {
  const a = r[key];
  if (a === undefined || a === null) return null;
  if (typeof a !== 'string') {
    errors.push({ path: `${p}.${key}`, message: `must be ${allowMac ? 'an IP prefix or a MAC address string' : 'an IP prefix string'}, got ${typeName(a)}` });
    return null;
  }
  const x = parseRuleAddress(a, allowMac);
  if (typeof x === 'string') {
    errors.push({ path: `${p}.${key}`, message: x });
    return null;
  }
  return x;
}
