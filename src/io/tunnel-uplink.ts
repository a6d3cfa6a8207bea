// io/tunnel-uplink.ts: an uplink with tunnel offload: the AF_PACKET port on the interface (rx, and tx of everything
// else) plus a TAP with UDP-tunnel GSO bridged to that interface, for VXLAN super-frames (DESIGN §5).

import type { Batch } from '../dataplane/frame.js';
import type { BackendStats, PortBackend } from './backend.js';
import type { PacketPort } from './packet.js';
import type { TapPort } from './tap.js';

/**
 * One PortBackend for the switch: receive/send/start/stop are the AF_PACKET port's; tunnelTx is the TAP the switch
 * writes UDP-tunnel GSO frames to. close() closes both, then runs `release` (the bridge goes away).
 */
export class TunnelUplink implements PortBackend {
  readonly kind = 'packet' as const;
  private closed = false;

  constructor(
    readonly packet: PacketPort,
    readonly tunnelTx: TapPort,
    private readonly release: () => void,
  ) {}

  get name(): string {
    return this.packet.name;
  }
  get offload(): boolean {
    return this.packet.offload;
  }
  get maxFrameBytes(): number {
    return this.packet.maxFrameBytes;
  }
  get stats(): BackendStats {
    return this.packet.stats;
  }

  receive(batch: Batch, first: number, max: number): number {
    return this.packet.receive(batch, first, max);
  }

  send(batch: Batch, idx: Uint16Array, count: number): number {
    return this.packet.send(batch, idx, count);
  }

  start(onReadable: () => void): void {
    this.packet.start(onReadable);
  }

  stop(): void {
    this.packet.stop();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.packet.close();
    this.tunnelTx.close();
    this.release();
  }
}
