// virtualization/encap.ts: the send side of the underlay: NVGRE and VXLAN headers written in headroom, IP rewrite
// CA->PA in place with incremental checksum fixes (RFC 1624), and the inner-flow hash for FlowID / VXLAN port.

import type { DropReason } from '../dataplane/drop.js';
import { GSO_NONE, type Batch, type FrameMeta } from '../dataplane/frame.js';
import { readU16, writeU16 } from '../wire/byte-order.js';
import { checksumUpdate16 } from '../wire/checksum.js';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HLEN } from '../wire/ethernet.js';
import { emitGre, GRE_PROTO_TEB, NVGRE_HLEN, type GreInit } from '../wire/gre.js';
import { emitIpv4, IPPROTO_GRE, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, type Ipv4Init } from '../wire/ipv4.js';
import { emitUdp, UDP_HLEN, type UdpInit } from '../wire/udp.js';
import { emitVxlan, VXLAN_FLAG_I, VXLAN_HLEN, VXLAN_PORT, type VxlanInit } from '../wire/vxlan.js';

/** Reused, caller-owned description of the outer headers (no allocation per frame). */
export class Outer {
  srcMac = 0;
  dstMac = 0;
  srcPa = 0;
  dstPa = 0;
}

/** Bytes prepended by NVGRE: outer Ethernet 14 + IPv4 20 + GRE with key 8. */
export const NVGRE_PREPEND = 42;
/** Bytes prepended by VXLAN: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. */
export const VXLAN_PREPEND = 50;

const OUTER_TTL = 64;
const TWO32 = 0x1_0000_0000;

/** Big-endian 32-bit word as an int32 bit pattern (`>>> 0` at the use gives the uint32): a small integer, unlike
 *  wire/byte-order.ts readU32's uint32, which is a heap number from 2^31 up when it crosses a call. */
export function readI32(u8: Uint8Array, p: number): number {
  return (u8[p]! << 24) | (u8[p + 1]! << 16) | (u8[p + 2]! << 8) | u8[p + 3]!;
}

/**
 * Write a MAC given as its top 16 bits and its low 32 bits (any int32 bit pattern): call as
 * `writeMacHalves(u8, at, (mac / 0x1_0000_0000) | 0, mac | 0)`. Only small integers cross the call, so no heap
 * number is made for a 48-bit MAC whatever the inliner decides (wire/ethernet.ts writeMac takes the double).
 */
export function writeMacHalves(u8: Uint8Array, at: number, hi: number, lo: number): void {
  u8[at] = (hi >>> 8) & 0xff;
  u8[at + 1] = hi & 0xff;
  u8[at + 2] = (lo >>> 24) & 0xff;
  u8[at + 3] = (lo >>> 16) & 0xff;
  u8[at + 4] = (lo >>> 8) & 0xff;
  u8[at + 5] = lo & 0xff;
}
const IPPROTO_SCTP = 132;

// Reused emit records (module-level, one shape): writing outer headers allocates nothing.
const outerIp: Ipv4Init = { src: 0, dst: 0, protocol: 0, ttl: OUTER_TTL, df: true, id: 0, totalLength: IPV4_HLEN };
const outerGre: GreInit = { protocol: GRE_PROTO_TEB, key: 0 };
const outerUdp: UdpInit = { sport: 0, dport: VXLAN_PORT, length: 0, checksum: 0 };
const outerVxlan: VxlanInit = { vni: 0, flags: VXLAN_FLAG_I };

/** Outer Ethernet + IPv4 (no options, DF, TTL 64, header checksum) at `at`; the IP payload follows. */
function writeOuterIpv4(u8: Uint8Array, at: number, o: Outer, proto: number, ipPayload: number, ipId: number): void {
  writeMacHalves(u8, at, (o.dstMac / TWO32) | 0, o.dstMac | 0);
  writeMacHalves(u8, at + 6, (o.srcMac / TWO32) | 0, o.srcMac | 0);
  writeU16(u8, at + 12, ETHERTYPE_IPV4);
  // as int32: a uint32 above 2^31 is a double, and a double stored or passed on would be a heap number per frame
  outerIp.src = o.srcPa | 0;
  outerIp.dst = o.dstPa | 0;
  outerIp.protocol = proto;
  outerIp.id = ipId & 0xffff;
  // a GSO super-frame may exceed 64 KB: the segmenter (kernel or ours) rewrites the length per segment
  outerIp.totalLength = (IPV4_HLEN + ipPayload) & 0xffff;
  emitIpv4(outerIp, u8, at + ETH_HLEN);
}

