// wire/ethernet.ts: Ethernet II and IEEE 802.1Q / 802.1ad tag headers, and 48-bit MAC addresses as numbers.
//
//  0                   1                   2                   3
//  +-------------------------------+-------------------------------+
//  |                 destination MAC (6 octets)                    |
//  +-------------------------------+-------------------------------+
//  |                   source MAC (6 octets)                       |
//  +-------------------------------+-------------------------------+
//  | EtherType / TPID (2)          | [TCI: PCP(3) DEI(1) VID(12)] [EtherType (2)] ...
//
// MACs travel as plain numbers (48 bits fit a double exactly): no per-frame objects or strings.

export const ETH_HLEN = 14;
export const VLAN_HLEN = 4;
export const ETH_MIN_FRAME = 60; // without FCS
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100; // 802.1Q C-tag
export const ETHERTYPE_QINQ = 0x88a8; // 802.1ad S-tag
export const ETHERTYPE_QINQ_OLD = 0x9100; // pre-standard S-tag
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_TEB = 0x6558; // transparent Ethernet bridging (NVGRE payload)

export const MAC_BROADCAST = 0xffff_ffff_ffff;

export type WireError = { readonly reason: string };
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** Read a 48-bit MAC at u8[off..off+6) as a number. */
export function readMac(u8: Uint8Array, off: number): number {
  // multiply, not shift: (b << 40) overflows 32-bit bitwise arithmetic
  return (
    (u8[off]! * 0x100 + u8[off + 1]!) * 0x1_0000_0000 +
    ((u8[off + 2]! << 24) >>> 0) +
    (u8[off + 3]! << 16) +
    (u8[off + 4]! << 8) +
    u8[off + 5]!
  );
}

export function writeMac(u8: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x1_0000_0000);
  const lo = mac >>> 0;
  u8[off] = (hi >>> 8) & 0xff;
  u8[off + 1] = hi & 0xff;
  u8[off + 2] = lo >>> 24;
  u8[off + 3] = (lo >>> 16) & 0xff;
  u8[off + 4] = (lo >>> 8) & 0xff;
  u8[off + 5] = lo & 0xff;
}

/** Group bit (I/G): multicast or broadcast. */
export function isMulticastMac(mac: number): boolean {
  return Math.floor(mac / 0x100_0000_0000) % 2 === 1;
}

/** "02:00:00:00:00:01" -> number, or null when malformed. */
export function parseMac(s: string): number | null {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(
    s,
  );
  if (m === null) return null;
  let v = 0;
  for (const i of [1, 3, 4, 5, 6, 7]) v = v * 256 + parseInt(m[i]!, 16);
  return v;
}

