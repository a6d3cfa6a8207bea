// virtualization/nd-reply.ts: IPv6 replies the switch writes over a VM's frame: a neighbor advertisement answering
// its neighbor solicitation from the policy table (RFC 4861 §7.2.4), and an ICMPv6 packet too big with the tenant
// MTU (RFC 4443 §3.2). In place, without allocation: offsets and int32 words only.

import { GSO_NONE, type FrameMeta } from '../dataplane/frame.js';
import { readU16, readU32, writeU16, writeU32 } from '../wire/byte-order.js';
import { fillChecksum, pseudoSumIpv6 } from '../wire/checksum.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import {
  ICMPV6_NEIGHBOR_ADVERTISEMENT,
  ICMPV6_NEIGHBOR_SOLICITATION,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_TIME_EXCEEDED,
  ND_OPT_TARGET_LINK_ADDR,
} from '../wire/icmpv6.js';
import { IPV6_HLEN } from '../wire/ipv6.js';

export const ETHERTYPE_IPV6 = 0x86dd;
const IPPROTO_ICMPV6 = 58;
const ND_HOP_LIMIT = 255;
/** NS/NA fixed part: type, code, checksum, flags/reserved, target. */
const ND_FIXED = 24;
/** NA payload we send: fixed part + one target link-layer address option (8 bytes). */
const NA_LEN = ND_FIXED + 8;
export const NA_FRAME = ETH_HLEN + IPV6_HLEN + NA_LEN;
const NA_ROUTER = 0x80;
const NA_SOLICITED = 0x40;
const NA_OVERRIDE = 0x20;
/** RFC 4443 §2.4(c): an ICMPv6 error must not exceed the IPv6 minimum MTU. */
const IPV6_MIN_MTU = 1280;
const PTB_HLEN = 8;

/**
 * Where the target address of the NS in frame m starts in u8, or -1 if m is not an untagged neighbor solicitation
 * (IPv6 directly followed by ICMPv6 type 135 code 0, hop limit 255, long enough for its target). Extension headers
 * before ICMPv6 make it an ordinary frame: a real NS carries none.
 */
export function nsTargetOffset(u8: Uint8Array, m: FrameMeta): number {
  if (m.etherType !== ETHERTYPE_IPV6 || m.l3Off !== ETH_HLEN) return -1;
  const ip = m.off + ETH_HLEN;
  if (m.len < ETH_HLEN + IPV6_HLEN + ND_FIXED || ip + IPV6_HLEN + ND_FIXED > u8.length) return -1;
  if (u8[ip + 6] !== IPPROTO_ICMPV6 || u8[ip + 7] !== ND_HOP_LIMIT) return -1;
  const icmp = ip + IPV6_HLEN;
  if (u8[icmp] !== ICMPV6_NEIGHBOR_SOLICITATION || u8[icmp + 1] !== 0) return -1;
  if (readU16(u8, ip + 4) < ND_FIXED) return -1;
  return icmp + 8;
}

/** Is the source address of the IPv6 packet at ip the unspecified address (a DAD probe)? */
export function sourceUnspecified(u8: Uint8Array, ip: number): boolean {
  for (let i = 8; i < 24; i++) if (u8[ip + i] !== 0) return false;
  return true;
}

/** Do the 16 bytes at u8[a] equal those at b[bOff]? */
export function equal16(u8: Uint8Array, a: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (u8[a + i] !== b[bOff + i]) return false;
  return true;
}

function writeHalves(u8: Uint8Array, at: number, hi: number, lo: number): void {
  u8[at] = hi >>> 16;
  u8[at + 1] = (hi >>> 8) & 0xff;
  u8[at + 2] = hi & 0xff;
  u8[at + 3] = lo >>> 16;
  u8[at + 4] = (lo >>> 8) & 0xff;
  u8[at + 5] = lo & 0xff;
}

/**
 * Turn the neighbor solicitation in frame m (nsTargetOffset(m) >= 0) into the neighbor advertisement for its
 * target, whose link-layer address is the MAC macHi * 2^24 + macLo: from the target to the solicitor (solicited,
 * override, router flag as given, target link-layer address option), hop limit 255, checksum filled. For a DAD
 * probe (unspecified source) the answer goes to all-nodes (ff02::1, 33:33:00:00:00:01) unsolicited, so the prober
 * sees its address is taken (RFC 4862 §5.4.3). Returns false (frame untouched) if the slot cannot hold the reply.
 * m.len and the MACs in m are updated; m.dest is the caller's.
 */
