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
