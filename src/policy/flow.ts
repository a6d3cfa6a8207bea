// policy/flow.ts: the L2-L4 fields ACLs match on, parsed once per frame into one preallocated record (no
// allocation per frame). Addresses are uint32 words (IPv4 in word 0, IPv6 in words 0..3, network order); MACs are
// 48-bit numbers. Ingress classification already checked the IPv4/IPv6 header against the frame, but every read
// here is still bounds-checked: a short L4 header just leaves the ports at 0 (l4 false).

import type { FrameMeta } from '../dataplane/frame.js';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../wire/ethernet.js';
import { IPV6_MAX_EXT_HEADERS } from '../wire/ipv6.js';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/** Flow.frag: not a fragment; the first fragment (offset 0, more fragments) that carries the L4 header; a later one. */
export const FRAG_NONE = 0;
export const FRAG_FIRST = 1;
export const FRAG_LATER = 2;

export class Flow {
  /** 4, 6, or 0 (not IP). */
  family = 0;
  proto = 0;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** TCP/UDP ports; for ICMP echo request/reply both are the identifier. */
  sport = 0;
  dport = 0;
  /** The transport header was read (ports valid); false for non-first fragments and cut headers. */
  l4 = false;
  tcpFlags = 0;
  /** ICMP/ICMPv6 type, -1 when not ICMP. */
  icmpType = -1;
  /** The frame is an ICMP echo request (creates state) or reply. */
  echoRequest = false;
  echoReply = false;
  /** FRAG_NONE, FRAG_FIRST or FRAG_LATER (IPv4 MF/offset; IPv6 fragment header, an atomic one is no fragment). */
  frag = FRAG_NONE;
  /** [0]: the datagram's identification (IPv4 16 bits, IPv6 32 bits) when frag != FRAG_NONE (a word array: a
   *  32-bit number in a field could be a heap number). */
  readonly fragId = new Uint32Array(1);
  /** The more-fragments flag of a fragment (false on the last one). */
  fragMore = false;
  /** A fragment's offset in its datagram's payload and its own payload bytes (from the IP length fields). */
  fragOffset = 0;
  fragLen = 0;
  /**
   * An ICMP/ICMPv6 error (v4: dest unreachable 3, time exceeded 11, parameter problem 12; v6: 1..4) whose quoted
   * packet parsed: its IP header of the same family plus the first 8 bytes of its L4 header are all inside the
   * frame, and it is not a later fragment. Then q* hold the quoted packet's fields (ports as in sport/dport).
   */
  icmpError = false;
  /**
   * IPv6 whose extension header chain does not reach its upper layer within the packet: a header cut short, or
   * more than IPV6_MAX_EXT_HEADERS of them (RFC 8200 expects a handful; RFC 7112 wants them all in the first
   * fragment). proto then holds the last header type seen, so no protocol rule may judge the packet by it.
   */
  chainUnknown = false;
  /** walkIpv6's results (scratch). */
  private walkNh = 0;
  private walkFrag = -1;
  readonly qSrc = new Uint32Array(4);
  readonly qDst = new Uint32Array(4);
  qProto = 0;
  qSport = 0;
  qDport = 0;
  srcMac = 0;
  dstMac = 0;
  /** The MACs as the frame left its sender (before the distributed router rewrote them): out-direction ACLs. */
  sentSrcMac = 0;
  sentDstMac = 0;
  /** Bytes of the frame (hit counters). */
  len = 0;
  /** Parsed for the current frame (set by parse, cleared by invalidate). */
  valid = false;

  invalidate(): void {
    this.valid = false;
  }

