// virtualization/gro.ts: receive-side coalescing (software GRO) of decapsulated TCP/IPv4 segments. Segments of
// one TCP flow that arrive in the same rx batch from the tunnel are merged into one GSO super-frame (TCPV4,
// CHECKSUM_PARTIAL) in the first segment's slot, so the VM's TAP gets one write per super-frame instead of one per
// MTU-sized segment. The inverse of dataplane/offload.ts segmentFrame: segmenting a super-frame built here gives
// back the original segments byte for byte (IP IDs incrementing; a fixed-ID run comes back incrementing).
//
// Merge rules follow Linux tcp4_gro_receive / inet_gro_receive: same VSID, VLAN, MACs and EtherType; IPv4 without
// options or fragmentation, valid header checksum, same TOS, TTL and DF; IP IDs incrementing (or fixed, with DF);
// same addresses and ports; contiguous sequence numbers; same ACK, window and TCP options (bytewise); flags ACK
// only (PSH: merged and ends the run; FIN/SYN/RST/URG/CWR/ECE or any reserved bit: not merged, ends the run);
// payloads of the run's MSS (the first segment's payload) except a smaller last one, which ends the run; IP total
// length <= 65535; room in the first segment's slot. A TCP checksum that does not verify (unless the back end
// said DATA_VALID, or the frame is CHECKSUM_PARTIAL itself) is never merged: NEEDS_CSUM would hide it. It is
// verified in the same pass that copies the payload; a trusted payload is moved with copyWithin (memmove). Frames are never held across batches: flush() at the end.
//
// Hot path: no allocation, no closures, no exceptions. Sequence numbers, addresses and ports are int32 (|0).

import { Batch, GSO_NONE, GSO_TCPV4, TAILROOM, type FrameMeta } from '../dataplane/frame.js';
import { sumBytes, wordView } from '../wire/checksum.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETH_HLEN = 14;
const IPPROTO_TCP = 6;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
const IP_MAX = 65535;
/** Flows open at once inside one batch (Linux keeps 8 per GRO bucket); the oldest is flushed to make room. */
export const GRO_MAX_FLOWS = 8;
/** A slot that cannot hold a second MTU-sized segment after the first makes GRO pointless: 2 KB slots skip it. */
const MIN_SLOT_FRAME = 4096;


function rd32(u8: Uint8Array, o: number): number {
  return (u8[o]! << 24) | (u8[o + 1]! << 16) | (u8[o + 2]! << 8) | u8[o + 3]!;
}
function rd16(u8: Uint8Array, o: number): number {
  return (u8[o]! << 8) | u8[o + 1]!;
}
function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}
/** Fold a small non-negative integer sum to 16 bits (end-around carry). */
function fold(x: number): number {
  while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
  return x;
}

/**
 * Copy n bytes u8[s..] -> u8[d..] (distinct, non-overlapping ranges of the slab, s + n + 4 <= u8.length) and return
 * their ones'-complement sum as BE 16-bit words counted from s (the first byte is a high byte), folded to 16 bits.
 * Destination words are written whole; a source at another word alignment is read as aligned words and shifted
 * into place, so every alignment moves 4 bytes per step. The sum is taken over the destination words.
 */
