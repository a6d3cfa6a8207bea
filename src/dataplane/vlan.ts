// dataplane/vlan.ts: port VLAN policy (access / trunk / none), ingress classification of one frame (tag moved
// out of band, in place) and the egress tag push/undo done around each send.
//
// Mode 'none' is VLAN-unaware pass-through: untagged frames are VLAN 0; a tagged frame keeps its VID (any VID:
// a trunk of every VLAN with native VLAN 0), and the tag is put back on egress to 'none' and trunk ports.

import { checkArp } from '../wire/arp.js';
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD, ETHERTYPE_VLAN, VLAN_HLEN, isMulticastMac, readMac } from '../wire/ethernet.js';
import { checkIpv4 } from '../wire/ipv4.js';
import { checkIpv6 } from '../wire/ipv6.js';
import type { DropReason } from './drop.js';
import { DEST_PRESERVE_PRIORITY, DEST_PRESERVE_VLAN, GSO_NONE, type Batch, type FrameMeta } from './frame.js';
import { assertNever } from './types.js';
import type { VlanConfig } from './switch-api.js';

export const VLAN_MODE_NONE = 0;
export const VLAN_MODE_ACCESS = 1;
export const VLAN_MODE_TRUNK = 2;

/** A port's VLAN configuration compiled for the data path. */
export class PortVlan {
  mode = VLAN_MODE_NONE;
  /** Access VLAN (access mode). */
  access = 0;
  /** Native VLAN of a trunk, -1 when untagged frames are not allowed. */
  native = -1;
  /** Trunk membership, one byte per VID (the native VLAN included). */
  readonly allowed = new Uint8Array(4096);

  static from(cfg: VlanConfig): PortVlan {
    const v = new PortVlan();
    switch (cfg.mode) {
      case 'none':
        v.mode = VLAN_MODE_NONE;
        v.allowed.fill(1);
        break;
      case 'access':
        v.mode = VLAN_MODE_ACCESS;
        v.access = cfg.id & 0xfff;
        v.allowed[v.access] = 1;
        break;
      case 'trunk':
        v.mode = VLAN_MODE_TRUNK;
        for (const id of cfg.allowed) if (id >= 1 && id <= 4094) v.allowed[id] = 1;
        if (cfg.native !== undefined && cfg.native >= 1 && cfg.native <= 4094) {
          v.native = cfg.native;
          v.allowed[cfg.native] = 1;
        }
        break;
      case 'private':
        // every port of a private VLAN lives in the primary; src/policy/pvlan.ts separates the secondaries
        v.mode = VLAN_MODE_ACCESS;
        v.access = cfg.primary & 0xfff;
        v.allowed[v.access] = 1;
        break;
      default:
        return assertNever(cfg);
    }
    return v;
  }

  /** Does this port carry frames of `vlan` (0 = untagged domain)? */
  member(vlan: number): boolean {
    switch (this.mode) {
      case VLAN_MODE_ACCESS:
        return vlan === this.access;
      case VLAN_MODE_TRUNK:
        return vlan !== 0 && this.allowed[vlan] === 1;
      default:
        return true;
    }
  }
}

/** What a port admits at ingress (the subset of PortState classify needs). */
export interface IngressPort {
  readonly vlan: PortVlan;
  readonly vsid: number;
  readonly up: boolean;
  /** Longest frame without GSO, tag removed (mtu + 14). */
  readonly maxFrameLen: number;
}

/**
 * Classify frame meta `m` (off/len set by the back end) arriving on `port`: parse MACs and EtherType, move an
 * 802.1Q tag out of band (the 12 MAC bytes shift forward 4, meta.off += 4), apply the port's VLAN mode, set
 * vsid. Returns the drop reason, or null. Allocates nothing; never throws.
 */