  /** Fill from frame m in slab (cheap when the flow is already parsed for this frame). */
  parse(slab: Uint8Array, m: FrameMeta): void {
    if (this.valid) return;
    this.valid = true;
    this.srcMac = m.srcMac;
    this.dstMac = m.dstMac;
    this.sentSrcMac = m.sentSrcMac >= 0 ? m.sentSrcMac : m.srcMac;
    this.sentDstMac = m.sentDstMac >= 0 ? m.sentDstMac : m.dstMac;
    this.len = m.len;
    this.family = 0;
    this.proto = 0;
    this.sport = 0;
    this.dport = 0;
    this.l4 = false;
    this.tcpFlags = 0;
    this.icmpType = -1;
    this.echoRequest = false;
    this.echoReply = false;
    this.frag = FRAG_NONE;
    this.fragId[0] = 0;
    this.fragMore = false;
    this.fragOffset = 0;
    this.fragLen = 0;
    this.icmpError = false;
    this.chainUnknown = false;
    const s = this.src;
    const d = this.dst;
    s[0] = s[1] = s[2] = s[3] = 0;
    d[0] = d[1] = d[2] = d[3] = 0;
    const base = m.off + m.l3Off;
    const end = m.off + m.len;
    let l4 = -1;
    if (m.etherType === ETHERTYPE_IPV4) {
      if (base + 20 > end) return;
      this.family = 4;
      const ihl = (slab[base]! & 0x0f) * 4;
      this.proto = slab[base + 9]!;
      u32(slab, base + 12, s, 0);
      u32(slab, base + 16, d, 0);
      const fragOff = ((slab[base + 6]! & 0x1f) << 8) | slab[base + 7]!;
      if (fragOff !== 0 || (slab[base + 6]! & 0x20) !== 0) {
        this.frag = fragOff !== 0 ? FRAG_LATER : FRAG_FIRST;
        this.fragId[0] = (slab[base + 4]! << 8) | slab[base + 5]!;
        this.fragMore = (slab[base + 6]! & 0x20) !== 0;
        this.fragOffset = fragOff * 8;
        this.fragLen = Math.max(0, ((slab[base + 2]! << 8) | slab[base + 3]!) - ihl);
      }
      if (fragOff === 0 && ihl >= 20) l4 = base + ihl;
    } else if (m.etherType === ETHERTYPE_IPV6) {
      if (base + 40 > end) return;
      this.family = 6;
      for (let i = 0; i < 4; i++) {
        u32(slab, base + 8 + 4 * i, s, i);
        u32(slab, base + 24 + 4 * i, d, i);
      }
      const up = this.walkIpv6(slab, base + 40, end, slab[base + 6]!);
      this.proto = this.walkNh;
      const fh = this.walkFrag;
      if (fh >= 0) {
        const fo = ((slab[fh + 2]! << 8) | slab[fh + 3]!) & 0xfff8;
        if (fo !== 0 || (slab[fh + 3]! & 1) !== 0) {
          this.frag = fo !== 0 ? FRAG_LATER : FRAG_FIRST;
          u32(slab, fh + 4, this.fragId, 0);
          this.fragMore = (slab[fh + 3]! & 1) !== 0;
          this.fragOffset = fo;
          this.fragLen = Math.max(0, base + 40 + ((slab[base + 4]! << 8) | slab[base + 5]!) - (fh + 8));
        }
        if (fo !== 0) return; // a later fragment: what follows is data, proto its upper layer
      }
      if (up < 0) {
        this.chainUnknown = true;
        return;
      }
      l4 = up;
    } else {
      return;
    }
    if (l4 < 0) return;
    const pr = this.proto;
    if (pr === PROTO_TCP) {
      if (l4 + 14 > end) return;
      this.sport = (slab[l4]! << 8) | slab[l4 + 1]!;
      this.dport = (slab[l4 + 2]! << 8) | slab[l4 + 3]!;
      this.tcpFlags = slab[l4 + 13]!;
      this.l4 = true;
    } else if (pr === PROTO_UDP) {
      if (l4 + 8 > end) return;
      this.sport = (slab[l4]! << 8) | slab[l4 + 1]!;
      this.dport = (slab[l4 + 2]! << 8) | slab[l4 + 3]!;
      this.l4 = true;
    } else if (pr === PROTO_ICMP || pr === PROTO_ICMPV6) {
      if (l4 + 8 > end) return;
      const t = slab[l4]!;
      this.icmpType = t;
      this.l4 = true;
      const req = pr === PROTO_ICMP ? t === 8 : t === 128;
      const rep = pr === PROTO_ICMP ? t === 0 : t === 129;
      if (req || rep) {
        this.echoRequest = req;
        this.echoReply = rep;
        // the identifier in both port fields: the key is the same seen from either end
        this.sport = (slab[l4 + 4]! << 8) | slab[l4 + 5]!;
        this.dport = this.sport;
      } else if (pr === PROTO_ICMP ? t === 3 || t === 11 || t === 12 : t >= 1 && t <= 4) {
        this.icmpError = this.parseQuote(slab, l4 + 8, end);
      }
    }
  }

