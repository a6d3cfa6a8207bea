// io/tap.ts: the TAP port back end (VM ports): a /dev/net/tun fd, with IFF_VNET_HDR when offload is on so 64 KB
// TCP super-frames and partial checksums pass through both ways. Tags stay inline: nothing to re-insert.

import type { Batch, FrameMeta } from '../dataplane/frame.js';
import type { PortBackend } from './backend.js';
import { FdPort, TAP_VNET_HDR_LEN, TAP_VNET_TNL_HDR_LEN, errnoName, loadNative, type LinkKind, type XsNet } from './native.js';
import type { NetnsRef } from './netns.js';

export class TapPort extends FdPort implements PortBackend {
  readonly kind = 'tap' as const;

  /**
   * tunnelGso: 24-byte headers (UDP tunnel offsets) on a TAP opened with TUN_F_UDP_TUNNEL_GSO. persistent: the
   * device outlives the fd (close() makes it non-persistent first, detach() leaves it). adopted: where the device
   * already was when it was attached to (undefined: this open created it).
   */
  constructor(
    nat: XsNet, fd: number, name: string, offload: boolean, readonly tunnelGso = false,
    readonly persistent = false, readonly adopted?: string,
  ) {
    super(nat, fd, name, offload, !offload ? 0 : tunnelGso ? TAP_VNET_TNL_HDR_LEN : TAP_VNET_HDR_LEN);
  }

  protected fixup(_batch: Batch, _m: FrameMeta, _tci: number): void {
    // A TAP delivers 802.1Q tags inline.
  }

  /** Close and delete the device (a persistent one is made non-persistent first), wherever it is now. */
  override close(): void {
    if (this.persistent && this.fd >= 0) this.nat.tapSetPersist(this.fd, false);
    super.close();
  }

  /** Close but leave the device: a persistent TAP stays (in the VM's namespace) for the next open by name. */
  detach(): void {
    super.close();
  }
}

const ENODEV = 19;
const EINVAL = 22;
const EBUSY = 16;

const isTap = (k: LinkKind): boolean => k.driver === 'tun' && k.bus === 'tap';
const kindText = (k: LinkKind): string => (k.driver === 'tun' ? (k.bus === 'tun' ? 'a TUN device' : 'a tun-driver device') : k.driver !== '' ? `a ${k.driver} device` : 'a device');

export interface TapOpenOptions {
  readonly offload: boolean;
  /** 24-byte headers and TUN_F_UDP_TUNNEL_GSO (implies offload). */
  readonly tunnelGso?: boolean;
  /** TUNSETPERSIST: the device survives the fd and the process (xswitchd's VM ports only; default off, so tests and
   * helpers that open TAPs leave nothing behind). Ignored for a name pattern ("xs%d"). */
  readonly persist?: boolean;
  /** Where to look for an existing TAP of this name when the caller's namespace has none (after a restart: the VM
   * namespaces a hypervisor moved the persistent TAPs to); called at most once per open. A TAP there that another
   * fd holds (it has a carrier) is left alone. Absent: create here. */
  readonly netns?: () => readonly NetnsRef[];
}

/** Which namespace to attach in: undefined (the caller's: create or attach), a NetnsRef, or an error. */
function locate(nat: XsNet, name: string, netns: (() => readonly NetnsRef[]) | undefined): { at?: NetnsRef; adopted?: string } | { error: string } {
  const own = nat.linkKind(name);
  if (typeof own !== 'number') {
    if (!isTap(own)) return { error: `tap ${name}: the name is taken by ${kindText(own)} in xswitchd's network namespace, not a TAP` };
    return { adopted: "xswitchd's network namespace" };
  }
  if (own !== -ENODEV) return { error: `tap ${name}: ${errnoName(own)}` };
  if (netns === undefined) return {};
  const taps: NetnsRef[] = [];
  const others: string[] = [];
  for (const ns of netns()) {
    const k = nat.linkKind(name, ns.path);
    if (typeof k === 'number') continue; // not there, or the namespace went away meanwhile
    // A TAP with a carrier has an fd attached: someone else's port right now (another xswitchd on this machine, a
    // hypervisor's own), not one a dead daemon left.
    if (isTap(k)) {
      if (!k.link) taps.push(ns);
    } else others.push(`${kindText(k)} in ${ns.label}`);
  }
  if (taps.length > 1) return { error: `tap ${name}: TAPs of that name are in ${taps.length} network namespaces (${taps.map((t) => t.label).join(', ')}); which one is the port's is unclear` };
  const at = taps[0];
  if (at !== undefined) return { at, adopted: at.label };
  if (others.length > 0) return { error: `tap ${name}: the name is taken by ${others.join(', ')}, not a TAP` };
  return {};
}

/**
 * Create (or attach to) TAP device `name` (at most 15 characters; "xs%d" lets the kernel number it). An existing
 * TAP of that name in the caller's network namespace is attached to; without one, with opts.netns, a TAP of that
 * name in another namespace is (entered on this thread for the open only); else a new one is made here. A device of
 * that name that is not a TAP is an error. Not persistent, the device exists while the port is open (moving it to
 * another namespace keeps it attached). With offload, the port reads and writes 12-byte virtio-net headers (TSO4/6,
 * ECN, checksum offload); with tunnelGso (implies offload) 24-byte headers and TUN_F_UDP_TUNNEL_GSO, so UDP-tunnel
 * super-frames (VXLAN) written to it are segmented by the kernel, or by a NIC with tunnel TSO, wherever they leave
 * (DESIGN §5). Offloads and header size are set again on an attached device.
 */
export function openTapPort(name: string, opts: TapOpenOptions): TapPort | { error: string } {
  const nat = loadNative();
  if ('error' in nat) return nat;
  if (name.length === 0 || name.length > 15) return { error: `tap name "${name}": 1 to 15 characters` };
  const tunnel = opts.tunnelGso === true;
  const offload = opts.offload || tunnel;
  // A pattern ("xs%d") cannot be found again by name after a restart: persistent, each start would leak one more.
  const pattern = name.includes('%');
  const persist = opts.persist === true && !pattern;
  const where = pattern ? {} : locate(nat, name, opts.netns);
  if ('error' in where) return where;
  const fd = nat.openTap(name, offload, tunnel ? TAP_VNET_TNL_HDR_LEN : TAP_VNET_HDR_LEN, tunnel, persist, where.at?.path);
  if (fd < 0) {
    const at = where.adopted !== undefined ? ` (the existing TAP in ${where.adopted})` : '';
    let why = errnoName(fd);
    if (fd === -EBUSY) why += ': another process holds it (a second xswitchd, or a hypervisor attached to it)';
    else if (fd === -EINVAL && where.adopted !== undefined) why += ': not a TAP these flags can attach to (a multiqueue TAP?)';
    else if (fd === -EINVAL && tunnel) why += ' (no UDP tunnel GSO on this kernel: 6.18 or later)';
    else if (fd === -ENODEV && where.at !== undefined) why += ': it left the namespace while attaching';
    return { error: `tap ${name}${at}: ${why}` };
  }
  const real = nat.tapName(fd);
  return new TapPort(nat, fd, typeof real === 'string' ? real : name, offload, tunnel, persist, where.adopted);
}