function copySum(u8: Uint8Array, w: Uint32Array, s: number, d: number, n: number): number {
  const d0 = d;
  let acc = 0; // index form: a byte at an even destination index is a high byte
  while (n > 0 && (d & 3) !== 0) {
    const x = u8[s++]!;
    u8[d] = x;
    acc += (d & 1) === 0 ? x << 8 : x;
    d++;
    n--;
  }
  const nw = n >>> 2;
  if (nw > 0) {
    let sum = 0; // little-endian words: a double, exact below 2^53, folded before it leaves
    let dw = d >>> 2;
    const dend = dw + nw;
    const ds = s & 3;
    if (ds === 0) {
      let sw = s >>> 2;
      for (; dw + 4 <= dend; dw += 4, sw += 4) {
        const a = w[sw]!, b = w[sw + 1]!, c = w[sw + 2]!, e = w[sw + 3]!;
        w[dw] = a;
        w[dw + 1] = b;
        w[dw + 2] = c;
        w[dw + 3] = e;
        sum += a + b + c + e;
      }
      for (; dw < dend; dw++, sw++) {
        const a = w[sw]!;
        w[dw] = a;
        sum += a;
      }
    } else {
      // little-endian: the byte at s is bits 8*ds.. of the aligned word holding it
      const sh = ds * 8;
      const csh = 32 - sh;
      let sw = (s - ds) >>> 2;
      let cur = w[sw]!;
      for (; dw < dend; dw++) {
        sw++;
        const nx = w[sw]!;
        const v = ((cur >>> sh) | (nx << csh)) >>> 0;
        w[dw] = v;
        sum += v;
        cur = nx;
      }
    }
    while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
    acc += swap16(sum); // LE word sums are byte-swapped; d is word-aligned here, so even
    const done = nw << 2;
    s += done;
    d += done;
    n -= done;
  }
  for (let k = 0; k < n; k++) {
    const x = u8[s + k]!;
    u8[d + k] = x;
    acc += ((d + k) & 1) === 0 ? x << 8 : x;
  }
  const f = fold(acc);
  return (d0 & 1) === 0 ? f : swap16(f);
}

/**
 * Ones'-complement sum of u8[a, a + n) as BE 16-bit words counted from a, folded to 16 bits. Whole words in a double
 * folded in place (wire/checksum.ts sumBytes hands its double to a call: one heap number per use).
 */
function sumRange(u8: Uint8Array, w: Uint32Array, a: number, n: number): number {
  const a0 = a;
  let acc = 0; // index form
  while (n > 0 && (a & 3) !== 0) {
    acc += (a & 1) === 0 ? u8[a]! << 8 : u8[a]!;
    a++;
    n--;
  }
  const nw = n >>> 2;
  if (nw > 0) {
    let sum = 0;
    let wi = a >>> 2;
    const wend = wi + nw;
    for (; wi + 4 <= wend; wi += 4) sum += w[wi]! + w[wi + 1]! + w[wi + 2]! + w[wi + 3]!;
    for (; wi < wend; wi++) sum += w[wi]!;
    while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
    acc += swap16(sum);
    a += nw << 2;
    n -= nw << 2;
  }
  for (let k = 0; k < n; k++) acc += ((a + k) & 1) === 0 ? u8[a + k]! << 8 : u8[a + k]!;
  const f = fold(acc);
  return (a0 & 1) === 0 ? f : swap16(f);
}

/** Coalescing state for one switch's external port: open flows of the current batch, and the counters. */
export class Gro {
  /** Segments that went into super-frames (the first of each included), and super-frames built. */
  segments = 0;
  superFrames = 0;

  // per open flow (slot f < open): the head frame's batch index and what later segments are compared with
  private readonly head = new Int32Array(GRO_MAX_FLOWS);
  private readonly vsid = new Int32Array(GRO_MAX_FLOWS);
  private readonly src = new Int32Array(GRO_MAX_FLOWS);
  private readonly dst = new Int32Array(GRO_MAX_FLOWS);
  private readonly ports = new Int32Array(GRO_MAX_FLOWS);
  private readonly count = new Int32Array(GRO_MAX_FLOWS);
  private readonly mss = new Int32Array(GRO_MAX_FLOWS);
  private readonly nextSeq = new Int32Array(GRO_MAX_FLOWS);
  /** IP id mode: 0 undecided (one segment), 1 incrementing, 2 fixed (DF only). */
  private readonly idMode = new Uint8Array(GRO_MAX_FLOWS);
  private readonly psh = new Uint8Array(GRO_MAX_FLOWS);
  /** Head's TCP checksum: 0 not yet checked, 1 good (or trusted), 2 bad. */
  private readonly verified = new Uint8Array(GRO_MAX_FLOWS);
  /** Last byte + 1 the head frame may grow to (its slot end minus tailroom). */
  private readonly limit = new Int32Array(GRO_MAX_FLOWS);
  private open = 0;
  private evict = 0;

