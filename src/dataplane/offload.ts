// dataplane/offload.ts: software checksum completion and GSO segmentation, for frames that carry offload state
// (needsCsum, gsoType) on their way to a port that cannot take it (offload === false, or before NVGRE encap).
//
// Speed: payload is copied and summed in one pass over Uint32Array views. Whole little-endian words add up in a
// double (exact below 2^53); folding that mod 0xffff gives the byte-swapped ones'-complement sum (RFC 1071 §2(B)).
// Out segments are placed so their payload keeps the source's 4-byte alignment. Headers are summed bytewise (tens
// of bytes). No allocation per call.

import { foldSum, sumBytes as checksumSum, wordView } from '../wire/checksum.js';
import { GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, HEADROOM } from './frame.js';
import type { Batch, FrameMeta } from './frame.js';

const ETH_P_IPV4 = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** Uint32Array over a slab's buffer (null when u8 does not start on a word boundary of it). */
function u32Of(u8: Uint8Array): Uint32Array | null {
  return (u8.byteOffset & 3) !== 0 ? null : wordView(u8);
}

/** Fold a non-negative sum to 16 bits, end-around carry. Called with small integers only (a double argument to a
 * call that is not inlined would be boxed: an allocation). */
function fold(x: number): number {
  while (x > 0xffff) x = (x % 0x10000) + Math.floor(x / 0x10000);
  return x;
}
function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/**
 * Ones'-complement sum of u8[a, b) in "index form": a byte at an even index is the high byte of its word. Relative
 * to a region starting at an odd index the result is byte-swapped (swap16 after fold). Word views exist only for
 * 4-aligned views, so index parity is address parity wherever words are read.
 */
function sumBytes(u8: Uint8Array, a: number, b: number): number {
  let acc = 0;
  if (a < b && (a & 1) !== 0) acc += u8[a++]!;
  for (; a + 1 < b; a += 2) acc += (u8[a]! << 8) | u8[a + 1]!;
  if (a < b) acc += u8[a]! << 8;
  return acc;
}

/** Copy n words; return their sum as little-endian words, folded to 16 bits (the byte-swapped ones'-complement sum).
 * The running sum is a double (exact below 2^53) that is folded before it leaves, so nothing is boxed. */
