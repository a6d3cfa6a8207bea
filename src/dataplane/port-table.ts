// dataplane/port-table.ts: the switch's ports as the data path sees them: back end, compiled VLAN policy,
// preallocated rx batch and tx index list, counters. Ids are never reused, so a stale id simply misses.

import type { PortInfo } from '../extensions/api.js';
import type { PortBackend } from '../io/backend.js';
import { CounterBlock } from './counters.js';
import { Batch, slotSizeFor } from './frame.js';
import type { PortConfig } from './switch-api.js';
import type { PortId } from './types.js';
import { PortVlan } from './vlan.js';
import { compileGuards, type PortGuards } from '../policy/guards.js';
import { PortAcl } from '../policy/port-acl.js';
import { mirrorCode } from '../policy/mirror.js';

export const DEFAULT_MTU = 1500;

export class PortState {
  cfg: PortConfig;
  vlan: PortVlan;
  vsid: number;
  up: boolean;
  external: boolean;
  maxFrameLen: number;
  info: PortInfo;
  /** Compiled guards / storm control / private VLAN (src/policy), null when the port has none. */
  guards: PortGuards | null;
  /** ACLs and connection table (null: no rules; kept across reconfigure so counters and connections survive). */
  acl: PortAcl | null = null;
  /** MIRROR_NONE / MIRROR_SOURCE / MIRROR_DESTINATION (src/policy/mirror.ts). */
  mirror = 0;
  readonly rx: Batch;
  /** Frame indices of the batch being sent to this port (filled per batch, per destination). */
  readonly txIdx: Uint16Array;
  /** Destination flags (DEST_PRESERVE_*) of each txIdx entry, and whether a tag was pushed for it. */
  readonly txFlags: Uint8Array;
  readonly txTagged: Uint8Array;
  txCount = 0;
  readonly counters = new CounterBlock();
  /** Re-entry guard and budget continuation for event-loop operation. */
  readonly service: () => void;
  serviceScheduled = false;
  /** Switch.service() bookkeeping: the call that last sent to this port. */
  probeGen = 0;

  constructor(
    readonly id: PortId,
    readonly backend: PortBackend,
    cfg: PortConfig,
    batchSize: number,
    txIdxCapacity: number,
    service: (p: PortState) => void,
  ) {
    this.cfg = cfg;
    this.vlan = PortVlan.from(cfg.vlan);
    this.vsid = cfg.vsid;
    this.up = cfg.up;
    this.external = cfg.kind === 'external';
    this.maxFrameLen = (cfg.mtu ?? DEFAULT_MTU) + 14;
    this.info = makeInfo(id, cfg);
    this.guards = compileGuards(cfg);
    this.setAcl(cfg);
    this.mirror = mirrorCode(cfg.mirror);
    this.rx = new Batch(batchSize, slotSizeFor(backend.maxFrameBytes));
    this.txIdx = new Uint16Array(txIdxCapacity);
    this.txFlags = new Uint8Array(txIdxCapacity);
    this.txTagged = new Uint8Array(txIdxCapacity);
    this.service = () => service(this);
  }

  reconfigure(cfg: PortConfig): void {
    this.cfg = cfg;
    this.vlan = PortVlan.from(cfg.vlan);
    this.vsid = cfg.vsid;
    this.up = cfg.up;
    this.external = cfg.kind === 'external';
    this.maxFrameLen = (cfg.mtu ?? DEFAULT_MTU) + 14;
    this.info = makeInfo(this.id, cfg);
    this.guards = compileGuards(cfg);
    this.setAcl(cfg);
    this.mirror = mirrorCode(cfg.mirror);
  }

  private setAcl(cfg: PortConfig): void {
    const has = (cfg.acls?.length ?? 0) + (cfg.extendedAcls?.length ?? 0) > 0;
    if (!has && this.acl === null) return;
    const a = this.acl ?? new PortAcl();
    a.set(cfg.acls, cfg.extendedAcls);
    this.acl = a.empty ? null : a;
  }
}

function makeInfo(id: PortId, cfg: PortConfig): PortInfo {
  return Object.freeze({
    id,
    name: cfg.name,
    kind: cfg.kind,
    mac: cfg.mac,
    vsid: cfg.vsid,
    // a private VLAN port is an access port of its primary to extensions
    vlanMode: cfg.vlan.mode === 'private' ? 'access' : cfg.vlan.mode,
    accessVlan: cfg.vlan.mode === 'access' ? cfg.vlan.id : cfg.vlan.mode === 'private' ? cfg.vlan.primary : 0,
    up: cfg.up,
  });
}

/** Ports by id (sparse) plus a dense list for iteration. */
export class PortTable {
  private readonly byId: (PortState | undefined)[] = [];
  /** Live ports in id order; rebuilt on change (control path). */
  list: PortState[] = [];
  /** PortInfo of every live port, handed to extensions without copying. */
  infos: readonly PortInfo[] = [];
  private nextId = 0;

  allocId(): PortId {
    return this.nextId++ as PortId;
  }

  get(id: number): PortState | undefined {
    return id >= 0 ? this.byId[id] : undefined;
  }

  add(p: PortState): void {
    this.byId[p.id] = p;
    this.rebuild();
  }

  remove(id: PortId): PortState | undefined {
    const p = this.byId[id];
    if (p === undefined) return undefined;
    this.byId[id] = undefined;
    this.rebuild();
    return p;
  }

  byName(name: string): PortState | undefined {
    for (const p of this.list) if (p.cfg.name === name) return p;
    return undefined;
  }

  rebuild(): void {
    this.list = this.byId.filter((p): p is PortState => p !== undefined);
    this.infos = Object.freeze(this.list.map((p) => p.info));
  }
}
