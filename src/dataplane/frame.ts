// dataplane/frame.ts: frames as offsets into a preallocated slab, with out-of-band metadata beside them
// (the Windows switch's forwarding context). Everything here is built once and reset per batch.

import type { DropReason } from './drop.js';
import { NO_PORT, type PortId } from './types.js';

/** Bytes free before every frame: room to push a VLAN tag (4), a virtio-net header (12), NVGRE (42), VXLAN (50). */
export const HEADROOM = 128;
/** Bytes free after every frame (a pushed tag or padding never runs into the next slot). */
export const TAILROOM = 64;

/** Destination flags, per destination (NDIS_SWITCH_PORT_DESTINATION). */
export const DEST_EXCLUDED = 1;
export const DEST_PRESERVE_VLAN = 2;
export const DEST_PRESERVE_PRIORITY = 4;

/** The destination list of one frame. Grows (rarely, on a larger switch) but never shrinks. */
export class DestList {
  ports: Int32Array;
  flags: Uint8Array;
  count = 0;
  constructor(capacity = 16) {
    this.ports = new Int32Array(capacity);
    this.flags = new Uint8Array(capacity);
  }
  clear(): void {
    this.count = 0;
  }
  add(port: PortId, flags = 0): void {
    if (this.count === this.ports.length) this.grow();
    this.ports[this.count] = port;
    this.flags[this.count] = flags;
    this.count++;
  }
  only(port: PortId): void {
    this.count = 0;
    this.add(port);
  }
  port(i: number): PortId {
    return this.ports[i]! as PortId;
  }
  excluded(i: number): boolean {
    return (this.flags[i]! & DEST_EXCLUDED) !== 0;
  }
  /** Exclude the destination at index i (an egress extension's way to drop one copy of a flood). */
  exclude(i: number): void {
    this.flags[i] = this.flags[i]! | DEST_EXCLUDED;
  }
  /** Exclude a destination by port id; returns false if the port is not a destination. */
  excludePort(port: PortId): boolean {
    for (let i = 0; i < this.count; i++) {
      if (this.ports[i] === port) {
        this.exclude(i);
        return true;
      }
    }
    return false;
  }
  /** Destinations not excluded. */
  live(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) if ((this.flags[i]! & DEST_EXCLUDED) === 0) n++;
    return n;
  }
  copyFrom(o: DestList): void {
    this.count = 0;
    for (let i = 0; i < o.count; i++) this.add(o.ports[i]! as PortId, o.flags[i]!);
  }
  private grow(): void {
    const p = new Int32Array(this.ports.length * 2);
    p.set(this.ports);
    const f = new Uint8Array(this.flags.length * 2);
    f.set(this.flags);
    this.ports = p;
    this.flags = f;
  }
}

/** virtio_net_hdr gso types (linux/virtio_net.h). */
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_UDP = 3;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const GSO_ECN = 0x80;
/** virtio_net_hdr_v1_hash_tunnel gso_type bits (kernel 6.18): the frame is a UDP tunnel (outer IPv4 / IPv6) whose
 *  inner TCP (or UDP L4) packet is the GSO payload; only a TAP with a 24-byte header and TUN_F_UDP_TUNNEL_GSO
 *  takes it (DESIGN §5). */
export const GSO_UDP_TUNNEL_IPV4 = 0x20;
export const GSO_UDP_TUNNEL_IPV6 = 0x40;
export const GSO_UDP_TUNNEL = GSO_UDP_TUNNEL_IPV4 | GSO_UDP_TUNNEL_IPV6;

/** Out-of-band metadata of one frame. Every field is set in reset(); nothing is added later (stable shape). */
export class FrameMeta {
  /**
   * Offset of the Ethernet header in the batch slab. Back ends deliver an 802.1Q tag inline; ingress
   * classification moves it out of band (vlan, pcp), so from the pipeline on the frame bytes are untagged.
   */
  off = 0;
  /** Bytes of the frame from off. */
  len = 0;
  inPort: PortId = NO_PORT;
  /** VLAN the frame belongs to inside the switch (0 = untagged / none), and its 802.1p priority. */
  vlan = 0;
  pcp = 0;
  /** Virtual subnet (0 = none). */
  vsid = 0;
  /** Parsed once at ingress: 48-bit MACs as numbers, EtherType after any tag, offset of the L3 header. */
  dstMac = 0;
  srcMac = 0;
  /**
   * The MACs as the sender sent them, when the distributed router rewrote dstMac/srcMac (virtualization layer);
   * -1 when not routed. The sending port's out-direction ACLs judge the frame as it left the VM.
   */
  sentDstMac = -1;
  sentSrcMac = -1;
  etherType = 0;
  l3Off = 0;
  /** Originated by an extension (not received on a port); cloned from another frame. */
  originated = false;
  cloned = false;
  /** Originated "as the switch": trusted, bypasses built-in port policy. */
  trusted = false;
  /** Originated "on behalf of" this port: gets that port's policies (NO_PORT otherwise). */
  onBehalfOf: PortId = NO_PORT;
  drop: DropReason | null = null;
  /**
   * Handled by the switch itself, not forwarded as received: an ARP request answered in place (then it has the
   * reply's destination), an underlay ARP learned (no destination). Counted as consumed, not dropped.
   */
  consumed = false;
  /** Name of the extension that dropped it (for counters / trace), or '' */
  dropBy = '';
  readonly dest = new DestList();
  /** Offload state from the virtio-net header (TAP IFF_VNET_HDR, AF_PACKET PACKET_VNET_HDR). */
  gsoType = GSO_NONE;
  gsoSize = 0;
  hdrLen = 0;
  /** Checksum still to be filled (VIRTIO_NET_HDR_F_NEEDS_CSUM): at off + csumStart, store at + csumOffset. */
  needsCsum = false;
  csumStart = 0;
  csumOffset = 0;
  /** Checksum already verified by the sender (VIRTIO_NET_HDR_F_DATA_VALID). */
  dataValid = false;
  /** UDP tunnel GSO (gsoType & GSO_UDP_TUNNEL): the outer UDP header and the inner IP header, from off. */
  outerThOff = 0;
  innerNhOff = 0;