export function neighborAdvertInPlace(u8: Uint8Array, m: FrameMeta, macHi: number, macLo: number, router: boolean): boolean {
  const off = m.off;
  const ip = off + ETH_HLEN;
  if (off + NA_FRAME > u8.length) return false;
  const dad = sourceUnspecified(u8, ip);
  if (dad) {
    u8[off] = 0x33;
    u8[off + 1] = 0x33;
    u8[off + 2] = 0;
    u8[off + 3] = 0;
    u8[off + 4] = 0;
    u8[off + 5] = 1;
    u8.fill(0, ip + 24, ip + 40);
    u8[ip + 24] = 0xff;
    u8[ip + 25] = 0x02;
    u8[ip + 39] = 1;
  } else {
    u8.copyWithin(off, off + 6, off + 12);
    u8.copyWithin(ip + 24, ip + 8, ip + 24);
  }
  writeHalves(u8, off + 6, macHi, macLo);
  const icmp = ip + IPV6_HLEN;
  u8.copyWithin(ip + 8, icmp + 8, icmp + 24); // the target answers
  writeU32(u8, ip, 0x6000_0000);
  writeU16(u8, ip + 4, NA_LEN);
  u8[ip + 6] = IPPROTO_ICMPV6;
  u8[ip + 7] = ND_HOP_LIMIT;
  u8[icmp] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  u8[icmp + 1] = 0;
  u8[icmp + 4] = (router ? NA_ROUTER : 0) | (dad ? 0 : NA_SOLICITED) | NA_OVERRIDE;
  u8[icmp + 5] = 0;
  u8[icmp + 6] = 0;
  u8[icmp + 7] = 0;
  const opt = icmp + ND_FIXED;
  u8[opt] = ND_OPT_TARGET_LINK_ADDR;
  u8[opt + 1] = 1;
  writeHalves(u8, opt + 2, macHi, macLo);
  fillChecksum(u8, icmp, NA_LEN, 2, pseudoSumIpv6(u8, ip + 8, ip + 24, IPPROTO_ICMPV6, NA_LEN));
  m.len = NA_FRAME;
  m.dstMac = readU16(u8, off) * 0x1_0000_0000 + readU32(u8, off + 2);
  m.srcMac = macHi * 0x100_0000 + macLo;
  return true;
}

/**
 * An unsolicited neighbor advertisement (override, not solicited) of the IPv6 address ca6 at the MAC
 * macHi * 2^24 + macLo, to all-nodes (ff02::1): what a host sends after its link-layer address may have changed
 * (RFC 4861 §7.2.6); the switch sends it for a VM that became local (migration), as a gratuitous ARP for IPv4.
 * Control path: a new NA_FRAME-byte buffer.
 */
export function unsolicitedNeighborAdvert(ca6: Uint8Array, macHi: number, macLo: number): Uint8Array {
  const u8 = new Uint8Array(NA_FRAME);
  u8.set([0x33, 0x33, 0, 0, 0, 1], 0);
  writeHalves(u8, 6, macHi, macLo);
  writeU16(u8, 12, ETHERTYPE_IPV6);
  const ip = ETH_HLEN;
  writeU32(u8, ip, 0x6000_0000);
  writeU16(u8, ip + 4, NA_LEN);
  u8[ip + 6] = IPPROTO_ICMPV6;
  u8[ip + 7] = ND_HOP_LIMIT;
  u8.set(ca6.subarray(0, 16), ip + 8);
  u8[ip + 24] = 0xff;
  u8[ip + 25] = 0x02;
  u8[ip + 39] = 1;
  const icmp = ip + IPV6_HLEN;
  u8[icmp] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  u8[icmp + 4] = NA_OVERRIDE;
  u8.set(ca6.subarray(0, 16), icmp + 8);
  u8[icmp + ND_FIXED] = ND_OPT_TARGET_LINK_ADDR;
  u8[icmp + ND_FIXED + 1] = 1;
  writeHalves(u8, icmp + ND_FIXED + 2, macHi, macLo);
  fillChecksum(u8, icmp, NA_LEN, 2, pseudoSumIpv6(u8, ip + 8, ip + 24, IPPROTO_ICMPV6, NA_LEN));
  return u8;
}