/** The frame model guarantees HEADROOM (128) before every frame; refuse rather than write outside the slab. */
function fits(u8: Uint8Array, m: FrameMeta, prepend: number): boolean {
  return m.off >= prepend && m.len >= 0 && m.off + m.len <= u8.length;
}

function grow(m: FrameMeta, prepend: number): void {
  m.off -= prepend;
  m.len += prepend;
  if (m.needsCsum) m.csumStart += prepend;
  if (m.gsoType !== GSO_NONE) m.hdrLen += prepend;
}

/** NVGRE (RFC 7637): outer Ethernet (o.dstMac, o.srcMac, 0x0800), IPv4 (DF, TTL 64, proto 47, id = ipId,
 *  header checksum), GRE flags 0x2000 proto 0x6558 key = vsid<<8|flowId — written in headroom before m.off.
 *  m.off -= 42, m.len += 42; if m.needsCsum, csumStart += 42 (offsets are from m.off); if GSO, hdrLen += 42.
 *  Returns false (frame untouched) only if the headroom or slab bounds do not allow it, which the frame model
 *  (HEADROOM 128) rules out. */
export function encapNvgre(b: Batch, m: FrameMeta, o: Outer, vsid: number, flowId: number, ipId: number): boolean {
  const u8 = b.slab;
  if (!fits(u8, m, NVGRE_PREPEND)) return false;
  const at = m.off - NVGRE_PREPEND;
  writeOuterIpv4(u8, at, o, IPPROTO_GRE, NVGRE_HLEN + m.len, ipId);
  // int32 bit pattern of vsid << 8 | flowId (nvgreKey's uint32 is a double from VSID 2^23 up)
  outerGre.key = ((vsid & 0xffffff) << 8) | (flowId & 0xff);
  emitGre(outerGre, u8, at + ETH_HLEN + IPV4_HLEN);
  grow(m, NVGRE_PREPEND);
  return true;
}

/** VXLAN (RFC 7348): outer Ethernet + IPv4 (DF, TTL 64, proto 17) + UDP (src port srcPort, dst 4789,
 *  checksum 0) + VXLAN (flags 0x08, VNI = vni). Same meta adjustments with 50. Returns false as encapNvgre. */
export function encapVxlan(b: Batch, m: FrameMeta, o: Outer, vni: number, srcPort: number, ipId: number): boolean {
  const u8 = b.slab;
  if (!fits(u8, m, VXLAN_PREPEND)) return false;
  const at = m.off - VXLAN_PREPEND;
  const udpLen = UDP_HLEN + VXLAN_HLEN + m.len;
  writeOuterIpv4(u8, at, o, IPPROTO_UDP, udpLen, ipId);
  const udp = at + ETH_HLEN + IPV4_HLEN;
  outerUdp.sport = srcPort & 0xffff;
  outerUdp.length = udpLen & 0xffff;
  emitUdp(outerUdp, u8, udp);
  outerVxlan.vni = vni;
  emitVxlan(outerVxlan, u8, udp + UDP_HLEN);
  grow(m, VXLAN_PREPEND);
  return true;
}

/** A partial checksum's seed (the uncomplemented pseudo-header sum the sender left in the field) after a 16-bit
 *  word of the pseudo header changed: the same RFC 1624 arithmetic, on the complement. */
function seedUpdate16(seed: number, oldWord: number, newWord: number): number {
  return ~checksumUpdate16(~seed & 0xffff, oldWord, newWord) & 0xffff;
}

