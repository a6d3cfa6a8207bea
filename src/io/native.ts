// io/native.ts: typed face of the xsnet C addon (native/xsnet.c), loaded lazily so memory-only code runs without the
// build, plus what the TAP and AF_PACKET back ends share: the virtio-net header and the batched fd port (FdPort).

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { constants } from 'node:os';
import {
  GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP, GSO_UDP_L4, GSO_UDP_TUNNEL, GSO_UDP_TUNNEL_IPV6,
  HEADROOM, TAILROOM,
} from '../dataplane/frame.js';
import type { Batch, FrameMeta } from '../dataplane/frame.js';
import { newBackendStats, type BackendStats } from './backend.js';

/** Opaque uv_poll handle returned by pollStart. */
export type PollHandle = { readonly __brand: 'xsnet.PollHandle' };

/** Slab argument: the batch slab (any view on its ArrayBuffer) or the ArrayBuffer itself. */
export type SlabArg = ArrayBuffer | Uint8Array;

export interface XsNet {
  /** TAP (IFF_TAP|IFF_NO_PI, non-blocking); with vnetHdr a virtio-net header of hdrLen bytes (12, the default, or
   * 24: virtio_net_hdr_v1_hash_tunnel) and CSUM/TSO4/TSO6/ECN(/USO) offloads; tunnelGso (hdrLen 24 only) adds
   * TUN_F_UDP_TUNNEL_GSO (-EINVAL where the kernel lacks it). Returns the fd or -errno. Without persist the device
   * lives while the fd is open (if it was not persistent already); persist (TUNSETPERSIST) keeps it after the fd
   * and the process are gone. An existing TAP of that name is attached to and set up again (-EINVAL: a non-TAP
   * device of that name; -EBUSY: another fd holds it). netns (a namespace file): attach to the TAP of that name in
   * that namespace, never create one there (-ENODEV); the calling thread enters it for the open only. */
  openTap(name: string, vnetHdr: boolean, hdrLen?: number, tunnelGso?: boolean, persist?: boolean, netns?: string): number;
  /** TUNSETPERSIST on a TAP fd: 0 or -errno. Off, then close(): the kernel deletes the device. */
  tapSetPersist(fd: number, on: boolean): number;
  /** What interface `name` is, in the caller's network namespace or in namespace file `netns` (entered on the
   * calling thread for the lookup only): ethtool driver and bus_info (a TAP: "tun" / "tap"), or -errno (-ENODEV:
   * no such interface). */
  linkKind(name: string, netns?: string): LinkKind | number;
  /** The TAP's interface name (TUNGETIFF), or -errno. */
  tapName(fd: number): string | number;
  /** Interface index in the caller's network namespace, or -errno. */
  ifindex(name: string): number;
  /** AF_PACKET SOCK_RAW bound to ifname (ETH_P_ALL, AUXDATA, IGNORE_OUTGOING, promiscuous, 16 MB buffers); with
   * vnetHdr PACKET_VNET_HDR (10-byte header). With ringFrames > 0, TPACKET_V2 RX/TX rings of about that many
   * frames of frameBytes (header included); recvBatch/sendBatch then go through the rings. Returns the fd or
   * -errno. Must run in the interface's namespace. */
  openPacket(ifname: string, vnetHdr: boolean, ringFrames?: number, frameBytes?: number): number;
  /** Read up to max (<= MAX_BATCH) frames: frame k into slab[offs[k], +caps[k]), length in lens[k] (AF_PACKET:
   * the real length, > caps[k] if cut; TAP: a cut frame fills its slot, lens[k] == caps[k]). tcis[k] = TCI | TPID << 16 from PACKET_AUXDATA, or -1 (no tag / TAP).
   * Returns frames read (0: nothing pending) or -errno. */
  recvBatch(
    fd: number,
    slab: SlabArg,
    offs: Uint32Array,
    caps: Uint32Array,
    lens: Uint32Array,
    tcis: Int32Array,
    max: number,
  ): number;
  /** Send frames k = 0..count-1 (<= MAX_BATCH) from slab[offs[k], +lens[k]) in order. Returns how many went
   * (stops at the first refusal), or -errno if the first one was refused (-EAGAIN/-ENOBUFS: queue full). */
  sendBatch(fd: number, slab: SlabArg, offs: Uint32Array, lens: Uint32Array, count: number): number;
  /** 0 or -errno. */
  close(fd: number): number;
  /** A connected AF_UNIX SOCK_SEQPACKET pair, non-blocking, read and written like TAP fds; or -errno. */
  socketPair(): [number, number] | number;
  /** Which path TAP batches take on this thread ('io_uring': one io_uring_enter per batch; 'syscalls': one
   * read()/write() per frame, with the reason), and what each has moved on this thread. */
  ioPath(): IoPathInfo;
  /** TAP batches through io_uring (where the kernel allows it) or the read()/write() loops, for the whole process
   * from the next call on; overrides XSWITCH_IO_URING (default on; "0" forces the loops). Returns 0. */
  useIoUring(on: boolean): number;
  /** Call cb (no arguments, from the event loop) while fd is readable. Returns a handle, or -errno. */
  pollStart(fd: number, cb: () => void): PollHandle | number;
  /** Stop a poll; idempotent. 0 or -errno. */
  pollStop(handle: PollHandle): number;
  readonly TAP_VNET_HDR_LEN: number;
  readonly TAP_VNET_TNL_HDR_LEN: number;
  readonly PACKET_VNET_HDR_LEN: number;
  readonly MAX_BATCH: number;
}

