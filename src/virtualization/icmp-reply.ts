// virtualization/icmp-reply.ts: ICMP errors the switch sends to a VM in place of its frame (fragmentation needed
// with the tenant MTU; time exceeded from the distributed router), written over the offending frame.

import { GSO_NONE, type FrameMeta } from '../dataplane/frame.js';
import { readU16, writeU16, writeU32 } from '../wire/byte-order.js';
import { fillChecksum, internetChecksum } from '../wire/checksum.js';
import { ETHERTYPE_IPV4, ETH_HLEN } from '../wire/ethernet.js';
import { readI32, writeMacHalves } from './encap.js';
import {
  ICMP_DEST_UNREACHABLE,
  ICMP_FRAG_NEEDED,
  ICMP_HLEN,
  ICMP_PARAMETER_PROBLEM,
  ICMP_REDIRECT,
  ICMP_TIME_EXCEEDED,
} from '../wire/icmp.js';
import { IPPROTO_ICMP, IPV4_HLEN } from '../wire/ipv4.js';

const IPV4_DF = 0x4000;
/** IPTOS_PREC_INTERNETCONTROL, as Linux sends ICMP errors. */
const TOS_INTERNETCONTROL = 0xc0;
const ICMP_TTL = 64;
/** Bytes of the offending datagram's payload quoted after its header (RFC 792). */
const QUOTE_PAYLOAD = 8;

/**
 * The shared shape: Ethernet (to the original source MAC, from fromMac) | IPv4 (fromIp -> original source, TTL 64)
 * | ICMP type/code/rest | original IP header + up to 8 bytes. RFC 1122 §3.2.2: never about an ICMP error, a
 * non-initial fragment, a link-layer or IP broadcast/multicast, or a source that is not one host.
 */
function icmpErrorInPlace(
  u8: Uint8Array,
  m: FrameMeta,
  type: number,
  code: number,
  rest: number,
  needDf: boolean,
  fromIp: number,
  fromMac: number,
): boolean {
  const off = m.off;
  const end = off + m.len;
  if (m.etherType !== ETHERTYPE_IPV4 || off < 0 || m.len < ETH_HLEN || end > u8.length) return false;
  const ip = off + m.l3Off;
  if (m.l3Off < ETH_HLEN || ip + IPV4_HLEN > end || u8[ip]! >>> 4 !== 4) return false;
  const ihl = (u8[ip]! & 0x0f) * 4;
  if (ihl < IPV4_HLEN || ip + ihl > end) return false;
  const gso = m.gsoType !== GSO_NONE;
  const tot = readU16(u8, ip + 2);
  let pend = end;
  if (!gso) {
    if (tot < ihl || ip + tot > end) return false;
    pend = ip + tot;
  }
  const frag = readU16(u8, ip + 6);
  if (needDf && (frag & IPV4_DF) === 0) return false;
  if ((frag & 0x1fff) !== 0) return false;
  const proto = u8[ip + 9]!;
  const l4 = ip + ihl;
  if (proto === IPPROTO_ICMP) {
    if (l4 >= pend) return false;
    const t = u8[l4]!;
    if (t === ICMP_DEST_UNREACHABLE || t === ICMP_REDIRECT || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETER_PROBLEM)
      return false;
  }
  // addresses as int32 bit patterns and MACs as bytes: no per-frame heap numbers
  const src = readI32(u8, ip + 12);
  const srcTop = u8[ip + 12]!, dstTop = u8[ip + 16]!;
  if (src === 0 || srcTop >= 0xe0 || dstTop >= 0xe0 || (u8[off]! & 1) !== 0 || (u8[off + 6]! & 1) !== 0) return false;
  const quote = ihl + Math.min(QUOTE_PAYLOAD, pend - l4);
  const icmpLen = ICMP_HLEN + quote;
  const newLen = ETH_HLEN + IPV4_HLEN + icmpLen;
  // the reply may be up to 28 bytes longer than a tiny original: it runs into the slot's tailroom
  if (off + newLen > u8.length) return false;

  const nip = off + ETH_HLEN;
  const icmp = nip + IPV4_HLEN;
  u8.copyWithin(icmp + ICMP_HLEN, ip, ip + quote);
  u8.copyWithin(off, off + 6, off + 12); // back to the sender
  writeMacHalves(u8, off + 6, (fromMac / 0x1_0000_0000) | 0, fromMac | 0);
  writeU16(u8, off + 12, ETHERTYPE_IPV4);
  u8[nip] = 0x45;
  u8[nip + 1] = TOS_INTERNETCONTROL;
  writeU16(u8, nip + 2, IPV4_HLEN + icmpLen);
  writeU16(u8, nip + 4, 0);
  writeU16(u8, nip + 6, 0);
  u8[nip + 8] = ICMP_TTL;
  u8[nip + 9] = IPPROTO_ICMP;
  writeU16(u8, nip + 10, 0);
  writeU32(u8, nip + 12, fromIp | 0);
  writeU32(u8, nip + 16, src);
  writeU16(u8, nip + 10, internetChecksum(u8, nip, IPV4_HLEN));
  u8[icmp] = type;
  u8[icmp + 1] = code;
  writeU16(u8, icmp + 4, rest >>> 16);
  writeU16(u8, icmp + 6, rest & 0xffff);
  fillChecksum(u8, icmp, icmpLen, 2);

  m.dstMac = readU16(u8, off) * 0x1_0000_0000 + (readI32(u8, off + 2) >>> 0);
  m.srcMac = fromMac;
  m.len = newLen;
  m.etherType = ETHERTYPE_IPV4;
  m.l3Off = ETH_HLEN;
  m.clearOffload();
  return true;
}

/** Turn the IPv4 frame m in place into ICMP destination unreachable / fragmentation needed (type 3 code 4, next-hop
 *  MTU = mtu) from fromIp/fromMac to the original sender (dst MAC = original src MAC, dst IP = original src IP),
 *  quoting the original IP header + 8 bytes; IPv4 TTL 64, checksums filled; m.len, m.etherType, m.l3Off (14),
 *  m.dstMac/srcMac set; offload fields cleared (gso, needsCsum, dataValid). Works for GSO super-frames too (quotes
 *  their first bytes). m.off, m.vlan, m.vsid, m.inPort unchanged. Returns false (frame untouched) if it is not
 *  IPv4, is itself an ICMP error, has no DF bit, is a non-initial fragment, or is from/to a broadcast/multicast
 *  address (RFC 1122 §3.2.2). */
export function fragNeededInPlace(u8: Uint8Array, m: FrameMeta, mtu: number, fromIp: number, fromMac: number): boolean {
  return icmpErrorInPlace(u8, m, ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, mtu & 0xffff, true, fromIp, fromMac);
}

/** Same shape for ICMP time exceeded (type 11 code 0), used by the router at TTL <= 1 (no DF needed). */
export function timeExceededInPlace(u8: Uint8Array, m: FrameMeta, fromIp: number, fromMac: number): boolean {
  return icmpErrorInPlace(u8, m, ICMP_TIME_EXCEEDED, 0, 0, false, fromIp, fromMac);
}