/** A checksum (full, or a partial seed) after both IPv4 addresses changed, word by word (all small integers). */
function addressUpdate(c: number, seed: boolean, o0: number, o1: number, o2: number, o3: number, a: number, d: number): number {
  const n0 = a >>> 16, n1 = a & 0xffff, n2 = d >>> 16, n3 = d & 0xffff;
  if (seed) return seedUpdate16(seedUpdate16(seedUpdate16(seedUpdate16(c, o0, n0), o1, n1), o2, n2), o3, n3);
  return checksumUpdate16(checksumUpdate16(checksumUpdate16(checksumUpdate16(c, o0, n0), o1, n1), o2, n2), o3, n3);
}

/**
 * Rewrite the IPv4 addresses of frame m in place to newSrc/newDst (uint32 or their int32 bit patterns: pass
 * `x | 0`, a uint32 above 2^31 passed to a call is a heap number), fixing the IP header checksum and the TCP/UDP
 * checksum incrementally: full checksums by RFC 1624 (UDP 0 stays 0; a UDP result of 0 is sent as 0xffff); with
 * m.needsCsum the L4 field holds the pseudo-header seed, updated uncomplemented. Checks everything before writing,
 * so on a reason the frame is untouched. MACs are the caller's. Shared by rewriteOut and decap.ts rewriteIn.
 */
export function rewriteAddresses(u8: Uint8Array, m: FrameMeta, newSrc: number, newDst: number): DropReason | null {
  const off = m.off;
  const end = off + m.len;
  if (m.etherType !== ETHERTYPE_IPV4 || off < 0 || end > u8.length) return 'rewrite-unsupported';
  const ip = off + m.l3Off;
  if (m.l3Off < ETH_HLEN || ip + IPV4_HLEN > end || u8[ip]! >>> 4 !== 4) return 'rewrite-unsupported';
  const ihl = (u8[ip]! & 0x0f) * 4;
  if (ihl < IPV4_HLEN || ip + ihl > end) return 'rewrite-unsupported';
  const gso = m.gsoType !== GSO_NONE;
  const tot = readU16(u8, ip + 2);
  let pend = end; // end of the IP packet (Ethernet padding excluded)
  if (!gso) {
    if (tot < ihl || ip + tot > end) return 'rewrite-unsupported';
    pend = ip + tot;
  }
  const frag = readU16(u8, ip + 6);
  const proto = u8[ip + 9]!;
  const l4 = ip + ihl;
  // The L4 checksum covers the pseudo header: fix it where it is present (a whole packet or a first fragment).
  let csumAt = -1;
  if ((frag & 0x1fff) === 0) {
    if (proto === IPPROTO_TCP) {
      if (l4 + 18 > pend) return 'rewrite-unsupported';
      csumAt = l4 + 16;
    } else if (proto === IPPROTO_UDP) {
      if (l4 + 8 > pend) return 'rewrite-unsupported';
      csumAt = l4 + 6;
    }
  }
  // A partial checksum elsewhere (not at this L4 field) cannot be fixed here; it is filled later over bytes that
  // do not include the addresses, so it stays right. Ours is the common case: csumStart = l4.
  const partial = m.needsCsum && csumAt >= 0 && off + m.csumStart + m.csumOffset === csumAt;

  // the old addresses as four 16-bit words (small integers throughout)
  const o0 = readU16(u8, ip + 12), o1 = readU16(u8, ip + 14), o2 = readU16(u8, ip + 16), o3 = readU16(u8, ip + 18);
  writeU16(u8, ip + 10, addressUpdate(readU16(u8, ip + 10), false, o0, o1, o2, o3, newSrc, newDst));
  writeU16(u8, ip + 12, newSrc >>> 16);
  writeU16(u8, ip + 14, newSrc & 0xffff);
  writeU16(u8, ip + 16, newDst >>> 16);
  writeU16(u8, ip + 18, newDst & 0xffff);
  if (csumAt >= 0) {
    const c = readU16(u8, csumAt);
    if (partial) writeU16(u8, csumAt, addressUpdate(c, true, o0, o1, o2, o3, newSrc, newDst));
    else if (proto === IPPROTO_TCP || c !== 0) {
      const n = addressUpdate(c, false, o0, o1, o2, o3, newSrc, newDst);
      writeU16(u8, csumAt, proto === IPPROTO_UDP && n === 0 ? 0xffff : n); // RFC 768: 0 would mean "no checksum"
    }
  }
  return null;
}