/** linkKind(): an interface's index and driver. */
export interface LinkKind {
  readonly ifindex: number;
  /** ethtool driver name ("tun" for TUN and TAP devices, "veth", ...; "" if the driver does not say). */
  readonly driver: string;
  /** ethtool bus_info ("tap" or "tun" for the tun driver). */
  readonly bus: string;
  /** ETHTOOL_GLINK: up with a carrier. A TAP has a carrier while some fd is attached to it (a down one reads false
   * either way). */
  readonly link: boolean;
}

/** ioPath(): the TAP batch path of this thread and its counters. */
export interface IoPathInfo {
  readonly path: 'io_uring' | 'syscalls';
  /** Why not io_uring: turned off (XSWITCH_IO_URING=0, useIoUring(false)) or the setup error (e.g. "Operation not
   * permitted"). */
  readonly reason?: string;
  /** Frames and enters through the ring; batches through the loops because the ring is off or unavailable (with
   * the ring on, a single-frame send and an idle port's first read still use write()/read(), uncounted). */
  readonly uringFrames: number;
  readonly uringBatches: number;
  readonly loopBatches: number;
  /** Frames read after an earlier read of the same round found the queue empty, moved down a slot. */
  readonly uringMoved: number;
}

/** TAP virtio-net header bytes (virtio_net_hdr_mrg_rxbuf: the 10-byte header + num_buffers). */
export const TAP_VNET_HDR_LEN = 12;
/** TAP virtio-net header with the UDP tunnel fields (virtio_net_hdr_v1_hash_tunnel, kernel 6.18). */
export const TAP_VNET_TNL_HDR_LEN = 24;
/** AF_PACKET PACKET_VNET_HDR bytes (plain virtio_net_hdr). */
export const PACKET_VNET_HDR_LEN = 10;
/** Most frames one recvBatch/sendBatch call moves. */
export const NATIVE_MAX_BATCH = 256;

let cached: XsNet | { error: string } | null = null;

function addonPath(): string | null {
  // dist/src/io/native.js -> <root>/native/...; src/io/native.ts (run by a TS loader) -> <root>/native/...
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../..', '../..']) {
    const p = join(here, up, 'native/build/Release/xsnet.node');
    if (existsSync(p)) return p;
  }
  return null;
}