  /**
   * Coalesce frames [lo, hi) of b in order. Candidates: m.vsid !== 0 (decapsulated), not dropped or consumed, plain
   * (gsoType NONE), untagged IPv4/TCP classified with l3Off 14. A segment merged into an earlier one gets
   * m.consumed = true (the caller moves it out of the batch); a head that absorbed others becomes a TCPV4 super-frame
   * with NEEDS_CSUM. Everything is flushed before returning. Returns the number of frames merged away.
   */
  run(b: Batch, lo: number, hi: number): number {
    this.open = 0;
    if (b.maxFrame < MIN_SLOT_FRAME || b.slab.byteOffset !== 0) return 0;
    const u8 = b.slab;
    const w = wordView(u8);
    let merged = 0;
    for (let i = lo; i < hi; i++) {
      const m = b.meta[i]!;
      if (m.drop !== null || m.consumed || m.vsid === 0 || m.etherType !== ETHERTYPE_IPV4 || m.l3Off !== ETH_HLEN) continue;
      const o = m.off;
      const end = o + m.len;
      const l3 = o + ETH_HLEN;
      if (m.len < ETH_HLEN + 40 || end > u8.length || u8[l3 + 9] !== IPPROTO_TCP) continue; // not TCP: no flow of ours
      const saddr = rd32(u8, l3 + 12);
      const daddr = rd32(u8, l3 + 16);
      if (u8[l3] !== 0x45 || (u8[l3 + 6]! & 0xbf) !== 0 || u8[l3 + 7] !== 0) {
        // IPv4 options or a fragment: no ports to tell its flow by; whatever runs these addresses have end here
        this.closeAddresses(b, m.vsid, saddr, daddr);
        continue;
      }
      const l4 = l3 + 20;
      const ports = rd32(u8, l4);
      const f = this.find(m.vsid, saddr, daddr, ports);
      // -- is it a candidate at all? anything else of the flow ends the flow's run, unmerged
      const tot = rd16(u8, l3 + 2);
      const thl = (u8[l4 + 12]! >>> 4) * 4;
      const flags = u8[l4 + 13]!;
      const payLen = tot - 20 - thl;
      let trusted = m.dataValid;
      if (m.needsCsum) trusted = m.csumStart === ETH_HLEN + 20 && m.csumOffset === 16;
      if (
        l3 + tot !== end || // Ethernet padding (a tiny segment) or a short frame
        thl < 20 ||
        payLen <= 0 ||
        (u8[l4 + 12]! & 0x0f) !== 0 || // reserved bits / AE
        (flags & ~TCP_PSH) !== TCP_ACK ||
        m.gsoType !== GSO_NONE ||
        (m.needsCsum && !trusted) ||
        m.vlan !== 0 ||
        fold(sumBytes(u8, l3, 20)) !== 0xffff
      ) {
        if (f >= 0) this.close(b, f);
        continue;
      }
      if (f >= 0) {
        const r = this.merge(b, w, f, m, thl, payLen, flags, trusted);
        if (r === 1) {
          merged++;
          continue;
        }
        if (r === 0) continue; // a bad checksum: passes through unmerged, heads nobody
        // r === -1: the flow's run ended before this segment; it may start the next one
      }
      if ((flags & TCP_PSH) !== 0) continue; // would end its own run at once
      const ss = b.slotSize;
      const lim = (Math.floor(o / ss) + 1) * ss - TAILROOM;
      if (end + payLen > lim) continue; // no room for a second segment
      const g = this.slotFor(b);
      this.head[g] = i;
      this.vsid[g] = m.vsid;
      this.src[g] = saddr;
      this.dst[g] = daddr;
      this.ports[g] = ports;
      this.count[g] = 1;
      this.mss[g] = payLen;
      this.nextSeq[g] = (rd32(u8, l4 + 4) + payLen) | 0;
      this.idMode[g] = 0;
      this.psh[g] = 0;
      this.verified[g] = trusted ? 1 : 0;
      this.limit[g] = lim;
    }
    this.flush(b);
    return merged;
  }