export function classifyIngress(slab: Uint8Array, m: FrameMeta, port: IngressPort): DropReason | null {
  if (!port.up) return 'port-down-rx';
  if (m.len < ETH_HLEN) return 'runt';
  let off = m.off;
  let type = (slab[off + 12]! << 8) | slab[off + 13]!;
  let tagged = false;
  let vid = 0;
  let pcp = 0;
  if (type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) return 'qinq-not-allowed';
  if (type === ETHERTYPE_VLAN) {
    if (m.len < ETH_HLEN + VLAN_HLEN) return 'truncated';
    const tci = (slab[off + 14]! << 8) | slab[off + 15]!;
    const inner = (slab[off + 16]! << 8) | slab[off + 17]!;
    if (inner === ETHERTYPE_VLAN || inner === ETHERTYPE_QINQ || inner === ETHERTYPE_QINQ_OLD) return 'qinq-not-allowed';
    tagged = true;
    vid = tci & 0xfff;
    pcp = tci >>> 13;
    type = inner;
    // strip in place: the MACs move forward over the tag
    slab.copyWithin(off + VLAN_HLEN, off, off + 12);
    off += VLAN_HLEN;
    m.off = off;
    m.len -= VLAN_HLEN;
    if (m.needsCsum && m.csumStart >= VLAN_HLEN) m.csumStart -= VLAN_HLEN;
    if (m.gsoType !== GSO_NONE && m.hdrLen >= VLAN_HLEN) m.hdrLen -= VLAN_HLEN;
  }
  m.dstMac = readMac(slab, off);
  m.srcMac = readMac(slab, off + 6);
  m.etherType = type;
  m.l3Off = ETH_HLEN;
  const l3Error = checkL3(slab, off + ETH_HLEN, m.len - ETH_HLEN, type, m.gsoType !== GSO_NONE);
  if (l3Error !== null) return l3Error;
  if (m.srcMac === 0 || isMulticastMac(m.srcMac)) return 'bad-src-mac';
  const pv = port.vlan;
  switch (pv.mode) {
    case VLAN_MODE_ACCESS:
      if (tagged && vid !== 0) return 'vlan-tagged-on-access';
      m.vlan = pv.access;
      m.pcp = pcp; // 0 when untagged; a priority tag (VID 0) keeps its PCP
      break;
    case VLAN_MODE_TRUNK:
      if (tagged && vid !== 0) {
        if (pv.allowed[vid] !== 1) return 'vlan-not-allowed';
        m.vlan = vid;
      } else {
        if (pv.native < 0) return 'vlan-not-allowed';
        m.vlan = pv.native;
      }
      m.pcp = pcp;
      break;
    default:
      // a port in a virtual subnet carries untagged frames only: the VSID, not a VLAN, isolates its tenant
      if (port.vsid !== 0 && tagged && vid !== 0) return 'vlan-tagged-on-vsid-port';
      if (vid === 0xfff) return 'vlan-not-allowed'; // reserved VID
      m.vlan = vid;
      m.pcp = pcp;
      break;
  }
  m.vsid = port.vsid;
  if (m.gsoType === GSO_NONE && m.len > port.maxFrameLen) return 'oversize';
  return null;
}

/**
 * The one L3 check a switch owes its ports: a frame whose ARP/IPv4/IPv6 header cannot be what its EtherType says
 * (cut short, wrong version, IHL < 5, a total length beyond the frame) is refused at the edge, so no later stage
 * (policy, virtualization, extensions) sees an inconsistent header. Checksums are not verified. A GSO
 * super-frame's headers are checked by the offload code instead.
 */
function checkL3(slab: Uint8Array, l3: number, avail: number, type: number, gso: boolean): DropReason | null {
  if (gso) return null;
  const e =
    type === ETHERTYPE_IPV4 ? checkIpv4(slab, l3, avail)
    : type === ETHERTYPE_IPV6 ? checkIpv6(slab, l3, avail)
    : type === ETHERTYPE_ARP ? checkArp(slab, l3, avail)
    : null;
  if (e === null) return null;
  return e.reason.startsWith('truncated') || e.reason.includes('beyond the buffer') ? 'truncated' : 'bad-l3-header';
}

/** What tag, if any, a frame of (vlan, pcp) carries when sent to a port: -1 = none, else the TCI. */
export function egressTci(pv: PortVlan, vlan: number, pcp: number, destFlags: number): number {
  const prio = (pcp & 7) << 13;
  if ((destFlags & DEST_PRESERVE_VLAN) !== 0) return vlan !== 0 ? prio | vlan : pcp !== 0 && (destFlags & DEST_PRESERVE_PRIORITY) !== 0 ? prio : -1;
  const keepPrio = (destFlags & DEST_PRESERVE_PRIORITY) !== 0 && pcp !== 0;
  switch (pv.mode) {
    case VLAN_MODE_ACCESS:
      return keepPrio ? prio : -1;
    case VLAN_MODE_TRUNK:
      if (vlan === pv.native || vlan === 0) return keepPrio ? prio : -1;
      return prio | vlan;
    default:
      return vlan !== 0 ? prio | vlan : keepPrio ? prio : -1;
  }
}

/** Push an 802.1Q tag with `tci` in front of frame i's EtherType, in headroom (MACs shift back 4). */
export function pushTag(b: Batch, m: FrameMeta, tci: number): void {
  const slab = b.slab;
  const off = m.off - VLAN_HLEN;
  slab.copyWithin(off, m.off, m.off + 12);
  slab[off + 12] = ETHERTYPE_VLAN >>> 8;
  slab[off + 13] = ETHERTYPE_VLAN & 0xff;
  slab[off + 14] = tci >>> 8;
  slab[off + 15] = tci & 0xff;
  m.off = off;
  m.len += VLAN_HLEN;
  if (m.needsCsum) m.csumStart += VLAN_HLEN;
  if (m.gsoType !== GSO_NONE) m.hdrLen += VLAN_HLEN;
}

/** Undo pushTag: the MACs move forward over the tag, so the next destination sees the untagged frame. */
export function popTag(b: Batch, m: FrameMeta): void {
  const off = m.off + VLAN_HLEN;
  b.slab.copyWithin(off, m.off, m.off + 12);
  m.off = off;
  m.len -= VLAN_HLEN;
  if (m.needsCsum) m.csumStart -= VLAN_HLEN;
  if (m.gsoType !== GSO_NONE) m.hdrLen -= VLAN_HLEN;
}
