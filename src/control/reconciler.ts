// control/reconciler.ts: diff the desired document against what runs into ordered actions (deletions first) and
// apply them to Switch instances (ports, extensions, then each uplink's virtualization policy); extension modules
// load by path, and a failed apply rolls back to what ran.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Extension, ExtensionFactory, ExtensionKind, Logger } from '../extensions/api.js';
import type { PortBackend } from '../io/backend.js';
import type { ExtensionBinding, PortConfig, SwitchApi } from '../dataplane/switch-api.js';
import { type PortId, assertNever } from '../dataplane/types.js';
import { type TunnelNames, tunnelNames } from './uplink-bridge.js';
import { EMPTY_NETWORK, type HostNetworkInput, type NetworkSpec } from '../virtualization/model.js';
import { parseMac } from '../wire/ethernet.js';
import {
  type ConfigError, type Desired, EMPTY_DESIRED, type ExtensionSpec, type PortSpec, type SwitchSpec, UPLINK_PORT,
  portIfname,
} from './config.js';

/** What the reconciler asks of the host to open a port's back end. */
export interface PortOpenSpec {
  readonly role: 'vm' | 'internal' | 'external';
  /** 'tap': create/attach a TAP by name; 'packet': AF_PACKET on an existing interface (veth end, NIC). */
  readonly backend: 'tap' | 'packet';
  readonly ifname: string;
  readonly offload: boolean;
  /** External port with uplink.tunnelOffload: the bridge and TAP to make (or adopt) for it; null otherwise. */
  readonly tunnel: TunnelNames | null;
}
export type OpenPort = (spec: PortOpenSpec) => PortBackend | { error: string };
export type CreateSwitch = (name: string) => SwitchApi;

/** What the reconciler needs to know of an uplink interface: its MAC and (IP) MTU. */
export interface LinkInfo {
  readonly mac: number;
  readonly mtu: number;
}
export type ReadLink = (ifname: string) => LinkInfo | { error: string };

