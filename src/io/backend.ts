// io/backend.ts: the contract every port back end meets (TAP, AF_PACKET, memory). One crossing per batch.

import type { Batch } from '../dataplane/frame.js';

export type BackendKind = 'tap' | 'packet' | 'memory';

export interface PortBackend {
  readonly kind: BackendKind;
  /** Interface name (TAP or veth name), or the memory port's name. */
  readonly name: string;
  /** The back end reads and writes virtio-net headers: GSO super-frames and partial checksums pass through. */
  readonly offload: boolean;
  /** Largest frame a receive can deliver (64 KiB + change with offload, else MTU + 18 rounded up). */
  readonly maxFrameBytes: number;
  /**
   * Read up to `max` frames into slots first..first+max-1 of `batch`. For every frame read it calls
   * meta.reset() and sets meta.off/len (the Ethernet header at slotStart(i) + HEADROOM, an 802.1Q tag the
   * kernel moved into PACKET_AUXDATA re-inserted inline) and the offload fields from the virtio-net header.
   * Returns the number of frames read (0 when nothing is pending). Never throws; errors are counted in stats.
   */
  receive(batch: Batch, first: number, max: number): number;
  /**
   * Send batch frames idx[0..count-1] (meta.off/len; offload fields written as a virtio-net header where the
   * back end has one, using headroom before meta.off). Returns how many the kernel took, in order; the rest
   * were refused (queue full or error: see stats). Never throws.
   */
  send(batch: Batch, idx: Uint16Array, count: number): number;
  /** Call `onReadable` (from the event loop, never re-entrantly) whenever frames may be pending. */
  start(onReadable: () => void): void;
  /** Stop notifications; keep the device. */
  stop(): void;
  /** Close and let the device go (a TAP is deleted, a persistent one too). Idempotent. */
  close(): void;
  /**
   * Close but keep the device where it is, for a later open by name: a persistent TAP stays (in the VM's
   * namespace) across a daemon stop or a re-open of the same interface. Absent: close() does.
   */
  detach?(): void;
  /** Set if the open attached to a device that existed already (where it was found): undoing the open must release
   * it, not delete it. */
  readonly adopted?: string | undefined;
  readonly stats: BackendStats;
  /**
   * Where UDP-tunnel GSO frames (gsoType & GSO_UDP_TUNNEL) go instead of send(): an uplink with tunnel offload has
   * a TAP bridged to its interface for them (AF_PACKET refuses encapsulated GSO). Absent: none can be sent.
   */
  readonly tunnelTx?: PortBackend;
}

export interface BackendStats {
  rxErrors: number;
  txErrors: number;
  txFull: number;
  /** Last errno seen (positive), 0 if none. */
  lastErrno: number;
}

export function newBackendStats(): BackendStats {
  return { rxErrors: 0, txErrors: 0, txFull: 0, lastErrno: 0 };
}
