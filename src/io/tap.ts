// io/tap.ts: the TAP port back end (VM ports): a /dev/net/tun fd, with IFF_VNET_HDR when offload is on so 64 KB
// TCP super-frames and partial checksums pass through both ways. Tags stay inline: nothing to re-insert.

import type { Batch, FrameMeta } from '../dataplane/frame.js';
import type { PortBackend } from './backend.js';
import { FdPort, TAP_VNET_HDR_LEN, TAP_VNET_TNL_HDR_LEN, errnoName, loadNative, type XsNet } from './native.js';

export class TapPort extends FdPort implements PortBackend {
  readonly kind = 'tap' as const;

  /** tunnelGso: 24-byte headers (UDP tunnel offsets) on a TAP opened with TUN_F_UDP_TUNNEL_GSO. */
  constructor(nat: XsNet, fd: number, name: string, offload: boolean, readonly tunnelGso = false) {
    super(nat, fd, name, offload, !offload ? 0 : tunnelGso ? TAP_VNET_TNL_HDR_LEN : TAP_VNET_HDR_LEN);
  }

  protected fixup(_batch: Batch, _m: FrameMeta, _tci: number): void {
    // A TAP delivers 802.1Q tags inline.
  }
}

/**
 * Create (or attach to) TAP device `name` (at most 15 characters; "xs%d" lets the kernel number it) in the caller's
 * network namespace. The device exists while the port is open; moving it to another namespace keeps it attached.
 * With offload, the port reads and writes 12-byte virtio-net headers (TSO4/6, ECN, checksum offload); with
 * tunnelGso (implies offload) 24-byte headers and TUN_F_UDP_TUNNEL_GSO, so UDP-tunnel super-frames (VXLAN) written
 * to it are segmented by the kernel, or by a NIC with tunnel TSO, wherever they leave (DESIGN §5).
 */
export function openTapPort(name: string, opts: { offload: boolean; tunnelGso?: boolean }): TapPort | { error: string } {
  const nat = loadNative();
  if ('error' in nat) return nat;
  if (name.length === 0 || name.length > 15) return { error: `tap name "${name}": 1 to 15 characters` };
  const tunnel = opts.tunnelGso === true;
  const offload = opts.offload || tunnel;
  const fd = tunnel ? nat.openTap(name, true, TAP_VNET_TNL_HDR_LEN, true) : nat.openTap(name, offload);
  if (fd < 0) return { error: `tap ${name}: ${errnoName(fd)}${tunnel && fd === -22 ? ' (no UDP tunnel GSO on this kernel: 6.18 or later)' : ''}` };
  const real = nat.tapName(fd);
  return new TapPort(nat, fd, typeof real === 'string' ? real : name, offload, tunnel);
}