function copyWords(sw: Uint32Array, s: number, dw: Uint32Array, d: number, n: number): number {
  let sum = 0;
  const e = d + n;
  for (; d + 4 <= e; d += 4, s += 4) {
    const x = sw[s]!, y = sw[s + 1]!, z = sw[s + 2]!, v = sw[s + 3]!;
    dw[d] = x;
    dw[d + 1] = y;
    dw[d + 2] = z;
    dw[d + 3] = v;
    sum += x + y + z + v;
  }
  for (; d < e; d++, s++) {
    const x = sw[s]!;
    dw[d] = x;
    sum += x;
  }
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Copy n bytes s8[s..] -> d8[d..] and return their sum in index form (of the destination). With word views and
 * s = d mod 4 it moves whole words; otherwise bytes.
 */
function copySum(
  s8: Uint8Array,
  sw32: Uint32Array | null,
  s: number,
  d8: Uint8Array,
  dw32: Uint32Array | null,
  d: number,
  n: number,
): number {
  let acc = 0;
  const sb = s8.byteOffset, db = d8.byteOffset;
  if (sw32 === null || dw32 === null || (s & 3) !== (d & 3)) {
    for (let k = 0; k < n; k++) {
      const x = s8[s + k]!;
      d8[d + k] = x;
      acc += ((d + k) & 1) === 0 ? x << 8 : x;
    }
    return acc;
  }
  while (n > 0 && (d & 3) !== 0) {
    const x = s8[s++]!;
    d8[d] = x;
    acc += (d & 1) === 0 ? x << 8 : x;
    d++;
    n--;
  }
  const sum = copyWords(sw32, (sb + s) >>> 2, dw32, (db + d) >>> 2, n >>> 2);
  const done = (n >>> 2) << 2;
  s += done;
  d += done;
  n -= done;
  for (let k = 0; k < n; k++) {
    const x = s8[s + k]!;
    d8[d + k] = x;
    acc += ((d + k) & 1) === 0 ? x << 8 : x;
  }
  return acc + swap16(sum);
}

/** Copy n bytes s8[s..] -> d8[d..], whole words where both views allow and s = d mod 4. */
function copyBytes(
  s8: Uint8Array,
  sw32: Uint32Array | null,
  s: number,
  d8: Uint8Array,
  dw32: Uint32Array | null,
  d: number,
  n: number,
): void {
  if (sw32 === null || dw32 === null || (s & 3) !== (d & 3)) {
    for (let k = 0; k < n; k++) d8[d + k] = s8[s + k]!;
    return;
  }
  while (n > 0 && (d & 3) !== 0) {
    d8[d++] = s8[s++]!;
    n--;
  }
  let ws = (s8.byteOffset + s) >>> 2, wd = (d8.byteOffset + d) >>> 2;
  const wend = wd + (n >>> 2);
  for (; wd < wend; wd++, ws++) dw32[wd] = sw32[ws]!;
  const done = (n >>> 2) << 2;
  for (let k = done; k < n; k++) d8[d + k] = s8[s + k]!;
}

/** An index-form sum as BE words counted from a header that starts at an odd index (odd) or an even one. */
function relForm(odd: boolean, x: number): number {
  return odd ? swap16(fold(x)) : x;
}

/** Fill a partial checksum (needsCsum: sum from off+csumStart to the end, stored at +csumOffset, seeded with the
 * pseudo-header sum the sender already put there) in place; clears needsCsum. Offsets outside the frame set
 * m.drop = 'bad-vnet-hdr' (unless already dropped). */
export function completeChecksum(slab: Uint8Array, m: FrameMeta): void {
  if (!m.needsCsum) return;
  const start = m.off + m.csumStart;
  const end = m.off + m.len;
  const at = start + m.csumOffset;
  if (m.csumStart < 14 || at + 2 > end || end > slab.length) {
    m.needsCsum = false;
    if (m.drop === null) m.drop = 'bad-vnet-hdr'; // offsets that do not fit the frame: the checksum cannot be made
    return;
  }
  // the sender left the pseudo-header sum in the checksum field, so the sum of [start, end) is all it takes
  let c = ~foldSum(checksumSum(slab, start, end - start)) & 0xffff;
  if (m.csumOffset === 6 && c === 0) c = 0xffff; // UDP: 0 means "no checksum"
  slab[at] = c >>> 8;
  slab[at + 1] = c & 0xff;
  m.needsCsum = false;
}

/** Segment GSO super-frame i of `src` (TCPv4/TCPv6; UDP if gsoType UDP_L4) into out slots first..first+max-1:
 * each a full frame with its own IPv4 id/total length/checksum (or IPv6 payload length), TCP seq advanced, FIN/PSH
 * only on the last, CWR only on the first, complete TCP/UDP checksums, gsoType none. Copies meta (vlan, inPort,
 * ...) into each segment's meta. Returns segments written, or -1 if it cannot (then the switch drops it as
 * 'gso-unsupported'). `out` slots must not include src slot i. Segment offsets may sit 0..3 bytes after
 * slotStart + HEADROOM (payload keeps the source's word alignment). */
export function segmentFrame(src: Batch, i: number, out: Batch, first: number, max: number): number {
  const m = src.meta[i];
  if (m === undefined || max <= 0 || first < 0 || first + max > out.capacity) return -1;
  if (src === out && i >= first && i < first + max) return -1;
  const gt = m.gsoType & ~GSO_ECN;
  if (gt !== GSO_TCPV4 && gt !== GSO_TCPV6 && gt !== GSO_UDP_L4) return -1;
  const mss = m.gsoSize;
  if (mss === 0) return -1;
  const s8 = src.slab;
  const off = m.off;
  const end = off + m.len;
  if (end > s8.length) return -1;

  // Ethernet, up to two tags.
  let l3 = off + 12;
  if (l3 + 2 > end) return -1;
  let et = (s8[l3]! << 8) | s8[l3 + 1]!;
  for (let t = 0; t < 2 && (et === ETH_P_8021Q || et === ETH_P_8021AD); t++) {
    l3 += 4;
    if (l3 + 2 > end) return -1;
    et = (s8[l3]! << 8) | s8[l3 + 1]!;
  }
  l3 += 2;

  let v4: boolean;
  let l4: number;
  let proto: number;
  let payEnd = end;
  if (et === ETH_P_IPV4) {
    if (l3 + 20 > end) return -1;
    const ihl = (s8[l3]! & 0x0f) * 4;
    if ((s8[l3]! >>> 4) !== 4 || ihl < 20 || l3 + ihl > end) return -1;
    const tot = (s8[l3 + 2]! << 8) | s8[l3 + 3]!;
    if (tot !== 0 && l3 + tot < end) payEnd = l3 + tot; // Ethernet padding after the packet
    if (tot !== 0 && l3 + tot > end) return -1;
    if ((s8[l3 + 6]! & 0x3f) !== 0 || s8[l3 + 7] !== 0) return -1; // a fragment
    proto = s8[l3 + 9]!;
    l4 = l3 + ihl;
    v4 = true;
  } else if (et === ETH_P_IPV6) {
    if (l3 + 40 > end || (s8[l3]! >>> 4) !== 6) return -1;
    const plen = (s8[l3 + 4]! << 8) | s8[l3 + 5]!;
    if (plen !== 0 && l3 + 40 + plen < end) payEnd = l3 + 40 + plen;
    if (plen !== 0 && l3 + 40 + plen > end) return -1;
    proto = s8[l3 + 6]!; // extension headers are not segmented here
    l4 = l3 + 40;
    v4 = false;
  } else return -1;

  let l4len: number;
  if (proto === IPPROTO_TCP && gt !== GSO_UDP_L4) {
    if (l4 + 20 > payEnd) return -1;
    l4len = (s8[l4 + 12]! >>> 4) * 4;
    if (l4len < 20) return -1;
  } else if (proto === IPPROTO_UDP && gt === GSO_UDP_L4) {
    l4len = 8;
  } else return -1;
  const pay = l4 + l4len;
  if (pay > payEnd) return -1;
  const payLen = payEnd - pay;
  const hdr = pay - off;
  const nseg = payLen === 0 ? 1 : Math.ceil(payLen / mss);
  if (nseg > max) return -1;
  if (hdr + Math.min(mss, payLen) + 3 > out.maxFrame) return -1;

  const d8 = out.slab;
  const sw = u32Of(s8);
  const dw = u32Of(d8);
  const l3rel = l3 - off;
  const l4rel = l4 - off;
  const tcp = l4len !== 8;
  const ipId = v4 ? (s8[l3 + 4]! << 8) | s8[l3 + 5]! : 0;
  // Sequence number as two 16-bit halves: a uint32 above 2^30 would be a boxed double.
  const seqHi0 = tcp ? (s8[l4 + 4]! << 8) | s8[l4 + 5]! : 0;
  const seqLo0 = tcp ? (s8[l4 + 6]! << 8) | s8[l4 + 7]! : 0;
  const flags0 = tcp ? s8[l4 + 13]! : 0;

  // Per-segment header sums: what every segment shares is summed once (relative form: BE words counted from the
  // header start; index-form sums of ranges at even distance from l3 share l3's parity, so one swap converts).
  const odd = (l3 & 1) !== 0;
  const ihl = l4 - l3;
  const pseudoAddr = relForm(odd, v4 ? sumBytes(s8, l3 + 12, l3 + 20) : sumBytes(s8, l3 + 8, l3 + 40)) + proto;
  // IPv4 header without total length, id and checksum.
  const ipBase = v4 ? relForm(odd, sumBytes(s8, l3, l3 + 2) + sumBytes(s8, l3 + 6, l3 + 10) + sumBytes(s8, l3 + 12, l3 + ihl)) : 0;
  // TCP header without seq, data offset/flags and checksum; UDP: ports only (length and checksum vary).
  const l4Base = tcp
    ? relForm(odd, sumBytes(s8, l4, l4 + 4) + sumBytes(s8, l4 + 8, l4 + 12) + sumBytes(s8, l4 + 14, l4 + 16) + sumBytes(s8, l4 + 18, l4 + l4len))
    : relForm(odd, sumBytes(s8, l4, l4 + 4));
  const doff = tcp ? s8[l4 + 12]! << 8 : 0;
  const csumRel = tcp ? 16 : 6;

  for (let k = 0; k < nseg; k++) {
    const j = first + k;
    const slot = out.slotStart(j) + HEADROOM;
    const delta = (pay - (slot + hdr)) & 3; // same word alignment as the source payload (and headers)
    const d = slot + delta;
    const segPay = k === nseg - 1 ? payLen - k * mss : mss;
    copyBytes(s8, sw, off, d8, dw, d, hdr);
    const dl3 = d + l3rel;
    const dl4 = d + l4rel;
    const l4total = l4len + segPay;
    if (v4) {
      const tot = ihl + l4total;
      const id = (ipId + k) & 0xffff;
      d8[dl3 + 2] = tot >>> 8;
      d8[dl3 + 3] = tot & 0xff;
      d8[dl3 + 4] = id >>> 8;
      d8[dl3 + 5] = id & 0xff;
      const c = ~fold(ipBase + tot + id) & 0xffff;
      d8[dl3 + 10] = c >>> 8;
      d8[dl3 + 11] = c & 0xff;
    } else {
      d8[dl3 + 4] = l4total >>> 8;
      d8[dl3 + 5] = l4total & 0xff;
    }
    let varying: number;
    if (tcp) {
      const t = seqLo0 + k * mss; // < 2^23
      const lo = t & 0xffff;
      const hi = (seqHi0 + (t >>> 16)) & 0xffff;
      d8[dl4 + 4] = hi >>> 8;
      d8[dl4 + 5] = hi & 0xff;
      d8[dl4 + 6] = lo >>> 8;
      d8[dl4 + 7] = lo & 0xff;
      let f = flags0;
      if (k !== nseg - 1) f &= ~(TCP_FIN | TCP_PSH);
      if (k !== 0) f &= ~TCP_CWR;
      d8[dl4 + 13] = f;
      varying = hi + lo + (doff | f);
    } else {
      d8[dl4 + 4] = l4total >>> 8;
      d8[dl4 + 5] = l4total & 0xff;
      varying = l4total;
    }
    // Payload: copied and summed in one pass; it starts an even distance after l3, so relForm applies.
    const paySum = relForm(odd, copySum(s8, sw, pay + k * mss, d8, dw, d + hdr, segPay));
    let c = ~fold(l4Base + varying + paySum + pseudoAddr + l4total) & 0xffff;
    if (!tcp && c === 0) c = 0xffff;
    d8[dl4 + csumRel] = c >>> 8;
    d8[dl4 + csumRel + 1] = c & 0xff;

    const om = out.meta[j]!;
    om.copyFrom(m);
    om.off = d;
    om.len = hdr + segPay;
    om.clearOffload();
    out.offs[j] = d;
    out.lens[j] = om.len;
  }
  return nseg;
}