export function formatMac(mac: number): string {
  const parts: string[] = [];
  for (let i = 5; i >= 0; i--) parts.push((Math.floor(mac / 2 ** (8 * i)) % 256).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** Zero-copy view of an Ethernet header (re-pointed per frame with at()). Valid after checkEthernet. */
export class EthernetView {
  constructor(
    readonly u8: Uint8Array,
    public off = 0,
  ) {}
  at(off: number): this {
    this.off = off;
    return this;
  }
  get dst(): number {
    return readMac(this.u8, this.off);
  }
  get src(): number {
    return readMac(this.u8, this.off + 6);
  }
  /** EtherType or TPID at offset 12. */
  get type(): number {
    return (this.u8[this.off + 12]! << 8) | this.u8[this.off + 13]!;
  }
}

export interface EthernetFields {
  dst: number;
  src: number;
  /** VLAN tags outermost first, each { tpid, pcp, dei, vid }. */
  tags: { tpid: number; pcp: number; dei: number; vid: number }[];
  etherType: number;
  /** Offset of the payload (after tags) from the frame start. */
  payloadOffset: number;
}

export function checkEthernet(len: number): WireError | null {
  return len < ETH_HLEN ? { reason: `runt: ${len} bytes, Ethernet header needs ${ETH_HLEN}` } : null;
}

/** Parse the header and any stack of 802.1Q/802.1ad tags (at most 4). */
export function parseEthernet(u8: Uint8Array, off: number, len: number): Parsed<EthernetFields> {
  if (!(off >= 0 && off + len <= u8.length)) return { ok: false, reason: 'offset/length outside the buffer' };
  const e = checkEthernet(len);
  if (e !== null) return { ok: false, reason: e.reason };
  const tags: EthernetFields['tags'] = [];
  let p = 12;
  let type = (u8[off + p]! << 8) | u8[off + p + 1]!;
  while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) {
    if (tags.length === 4) return { ok: false, reason: 'more than 4 stacked VLAN tags' };
    if (p + 6 > len) return { ok: false, reason: `truncated: VLAN tag at ${p} needs ${p + 6} bytes, have ${len}` };
    const tci = (u8[off + p + 2]! << 8) | u8[off + p + 3]!;
    tags.push({ tpid: type, pcp: tci >>> 13, dei: (tci >>> 12) & 1, vid: tci & 0xfff });
    p += 4;
    type = (u8[off + p]! << 8) | u8[off + p + 1]!;
  }
  return {
    ok: true,
    value: { dst: readMac(u8, off), src: readMac(u8, off + 6), tags, etherType: type, payloadOffset: p + 2 },
  };
}

/** Write an Ethernet header (and tags); returns bytes written. */
export function emitEthernet(f: Omit<EthernetFields, 'payloadOffset'>, u8: Uint8Array, off: number): number {
  writeMac(u8, off, f.dst);
  writeMac(u8, off + 6, f.src);
  let p = off + 12;
  for (const t of f.tags) {
    u8[p] = t.tpid >>> 8;
    u8[p + 1] = t.tpid & 0xff;
    const tci = ((t.pcp & 7) << 13) | ((t.dei & 1) << 12) | (t.vid & 0xfff);
    u8[p + 2] = tci >>> 8;
    u8[p + 3] = tci & 0xff;
    p += 4;
  }
  u8[p] = f.etherType >>> 8;
  u8[p + 1] = f.etherType & 0xff;
  return p + 2 - off;
}

// ---------------------------------------------------------------------------------------------------------
// 802.1Q / 802.1ad (QinQ) tag helpers. A tag sits after the source MAC:
//   | dst (6) | src (6) | TPID (2) | TCI: PCP(3) DEI(1) VID(12) | ... | EtherType (2) |

/** True for the TPIDs parseEthernet treats as tags: 0x8100 (C-tag), 0x88a8 (S-tag), 0x9100 (old S-tag). */
export function isVlanTpid(type: number): boolean {
  return type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD;
}

export function makeTci(pcp: number, dei: number, vid: number): number {
  return ((pcp & 7) << 13) | ((dei & 1) << 12) | (vid & 0xfff);
}

/** Number of stacked tags at the start of a frame (stops at 4 or at the end of the buffer). */
export function vlanTagCount(u8: Uint8Array, off: number, len: number): number {
  let n = 0;
  let p = 12;
  while (n < 4 && p + 6 <= len && isVlanTpid((u8[off + p]! << 8) | u8[off + p + 1]!)) {
    n++;
    p += 4;
  }
  return n;
}

/** TCI of the tag whose TPID is at off + 12 + 4 * index (valid after vlanTagCount > index). */
export function readTci(u8: Uint8Array, off: number, index = 0): number {
  const p = off + 14 + 4 * index;
  return (u8[p]! << 8) | u8[p + 1]!;
}

/**
 * Push a tag in place, outermost: the MACs move 4 bytes towards the front (needs 4 bytes of headroom before
 * off). Returns the new frame offset (off - 4); the frame grows by 4.
 */
export function pushVlanTag(u8: Uint8Array, off: number, tci: number, tpid = ETHERTYPE_VLAN): number {
  const n = off - VLAN_HLEN;
  u8.copyWithin(n, off, off + 12);
  u8[n + 12] = tpid >>> 8;
  u8[n + 13] = tpid & 0xff;
  u8[n + 14] = (tci >>> 8) & 0xff;
  u8[n + 15] = tci & 0xff;
  return n;
}

/** Remove the outermost tag in place (the caller checked there is one). Returns the new offset (off + 4). */
export function popVlanTag(u8: Uint8Array, off: number): number {
  u8.copyWithin(off + VLAN_HLEN, off, off + 12);
  return off + VLAN_HLEN;
}