  reset(): void {
    this.off = 0;
    this.len = 0;
    this.inPort = NO_PORT;
    this.vlan = 0;
    this.pcp = 0;
    this.vsid = 0;
    this.dstMac = 0;
    this.srcMac = 0;
    this.sentDstMac = -1;
    this.sentSrcMac = -1;
    this.etherType = 0;
    this.l3Off = 0;
    this.originated = false;
    this.cloned = false;
    this.trusted = false;
    this.onBehalfOf = NO_PORT;
    this.drop = null;
    this.consumed = false;
    this.dropBy = '';
    this.dest.clear();
    this.clearOffload();
    this.outerThOff = 0;
    this.innerNhOff = 0;
  }

  /** The frame is plain and complete: no GSO, no checksum left to fill, nothing validated by a NIC. */
  clearOffload(): void {
    this.gsoType = GSO_NONE;
    this.gsoSize = 0;
    this.hdrLen = 0;
    this.needsCsum = false;
    this.csumStart = 0;
    this.csumOffset = 0;
    this.dataValid = false;
  }

  /** Copy everything but the destination list's identity (used by clone). */
  copyFrom(o: FrameMeta): void {
    this.off = o.off;
    this.len = o.len;
    this.inPort = o.inPort;
    this.vlan = o.vlan;
    this.pcp = o.pcp;
    this.vsid = o.vsid;
    this.dstMac = o.dstMac;
    this.srcMac = o.srcMac;
    this.etherType = o.etherType;
    this.l3Off = o.l3Off;
    this.originated = o.originated;
    this.cloned = o.cloned;
    this.trusted = o.trusted;
    this.onBehalfOf = o.onBehalfOf;
    this.drop = o.drop;
    this.consumed = o.consumed;
    this.dropBy = o.dropBy;
    this.dest.copyFrom(o.dest);
    this.gsoType = o.gsoType;
    this.gsoSize = o.gsoSize;
    this.hdrLen = o.hdrLen;
    this.needsCsum = o.needsCsum;
    this.csumStart = o.csumStart;
    this.csumOffset = o.csumOffset;
    this.dataValid = o.dataValid;
    this.outerThOff = o.outerThOff;
    this.innerNhOff = o.innerNhOff;
  }
}

/**
 * A batch: `capacity` slots of `slotSize` bytes in one slab. Frame i lives in slot i at meta[i].off
 * (initially slotStart(i) + HEADROOM). Port back ends fill it; the pipeline walks it; tx reads it.
 */
export class Batch {
  readonly slab: Uint8Array;
  readonly dv: DataView;
  readonly meta: FrameMeta[];
  /** Frames in use, 0..capacity. */
  count = 0;
  /** Per-slot offsets/lengths for the native layer (filled by the back end; meta.off/len are authoritative). */
  readonly offs: Uint32Array;
  readonly lens: Uint32Array;

  constructor(
    readonly capacity: number,
    readonly slotSize: number,
  ) {
    const buf = new ArrayBuffer(capacity * slotSize);
    this.slab = new Uint8Array(buf);
    this.dv = new DataView(buf);
    this.meta = [];
    for (let i = 0; i < capacity; i++) this.meta.push(new FrameMeta());
    this.offs = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
  }

  slotStart(i: number): number {
    return i * this.slotSize;
  }
  /** Largest frame a slot holds after headroom and tailroom. */
  get maxFrame(): number {
    return this.slotSize - HEADROOM - TAILROOM;
  }
  /** Empty the batch (metadata reset lazily by whoever fills a slot). */
  clear(): void {
    this.count = 0;
  }
}

/** Slot size for frames up to maxFrameBytes (virtio-net header included). */
export function slotSizeFor(maxFrameBytes: number): number {
  return HEADROOM + maxFrameBytes + TAILROOM;
}
