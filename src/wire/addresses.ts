// wire/addresses.ts: IPv4 addresses as uint32 numbers, IPv6 addresses as 16 bytes, and prefixes of both.
// Parsing and formatting are control-path helpers (strings allowed); every parser returns null or a reason.

import { readU32, writeU32 } from './byte-order.js';
import type { Parsed } from './ethernet.js';

/** "10.0.0.1" -> 0x0a000001, or null. Strict dotted quad: four decimal parts 0..255, no leading zeros. */
export function parseIpv4Address(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v;
}

export function formatIpv4Address(a: number): string {
  return `${(a >>> 24) & 0xff}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Read a big-endian uint32 (an IPv4 address) at u8[off..off+4). */
export const readIpv4 = readU32;
export const writeIpv4 = writeU32;

function parseHexGroup(g: string): number | null {
  if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
  return parseInt(g, 16);
}

/** "2001:db8::1" (also "::ffff:10.0.0.1") -> 16 bytes, or null. */
export function parseIpv6Address(s: string): Uint8Array | null {
  if (s.length === 0 || s.length > 45) return null;
  const out = new Uint8Array(16);
  let text = s;
  // embedded IPv4 tail occupies the last 32 bits
  let v4: number | null = null;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    v4 = parseIpv4Address(text.slice(lastColon + 1));
    if (v4 === null) return null;
    text = text.slice(0, lastColon + 1) + '0:0'; // placeholder groups, overwritten below
  }
  const dbl = text.indexOf('::');
  if (dbl !== text.lastIndexOf('::')) return null;
  let head: string[];
  let tail: string[];
  if (dbl >= 0) {
    const h = text.slice(0, dbl);
    const t = text.slice(dbl + 2);
    head = h === '' ? [] : h.split(':');
    tail = t === '' ? [] : t.split(':');
    if (head.length + tail.length > 7) return null;
  } else {
    head = text.split(':');
    tail = [];
    if (head.length !== 8) return null;
  }
  const groups: number[] = [];
  for (const g of head) {
    const n = parseHexGroup(g);
    if (n === null) return null;
    groups.push(n);
  }
  const fill = 8 - head.length - tail.length;
  for (let i = 0; i < fill; i++) groups.push(0);
  for (const g of tail) {
    const n = parseHexGroup(g);
    if (n === null) return null;
    groups.push(n);
  }
  if (groups.length !== 8) return null;
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >>> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  if (v4 !== null) writeIpv4(out, 12, v4);
  return out;
}

/** RFC 5952 text: lower case, longest run (>= 2) of zero groups as '::', first such run on ties. */
export function formatIpv6Address(a: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (n: number): string => n.toString(16);
  if (bestStart < 0) return g.map(hex).join(':');
  const left = g.slice(0, bestStart).map(hex).join(':');
  const right = g.slice(bestStart + bestLen).map(hex).join(':');
  return `${left}::${right}`;
}

export function ipv6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Prefixes

export interface Ipv4Prefix {
  readonly family: 4;
  /** Network address (host bits zero). */
  readonly addr: number;
  readonly length: number;
  /** Netmask as uint32. */
  readonly mask: number;
}

export interface Ipv6Prefix {
  readonly family: 6;
  readonly addr: Uint8Array;
  readonly length: number;
}

export type Prefix = Ipv4Prefix | Ipv6Prefix;

export function ipv4Mask(length: number): number {
  return length === 0 ? 0 : (0xffff_ffff << (32 - length)) >>> 0;
}

function splitPrefix(s: string, max: number): { addr: string; length: number } | string {
  const slash = s.indexOf('/');
  if (slash < 0) return { addr: s, length: max };
  const l = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(l)) return `bad prefix length '${l}'`;
  const length = Number(l);
  if (length > max) return `prefix length ${length} exceeds ${max}`;
  return { addr: s.slice(0, slash), length };
}

/**
 * "10.0.0.0/24" -> prefix. A bare address is a /32. With strict, host bits set ("10.0.0.5/24") is an error;
 * otherwise they are cleared.
 */
export function parseIpv4Prefix(s: string, strict = false): Parsed<Ipv4Prefix> {
  const sp = splitPrefix(s, 32);
  if (typeof sp === 'string') return { ok: false, reason: sp };
  const a = parseIpv4Address(sp.addr);
  if (a === null) return { ok: false, reason: `bad IPv4 address '${sp.addr}'` };
  const mask = ipv4Mask(sp.length);
  const net = (a & mask) >>> 0;
  if (strict && net !== a) return { ok: false, reason: `host bits set in '${s}'` };
  return { ok: true, value: { family: 4, addr: net, length: sp.length, mask } };
}

export function parseIpv6Prefix(s: string, strict = false): Parsed<Ipv6Prefix> {
  const sp = splitPrefix(s, 128);
  if (typeof sp === 'string') return { ok: false, reason: sp };
  const a = parseIpv6Address(sp.addr);
  if (a === null) return { ok: false, reason: `bad IPv6 address '${sp.addr}'` };
  const net = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, sp.length - 8 * i));
    net[i] = a[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  if (strict && !ipv6Equal(net, 0, a, 0)) return { ok: false, reason: `host bits set in '${s}'` };
  return { ok: true, value: { family: 6, addr: net, length: sp.length } };
}

/** Either family, decided by the presence of ':'. */
export function parsePrefix(s: string, strict = false): Parsed<Prefix> {
  return s.includes(':') ? parseIpv6Prefix(s, strict) : parseIpv4Prefix(s, strict);
}

export function ipv4PrefixContains(p: Ipv4Prefix, a: number): boolean {
  return ((a & p.mask) >>> 0) === p.addr;
}

export function ipv6PrefixContains(p: Ipv6Prefix, a: Uint8Array, off = 0): boolean {
  let bits = p.length;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[off + i]! & m) !== p.addr[i]) return false;
  }
  return true;
}

export function prefixContains(p: Prefix, a: number | Uint8Array): boolean {
  if (p.family === 4) return typeof a === 'number' && ipv4PrefixContains(p, a);
  return typeof a !== 'number' && a.length >= 16 && ipv6PrefixContains(p, a);
}

export function formatPrefix(p: Prefix): string {
  return p.family === 4
    ? `${formatIpv4Address(p.addr)}/${p.length}`
    : `${formatIpv6Address(p.addr)}/${p.length}`;
}