/** Read /sys/class/net/<ifname>/{address,mtu} (the daemon's own network namespace). */
export const sysfsLink: ReadLink = (ifname) => {
  try {
    const text = readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
    const mac = parseMac(text);
    const mtu = Number(readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8').trim());
    if (mac === null) return { error: `unreadable MAC address "${text}"` };
    if (!Number.isInteger(mtu) || mtu < 68) return { error: 'unreadable MTU' };
    return { mac, mtu };
  } catch (err: unknown) {
    return { error: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such interface in this network namespace' : message(err) };
  }
};

export interface ReconcilerOptions {
  readonly openPort: OpenPort;
  readonly createSwitch: CreateSwitch;
  readonly log?: Logger;
  /** Call sw.start() on new switches (event-loop driven). Default true. */
  readonly start?: boolean;
  /** This host's id: provider addresses of this host are ours (default: the document's host). */
  readonly host?: string;
  /** Uplink MAC and MTU (default sysfsLink). */
  readonly readLink?: ReadLink;
  /** Called once at the start of each apply, before any back end opens (the daemon forgets its namespace list). */
  readonly beforeOpen?: () => void;
}

/** Let a back end go for good: a device this run created is deleted, one it attached to (adopted) stays. */
function discard(b: PortBackend): void {
  if (b.adopted !== undefined && b.detach !== undefined) b.detach();
  else b.close();
}

/** Keep the device: it is re-opened by name later (daemon restart, or the same interface re-added by this plan). */
function keep(b: PortBackend): void {
  if (b.detach !== undefined) b.detach();
  else b.close();
}

/** Whether the plan opens interface `ifname` again (a port re-added with other open settings, or moved). */
function reopens(plan: Plan, ifname: string): boolean {
  return plan.actions.some((x) => x.op === 'add-port' && x.interface === ifname);
}

/** One step of a plan, as shown by `apply --dry-run`. */
export type Action =
  | { readonly op: 'delete-switch'; readonly switch: string }
  | { readonly op: 'remove-port'; readonly switch: string; readonly port: string }
  | { readonly op: 'create-switch'; readonly switch: string }
  | { readonly op: 'set-extensions'; readonly switch: string; readonly order: readonly string[]; readonly enabled: readonly string[] }
  | { readonly op: 'add-port'; readonly switch: string; readonly port: string; readonly interface: string }
  | { readonly op: 'update-port'; readonly switch: string; readonly port: string }
  /** Bind or replace the switch's virtualization policy (its PAs on this host listed). */
  | { readonly op: 'set-virtualization'; readonly switch: string; readonly providerAddresses: readonly string[] }
  | { readonly op: 'clear-virtualization'; readonly switch: string };

interface PreparedExtension {
  readonly spec: ExtensionSpec;
  readonly ext: Extension;
}

/** A desired port with what opening it takes (uplinks included, as external port "uplink"). */
interface PortPlan {
  readonly name: string;
  /** Document path of the port, for errors. */
  readonly path: string;
  readonly open: PortOpenSpec;
  readonly cfg: PortConfig;
  readonly spec: PortSpec | null;
}

export interface Plan {
  readonly desired: Desired;
  readonly actions: readonly Action[];
  /** Per switch, the extension chain in configured order. */
  readonly chains: ReadonlyMap<string, readonly PreparedExtension[]>;
  readonly ports: ReadonlyMap<string, ReadonlyMap<string, PortPlan>>;
  /** Per switch with an uplink: its virtualization input (null = none). */
  readonly virt: ReadonlyMap<string, HostNetworkInput | null>;
}

interface RunningPort {
  readonly id: PortId;
  /** The port's document entry (null for the uplink). */
  spec: PortSpec | null;
  readonly backend: PortBackend;
  readonly open: PortOpenSpec;
  cfg: PortConfig;
  readonly kind: 'vm' | 'internal' | 'external';
}

export interface RunningSwitch {
  readonly name: string;
  readonly sw: SwitchApi;
  readonly ports: Map<string, RunningPort>;
  chain: PreparedExtension[];
  /** The virtualization input the switch runs with (null = none). */
  virt: HostNetworkInput | null;
}

/**
 * A failed apply says what runs now: 'unchanged' (refused before touching anything), 'rolled-back' (back to what
 * ran before), or 'inconsistent' (the rollback failed too: `running` tells what runs).
 */
export type ApplyResult =
  | { ok: true; actions: readonly Action[] }
  | { ok: false; errors: ConfigError[]; state: 'unchanged' | 'rolled-back' | 'inconsistent' };

const KIND_RANK: Record<ExtensionKind, number> = { capture: 0, filter: 1, forwarding: 2 };

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameOpen(a: PortOpenSpec, b: PortOpenSpec): boolean {
  return a.role === b.role && a.backend === b.backend && a.ifname === b.ifname && a.offload === b.offload &&
    (a.tunnel?.bridge ?? null) === (b.tunnel?.bridge ?? null);
}

function isExtension(v: unknown): v is Extension {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (o['kind'] === 'capture') return typeof o['observe'] === 'function';
  if (o['kind'] === 'forwarding') return typeof o['forward'] === 'function';
  return o['kind'] === 'filter';
}

export function portConfig(sp: PortSpec): PortConfig {
  return {
    name: sp.name,
    kind: 'internal' in sp.interface ? 'internal' : 'vm',
    mac: sp.mac === null ? null : parseMac(sp.mac),
    vlan: sp.vlan,
    vsid: sp.vsid,
    up: sp.up,
    macLimit: sp.macLimit,
    ...(sp.acls.length > 0 ? { acls: sp.acls } : {}),
    ...(sp.extendedAcls.length > 0 ? { extendedAcls: sp.extendedAcls } : {}),
    ...(sp.policy !== null ? { policy: sp.policy } : {}),
    ...(sp.mirror !== 'none' ? { mirror: sp.mirror } : {}),
    ...(Object.keys(sp.qos).length > 0 ? { qos: sp.qos } : {}),
  };
}

/** The PAs of (host, switch) in `network`. */
export function providerAddressesOf(network: NetworkSpec, host: string | null, switchName: string): string[] {
  if (host === null) return [];
  return network.providerAddresses.filter((p) => p.host === host && p.switch === switchName).map((p) => p.address);
}

/** `uplinkMtu`: the uplink interface's MTU (the external port then takes underlay frames up to it), if known. */
function portPlans(s: SwitchSpec, si: number, uplinkMtu: number | null): Map<string, PortPlan> {
  const m = new Map<string, PortPlan>();
  if (s.uplink !== null) {
    const cfg: PortConfig = {
      name: UPLINK_PORT, kind: 'external', mac: null, vlan: { mode: 'none' }, vsid: 0, up: true, macLimit: 0,
      ...(s.uplink.mirror !== undefined && s.uplink.mirror !== 'none' ? { mirror: s.uplink.mirror } : {}),
      ...(Object.keys(s.uplink.qos).length > 0 ? { qos: s.uplink.qos } : {}),
    };
    m.set(UPLINK_PORT, {
      name: UPLINK_PORT,
      path: `switches[${si}].uplink`,
      open: {
        role: 'external', backend: 'packet', ifname: s.uplink.interface, offload: s.uplink.offload,
        tunnel: s.uplink.tunnelOffload ? tunnelNames(s.name) : null,
      },
      cfg: uplinkMtu === null ? cfg : { ...cfg, mtu: uplinkMtu },
      spec: null,
    });
  }
  s.ports.forEach((p, pi) => {
    const i = p.interface;
    const role = 'internal' in i ? 'internal' : 'vm';
    m.set(p.name, {
      name: p.name,
      path: `switches[${si}].ports[${pi}]`,
      open: { role, backend: 'veth' in i ? 'packet' : 'tap', ifname: portIfname(s.name, p), offload: p.offload, tunnel: null },
      cfg: portConfig(p),
      spec: p,
    });
  });
  return m;
}

export class Reconciler {
  private readonly switches = new Map<string, RunningSwitch>();
  private readonly factories = new Map<string, ExtensionFactory>();
  private readonly log: Logger | undefined;
  /** The network policy and document host of the last successful apply. */
  private network: NetworkSpec = EMPTY_NETWORK;
  private host: string | null = null;

  constructor(private readonly opts: ReconcilerOptions) {
    this.log = opts.log;
  }

  /** The document that describes what runs now (built from the running switches, so it cannot drift). */
  get running(): Desired {
    const switches: SwitchSpec[] = [];
    for (const rs of this.switches.values()) {
      const up = rs.ports.get(UPLINK_PORT);
      const uplink = up !== undefined && up.spec === null
        ? { interface: up.open.ifname, offload: up.open.offload, tunnelOffload: up.open.tunnel !== null, qos: up.cfg.qos ?? {},
          ...(up.cfg.mirror !== undefined && up.cfg.mirror !== 'none' ? { mirror: up.cfg.mirror } : {}) }
        : null;
      const ports: PortSpec[] = [];
      for (const rp of rs.ports.values()) if (rp.spec !== null) ports.push(rp.spec);
      switches.push({ name: rs.name, uplink, extensions: rs.chain.map((x) => x.spec), ports });
    }
    return switches.length === 0 && this.network === EMPTY_NETWORK ? EMPTY_DESIRED : { host: this.host, switches, network: this.network };
  }

  switch(name: string): RunningSwitch | undefined {
    return this.switches.get(name);
  }

  /** Name of the port with id `id` in switch `sw`. */
  portName(sw: RunningSwitch, id: PortId): string | undefined {
    for (const [name, p] of sw.ports) if (p.id === id) return name;
    return undefined;
  }

  /** Load a module's factory once per absolute path (a module is evaluated once per process anyway). */
  private async factory(path: string): Promise<ExtensionFactory | { error: string }> {
    const cached = this.factories.get(path);
    if (cached !== undefined) return cached;
    let mod: unknown;
    try {
      mod = await import(pathToFileURL(path).href);
    } catch (err: unknown) {
      return { error: `cannot load extension module ${path}: ${message(err)}` };
    }
    const f = typeof mod === 'object' && mod !== null ? (mod as Record<string, unknown>)['default'] : undefined;
    if (typeof f !== 'function') return { error: `extension module ${path} has no default export function (an ExtensionFactory)` };
    const factory = f as ExtensionFactory;
    this.factories.set(path, factory);
    return factory;
  }

  /**
   * Everything that can fail before touching the data path: load extension modules, instantiate changed
   * extensions (factory errors are listed by path), check class order; then compute the ordered actions.
   * Extensions whose path and config are unchanged keep their running instance (and its state).
   */
  async prepare(desired: Desired, reuse: ReadonlyMap<string, readonly PreparedExtension[]> = this.currentChains()): Promise<{ ok: true; plan: Plan } | { ok: false; errors: ConfigError[] }> {
    const errors: ConfigError[] = [];
    const chains = new Map<string, PreparedExtension[]>();
    for (const [si, s] of desired.switches.entries()) {
      const chain: PreparedExtension[] = [];
      const old = reuse.get(s.name) ?? [];
      for (const [ei, e] of s.extensions.entries()) {
        const path = `switches[${si}].extensions[${ei}]`;
        const prev = old.find((o) => o.spec.name === e.name && o.spec.path === e.path && sameJson(o.spec.config, e.config));
        if (prev !== undefined) {
          chain.push({ spec: e, ext: prev.ext });
          continue;
        }
        const f = await this.factory(e.path);
        if ('error' in f) {
          errors.push({ path: `${path}.path`, message: f.error });
          continue;
        }
        let made: unknown;
        try {
          made = f(e.config);
        } catch (err: unknown) {
          errors.push({ path: `${path}.config`, message: `extension "${e.name}" rejected its config: ${message(err)}` });
          continue;
        }
        if (typeof made === 'object' && made !== null && 'error' in made && !('kind' in made)) {
          errors.push({ path: `${path}.config`, message: `extension "${e.name}" rejected its config: ${String((made as { error: unknown }).error)}` });
          continue;
        }
        if (!isExtension(made)) {
          errors.push({ path: `${path}.path`, message: `the factory of ${e.path} did not return an extension (kind capture, filter or forwarding with its hooks)` });
          continue;
        }
        chain.push({ spec: e, ext: made });
      }
      // Class order: capture*, filter*, at most one forwarding, last.
      let forwarding = -1;
      for (let k = 0; k < chain.length; k++) {
        const x = chain[k]!;
        const idx = s.extensions.indexOf(x.spec);
        const path = `switches[${si}].extensions[${idx}]`;
        if (x.ext.kind === 'forwarding') {
          if (forwarding >= 0) errors.push({ path, message: `"${x.spec.name}" is a second forwarding extension (at most one per switch; "${chain[forwarding]!.spec.name}" is one)` });
          else forwarding = k;
        }
        const before = chain[k - 1];
        if (before !== undefined && KIND_RANK[before.ext.kind] > KIND_RANK[x.ext.kind]) {
          errors.push({ path, message: `${x.ext.kind} extension "${x.spec.name}" comes after ${before.ext.kind} extension "${before.spec.name}": order must be capture*, filter*, forwarding` });
        }
      }
      chains.set(s.name, chain);
    }
    if (errors.length > 0) return { ok: false, errors };

    // Uplinks: the interface MTU for the external port, and the virtualization input where this host has PAs.
    const host = this.opts.host ?? desired.host;
    const readLink = this.opts.readLink ?? sysfsLink;
    const ports = new Map<string, Map<string, PortPlan>>();
    const virt = new Map<string, HostNetworkInput | null>();
    desired.switches.forEach((s, si) => {
      let link: LinkInfo | { error: string } | null = null;
      if (s.uplink !== null) {
        try {
          link = readLink(s.uplink.interface);
        } catch (err: unknown) {
          link = { error: message(err) };
        }
        const pas = providerAddressesOf(desired.network, host, s.name);
        if (pas.length === 0) virt.set(s.name, null);
        else if ('error' in link) {
          errors.push({ path: `switches[${si}].uplink.interface`, message: `cannot read the MAC and MTU of ${s.uplink.interface} (needed for provider address ${pas.join(', ')}): ${link.error}` });
        } else {
          virt.set(s.name, { host: host!, switchName: s.name, uplinkMac: link.mac, underlayMtu: link.mtu, network: desired.network });
        }
      }
      ports.set(s.name, portPlans(s, si, link !== null && !('error' in link) ? link.mtu : null));
    });
    if (errors.length > 0) return { ok: false, errors };
    const actions: Action[] = [];
    const wanted = new Map(desired.switches.map((s) => [s.name, s]));
    for (const name of this.switches.keys()) if (!wanted.has(name)) actions.push({ op: 'delete-switch', switch: name });
    for (const [name, rs] of this.switches) {
      const want = ports.get(name);
      if (want === undefined) continue;
      for (const [pn, rp] of rs.ports) {
        const w = want.get(pn);
        if (w === undefined || !sameOpen(w.open, rp.open)) actions.push({ op: 'remove-port', switch: name, port: pn });
      }
    }
    for (const s of desired.switches) if (!this.switches.has(s.name)) actions.push({ op: 'create-switch', switch: s.name });
    for (const s of desired.switches) {
      const chain = chains.get(s.name)!;
      const rs = this.switches.get(s.name);
      const same = rs !== undefined && rs.chain.length === chain.length &&
        rs.chain.every((x, k) => x.ext === chain[k]!.ext && x.spec.enabled === chain[k]!.spec.enabled && x.spec.name === chain[k]!.spec.name);
      if (!same && (rs !== undefined || chain.length > 0)) {
        actions.push({ op: 'set-extensions', switch: s.name, order: chain.map((x) => x.spec.name), enabled: chain.filter((x) => x.spec.enabled).map((x) => x.spec.name) });
      }
    }
    for (const s of desired.switches) {
      const rs = this.switches.get(s.name);
      for (const [pn, w] of ports.get(s.name)!) {
        const rp = rs?.ports.get(pn);
        if (rp === undefined || !sameOpen(w.open, rp.open)) actions.push({ op: 'add-port', switch: s.name, port: pn, interface: w.open.ifname });
      }
    }
    for (const s of desired.switches) {
      const rs = this.switches.get(s.name);
      if (rs === undefined) continue;
      for (const [pn, w] of ports.get(s.name)!) {
        const rp = rs.ports.get(pn);
        if (rp !== undefined && sameOpen(w.open, rp.open) && !sameJson(w.cfg, rp.cfg)) actions.push({ op: 'update-port', switch: s.name, port: pn });
      }
    }
    // Last, with every port in place: the policy (a network change alone is an action too: live record changes).
    for (const s of desired.switches) {
      const want = virt.get(s.name) ?? null;
      const have = this.switches.get(s.name)?.virt ?? null;
      const uplinkNew = actions.some((a) => a.switch === s.name && (a.op === 'create-switch' || (a.op === 'add-port' && a.port === UPLINK_PORT)));
      if (want !== null && (uplinkNew || !sameJson(want, have))) {
        actions.push({ op: 'set-virtualization', switch: s.name, providerAddresses: providerAddressesOf(want.network, want.host, s.name) });
      } else if (want === null && have !== null) {
        actions.push({ op: 'clear-virtualization', switch: s.name });
      }
    }
    return { ok: true, plan: { desired, actions, chains, ports, virt } };
  }

  private currentChains(): Map<string, PreparedExtension[]> {
    const m = new Map<string, PreparedExtension[]>();
    for (const [name, rs] of this.switches) m.set(name, [...rs.chain]);
    return m;
  }

  /** Prepare and apply `desired`; on any failure the data path goes back to what ran before. */
  async reconcile(desired: Desired): Promise<ApplyResult> {
    const p = await this.prepare(desired);
    if (!p.ok) return { ok: false, errors: p.errors, state: 'unchanged' };
    return this.apply(p.plan);
  }

  /** Apply a prepared plan. Nothing changes if a back end cannot be opened; later failures roll back. */
  async apply(plan: Plan, rollback = true): Promise<ApplyResult> {
    const before = this.running;
    const beforeChains = this.currentChains();
    this.opts.beforeOpen?.();
    // Phase 1: open every new back end whose interface no running port holds, before changing anything.
    const held = new Set<string>();
    for (const rs of this.switches.values()) for (const rp of rs.ports.values()) held.add(rp.open.ifname);
    const preopened = new Map<string, PortBackend>();
    const errors: ConfigError[] = [];
    for (const a of plan.actions) {
      if (a.op !== 'add-port') continue;
      const w = plan.ports.get(a.switch)!.get(a.port)!;
      if (held.has(w.open.ifname)) continue;
      const r = this.open(w);
      if ('error' in r) errors.push(r.error);
      else preopened.set(`${a.switch}/${a.port}`, r);
    }
    if (errors.length > 0) {
      for (const b of preopened.values()) discard(b);
      return { ok: false, errors, state: 'unchanged' };
    }
    // Phase 2: the actions in order.
    for (const a of plan.actions) {
      const err = this.step(plan, a, preopened);
      if (err === null) continue;
      for (const [k, b] of preopened) {
        preopened.delete(k);
        discard(b);
      }
      if (!rollback) return { ok: false, errors: [err], state: 'inconsistent' };
      this.log?.warn('apply failed, rolling back', { path: err.path, error: err.message });
      const back = await this.prepare(before, beforeChains);
      const r = back.ok ? await this.apply(back.plan, false) : back;
      if (!r.ok) {
        this.log?.warn('rollback failed', { errors: r.errors });
        return { ok: false, errors: [err, ...r.errors.map((e) => ({ path: e.path, message: `rollback: ${e.message}` }))], state: 'inconsistent' };
      }
      return { ok: false, errors: [err], state: 'rolled-back' };
    }
    this.network = plan.desired.network;
    this.host = plan.desired.host;
    return { ok: true, actions: plan.actions };
  }

  private open(w: PortPlan): PortBackend | { error: ConfigError } {
    const path = `${w.path}.interface`;
    try {
      const r = this.opts.openPort(w.open);
      if ('error' in r && typeof r.error === 'string') return { error: { path, message: `cannot open ${w.open.backend === 'tap' ? 'TAP' : 'AF_PACKET socket on'} ${w.open.ifname}: ${r.error}` } };
      return r as PortBackend;
    } catch (err: unknown) {
      return { error: { path, message: `cannot open ${w.open.ifname}: ${message(err)}` } };
    }
  }

  /** One action; returns the error (with its document path) or null. */
  private step(plan: Plan, a: Action, preopened: Map<string, PortBackend>): ConfigError | null {
    const swPath = `switches[${Math.max(0, plan.desired.switches.findIndex((s) => s.name === a.switch))}]`;
    try {
      switch (a.op) {
        case 'delete-switch': {
          const rs = this.switches.get(a.switch)!;
          this.switches.delete(a.switch);
          rs.sw.stop();
          for (const rp of rs.ports.values()) {
            // before removePort, whose own close() is then a no-op: it would delete a persistent TAP
            if (reopens(plan, rp.open.ifname)) keep(rp.backend);
            else rp.backend.close();
            rs.sw.removePort(rp.id);
          }
          rs.sw.setExtensions([]);
          rs.sw.close();
          this.log?.info('switch deleted', { switch: a.switch });
          return null;
        }
        case 'remove-port': {
          const rs = this.switches.get(a.switch)!;
          const rp = rs.ports.get(a.port)!;
          rs.ports.delete(a.port);
          // Removed for good, its device goes (a persistent TAP too); re-added with other settings, it stays put
          // (in the VM's namespace) and the add attaches to it again. Before removePort, whose close() is then a
          // no-op.
          if (reopens(plan, rp.open.ifname)) keep(rp.backend);
          else rp.backend.close();
          rs.sw.removePort(rp.id);
          this.log?.info('port removed', { switch: a.switch, port: a.port });
          return null;
        }
        case 'create-switch': {
          const sw = this.opts.createSwitch(a.switch);
          this.switches.set(a.switch, { name: a.switch, sw, ports: new Map(), chain: [], virt: null });
          if (this.opts.start !== false) sw.start();
          this.log?.info('switch created', { switch: a.switch });
          return null;
        }
        case 'set-extensions': {
          const rs = this.switches.get(a.switch)!;
          const chain = plan.chains.get(a.switch) ?? [];
          const bindings: ExtensionBinding[] = chain.map((x) => ({ name: x.spec.name, extension: x.ext, enabled: x.spec.enabled }));
          try {
            rs.sw.setExtensions(bindings);
          } catch (err: unknown) {
            return { path: `${swPath}.extensions`, message: `the switch refused the extension chain: ${message(err)}` };
          }
          rs.chain = [...chain];
          this.log?.info('extensions set', { switch: a.switch, order: a.order, enabled: a.enabled });
          return null;
        }
        case 'add-port': {
          const rs = this.switches.get(a.switch)!;
          const w = plan.ports.get(a.switch)!.get(a.port)!;
          const key = `${a.switch}/${a.port}`;
          let backend = preopened.get(key);
          preopened.delete(key);
          if (backend === undefined) {
            const r = this.open(w);
            if ('error' in r) return r.error;
            backend = r;
          }
          let id: PortId;
          try {
            id = rs.sw.addPort(backend, w.cfg);
          } catch (err: unknown) {
            discard(backend);
            return { path: w.path, message: `the switch refused port ${a.port}: ${message(err)}` };
          }
          rs.ports.set(a.port, { id, backend, spec: w.spec, open: w.open, cfg: w.cfg, kind: w.cfg.kind });
          this.log?.info('port added', {
            switch: a.switch, port: a.port, interface: w.open.ifname, backend: w.open.backend, offload: w.open.offload,
            ...(backend.adopted !== undefined ? { reattached: backend.adopted } : {}),
            ...(w.open.tunnel !== null ? { tunnelOffload: w.open.tunnel } : {}),
          });
          return null;
        }
        case 'update-port': {
          const rs = this.switches.get(a.switch)!;
          const rp = rs.ports.get(a.port)!;
          const w = plan.ports.get(a.switch)!.get(a.port)!;
          try {
            rs.sw.updatePort(rp.id, w.cfg);
          } catch (err: unknown) {
            return { path: w.path, message: `the switch refused the new config of port ${a.port}: ${message(err)}` };
          }
          rp.cfg = w.cfg;
          rp.spec = w.spec;
          this.log?.info('port updated', { switch: a.switch, port: a.port });
          return null;
        }
        case 'set-virtualization':
        case 'clear-virtualization': {
          const rs = this.switches.get(a.switch)!;
          const input = a.op === 'set-virtualization' ? plan.virt.get(a.switch) ?? null : null;
          try {
            rs.sw.setVirtualization(input);
          } catch (err: unknown) {
            return { path: 'network', message: `switch ${a.switch} refused the network policy: ${message(err)}` };
          }
          rs.virt = input;
          if (input === null) this.log?.info('virtualization removed', { switch: a.switch });
          else this.log?.info('virtualization set', { switch: a.switch, providerAddresses: a.op === 'set-virtualization' ? a.providerAddresses : [], underlayMtu: input.underlayMtu });
          return null;
        }
        default:
          return assertNever(a);
      }
    } catch (err: unknown) {
      return { path: swPath, message: `${a.op} ${a.switch} failed: ${message(err)}` };
    }
  }

  /**
   * Re-enable an extension the switch disabled after repeated faults (its configured state is already enabled):
   * the switch clears a fault-disable on an explicit false -> true. Returns whether it was fault-disabled.
   */
  clearFault(switchName: string, extName: string): boolean {
    const rs = this.switches.get(switchName);
    if (rs === undefined) return false;
    const st = rs.sw.extensions().find((e) => e.name === extName);
    if (st === undefined || st.disabledReason === null) return false;
    const bindings = (off: boolean): ExtensionBinding[] => rs.chain.map((x) => ({
      name: x.spec.name, extension: x.ext, enabled: x.spec.name === extName ? !off && x.spec.enabled : x.spec.enabled,
    }));
    rs.sw.setExtensions(bindings(true));
    rs.sw.setExtensions(bindings(false));
    this.log?.info('extension re-enabled after faults', { switch: switchName, extension: extName, reason: st.disabledReason });
    return true;
  }

  /** Close every port and switch (daemon shutdown): devices that can outlive us (persistent TAPs) stay. */
  close(): void {
    for (const [name, rs] of this.switches) {
      try {
        rs.sw.stop();
        for (const rp of rs.ports.values()) {
          keep(rp.backend); // before removePort, which would close() (delete) it
          rs.sw.removePort(rp.id);
        }
        rs.sw.setExtensions([]);
        rs.sw.close();
      } catch (err: unknown) {
        this.log?.warn('error while closing switch', { switch: name, error: message(err) });
      }
    }
    this.switches.clear();
  }
}