/** The addon, or why it cannot be loaded (not built: run `npm run install`). Never throws. */
export function loadNative(): XsNet | { error: string } {
  if (cached !== null) return cached;
  const p = addonPath();
  if (p === null) {
    cached = { error: 'xsnet addon not built (native/build/Release/xsnet.node missing; run `npm run install`)' };
    return cached;
  }
  try {
    const req = createRequire(import.meta.url);
    const mod = req(p) as XsNet;
    if (
      mod.TAP_VNET_HDR_LEN !== TAP_VNET_HDR_LEN ||
      mod.TAP_VNET_TNL_HDR_LEN !== TAP_VNET_TNL_HDR_LEN ||
      mod.PACKET_VNET_HDR_LEN !== PACKET_VNET_HDR_LEN ||
      mod.MAX_BATCH !== NATIVE_MAX_BATCH
    ) {
      cached = { error: 'xsnet addon does not match io/native.ts (rebuild it)' };
    } else {
      cached = mod;
    }
  } catch (err: unknown) {
    cached = { error: `xsnet addon failed to load: ${err instanceof Error ? err.message : String(err)}` };
  }
  return cached;
}

/** How TAP batches move in this process, for the daemon's start line: "io_uring", "syscalls (why)", or
 * "no addon". */
export function tapIoPath(): string {
  const nat = loadNative();
  if ('error' in nat) return 'no addon';
  const p = nat.ioPath();
  return p.reason === undefined ? p.path : `${p.path} (${p.reason})`;
}

/** Human text for a -errno result. */
export function errnoName(neg: number): string {
  const e = -neg;
  for (const [k, v] of Object.entries(osErrno)) if (v === e) return k;
  return `errno ${e}`;
}

const osErrno: Record<string, number> = constants.errno as Record<string, number>;
export const EAGAIN = osErrno['EAGAIN'] ?? 11;
export const ENOBUFS = osErrno['ENOBUFS'] ?? 105;

/* ---- virtio-net header (linux/virtio_net.h), little-endian: flags u8, gso_type u8, hdr_len u16, gso_size u16,
 *      csum_start u16, csum_offset u16 [, num_buffers u16 in the 12-byte form] [, hash_value u32, hash_report u16,
 *      padding u16, outer_th_offset u16, inner_nh_offset u16 in the 24-byte tunnel form] ---- */

export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
const ETH_HLEN = 14;

/**
 * Read the virtio-net header at u8[o] into m for a frame of `len` bytes (Ethernet onward). A header that does not
 * fit the frame (unknown gso type, gso without a size, a checksum position past the end) sets
 * m.drop = 'bad-vnet-hdr'. Returns true if the header was consistent.
 */
export function parseVnetHdr(u8: Uint8Array, o: number, len: number, m: FrameMeta, hdrBytes = 10): boolean {
  const flags = u8[o]!;
  const gt = u8[o + 1]!;
  m.hdrLen = u8[o + 2]! | (u8[o + 3]! << 8);
  m.gsoSize = u8[o + 4]! | (u8[o + 5]! << 8);
  m.csumStart = u8[o + 6]! | (u8[o + 7]! << 8);
  m.csumOffset = u8[o + 8]! | (u8[o + 9]! << 8);
  m.needsCsum = (flags & VNET_F_NEEDS_CSUM) !== 0;
  m.dataValid = (flags & VNET_F_DATA_VALID) !== 0;
  m.gsoType = gt;
  const tnl = gt & GSO_UDP_TUNNEL;
  const base = gt & ~(GSO_ECN | GSO_UDP_TUNNEL);
  let ok = true;
  if (tnl !== 0) {
    // only a 24-byte header carries the offsets; the kernel's own rules (virtio_net_hdr_tnl_to_skb): one outer
    // family, TCP inside, a partial checksum, offsets in order
    m.outerThOff = hdrBytes >= 24 ? u8[o + 20]! | (u8[o + 21]! << 8) : 0;
    m.innerNhOff = hdrBytes >= 24 ? u8[o + 22]! | (u8[o + 23]! << 8) : 0;
    const l3min = tnl === GSO_UDP_TUNNEL_IPV6 ? 40 : 20;
    if (hdrBytes < 24 || tnl === GSO_UDP_TUNNEL || (base !== GSO_TCPV4 && base !== GSO_TCPV6) || !m.needsCsum) ok = false;
    else if (m.gsoSize === 0 || m.outerThOff < ETH_HLEN + l3min || m.innerNhOff < m.outerThOff + 8) ok = false;
    else if (m.csumStart < m.innerNhOff + (base === GSO_TCPV6 ? 40 : 20) || m.innerNhOff >= len) ok = false;
  } else if (base !== GSO_NONE) {
    if (base !== GSO_TCPV4 && base !== GSO_TCPV6 && base !== GSO_UDP && base !== GSO_UDP_L4) ok = false;
    else if (m.gsoSize === 0 || len <= ETH_HLEN + 20 + 8) ok = false;
  } else if (gt !== GSO_NONE) ok = false;
  if (m.needsCsum && (m.csumStart < ETH_HLEN || m.csumStart + m.csumOffset + 2 > len)) ok = false;
  if (!ok) m.drop = 'bad-vnet-hdr';
  return ok;
}

