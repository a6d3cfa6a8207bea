// dataplane/switch-api.ts: what the control plane may ask of a Switch. The data path knows nothing of stores,
// HTTP or documents; the reconciler drives a Switch only through this surface.

import type { Extension, ExtensionKind, Logger } from '../extensions/api.js';
import type { PortBackend } from '../io/backend.js';
import type { DropReason } from './drop.js';
import type { AclSpec } from '../policy/acl.js';
import type { ExtendedAclSpec } from '../policy/extended-acl.js';
import type { PortAclStatus } from '../policy/port-acl.js';
import type { MirrorMode } from '../policy/mirror.js';
import type { QosSpec } from '../policy/qos.js';
import type { Clock, PortId } from './types.js';
import type { VirtualizationStatus } from '../virtualization/api.js';
import type { HostNetworkInput } from '../virtualization/model.js';
import type { PortPolicy } from '../policy/policy.js';
import type { PrivateVlanConfig } from '../policy/pvlan.js';

export type VlanConfig =
  | { readonly mode: 'none' }
  | { readonly mode: 'access'; readonly id: number }
  | { readonly mode: 'trunk'; readonly allowed: readonly number[]; readonly native?: number }
  | PrivateVlanConfig;

export interface PortConfig {
  readonly name: string;
  readonly kind: 'vm' | 'external' | 'internal';
  /** The MAC of the VM's adapter (48-bit number), if configured. */
  readonly mac: number | null;
  readonly vlan: VlanConfig;
  /** Virtual subnet of a VM port, 0 for none. */
  readonly vsid: number;
  /** Administrative state. */
  readonly up: boolean;
  /** Most MAC addresses learned on this port (0 = switch default). */
  readonly macLimit: number;
  /** IP MTU of the port (default 1500): a frame longer than mtu + 14 (tag removed) without GSO is 'oversize' when it
   *  comes in and 'egress-oversize' (not sent to this port) when it would go out. */
  readonly mtu?: number;
  /** Port ACLs (src/policy/acl.ts) and extended ACLs (src/policy/extended-acl.ts); changed live. */
  readonly acls?: readonly AclSpec[];
  readonly extendedAcls?: readonly ExtendedAclSpec[];
  /** Guards, storm control, 802.1p trust (src/policy); absent = none. */
  readonly policy?: PortPolicy;
  /** Port mirroring (src/policy/mirror.ts): copy this port's traffic (source), receive copies (destination). */
  readonly mirror?: MirrorMode;
  /** QoS (src/policy/qos.ts): maximum bandwidth, minimum weight, link capacity as an egress; changed live. */
  readonly qos?: QosSpec;
}

export interface SwitchOptions {
  readonly name: string;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Most MAC table entries in the switch (default 8192) and per port (default 1024). */
  readonly macLimit?: number;
  readonly macLimitPerPort?: number;
  /** MAC aging time, ms (default 300 000). */
  readonly macAgingMs?: number;
  /** Frames per batch (default 64). */
  readonly batchSize?: number;
  /**
   * Busy-poll window, µs (default 0 = off): after a wake-up that moved frames, keep reading every port without
   * sleeping until this long passes with nothing new (at most BUSY_POLL_MAX_MS per wake-up), so a reply that is
   * already on its way is not delayed by another event-loop wake-up. Costs CPU only while traffic flows.
   */
  readonly busyPollUs?: number;
}

export interface ExtensionStatus {
  readonly name: string;
  readonly kind: ExtensionKind;
  readonly enabled: boolean;
  /** Position in the configured order (0-based, over all kinds). */
  readonly position: number;
  readonly faults: number;
  /** Why the switch disabled it (repeated faults), or null. */
  readonly disabledReason: string | null;
  readonly stats: Readonly<Record<string, number>>;
}

export interface PortCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Drops counted against this port (as source, or as destination on tx), by reason. Only non-zero reasons. */
  drops: Partial<Record<DropReason, number>>;
  /**
   * Switch totals only: receive coalescing of decapsulated TCP segments at the external port (segments that went
   * into super-frames, first segments included; super-frames built).
   */
  gro?: { segments: number; superFrames: number };
  /** Switch totals only: mirror copies sent to destination ports (a segmented GSO copy counts each segment). */
  mirrored?: number;
  /** Ports with QoS only (src/policy/qos.ts). */
  qos?: QosCounters;
}

export interface QosCounters {
  /** Times reading from this port stopped for its maximum bandwidth or a full scheduler queue. */
  throttles: number;
  /** As a scheduled egress (maxMbps / linkMbps): frames queued, sent on (dequeued), waiting now, dropped (queue full). */
  queued: number;
  dequeued: number;
  waiting: number;
  queueDrops: number;
  /** Per source port at this egress: its weight and frames queued / dequeued. */
  sources: { port: number; pcp: number | null; weight: number; queued: number; dequeued: number; waiting: number }[];
}

export interface MacEntry {
  readonly mac: number;
  /** Learning domain: VLAN id, or VSID for virtual subnet ports. */
  readonly vlan: number;
  readonly vsid: number;
  readonly port: PortId;
  readonly ageMs: number;
}

export interface ExtensionBinding {
  readonly name: string;
  readonly extension: Extension;
  readonly enabled: boolean;
}

export interface SwitchApi {
  readonly name: string;
  /** Bumped on every configuration change (flow caches compare it). */
  readonly generation: number;
  addPort(backend: PortBackend, cfg: PortConfig): PortId;
  updatePort(id: PortId, cfg: PortConfig): void;
  removePort(id: PortId): void;
  portId(name: string): PortId | undefined;
  /**
   * Replace the extension chain with `chain` (configured order). Bindings whose extension object is already
   * bound keep their state; new ones are attached, missing ones detached. Applied between batches. Throws (a
   * control-path error, not a data-path one) if the class order is broken or more than one forwarding
   * extension is given.
   */
  setExtensions(chain: readonly ExtensionBinding[]): void;
  extensions(): ExtensionStatus[];
  macTable(): MacEntry[];
  portCounters(id: PortId): PortCounters;
  switchCounters(): PortCounters;
  /** The port's ACL rules with hit counters and its connection table (null: no rules on the port). */
  portAcl(id: PortId, withConnections?: boolean): PortAclStatus | null;
  /** Process every pending frame on every port until none is left or `maxBatches` ran; returns frames handled. */
  poll(maxBatches?: number): number;
  /**
   * Bind, replace or remove (null) the network virtualization policy of this switch (the layer sits at its
   * external port). Applied between batches; bumps the generation.
   */
  setVirtualization(input: HostNetworkInput | null): void;
  /** The virtualization layer's tables and counters, or null when the switch has no policy. */
  virtualization(): VirtualizationStatus | null;
  /** Event-loop driven operation: each port's back end wakes the switch when readable. */
  start(): void;
  stop(): void;
  close(): void;
}