  /** Close every open flow (the end of a batch). */
  flush(b: Batch): void {
    while (this.open > 0) this.close(b, this.open - 1);
  }

  private find(vsid: number, saddr: number, daddr: number, ports: number): number {
    for (let f = 0; f < this.open; f++) {
      if (this.ports[f] === ports && this.src[f] === saddr && this.dst[f] === daddr && this.vsid[f] === vsid) return f;
    }
    return -1;
  }

  private closeAddresses(b: Batch, vsid: number, saddr: number, daddr: number): void {
    for (let f = this.open - 1; f >= 0; f--) {
      if (this.src[f] === saddr && this.dst[f] === daddr && this.vsid[f] === vsid) this.close(b, f);
    }
  }

  /** A free flow slot: the next one, or the oldest-opened flushed to make room. */
  private slotFor(b: Batch): number {
    if (this.open < GRO_MAX_FLOWS) return this.open++;
    const g = this.evict;
    this.evict = (g + 1) % GRO_MAX_FLOWS;
    this.finish(b, g);
    return g;
  }

  /** Finish flow f and remove it from the open list (the last open flow moves into its place). */
  private close(b: Batch, f: number): void {
    this.finish(b, f);
    const last = this.open - 1;
    if (f !== last) {
      this.head[f] = this.head[last]!;
      this.vsid[f] = this.vsid[last]!;
      this.src[f] = this.src[last]!;
      this.dst[f] = this.dst[last]!;
      this.ports[f] = this.ports[last]!;
      this.count[f] = this.count[last]!;
      this.mss[f] = this.mss[last]!;
      this.nextSeq[f] = this.nextSeq[last]!;
      this.idMode[f] = this.idMode[last]!;
      this.psh[f] = this.psh[last]!;
      this.verified[f] = this.verified[last]!;
      this.limit[f] = this.limit[last]!;
    }
    this.open = last;
  }

  /**
   * Try to append segment m (a candidate of flow f) to f's head. 1: merged (and f closed if this ended the run);
   * -1: it does not continue the run (f closed; m may head a new one); 0: m's checksum is bad (f closed, i left
   * alone).
   */
  private merge(b: Batch, w: Uint32Array, f: number, m: FrameMeta, thl: number, payLen: number, flags: number, trusted: boolean): number {
    const u8 = b.slab;
    const h = b.meta[this.head[f]!]!;
    const ho = h.off;
    const o = m.off;
    const hl3 = ho + ETH_HLEN;
    const l3 = o + ETH_HLEN;
    const hl4 = hl3 + 20;
    const l4 = l3 + 20;
    const cnt = this.count[f]!;
    let ok =
      payLen <= this.mss[f]! &&
      rd32(u8, l4 + 4) === this.nextSeq[f] &&
      h.len + payLen <= this.limit[f]! - ho &&
      h.len - ETH_HLEN + payLen <= IP_MAX &&
      // MACs, EtherType; TOS; DF; TTL; ACK; data offset, flags (PSH aside) and window
      rd32(u8, o) === rd32(u8, ho) &&
      rd32(u8, o + 4) === rd32(u8, ho + 4) &&
      rd32(u8, o + 8) === rd32(u8, ho + 8) &&
      rd16(u8, o + 12) === rd16(u8, ho + 12) &&
      u8[l3 + 1] === u8[hl3 + 1] &&
      u8[l3 + 6] === u8[hl3 + 6] &&
      u8[l3 + 8] === u8[hl3 + 8] &&
      rd32(u8, l4 + 8) === rd32(u8, hl4 + 8) &&
      u8[l4 + 12] === u8[hl4 + 12] &&
      rd16(u8, l4 + 14) === rd16(u8, hl4 + 14) &&
      h.vlan === m.vlan &&
      h.pcp === m.pcp &&
      l4 + thl + payLen + 4 <= u8.length; // copySum reads the source's last word whole
    if (ok) {
      for (let k = 20; k < thl; k += 4) {
        if (rd32(u8, l4 + k) !== rd32(u8, hl4 + k)) {
          ok = false;
          break;
        }
      }
    }
    let mode = this.idMode[f]!;
    if (ok) {
      const id = rd16(u8, l3 + 4);
      const hid = rd16(u8, hl3 + 4);
      if (mode === 0) {
        if (id === ((hid + 1) & 0xffff)) mode = 1;
        else if (id === hid && (u8[hl3 + 6]! & 0x40) !== 0) mode = 2;
        else ok = false;
      } else if (mode === 1) ok = id === ((hid + cnt) & 0xffff);
      else ok = id === hid;
    }
    if (ok && this.verified[f] === 0) {
      // the head's own checksum, checked once a second segment would hide it
      const hpay = h.len - ETH_HLEN - 20;
      const good = fold(sumRange(u8, w, hl4, hpay) + pseudo(u8, hl3, hpay)) === 0xffff;
      this.verified[f] = good ? 1 : 2;
    }
    if (!ok || this.verified[f] === 2) {
      this.close(b, f);
      return -1;
    }
    // copy the payload behind the head's; an unverified segment's checksum is verified on the way, a trusted one
    // (DATA_VALID or CHECKSUM_PARTIAL) is moved by memmove, several times faster than the word loop
    if (trusted) u8.copyWithin(ho + h.len, l4 + thl, l4 + thl + payLen);
    else {
      const paySum = copySum(u8, w, l4 + thl, ho + h.len, payLen);
      const s = fold(paySum + fold(sumBytes(u8, l4, thl)) + pseudo(u8, l3, thl + payLen));
      if (s !== 0xffff) {
        this.close(b, f);
        return 0;
      }
    }
    h.len += payLen;
    this.count[f] = cnt + 1;
    this.idMode[f] = mode;
    this.nextSeq[f] = (this.nextSeq[f]! + payLen) | 0;
    m.consumed = true;
    if ((flags & TCP_PSH) !== 0) this.psh[f] = 1;
    if (payLen < this.mss[f]! || (flags & TCP_PSH) !== 0) this.close(b, f);
    return 1;
  }

