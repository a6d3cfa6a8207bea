// io/tap.ts: the TAP port back end (VM ports): a /dev/net/tun fd, with IFF_VNET_HDR when offload is on so 64 KB
// TCP super-frames and partial checksums pass through both ways. Tags stay inline: nothing to re-insert.

import type { Batch, FrameMeta } from '../dataplane/frame.js';
import type { PortBackend } from './backend.js';
import { FdPort, TAP_VNET_HDR_LEN, errnoName, loadNative, type XsNet } from './native.js';

export class TapPort extends FdPort implements PortBackend {
  readonly kind = 'tap' as const;

  constructor(nat: XsNet, fd: number, name: string, offload: boolean) {
    super(nat, fd, name, offload, offload ? TAP_VNET_HDR_LEN : 0);
  }

  protected fixup(_batch: Batch, _m: FrameMeta, _tci: number): void {
    // A TAP delivers 802.1Q tags inline.
  }
}

/**
 * Create (or attach to) TAP device `name` (at most 15 characters; "xs%d" lets the kernel number it) in the caller's
 * network namespace. The device exists while the port is open; moving it to another namespace keeps it attached.
 * With offload, the port reads and writes 12-byte virtio-net headers (TSO4/6, ECN, checksum offload).
 */
export function openTapPort(name: string, opts: { offload: boolean }): TapPort | { error: string } {
  const nat = loadNative();
  if ('error' in nat) return nat;
  if (name.length === 0 || name.length > 15) return { error: `tap name "${name}": 1 to 15 characters` };
  const fd = nat.openTap(name, opts.offload);
  if (fd < 0) return { error: `tap ${name}: ${errnoName(fd)}` };
  const real = nat.tapName(fd);
  return new TapPort(nat, fd, typeof real === 'string' ? real : name, opts.offload);
}