/** IP rewrite out: the frame stays an Ethernet/IPv4 frame: dst MAC = o.dstMac, src MAC = o.srcMac, IPv4 src
 *  CA -> o.srcPa, dst CA -> o.dstPa; IPv4 header checksum and TCP/UDP checksum updated incrementally (RFC 1624;
 *  UDP checksum 0 stays 0; with m.needsCsum only the pseudo-header seed in the L4 checksum field is updated;
 *  GSO frames likewise). Returns null or 'rewrite-unsupported' (not IPv4, a malformed header, a whole packet or
 *  first fragment whose TCP/UDP header is cut short; the frame is untouched then). A fragment with offset != 0 is
 *  fine: only the IP header changes. m's MAC/offload fields are left as they are. */
export function rewriteOut(b: Batch, m: FrameMeta, o: Outer): DropReason | null {
  const u8 = b.slab;
  const r = rewriteAddresses(u8, m, o.srcPa | 0, o.dstPa | 0);
  if (r !== null) return r;
  writeMacHalves(u8, m.off, (o.dstMac / TWO32) | 0, o.dstMac | 0);
  writeMacHalves(u8, m.off + 6, (o.srcMac / TWO32) | 0, o.srcMac | 0);
  return null;
}

// murmur3 (32-bit) word mixing: deterministic, every input bit reaches the low 8 bits used as FlowID.
function mixIn(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** 32-bit hash of the inner flow of frame m (IPv4/IPv6 addresses, protocol, TCP/UDP/SCTP ports; else the MACs and
 *  EtherType). Deterministic, well mixed: FlowID = hash & 0xff, VXLAN source port = 49152 + (hash % 16384).
 *  Returned as a non-negative 30-bit number (a small integer: no heap number on return). Fragments of one
 *  datagram hash alike (ports are left out of every fragment). Reads the untagged frame at m.off. */
export function flowHash(u8: Uint8Array, m: FrameMeta): number {
  const off = m.off;
  const end = off + m.len;
  if (off < 0 || end > u8.length || m.len < ETH_HLEN) return 0;
  const type = (u8[off + 12]! << 8) | u8[off + 13]!;
  const l3 = off + ETH_HLEN;
  let h = 0x5853_4857; // seed: "XSHW"
  if (type === ETHERTYPE_IPV4 && l3 + IPV4_HLEN <= end && u8[l3]! >>> 4 === 4) {
    const ihl = (u8[l3]! & 0x0f) * 4;
    const proto = u8[l3 + 9]!;
    h = mixIn(h, readI32(u8, l3 + 12));
    h = mixIn(h, readI32(u8, l3 + 16));
    h = mixIn(h, proto);
    const l4 = l3 + ihl;
    if (
      (readU16(u8, l3 + 6) & 0x3fff) === 0 &&
      ihl >= IPV4_HLEN &&
      (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP) &&
      l4 + 4 <= end
    ) {
      h = mixIn(h, readI32(u8, l4));
    }
  } else if (type === ETHERTYPE_IPV6 && l3 + 40 <= end && u8[l3]! >>> 4 === 6) {
    for (let p = l3 + 8; p < l3 + 40; p += 4) h = mixIn(h, readI32(u8, p));
    const nh = u8[l3 + 6]!;
    h = mixIn(h, nh);
    const l4 = l3 + 40;
    if ((nh === IPPROTO_TCP || nh === IPPROTO_UDP || nh === IPPROTO_SCTP) && l4 + 4 <= end) h = mixIn(h, readI32(u8, l4));
  } else {
    h = mixIn(h, readI32(u8, off));
    h = mixIn(h, readI32(u8, off + 4));
    h = mixIn(h, readI32(u8, off + 8));
    h = mixIn(h, type);
  }
  return (finish(h) >>> 0) & 0x3fff_ffff;
}