  /** Turn flow f's head into a super-frame if it absorbed anything. */
  private finish(b: Batch, f: number): void {
    const cnt = this.count[f]!;
    if (cnt < 2) return;
    const u8 = b.slab;
    const h = b.meta[this.head[f]!]!;
    const l3 = h.off + ETH_HLEN;
    const l4 = l3 + 20;
    const thl = (u8[l4 + 12]! >>> 4) * 4;
    const tot = h.len - ETH_HLEN;
    u8[l3 + 2] = tot >>> 8;
    u8[l3 + 3] = tot & 0xff;
    u8[l3 + 10] = 0;
    u8[l3 + 11] = 0;
    const ic = ~fold(sumBytes(u8, l3, 20)) & 0xffff;
    u8[l3 + 10] = ic >>> 8;
    u8[l3 + 11] = ic & 0xff;
    if (this.psh[f] === 1) u8[l4 + 13] = u8[l4 + 13]! | TCP_PSH;
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, the receiver's stack (or segmentFrame) the rest
    const ps = fold(pseudo(u8, l3, tot - 20));
    u8[l4 + 16] = ps >>> 8;
    u8[l4 + 17] = ps & 0xff;
    h.gsoType = GSO_TCPV4;
    h.gsoSize = this.mss[f]!;
    h.hdrLen = ETH_HLEN + 20 + thl;
    h.needsCsum = true;
    h.csumStart = ETH_HLEN + 20;
    h.csumOffset = 16;
    h.dataValid = false;
    this.superFrames++;
    this.segments += cnt;
    this.count[f] = 1;
  }
}

/** IPv4 TCP pseudo-header sum (unfolded, small) for the header at l3 and an L4 length. */
function pseudo(u8: Uint8Array, l3: number, l4len: number): number {
  return rd16(u8, l3 + 12) + rd16(u8, l3 + 14) + rd16(u8, l3 + 16) + rd16(u8, l3 + 18) + IPPROTO_TCP + l4len;
}