/** Write m's offload state as a virtio-net header of hdrBytes (10, 12 or 24) at u8[o]. The tunnel offsets go out
 *  only with a UDP tunnel gso type (else zero); hash fields are zero; the outer UDP checksum flag
 *  (VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM) is never set: the outer UDP checksum stays 0. */
export function writeVnetHdr(u8: Uint8Array, o: number, m: FrameMeta, hdrBytes: number): void {
  const cs = m.needsCsum;
  const gso = m.gsoType !== GSO_NONE;
  u8[o] = cs ? VNET_F_NEEDS_CSUM : 0;
  u8[o + 1] = m.gsoType;
  const hl = gso ? m.hdrLen : 0;
  u8[o + 2] = hl & 0xff;
  u8[o + 3] = hl >>> 8;
  const gs = gso ? m.gsoSize : 0;
  u8[o + 4] = gs & 0xff;
  u8[o + 5] = gs >>> 8;
  const st = cs ? m.csumStart : 0;
  const so = cs ? m.csumOffset : 0;
  u8[o + 6] = st & 0xff;
  u8[o + 7] = st >>> 8;
  u8[o + 8] = so & 0xff;
  u8[o + 9] = so >>> 8;
  if (hdrBytes >= 12) {
    u8[o + 10] = 0;
    u8[o + 11] = 0;
  }
  if (hdrBytes === 24) {
    for (let k = 12; k < 20; k++) u8[o + k] = 0;
    const tnl = gso && (m.gsoType & GSO_UDP_TUNNEL) !== 0;
    const th = tnl ? m.outerThOff : 0;
    const nh = tnl ? m.innerNhOff : 0;
    u8[o + 20] = th & 0xff;
    u8[o + 21] = th >>> 8;
    u8[o + 22] = nh & 0xff;
    u8[o + 23] = nh >>> 8;
  }
}

/* ---- the fd port both real back ends are made of ---- */

/** Largest frame (virtio-net header included) with offload: a 64 KB IP packet, Ethernet, a tag, the header. */
export const MAX_FRAME_OFFLOAD = 65600;
/** Without offload: jumbo 9216 plus a tag and slack. */
export const MAX_FRAME_PLAIN = 9280;

/**
 * A non-blocking fd moved in batches through the addon. Subclasses say what the fd is and fix up each received
 * frame (AF_PACKET re-inserts the VLAN tag). One recvBatch/sendBatch crossing per call, no allocation per call.
 */
export abstract class FdPort {
  readonly stats: BackendStats = newBackendStats();
  readonly maxFrameBytes: number;
  protected fd: number;
  private poll: PollHandle | null = null;
  private readonly offs = new Uint32Array(NATIVE_MAX_BATCH);
  private readonly caps = new Uint32Array(NATIVE_MAX_BATCH);
  private readonly lens = new Uint32Array(NATIVE_MAX_BATCH);
  private readonly tcis = new Int32Array(NATIVE_MAX_BATCH);

  constructor(
    protected readonly nat: XsNet,
    fd: number,
    readonly name: string,
    readonly offload: boolean,
    /** virtio-net header bytes before each frame: 0 for a TAP without offload (AF_PACKET always has one). */
    readonly vnetHdrLen: number,
  ) {
    this.fd = fd;
    // A header can announce a super-frame, so the slot must hold one (AF_PACKET has it even without offload).
    this.maxFrameBytes = vnetHdrLen !== 0 ? MAX_FRAME_OFFLOAD : MAX_FRAME_PLAIN;
  }

