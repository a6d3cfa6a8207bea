// control/uplink-bridge.ts: the host side of `uplink.tunnelOffload`: a Linux bridge holding the uplink interface and
// a TAP that only transmits, so VXLAN super-frames written to the TAP reach the interface's driver as UDP-tunnel
// GSO (AF_PACKET refuses encapsulated GSO; DESIGN §5). Made, adopted and removed with `ip` (iproute2).

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { Logger } from '../extensions/api.js';
import type { PortBackend } from '../io/backend.js';
import { openPacketPort } from '../io/packet.js';
import { openTapPort } from '../io/tap.js';
import { TunnelUplink } from '../io/tunnel-uplink.js';

export const TUNNEL_BRIDGE_PREFIX = 'xsbr-';
export const TUNNEL_TAP_PREFIX = 'xstx-';

export interface TunnelNames {
  readonly bridge: string;
  readonly tap: string;
}

/** Deterministic per switch and at most 13 characters: prefix + FNV-1a of the switch name in 8 hex digits. */
export function tunnelNames(switchName: string): TunnelNames {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(switchName, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
  const x = (h >>> 0).toString(16).padStart(8, '0');
  return { bridge: `${TUNNEL_BRIDGE_PREFIX}${x}`, tap: `${TUNNEL_TAP_PREFIX}${x}` };
}

function ip(args: readonly string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err: unknown) {
    const e = err as { stderr?: Buffer; message?: string };
    const detail = e.stderr !== undefined && e.stderr.length > 0 ? e.stderr.toString().trim() : (e.message ?? String(err));
    throw new Error(`ip ${args.join(' ')}: ${detail}`);
  }
}

function tryIp(args: readonly string[]): boolean {
  try {
    ip(args);
    return true;
  } catch {
    return false;
  }
}

/** The interface's master device (bridge, bond...), or null. */
export function masterOf(ifname: string): string | null {
  try {
    return basename(readlinkSync(`/sys/class/net/${ifname}/master`));
  } catch {
    return null;
  }
}

function isBridge(ifname: string): boolean {
  return existsSync(`/sys/class/net/${ifname}/bridge`);
}

function mtuOf(ifname: string): number | null {
  try {
    const m = Number(readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8').trim());
    return Number.isInteger(m) && m >= 68 ? m : null;
  } catch {
    return null;
  }
}

/**
 * An uplink opened without tunnel offload must not stay in a bridge of ours (left by a daemon that stopped
 * uncleanly with the option on, or before it was removed): delete such a bridge, which frees the interface.
 */
export function releaseStaleTunnelBridge(ifname: string, log?: Logger): void {
  const master = masterOf(ifname);
  if (master === null || !master.startsWith(TUNNEL_BRIDGE_PREFIX)) return;
  if (tryIp(['link', 'del', master])) log?.info('stale tunnel-offload bridge removed', { interface: ifname, bridge: master });
}

/** Delete the bridge (the TAP is gone with its fd); the interface leaves it as it was (up, its MTU). */
export function removeTunnelBridge(names: TunnelNames, log?: Logger): void {
  if (isBridge(names.bridge) && tryIp(['link', 'del', names.bridge])) log?.info('tunnel-offload bridge removed', { bridge: names.bridge });
}

/**
 * Open the uplink on `ifname` with tunnel offload: create (or adopt, after a restart) bridge names.bridge with the
 * interface in it, open TAP names.tap with UDP-tunnel GSO and make it a bridge port that never receives, then open
 * the AF_PACKET port on the interface. On failure everything made here is undone.
 */
export function openTunnelUplink(ifname: string, names: TunnelNames, log?: Logger): PortBackend | { error: string } {
  const made = !isBridge(names.bridge);
  let tap: ReturnType<typeof openTapPort> | null = null;
  try {
    const master = masterOf(ifname);
    if (master !== null && master !== names.bridge) {
      if (!master.startsWith(TUNNEL_BRIDGE_PREFIX)) throw new Error(`${ifname} is already a port of ${master}`);
      ip(['link', 'del', master]); // ours, of another switch name (renamed): free the interface
    }
    if (made) ip(['link', 'add', names.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
    // the bridge itself sends nothing onto the underlay (no IPv6 link-local, no router solicitation, no MLD)
    tryIp(['link', 'set', 'dev', names.bridge, 'addrgenmode', 'none']);
    tap = openTapPort(names.tap, { offload: true, tunnelGso: true });
    if ('error' in tap) throw new Error(tap.error);
    const mtu = mtuOf(ifname);
    if (mtu !== null) ip(['link', 'set', 'dev', names.tap, 'mtu', String(mtu)]);
    tryIp(['link', 'set', 'dev', names.tap, 'addrgenmode', 'none']);
    ip(['link', 'set', 'dev', names.tap, 'master', names.bridge]);
    ip(['link', 'set', 'dev', names.tap, 'type', 'bridge_slave', 'learning', 'off', 'flood', 'off', 'mcast_flood', 'off', 'bcast_flood', 'off']);
    ip(['link', 'set', 'dev', names.tap, 'up']);
    if (masterOf(ifname) !== names.bridge) ip(['link', 'set', 'dev', ifname, 'master', names.bridge]);
    ip(['link', 'set', 'dev', names.bridge, 'up']);
    const pkt = openPacketPort(ifname, { offload: true });
    if ('error' in pkt) throw new Error(pkt.error);
    log?.info(made ? 'tunnel-offload bridge created' : 'tunnel-offload bridge adopted', { interface: ifname, bridge: names.bridge, tap: names.tap });
    const t = tap;
    return new TunnelUplink(pkt, t, () => removeTunnelBridge(names, log));
  } catch (err: unknown) {
    if (tap !== null && !('error' in tap)) tap.close();
    if (isBridge(names.bridge)) tryIp(['link', 'del', names.bridge]);
    return { error: `tunnel offload on ${ifname}: ${err instanceof Error ? err.message : String(err)}` };
  }
}
