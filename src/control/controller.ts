// control/controller.ts: the one path every change takes (new desired document -> validate -> reconcile -> store),
// serialized, plus the read models the API serves (switches, ports, extensions, MACs, counters, network policy).

import type { DropReason } from '../dataplane/drop.js';
import type { PortCounters } from '../dataplane/switch-api.js';
import type { VirtualizationStatus } from '../virtualization/api.js';
import { EMPTY_NETWORK, type NetworkSpec } from '../virtualization/model.js';
import { formatMac } from '../wire/ethernet.js';
import {
  type ConfigError, type Desired, EMPTY_DESIRED, type PortSpec, type SwitchSpec, UPLINK_PORT, portIfname, toDocument, validateDocument,
} from './config.js';
import type { Action, Reconciler, RunningSwitch } from './reconciler.js';
import type { Store } from './store.js';

/** Logger with the levels the daemon uses. */
export interface ControlLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** An API answer: HTTP status and JSON body. Errors are {error, field?, errors?}. */
export interface Outcome {
  readonly status: number;
  readonly body: unknown;
}

export interface ErrorBody {
  error: string;
  field?: string;
  errors?: ConfigError[];
}

export function fail(status: number, error: string, field?: string, errors?: ConfigError[]): Outcome {
  const body: ErrorBody = { error };
  if (field !== undefined) body.field = field;
  if (errors !== undefined) body.errors = errors;
  return { status, body };
}