  /** Per received frame, after the offload fields are read: tci is the addon's tcis[k] (-1: none). */
  protected abstract fixup(batch: Batch, m: FrameMeta, tci: number): void;

  receive(batch: Batch, first: number, max: number): number {
    let n = Math.min(max, NATIVE_MAX_BATCH, batch.capacity - first);
    if (n <= 0 || this.fd < 0) return 0;
    const vl = this.vnetHdrLen;
    const cap = batch.slotSize - HEADROOM - TAILROOM + vl;
    const { offs, caps, lens, tcis } = this;
    for (let k = 0; k < n; k++) {
      offs[k] = batch.slotStart(first + k) + HEADROOM - vl;
      caps[k] = cap;
    }
    n = this.nat.recvBatch(this.fd, batch.slab, offs, caps, lens, tcis, n);
    if (n < 0) {
      this.stats.rxErrors++;
      this.stats.lastErrno = -n;
      return 0;
    }
    const u8 = batch.slab;
    for (let k = 0; k < n; k++) {
      const i = first + k;
      const m = batch.meta[i]!;
      m.reset();
      m.off = offs[k]! + vl;
      const got = lens[k]!;
      if (got >= cap) {
        // Cut: recvmmsg (MSG_TRUNC) reports the full length, a tun read() just fills the buffer. A slot holds
        // maxFrameBytes, more than any frame the device can carry, so a full slot means a frame too long for it.
        m.len = cap - vl;
        m.drop = 'oversize';
      } else {
        m.len = got > vl ? got - vl : 0;
        if (vl !== 0) parseVnetHdr(u8, m.off - vl, m.len, m, vl);
      }
      this.fixup(batch, m, tcis[k]!);
      batch.offs[i] = m.off;
      batch.lens[i] = m.len;
    }
    return n;
  }

  send(batch: Batch, idx: Uint16Array, count: number): number {
    if (count > idx.length) count = idx.length;
    if (this.fd < 0) {
      if (count > 0) {
        this.stats.txErrors++; // as for any error: the first frame refused
        this.stats.lastErrno = 9; // EBADF
      }
      return 0;
    }
    const vl = this.vnetHdrLen;
    const u8 = batch.slab;
    const { offs, lens } = this;
    let done = 0;
    while (done < count) {
      let n = Math.min(count - done, NATIVE_MAX_BATCH);
      for (let k = 0; k < n; k++) {
        const m = batch.meta[idx[done + k]!]!;
        if (m.off < vl) {
          n = k; // no headroom for the header: refuse from here (cannot happen with HEADROOM-based slots)
          break;
        }
        if (vl !== 0) writeVnetHdr(u8, m.off - vl, m, vl);
        offs[k] = m.off - vl;
        lens[k] = m.len + vl;
      }
      const r = n === 0 ? -22 : this.nat.sendBatch(this.fd, u8, offs, lens, n);
      if (r < 0) {
        const e = -r;
        // Full: the rest waits. Error: only frame `done` is bad; a caller may send on from done + 1.
        if (e === EAGAIN || e === ENOBUFS) this.stats.txFull += count - done;
        else this.stats.txErrors++;
        this.stats.lastErrno = e;
        return done;
      }
      done += r; // r < n: the next call reports why frame `done` was refused
    }
    return done;
  }

  start(onReadable: () => void): void {
    if (this.poll !== null || this.fd < 0) return;
    const h = this.nat.pollStart(this.fd, onReadable);
    if (typeof h === 'number') {
      this.stats.rxErrors++;
      this.stats.lastErrno = -h;
      return;
    }
    this.poll = h;
  }

  stop(): void {
    if (this.poll === null) return;
    this.nat.pollStop(this.poll);
    this.poll = null;
  }

  close(): void {
    this.stop();
    if (this.fd < 0) return;
    this.nat.close(this.fd);
    this.fd = -1;
  }
}