/**
 * Turn the IPv6 frame m in place into ICMPv6 packet too big (type 2, MTU = mtu) to its sender: Ethernet from
 * fromMac (halves), IPv6 from `from` (16 bytes at from[fromOff]) or, when from is null, from the original
 * destination; the original packet is quoted as far as the reply stays within 1280 bytes (RFC 4443 §3.2); hop
 * limit 255; checksum filled; offload fields cleared. Works for GSO super-frames (quotes their start). Returns
 * false (frame untouched) when no error may be sent: not IPv6, an ICMPv6 error itself, from/to multicast or
 * the unspecified address, or no room.
 */
export function packetTooBigInPlace(
  u8: Uint8Array,
  m: FrameMeta,
  mtu: number,
  from: Uint8Array | null,
  fromOff: number,
  fromMacHi: number,
  fromMacLo: number,
): boolean {
  return icmpv6ErrorInPlace(u8, m, ICMPV6_PACKET_TOO_BIG, 0, mtu, from, fromOff, fromMacHi, fromMacLo);
}

/** The same shape for ICMPv6 time exceeded (type 3, code 0: hop limit exceeded in transit), sent by the router. */
export function hopLimitExceededInPlace(
  u8: Uint8Array,
  m: FrameMeta,
  from: Uint8Array | null,
  fromOff: number,
  fromMacHi: number,
  fromMacLo: number,
): boolean {
  return icmpv6ErrorInPlace(u8, m, ICMPV6_TIME_EXCEEDED, 0, 0, from, fromOff, fromMacHi, fromMacLo);
}

function icmpv6ErrorInPlace(
  u8: Uint8Array,
  m: FrameMeta,
  type: number,
  code: number,
  rest: number,
  from: Uint8Array | null,
  fromOff: number,
  fromMacHi: number,
  fromMacLo: number,
): boolean {
  const off = m.off;
  const end = off + m.len;
  if (m.etherType !== ETHERTYPE_IPV6 || m.l3Off < ETH_HLEN || end > u8.length) return false;
  const ip = off + m.l3Off;
  if (ip + IPV6_HLEN > end || u8[ip]! >>> 4 !== 6) return false;
  if ((u8[off]! & 1) !== 0 || (u8[off + 6]! & 1) !== 0) return false;
  if (u8[ip + 8] === 0xff || u8[ip + 24] === 0xff || sourceUnspecified(u8, ip)) return false;
  if (u8[ip + 6] === IPPROTO_ICMPV6 && ip + IPV6_HLEN < end && u8[ip + IPV6_HLEN]! < 128) return false;
  let pend = end;
  if (m.gsoType === GSO_NONE) {
    const pl = ip + IPV6_HLEN + readU16(u8, ip + 4);
    if (pl < pend) pend = pl;
  }
  let quote = pend - ip;
  if (quote > IPV6_MIN_MTU - IPV6_HLEN - PTB_HLEN) quote = IPV6_MIN_MTU - IPV6_HLEN - PTB_HLEN;
  const nip = off + ETH_HLEN;
  const icmp = nip + IPV6_HLEN;
  const q = icmp + PTB_HLEN;
  if (q + quote > u8.length) return false;
  u8.copyWithin(q, ip, ip + quote);
  u8.copyWithin(off, off + 6, off + 12); // back to the sender
  writeHalves(u8, off + 6, fromMacHi, fromMacLo);
  writeU16(u8, off + 12, ETHERTYPE_IPV6);
  const icmpLen = PTB_HLEN + quote;
  writeU32(u8, nip, 0x6000_0000);
  writeU16(u8, nip + 4, icmpLen);
  u8[nip + 6] = IPPROTO_ICMPV6;
  u8[nip + 7] = ND_HOP_LIMIT;
  u8.copyWithin(nip + 24, q + 8, q + 24); // to the original source
  if (from !== null) for (let i = 0; i < 16; i++) u8[nip + 8 + i] = from[fromOff + i]!;
  else u8.copyWithin(nip + 8, q + 24, q + 40);
  u8[icmp] = type;
  u8[icmp + 1] = code;
  writeU32(u8, icmp + 4, rest);
  fillChecksum(u8, icmp, icmpLen, 2, pseudoSumIpv6(u8, nip + 8, nip + 24, IPPROTO_ICMPV6, icmpLen));

  m.dstMac = readU16(u8, off) * 0x1_0000_0000 + readU32(u8, off + 2);
  m.srcMac = fromMacHi * 0x100_0000 + fromMacLo;
  m.len = ETH_HLEN + IPV6_HLEN + icmpLen;
  m.l3Off = ETH_HLEN;
  m.clearOffload();
  return true;
}
