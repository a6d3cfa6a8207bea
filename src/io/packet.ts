// io/packet.ts: the AF_PACKET port back end (uplink NIC, veth ports). The kernel always moves a received 802.1Q tag
// into PACKET_AUXDATA; it is re-inserted inline here so the switch sees frames as they were on the wire.
//
// The socket always carries the virtio-net header (PACKET_VNET_HDR), whatever the port's offload setting. Unlike a
// TAP, an AF_PACKET socket cannot tell the device what it accepts: a veth peer or a NIC with GRO hands it GSO
// super-frames and partial checksums either way. Without the header those arrive with nothing to say so: a super-frame
// is cut (an oversize drop) and a partial checksum is forwarded as it stands, wrong (TCP never connects). With it
// the switch sees both and handles them like a TAP's. `offload: false` then only means that what the switch sends
// to the port is plain: segmented and checksummed in software, with an all-zero header.

import type { Batch, FrameMeta } from '../dataplane/frame.js';
import type { PortBackend } from './backend.js';
import {
  FdPort,
  MAX_FRAME_OFFLOAD,
  PACKET_VNET_HDR_LEN,
  errnoName,
  loadNative,
  type XsNet,
} from './native.js';

const TAG_LEN = 4;

/** Ring size when opts.ring is set: about 4 MB per direction. */
const RING_FRAMES = 64;

export class PacketPort extends FdPort implements PortBackend {
  readonly kind = 'packet' as const;

  constructor(
    nat: XsNet,
    fd: number,
    name: string,
    offload: boolean,
    /** Moving frames through TPACKET_V2 rings rather than recvmmsg/sendmmsg. */
    readonly ring: boolean,
  ) {
    super(nat, fd, name, offload, PACKET_VNET_HDR_LEN);
  }

  /** Re-insert the auxdata tag: MACs move 4 bytes back into headroom, TPID + TCI go after them. */
  protected fixup(batch: Batch, m: FrameMeta, tci: number): void {
    if (tci === -1) return;
    const u8 = batch.slab;
    const o = m.off;
    u8.copyWithin(o - TAG_LEN, o, o + 12);
    const tpid = tci >>> 16 || 0x8100;
    u8[o + 8] = tpid >>> 8;
    u8[o + 9] = tpid & 0xff;
    u8[o + 10] = (tci >>> 8) & 0xff;
    u8[o + 11] = tci & 0xff;
    m.off = o - TAG_LEN;
    m.len += TAG_LEN;
    // Offsets in the virtio-net header count from the untagged frame.
    if (m.needsCsum) m.csumStart += TAG_LEN;
    if (m.hdrLen !== 0) m.hdrLen += TAG_LEN;
  }
}

/**
 * Open an AF_PACKET port on `ifname` in the caller's network namespace (promiscuous, own tx not echoed), always with
 * PACKET_VNET_HDR (10-byte header, see the top of this file): plain TCP GSO and partial checksums pass; the kernel
 * refuses encapsulated GSO on send (DESIGN §5). With offload the switch may send super-frames and partial checksums
 * to the port; without, it sends plain frames. With ring, frames move through TPACKET_V2 rings (fewer syscalls; a
 * send error after a frame entered the ring is not reported back).
 */
export function openPacketPort(
  ifname: string,
  opts: { offload: boolean; ring?: boolean },
): PacketPort | { error: string } {
  const nat = loadNative();
  if ('error' in nat) return nat;
  if (ifname.length === 0 || ifname.length > 15) return { error: `interface "${ifname}": 1 to 15 characters` };
  const ring = opts.ring === true;
  const fd = ring ? nat.openPacket(ifname, true, RING_FRAMES, MAX_FRAME_OFFLOAD) : nat.openPacket(ifname, true);
  if (fd < 0) return { error: `packet ${ifname}: ${errnoName(fd)}` };
  return new PacketPort(nat, fd, ifname, opts.offload, ring);
}
