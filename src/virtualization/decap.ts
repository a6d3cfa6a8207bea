// virtualization/decap.ts: the receive side of the underlay: classify an uplink frame (NVGRE, VXLAN, ARP, plain
// IPv4), point the frame at its inner Ethernet frame, and map an IP-rewritten packet back PA->CA.

import type { DropReason } from '../dataplane/drop.js';
import { GSO_NONE, type Batch, type FrameMeta } from '../dataplane/frame.js';
import { readU16 } from '../wire/byte-order.js';
import { checksumValid } from '../wire/checksum.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HLEN } from '../wire/ethernet.js';
import { GRE_FLAG_K, GRE_PROTO_TEB, NVGRE_HLEN } from '../wire/gre.js';
import { IPPROTO_GRE, IPPROTO_UDP, IPV4_HLEN } from '../wire/ipv4.js';
import { ARP_HTYPE_ETHERNET, ARP_LEN, ARP_PTYPE_IPV4 } from '../wire/arp.js';
import { UDP_HLEN } from '../wire/udp.js';
import { VXLAN_FLAG_I, VXLAN_HLEN, VXLAN_PORT } from '../wire/vxlan.js';
import { readI32, rewriteAddresses, writeMacHalves } from './encap.js';

export const UNDERLAY_OTHER = 0, UNDERLAY_NVGRE = 1, UNDERLAY_VXLAN = 2, UNDERLAY_ARP = 3, UNDERLAY_IPV4 = 4;

/** Reused record filled by parseUnderlay (no allocation). */
export class Underlay {
  kind = UNDERLAY_OTHER;
  /** Outer IPv4 addresses (uint32); for ARP: sender / target protocol address. */
  srcIp = 0;
  dstIp = 0;
  /** NVGRE key>>8 or VXLAN VNI. */
  vsid = 0;
  /** NVGRE FlowID (informational). */
  flowId = 0;
  /** The inner Ethernet frame (absolute slab offset, bytes) for NVGRE/VXLAN. */
  innerOff = 0;
  innerLen = 0;
  /** For ARP. */
  arpOp = 0;
  arpSenderMac = 0;
  /** For UNDERLAY_IPV4 (not a tunnel). */
  ipProto = 0;
}

/** GRE flag bits NVGRE forbids: C, R, S, reserved0 bits 4-5 (RFC 2784 §2.5 discards on 1-5), version. */
const GRE_MUST_BE_ZERO = 0x8000 | 0x4000 | 0x1000 | 0x0c00 | 0x0007;

/**
 * Classify the outer frame m (after classifyIngress: m.etherType, m.l3Off, m.off, m.len set; tag out of band).
 * Fills u and returns null, or returns 'bad-encap' for a malformed tunnel packet: GRE (IPv4 protocol 47) with
 * C/S/R or reserved bits, version != 0, no K bit, protocol != 0x6558; VXLAN (UDP to 4789) without the I flag or
 * with any other flag/reserved bit set (as strict as the Linux vxlan driver); an outer IPv4 fragment of either;
 * a bad outer IPv4 header checksum on either; an inner frame < 14 bytes; lengths beyond the frame. A malformed
 * IPv4 header that is not recognisably a tunnel packet, and malformed ARP, are UNDERLAY_OTHER (ordinary L2).
 * The outer UDP checksum is not verified (the inner TCP/UDP checksum covers the payload). Never throws, never
 * allocates. Inner frame bounds come from the IP total length (Ethernet padding excluded) and the UDP length.
 */