  /**
   * Walk IPv6 extension headers from p (of type nh) up to end: hop-by-hop, routing, destination options, AH (as
   * ip6tables' protocol match does) and fragment, at most IPV6_MAX_EXT_HEADERS; ESP and anything else end the
   * chain. A fragment header with a non-zero offset ends it too (what follows is data). Sets walkNh (the type of
   * what follows the last header walked, or of the header it stopped at) and walkFrag (the fragment header's
   * offset, -1 if none). Returns the offset after the last header, or -1 when the chain does not end within the
   * packet and the limit (cut short, or too many headers).
   */
  private walkIpv6(slab: Uint8Array, p: number, end: number, nh: number): number {
    this.walkFrag = -1;
    for (let k = 0; k < IPV6_MAX_EXT_HEADERS; k++) {
      if (nh !== 0 && nh !== 43 && nh !== 44 && nh !== 51 && nh !== 60) break;
      if (p + 8 > end) {
        this.walkNh = nh;
        return -1;
      }
      const next = slab[p]!;
      if (nh === 44) {
        this.walkFrag = p;
        p += 8;
        if ((((slab[p - 6]! << 8) | slab[p - 5]!) & 0xfff8) !== 0) {
          this.walkNh = next;
          return p;
        }
      } else {
        p += nh === 51 ? (slab[p + 1]! + 2) * 4 : (slab[p + 1]! + 1) * 8;
      }
      nh = next;
    }
    this.walkNh = nh;
    return nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 60 || p > end ? -1 : p;
  }

  /**
   * The packet quoted by an ICMP error at q (up to end): fills q* and returns true when its IP header (same family
   * as the error) and the first 8 bytes of its L4 header are all there; a truncated quote, a quoted later fragment
   * or a quote of the other family is no quote. IPv6: extension headers are walked as in parse (walkIpv6).
   */
  private parseQuote(slab: Uint8Array, q: number, end: number): boolean {
    const s = this.qSrc;
    const d = this.qDst;
    let l4: number;
    let pr: number;
    if (this.family === 4) {
      if (q + 20 > end || slab[q]! >>> 4 !== 4) return false;
      const ihl = (slab[q]! & 0x0f) * 4;
      if (ihl < 20 || (((slab[q + 6]! & 0x1f) << 8) | slab[q + 7]!) !== 0) return false;
      pr = slab[q + 9]!;
      u32(slab, q + 12, s, 0);
      u32(slab, q + 16, d, 0);
      s[1] = s[2] = s[3] = 0;
      d[1] = d[2] = d[3] = 0;
      l4 = q + ihl;
    } else {
      if (q + 40 > end || slab[q]! >>> 4 !== 6) return false;
      for (let i = 0; i < 4; i++) {
        u32(slab, q + 8 + 4 * i, s, i);
        u32(slab, q + 24 + 4 * i, d, i);
      }
      l4 = this.walkIpv6(slab, q + 40, end, slab[q + 6]!);
      const fh = this.walkFrag;
      if (l4 < 0 || (fh >= 0 && (((slab[fh + 2]! << 8) | slab[fh + 3]!) & 0xfff8) !== 0)) return false;
      pr = this.walkNh;
    }
    if (l4 + 8 > end) return false;
    this.qProto = pr;
    this.qSport = 0;
    this.qDport = 0;
    if (pr === PROTO_TCP || pr === PROTO_UDP) {
      this.qSport = (slab[l4]! << 8) | slab[l4 + 1]!;
      this.qDport = (slab[l4 + 2]! << 8) | slab[l4 + 3]!;
    } else if (pr === PROTO_ICMP || pr === PROTO_ICMPV6) {
      const t = slab[l4]!;
      // an echo keys its connection by identifier in both port fields (see parse)
      if (pr === PROTO_ICMP ? t === 8 || t === 0 : t === 128 || t === 129) this.qSport = this.qDport = (slab[l4 + 4]! << 8) | slab[l4 + 5]!;
    }
    return true;
  }
}

/** Store the big-endian word at b[o] into out[i] (no uint32 return value: it could be boxed). */
function u32(b: Uint8Array, o: number, out: Uint32Array, i: number): void {
  out[i] = (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}