function invalid(errors: ConfigError[], what = 'invalid document'): Outcome {
  const n = errors.length;
  return fail(400, `${what}: ${n} error${n === 1 ? '' : 's'}: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors[0]?.path, errors);
}

/** A plain, mutable copy of the desired document for imperative edits. */
export type PlainDoc = { host?: string; switches: Record<string, unknown>[]; network?: Record<string, unknown> };

export interface ControllerInfo {
  readonly version: string;
  readonly host: string;
  readonly socket: string;
}

/**
 * `d` without the objects the errors point at (ports, uplinks, extensions, else whole switches; the network policy
 * for errors under network); null if none.
 */
export function withoutFailing(d: Desired, errors: readonly ConfigError[]): Desired | null {
  const dropSwitch = new Set<number>();
  const dropPort = new Set<string>();
  const dropExt = new Set<string>();
  const dropUplink = new Set<number>();
  let dropNetwork = false;
  for (const e of errors) {
    if (e.path === 'network' || e.path.startsWith('network.')) {
      if (d.network === EMPTY_NETWORK) return null;
      dropNetwork = true;
      continue;
    }
    const m = /^switches\[(\d+)\](?:\.(ports|extensions)\[(\d+)\]|\.(uplink))?/.exec(e.path);
    if (m === null) return null;
    const si = Number(m[1]);
    if (m[2] === 'ports') dropPort.add(`${si}/${m[3]!}`);
    else if (m[2] === 'extensions') dropExt.add(`${si}/${m[3]!}`);
    else if (m[4] === 'uplink') dropUplink.add(si);
    else dropSwitch.add(si);
  }
  return {
    host: d.host,
    network: dropNetwork ? EMPTY_NETWORK : d.network,
    switches: d.switches.flatMap((s, si) => (dropSwitch.has(si) ? [] : [{
      ...s,
      uplink: dropUplink.has(si) ? null : s.uplink,
      ports: s.ports.filter((_, pi) => !dropPort.has(`${si}/${pi}`)),
      extensions: s.extensions.filter((_, ei) => !dropExt.has(`${si}/${ei}`)),
    }])),
  };
}

const zeroCounters = (): PortCounters => ({ rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, drops: {} });

/** The drops a port's ACLs decide, shown by `xsctl acl`. */
const ACL_DROPS: readonly DropReason[] = ['acl-deny', 'extended-acl-deny', 'acl-fragment-unknown', 'acl-ipv6-chain-unknown'];

export class Controller {
  private desiredDoc: Desired = EMPTY_DESIRED;
  private rev = 0;
  /** Errors of a restore that could not bring the stored state up (the data path then runs less). */
  private degradedErrors: ConfigError[] | null = null;
  /** Why a stored port is not running after a partial restore ("switch/port" -> the open error), for port lists. */
  private portErrors = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly started = Date.now();

  constructor(
    private readonly store: Store,
    private readonly reconciler: Reconciler,
    private readonly log: ControlLogger,
    private readonly info: ControllerInfo,
  ) {}

  get desired(): Desired {
    return this.desiredDoc;
  }

  get revision(): number {
    return this.rev;
  }

  /** Run mutations one at a time, in arrival order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when no change is in flight. */
  idle(): Promise<void> {
    return this.serial(() => Promise.resolve());
  }

  /** Bring the data path to the stored desired state (daemon start). Returns an error only if the store is unreadable. */
  restore(): Promise<{ ok: true } | { ok: false; error: string }> {
    return this.serial(async () => {
      const l = await this.store.load();
      if (!l.ok) return { ok: false as const, error: l.error };
      this.desiredDoc = l.desired;
      this.rev = l.revision;
      // Best effort: what cannot come up (a missing veth, a broken extension) is left out and reported, so one
      // bad port does not keep every other port of the host down after a restart.
      let attempt = l.desired;
      const failed: ConfigError[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await this.reconciler.reconcile(attempt);
        if (r.ok) break;
        failed.push(...r.errors);
        for (const e of r.errors) {
          const m = /^switches\[(\d+)\]\.ports\[(\d+)\]/.exec(e.path);
          const s = m === null ? undefined : attempt.switches[Number(m[1])];
          const p = m === null ? undefined : s?.ports[Number(m[2])];
          if (s !== undefined && p !== undefined) this.portErrors.set(`${s.name}/${p.name}`, e.message);
        }
        const next = withoutFailing(attempt, r.errors);
        if (next === null) break;
        attempt = next;
      }
      if (failed.length === 0) {
        this.log.info('restored desired state from store', { revision: l.revision, switches: l.desired.switches.length });
      } else {
        this.degradedErrors = failed;
        this.log.error('restored the stored desired state only in part; fix it with xsctl apply / port del', { revision: l.revision, errors: failed });
      }
      return { ok: true as const };
    });
  }

  status(): Record<string, unknown> {
    return {
      version: this.info.version,
      host: this.info.host,
      store: this.store.url,
      socket: this.info.socket,
      revision: this.rev,
      switches: this.desiredDoc.switches.length,
      running: this.reconciler.running.switches.length,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      degraded: this.degradedErrors,
    };
  }

  getDesired(): Outcome {
    return { status: 200, body: { revision: this.rev, document: toDocument({ ...this.desiredDoc, host: this.info.host }) } };
  }

  /** Apply a whole document (raw, from YAML/JSON): the path every change takes. */
  applyDocument(raw: unknown, opts: { expectedRevision?: number; dryRun?: boolean; created?: boolean } = {}): Promise<Outcome> {
    return this.serial(() => this.applyLocked(raw, opts));
  }

  private async applyLocked(raw: unknown, opts: { expectedRevision?: number; dryRun?: boolean; created?: boolean }): Promise<Outcome> {
    const v = validateDocument(raw, { host: this.info.host });
    if (!v.ok) return invalid(v.errors);
    if (v.value.host !== null && v.value.host !== this.info.host) {
      return fail(400, `the document is for host "${v.value.host}" but this xswitchd is host "${this.info.host}" (start it with --host ${v.value.host}, or drop the host key)`, 'host',
        [{ path: 'host', message: `document host "${v.value.host}" is not this daemon's host "${this.info.host}"` }]);
    }
    if (opts.expectedRevision !== undefined && opts.expectedRevision !== this.rev) {
      return fail(409, `revision conflict: expected ${opts.expectedRevision}, the store is at ${this.rev} (export again and retry)`, 'revision');
    }
    const next: Desired = { host: this.info.host, switches: v.value.switches, network: v.value.network };
    const p = await this.reconciler.prepare(next);
    if (!p.ok) return invalid(p.errors);
    if (opts.dryRun === true) return { status: 200, body: { dryRun: true, revision: this.rev, actions: p.plan.actions } };
    const r = await this.reconciler.apply(p.plan);
    if (!r.ok) {
      this.log.warn('apply refused', { errors: r.errors, state: r.state });
      if (r.state === 'inconsistent') {
        // Never silent: status reports it until a later apply succeeds.
        this.degradedErrors = r.errors;
        this.log.error('the data path could not go back after a failed apply; it runs what `status` shows', { errors: r.errors });
        return invalid(r.errors, 'could not apply, and could not roll back (see xsctl status)');
      }
      return invalid(r.errors, 'could not apply (nothing changed)');
    }
    // The store is written after the data path took the change; if the write fails, the data path goes back.
    const put = await this.store.put(next, this.rev);
    if (!put.ok) {
      const back = await this.reconciler.reconcile(this.desiredDoc);
      if (!back.ok) this.log.error('store write failed and the data path could not go back', { errors: back.errors });
      if (put.conflict) return fail(409, `the store moved to revision ${put.revision} under this daemon (another writer?); nothing changed`, 'revision');
      this.log.error('store write failed; data path rolled back', { error: put.error });
      return fail(500, `could not write the store: ${put.error}; nothing changed`);
    }
    this.desiredDoc = next;
    this.rev = put.revision;
    this.degradedErrors = null;
    this.portErrors.clear();
    if (r.actions.length > 0) this.log.info('applied', { revision: put.revision, actions: r.actions });
    return { status: opts.created === true ? 201 : 200, body: { revision: put.revision, actions: r.actions as readonly Action[] } };
  }

  /**
   * An imperative change: edit a plain copy of the current document, then apply it whole. `edit` returns an
   * Outcome to refuse (404, 409) before anything is validated.
   */
  edit(fn: (doc: PlainDoc) => Outcome | undefined, created = false): Promise<Outcome> {
    return this.serial(async () => {
      const doc = JSON.parse(JSON.stringify(toDocument(this.desiredDoc))) as PlainDoc;
      const refused = fn(doc);
      if (refused !== undefined) return refused;
      return this.applyLocked(doc, { created });
    });
  }

  /** `ext enable` of an extension the switch disabled after faults: clear the fault-disable too. */
  clearFault(sw: string, ext: string): Promise<boolean> {
    return this.serial(() => Promise.resolve(this.reconciler.clearFault(sw, ext)));
  }

  findSwitch(name: string): SwitchSpec | undefined {
    return this.desiredDoc.switches.find((s) => s.name === name);
  }

  running(name: string): RunningSwitch | undefined {
    return this.reconciler.switch(name);
  }

  switchList(): unknown[] {
    return this.desiredDoc.switches.map((s) => ({
      name: s.name,
      ports: s.ports.length + (s.uplink === null ? 0 : 1),
      extensions: s.extensions.length,
      uplink: s.uplink?.interface ?? null,
      running: this.reconciler.switch(s.name) !== undefined,
    }));
  }

  portList(s: SwitchSpec): unknown[] {
    const rs = this.reconciler.switch(s.name);
    const out: unknown[] = [];
    const id = (name: string): number => rs?.ports.get(name)?.id ?? -1;
    if (s.uplink !== null) {
      out.push({ name: UPLINK_PORT, interface: { uplink: s.uplink.interface }, ifname: s.uplink.interface, mac: null, vsid: 0, vlan: { mode: 'none' }, up: true, offload: s.uplink.offload, macLimit: 0, kind: 'external', mirror: s.uplink.mirror ?? 'none', id: id(UPLINK_PORT), ...(Object.keys(s.uplink.qos).length > 0 ? { policy: { ...s.uplink.qos } } : {}) });
    }
    for (const p of s.ports) out.push(this.portInfo(s.name, p, id(p.name)));
    return out;
  }

  private portInfo(sw: string, p: PortSpec, id: number): unknown {
    const error = id < 0 ? this.portErrors.get(`${sw}/${p.name}`) : undefined;
    return { name: p.name, interface: { ...p.interface }, ifname: portIfname(sw, p), mac: p.mac, vsid: p.vsid, vlan: { ...p.vlan }, up: p.up, offload: p.offload, macLimit: p.macLimit, kind: 'internal' in p.interface ? 'internal' : 'vm', mirror: p.mirror, id, ...(p.policy !== null || Object.keys(p.qos).length > 0 ? { policy: { ...p.policy, ...p.qos } } : {}),
      ...(error !== undefined ? { error } : {}) };
  }

  extensionList(s: SwitchSpec): unknown[] {
    const rs = this.reconciler.switch(s.name);
    const status = new Map((rs?.sw.extensions() ?? []).map((x) => [x.name, x]));
    return s.extensions.map((e, k) => {
      const st = status.get(e.name);
      const kind = st?.kind ?? rs?.chain.find((c) => c.spec.name === e.name)?.ext.kind ?? 'unknown';
      return {
        name: e.name,
        kind,
        enabled: st?.enabled ?? e.enabled,
        position: st?.position ?? k,
        faults: st?.faults ?? 0,
        disabledReason: st?.disabledReason ?? null,
        stats: st?.stats ?? {},
        path: e.path,
        config: e.config,
      };
    });
  }

  macs(s: SwitchSpec): unknown[] {
    const rs = this.reconciler.switch(s.name);
    if (rs === undefined) return [];
    return rs.sw.macTable().map((m) => ({
      mac: formatMac(m.mac), vlan: m.vlan, vsid: m.vsid, port: this.reconciler.portName(rs, m.port) ?? `#${m.port}`, ageMs: Math.round(m.ageMs),
    }));
  }

  get network(): NetworkSpec {
    return this.desiredDoc.network;
  }

  /** Running switches whose virtualization layer reports a status, in document order. */
  private virtualized(): { switch: string; status: VirtualizationStatus }[] {
    const out: { switch: string; status: VirtualizationStatus }[] = [];
    for (const s of this.desiredDoc.switches) {
      const st = this.reconciler.switch(s.name)?.sw.virtualization() ?? null;
      if (st !== null) out.push({ switch: s.name, status: st });
    }
    return out;
  }

  /**
   * The lookup records as this host sees them: one row per switch of this host with provider addresses (local =
   * the record's PA is one of that switch's), or one row with switch null when this host has none.
   */
  recordList(): unknown[] {
    const host = this.info.host;
    const n = this.desiredDoc.network;
    const ours = [...new Set(n.providerAddresses.filter((p) => p.host === host).map((p) => p.switch))];
    const owner = new Map(n.providerAddresses.map((p) => [p.address.split('/')[0]!, p]));
    return n.lookupRecords.flatMap((r): Record<string, unknown>[] => {
      const o = owner.get(r.pa);
      const base = { ca: r.ca, vsid: r.vsid, mac: r.mac, pa: r.pa, rule: r.rule, vm: r.vm, host: o?.host ?? null };
      if (ours.length === 0) return [{ switch: null, ...base, local: false }];
      return ours.map((sw) => ({ switch: sw, ...base, local: o !== undefined && o.host === host && o.switch === sw }));
    });
  }

  /** Every VSID of every virtualized switch: [{switch, ...VsidStatus}]. */
  vsidList(): unknown[] {
    return this.virtualized().flatMap((v) => v.status.vsids.map((x) => ({ switch: v.switch, ...x })));
  }

  /** The PA ARP cache of every virtualized switch: [{switch, ...ArpEntryStatus}]. */
  arpList(): unknown[] {
    return this.virtualized().flatMap((v) => v.status.arp.map((x) => ({ switch: v.switch, ...x })));
  }

  virtualization(s: SwitchSpec): Outcome {
    const rs = this.reconciler.switch(s.name);
    const st = rs?.sw.virtualization() ?? null;
    if (st !== null) return { status: 200, body: st };
    const why = rs === undefined ? 'it is not running'
      : s.uplink === null ? 'it has no uplink'
      : `the network policy gives host ${this.info.host} no provider address on it`;
    return fail(404, `switch ${s.name} has no virtualization policy: ${why}`, 'switch');
  }

  counters(s: SwitchSpec, port?: string): Outcome {
    const rs = this.reconciler.switch(s.name);
    const names = [...(s.uplink === null ? [] : [UPLINK_PORT]), ...s.ports.map((p) => p.name)];
    if (port !== undefined && !names.includes(port)) return fail(404, `switch ${s.name} has no port ${port}`, 'port');
    const ports: Record<string, PortCounters> = {};
    for (const n of names) {
      if (port !== undefined && n !== port) continue;
      const rp = rs?.ports.get(n);
      ports[n] = rs === undefined || rp === undefined ? zeroCounters() : rs.sw.portCounters(rp.id);
    }
    return { status: 200, body: { switch: rs === undefined ? zeroCounters() : rs.sw.switchCounters(), ports } };
  }

  /** A port's ACLs and extended ACLs with hit counters, its connection table, and its ACL drops. */
  acl(s: SwitchSpec, port: string, withConnections = false): Outcome {
    const sp = s.ports.find((p) => p.name === port);
    if (sp === undefined) return fail(404, `switch ${s.name} has no port ${port}${port === UPLINK_PORT ? ' with ACLs (the uplink has none)' : ''}`, 'port');
    const rs = this.reconciler.switch(s.name);
    const rp = rs?.ports.get(port);
    const st = rs === undefined || rp === undefined ? null : rs.sw.portAcl(rp.id, withConnections);
    const c = rs === undefined || rp === undefined ? zeroCounters() : rs.sw.portCounters(rp.id);
    const body = st ?? {
      acls: sp.acls.map((rule, index) => ({ index, rule, frames: 0, bytes: 0 })),
      extendedAcls: sp.extendedAcls.map((rule, index) => ({ index, rule, frames: 0, bytes: 0 })),
      extendedTuples: { in: 0, out: 0 },
      connections: null,
      fragments: null,
    };
    return {
      status: 200,
      body: {
        switch: s.name,
        port,
        ...body,
        drops: Object.fromEntries(ACL_DROPS.map((d) => [d, c.drops[d] ?? 0])),
      },
    };
  }
}