export function parseUnderlay(u8: Uint8Array, m: FrameMeta, u: Underlay): DropReason | null {
  u.kind = UNDERLAY_OTHER;
  u.srcIp = 0;
  u.dstIp = 0;
  u.vsid = 0;
  u.flowId = 0;
  u.innerOff = 0;
  u.innerLen = 0;
  u.arpOp = 0;
  u.arpSenderMac = 0;
  u.ipProto = 0;
  const off = m.off;
  const end = off + m.len;
  if (off < 0 || m.len < ETH_HLEN || end > u8.length || m.l3Off < ETH_HLEN) return null;
  const l3 = off + m.l3Off;
  if (m.etherType === ETHERTYPE_ARP) {
    if (
      l3 + ARP_LEN <= end &&
      readU16(u8, l3) === ARP_HTYPE_ETHERNET &&
      readU16(u8, l3 + 2) === ARP_PTYPE_IPV4 &&
      u8[l3 + 4] === 6 &&
      u8[l3 + 5] === 4
    ) {
      u.kind = UNDERLAY_ARP;
      u.arpOp = readU16(u8, l3 + 6);
      // uint32/48-bit values are made here from small integers: none crosses a call as a heap number
      u.arpSenderMac = readU16(u8, l3 + 8) * 0x1_0000_0000 + (readI32(u8, l3 + 10) >>> 0);
      u.srcIp = readI32(u8, l3 + 14) >>> 0;
      u.dstIp = readI32(u8, l3 + 24) >>> 0;
    }
    return null;
  }
  if (m.etherType !== ETHERTYPE_IPV4) return null;
  if (l3 + IPV4_HLEN > end) return null;
  const proto = u8[l3 + 9]!;
  const tunnelProto = proto === IPPROTO_GRE || proto === IPPROTO_UDP;
  const ihl = (u8[l3]! & 0x0f) * 4;
  const tot = readU16(u8, l3 + 2);
  if (u8[l3]! >>> 4 !== 4 || ihl < IPV4_HLEN || tot < ihl || l3 + tot > end) {
    // not a well-formed IPv4 packet: for GRE that is a broken tunnel packet; UDP may be anything
    return proto === IPPROTO_GRE && u8[l3]! >>> 4 === 4 ? 'bad-encap' : null;
  }
  u.srcIp = readI32(u8, l3 + 12) >>> 0;
  u.dstIp = readI32(u8, l3 + 16) >>> 0;
  u.ipProto = proto;
  u.kind = UNDERLAY_IPV4;
  if (!tunnelProto) return null;
  const pend = l3 + tot;
  const l4 = l3 + ihl;
  const frag = readU16(u8, l3 + 6) & 0x3fff;
  if (proto === IPPROTO_UDP) {
    // a later fragment carries no ports: it cannot be told from other UDP, so it stays plain IPv4
    if ((frag & 0x1fff) !== 0 || l4 + 4 > pend || readU16(u8, l4 + 2) !== VXLAN_PORT) return null;
    if (frag !== 0) return 'bad-encap';
    if (!checksumValid(u8, l3, ihl)) return 'bad-encap';
    if (l4 + UDP_HLEN > pend) return 'bad-encap';
    const ulen = readU16(u8, l4 + 4);
    if (ulen < UDP_HLEN + VXLAN_HLEN + ETH_HLEN || l4 + ulen > pend) return 'bad-encap';
    const vx = l4 + UDP_HLEN;
    // Linux vxlan_rcv: the I flag is required and every other flag or reserved bit must be clear
    if (readI32(u8, vx) !== VXLAN_FLAG_I << 24 || u8[vx + 7] !== 0) return 'bad-encap';
    u.kind = UNDERLAY_VXLAN;
    u.vsid = readI32(u8, vx + 4) >>> 8;
    u.innerOff = vx + VXLAN_HLEN;
    u.innerLen = l4 + ulen - u.innerOff;
    return null;
  }
  // GRE
  if (frag !== 0) return 'bad-encap';
  if (!checksumValid(u8, l3, ihl)) return 'bad-encap';
  if (l4 + NVGRE_HLEN > pend) return 'bad-encap';
  const flags = readU16(u8, l4);
  if ((flags & GRE_MUST_BE_ZERO) !== 0 || (flags & GRE_FLAG_K) === 0) return 'bad-encap';
  if (readU16(u8, l4 + 2) !== GRE_PROTO_TEB) return 'bad-encap';
  const inner = l4 + NVGRE_HLEN;
  if (pend - inner < ETH_HLEN) return 'bad-encap';
  u.kind = UNDERLAY_NVGRE;
  u.vsid = readI32(u8, l4 + 4) >>> 8;
  u.flowId = u8[l4 + 7]!;
  u.innerOff = inner;
  u.innerLen = pend - inner;
  return null;
}

/** Point m at the inner frame of an NVGRE/VXLAN packet: m.off = u.innerOff, m.len = u.innerLen, m.vlan = 0,
 *  offload fields: needsCsum kept with csumStart rebased (if it pointed past the inner Ethernet header and the
 *  field lies inside the inner frame) else cleared; gsoType kept with hdrLen rebased if hdrLen reaches past the
 *  inner Ethernet header, else cleared (gsoSize and hdrLen 0); dataValid kept. Other fields are left for the
 *  switch's re-classification. Does nothing unless u.kind is NVGRE or VXLAN. */
export function decapInPlace(m: FrameMeta, u: Underlay): void {
  if (u.kind !== UNDERLAY_NVGRE && u.kind !== UNDERLAY_VXLAN) return;
  const outer = u.innerOff - m.off;
  m.off = u.innerOff;
  m.len = u.innerLen;
  m.vlan = 0;
  if (m.needsCsum) {
    const start = m.csumStart - outer;
    if (start >= ETH_HLEN && start + m.csumOffset + 2 <= m.len) m.csumStart = start;
    else {
      m.needsCsum = false;
      m.csumStart = 0;
      m.csumOffset = 0;
    }
  }
  if (m.gsoType !== GSO_NONE) {
    const hl = m.hdrLen - outer;
    if (hl > ETH_HLEN) m.hdrLen = hl;
    else {
      m.gsoType = GSO_NONE;
      m.gsoSize = 0;
      m.hdrLen = 0;
    }
  }
}

/** IP rewrite in: IPv4 dst (our PA) -> dstCa, src (remote PA) -> srcCa, dst MAC = dstMac, src MAC = srcMac
 *  (also set in m.dstMac/m.srcMac), checksums fixed as rewriteOut. Returns null or 'rewrite-unsupported'
 *  (frame untouched then). */
export function rewriteIn(b: Batch, m: FrameMeta, srcCa: number, dstCa: number, srcMac: number, dstMac: number): DropReason | null {
  const u8 = b.slab;
  const r = rewriteAddresses(u8, m, srcCa | 0, dstCa | 0);
  if (r !== null) return r;
  writeMacHalves(u8, m.off, (dstMac / 0x1_0000_0000) | 0, dstMac | 0);
  writeMacHalves(u8, m.off + 6, (srcMac / 0x1_0000_0000) | 0, srcMac | 0);
  m.dstMac = dstMac;
  m.srcMac = srcMac;
  return null;
}
