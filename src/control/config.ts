// control/config.ts: the declarative document (DESIGN.md §3, issue-2 subset): its types, parsing from YAML/JSON,
// and hand-written validation that lists every error with its path and returns a normalized Desired value.

import { isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { assertNever } from '../dataplane/types.js';
import { formatMac, isMulticastMac, parseMac } from '../wire/ethernet.js';

export type ConfigError = { readonly path: string; readonly message: string };

export type InterfaceSpec =
  | { readonly tap: string }
  | { readonly veth: string }
  | { readonly internal: true; readonly name?: string };

export type VlanSpec =
  | { readonly mode: 'none' }
  | { readonly mode: 'access'; readonly id: number }
  | { readonly mode: 'trunk'; readonly allowed: readonly number[]; readonly native?: number };

/** A port after validation: every default filled in. */
export interface PortSpec {
  readonly name: string;
  readonly interface: InterfaceSpec;
  /** Normalized "02:00:00:00:00:01", or null. */
  readonly mac: string | null;
  readonly vlan: VlanSpec;
  /** 0 = no virtual subnet. */
  readonly vsid: number;
  readonly offload: boolean;
  readonly up: boolean;
  /** 0 = switch default. */
  readonly macLimit: number;
}

export interface ExtensionSpec {
  readonly name: string;
  /** Absolute path of the module (relative paths are resolved against the document's directory). */
  readonly path: string;
  readonly enabled: boolean;
  readonly config: Readonly<Record<string, unknown>>;
}

export interface UplinkSpec {
  readonly interface: string;
  readonly offload: boolean;
}

export interface SwitchSpec {
  readonly name: string;
  readonly uplink: UplinkSpec | null;
  /** Configured order = ingress order. */
  readonly extensions: readonly ExtensionSpec[];
  readonly ports: readonly PortSpec[];
}

/** The whole desired state of one host. */
export interface Desired {
  readonly host: string | null;
  readonly switches: readonly SwitchSpec[];
}

export type Validated = { ok: true; value: Desired } | { ok: false; errors: ConfigError[] };

/** The external port's name inside a switch with an uplink. */
export const UPLINK_PORT = 'uplink';
export const VSID_MIN = 4096;
export const VSID_MAX = 16777214;
export const MAC_LIMIT_MAX = 1_000_000;

export const EMPTY_DESIRED: Desired = { host: null, switches: [] };

/** Name of the TAP an internal port opens when it names none. */
export function internalIfname(switchName: string, port: PortSpec): string {
  const i = port.interface;
  return 'internal' in i ? (i.name ?? `${switchName}-int`) : '';
}

/** The Linux interface a port's back end opens. */
export function portIfname(switchName: string, port: PortSpec): string {
  const i = port.interface;
  if ('tap' in i) return i.tap;
  if ('veth' in i) return i.veth;
  return i.name ?? `${switchName}-int`;
}

/** Why `s` is not a valid Linux interface name (dev_valid_name), or null. */
export function ifnameProblem(s: string): string | null {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 15) return `"${s}" is longer than 15 characters (Linux IFNAMSIZ)`;
  if (s === '.' || s === '..') return `"${s}" is not a valid interface name`;
  if (/[/:\s]/.test(s)) return `"${s}" contains '/', ':' or whitespace`;
  return null;
}

const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
/** Why `s` is not a valid switch or extension name (it appears in store keys and URLs), or null. */
export function objectNameProblem(s: string): string | null {
  return OBJECT_NAME.test(s) ? null : `"${s}" must be 1-32 characters of letters, digits, '_', '.', '-' (starting with a letter or digit)`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rawName(v: unknown): string | null {
  return isRecord(v) && typeof v['name'] === 'string' ? v['name'] : null;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

const NOT_YET: Record<string, string> = {
  network: 'network virtualization (network:) is reserved and not supported yet',
  policy: 'port policy (QoS, guards, mirroring) is not supported yet',
  acls: 'port ACLs are not supported yet',
};

class Checker {
  readonly errors: ConfigError[] = [];
  err(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  /** Reject keys outside `allowed`; returns false when `v` is not an object at all. */
  object(v: unknown, path: string, allowed: readonly string[]): v is Record<string, unknown> {
    if (!isRecord(v)) {
      this.err(path, `must be an object, got ${typeName(v)}`);
      return false;
    }
    for (const k of Object.keys(v)) {
      if (allowed.includes(k)) continue;
      const p = path === '' ? k : `${path}.${k}`;
      this.err(p, NOT_YET[k] ?? `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
    }
    return true;
  }
  string(v: unknown, path: string): string | null {
    if (typeof v === 'string') return v;
    this.err(path, `must be a string, got ${typeName(v)}`);
    return null;
  }
  bool(v: unknown, path: string, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (typeof v === 'boolean') return v;
    this.err(path, `must be true or false, got ${typeName(v)}`);
    return dflt;
  }
  int(v: unknown, path: string, lo: number, hi: number, what = 'an integer'): number | null {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.err(path, `must be ${what} ${lo}..${hi}, got ${typeName(v)}`);
      return null;
    }
    if (v < lo || v > hi) {
      this.err(path, `must be ${what} ${lo}..${hi}, got ${v}`);
      return null;
    }
    return v;
  }
  ifname(v: unknown, path: string): string | null {
    const s = this.string(v, path);
    if (s === null) return null;
    const p = ifnameProblem(s);
    if (p !== null) {
      this.err(path, `invalid interface name: ${p}`);
      return null;
    }
    return s;
  }
  objectName(v: unknown, path: string): string | null {
    const s = this.string(v, path);
    if (s === null) return null;
    const p = objectNameProblem(s);
    if (p !== null) {
      this.err(path, `invalid name: ${p}`);
      return null;
    }
    return s;
  }
}

function vlanId(c: Checker, v: unknown, path: string): number | null {
  return c.int(v, path, 1, 4094, 'a VLAN id');
}

function checkVlan(c: Checker, v: unknown, path: string): VlanSpec {
  if (v === undefined || v === null) return { mode: 'none' };
  if (!isRecord(v)) {
    c.err(path, `must be an object like { mode: access, id: 10 }, got ${typeName(v)}`);
    return { mode: 'none' };
  }
  const mode = v['mode'];
  if (mode === 'none') {
    c.object(v, path, ['mode']);
    return { mode: 'none' };
  }
  if (mode === 'access') {
    c.object(v, path, ['mode', 'id']);
    const id = vlanId(c, v['id'], `${path}.id`);
    return { mode: 'access', id: id ?? 1 };
  }
  if (mode === 'trunk') {
    c.object(v, path, ['mode', 'allowed', 'native']);
    const allowedRaw = v['allowed'];
    const allowed: number[] = [];
    if (!Array.isArray(allowedRaw) || allowedRaw.length === 0) {
      c.err(`${path}.allowed`, `must be a non-empty list of VLAN ids, got ${Array.isArray(allowedRaw) ? 'an empty list' : typeName(allowedRaw)}`);
    } else {
      allowedRaw.forEach((a, k) => {
        const id = vlanId(c, a, `${path}.allowed[${k}]`);
        if (id === null) return;
        if (allowed.includes(id)) c.err(`${path}.allowed[${k}]`, `VLAN ${id} is listed twice`);
        else allowed.push(id);
      });
    }
    if (v['native'] === undefined) return { mode: 'trunk', allowed };
    const native = vlanId(c, v['native'], `${path}.native`);
    if (native !== null && Array.isArray(allowedRaw) && allowed.length > 0 && !allowed.includes(native)) {
      c.err(`${path}.native`, `native VLAN ${native} is not in the allowed list`);
    }
    return native === null ? { mode: 'trunk', allowed } : { mode: 'trunk', allowed, native };
  }
  c.err(`${path}.mode`, `must be one of none, access, trunk, got ${typeName(mode)}`);
  return { mode: 'none' };
}

function checkInterface(c: Checker, v: unknown, path: string): InterfaceSpec | null {
  if (!isRecord(v)) {
    c.err(path, `must be one of { tap: IFNAME }, { veth: IFNAME }, { internal: true, name?: IFNAME }, got ${typeName(v)}`);
    return null;
  }
  const kinds = ['tap', 'veth', 'internal'].filter((k) => k in v);
  if (kinds.length !== 1) {
    c.err(path, kinds.length === 0
      ? `needs one of tap, veth, internal (got keys: ${Object.keys(v).join(', ') || 'none'})`
      : `has ${kinds.join(' and ')}: choose one`);
    c.object(v, path, ['tap', 'veth', 'internal', 'name']);
    return null;
  }
  const kind = kinds[0]!;
  if (kind === 'tap') {
    c.object(v, path, ['tap']);
    const n = c.ifname(v['tap'], `${path}.tap`);
    return n === null ? null : { tap: n };
  }
  if (kind === 'veth') {
    c.object(v, path, ['veth']);
    const n = c.ifname(v['veth'], `${path}.veth`);
    return n === null ? null : { veth: n };
  }
  c.object(v, path, ['internal', 'name']);
  if (v['internal'] !== true) c.err(`${path}.internal`, `must be true, got ${typeName(v['internal'])}`);
  if (v['name'] === undefined) return { internal: true };
  const n = c.ifname(v['name'], `${path}.name`);
  return n === null ? null : { internal: true, name: n };
}

function checkPort(c: Checker, v: unknown, path: string): PortSpec | null {
  if (!c.object(v, path, ['name', 'interface', 'mac', 'vlan', 'vsid', 'offload', 'up', 'macLimit'])) return null;
  const before = c.errors.length;
  const nameRaw = c.string(v['name'], `${path}.name`);
  let name: string | null = null;
  if (nameRaw !== null) {
    const p = ifnameProblem(nameRaw);
    if (p !== null) c.err(`${path}.name`, `invalid port name: ${p}`);
    else name = nameRaw;
  }
  const iface = checkInterface(c, v['interface'], `${path}.interface`);
  let mac: string | null = null;
  if (v['mac'] !== undefined && v['mac'] !== null) {
    const s = c.string(v['mac'], `${path}.mac`);
    if (s !== null) {
      const n = parseMac(s);
      if (n === null) c.err(`${path}.mac`, `"${s}" is not a MAC address like 02:00:00:00:00:01`);
      else if (isMulticastMac(n)) c.err(`${path}.mac`, `${s} is a multicast/broadcast address: a port MAC must be unicast`);
      else if (n === 0) c.err(`${path}.mac`, `${s} is the all-zero address`);
      else mac = formatMac(n);
    }
  }
  const vlan = checkVlan(c, v['vlan'], `${path}.vlan`);
  let vsid = 0;
  if (v['vsid'] !== undefined && v['vsid'] !== 0) {
    const n = c.int(v['vsid'], `${path}.vsid`, VSID_MIN, VSID_MAX, 'a VSID (or 0 for none)');
    if (n !== null) vsid = n;
  }
  const offload = c.bool(v['offload'], `${path}.offload`, true);
  const up = c.bool(v['up'], `${path}.up`, true);
  let macLimit = 0;
  if (v['macLimit'] !== undefined) macLimit = c.int(v['macLimit'], `${path}.macLimit`, 0, MAC_LIMIT_MAX) ?? 0;
  if (c.errors.length !== before || name === null || iface === null) return null;
  return { name, interface: iface, mac, vlan, vsid, offload, up, macLimit };
}

function checkExtension(c: Checker, v: unknown, path: string): ExtensionSpec | null {
  if (!c.object(v, path, ['name', 'path', 'enabled', 'config'])) return null;
  const before = c.errors.length;
  const name = c.objectName(v['name'], `${path}.name`);
  const p = c.string(v['path'], `${path}.path`);
  if (p !== null && p.length === 0) c.err(`${path}.path`, 'must not be empty');
  else if (p !== null && !isAbsolute(p)) c.err(`${path}.path`, `"${p}" must be absolute here (xsctl resolves paths relative to the document)`);
  const enabled = c.bool(v['enabled'], `${path}.enabled`, true);
  let config: Record<string, unknown> = {};
  if (v['config'] !== undefined && v['config'] !== null) {
    if (!isRecord(v['config'])) c.err(`${path}.config`, `must be an object, got ${typeName(v['config'])}`);
    else config = v['config'];
  }
  if (c.errors.length !== before || name === null || p === null) return null;
  return { name, path: p, enabled, config };
}

function checkSwitch(c: Checker, v: unknown, path: string): SwitchSpec | null {
  if (!c.object(v, path, ['name', 'uplink', 'extensions', 'ports'])) return null;
  const before = c.errors.length;
  const name = c.objectName(v['name'], `${path}.name`);
  let uplink: UplinkSpec | null = null;
  if (v['uplink'] !== undefined && v['uplink'] !== null) {
    const u = v['uplink'];
    if (c.object(u, `${path}.uplink`, ['interface', 'offload'])) {
      const ifn = c.ifname(u['interface'], `${path}.uplink.interface`);
      const offload = c.bool(u['offload'], `${path}.uplink.offload`, true);
      if (ifn !== null) uplink = { interface: ifn, offload };
    }
  }
  const extensions: ExtensionSpec[] = [];
  const extsRaw = v['extensions'];
  if (extsRaw !== undefined && extsRaw !== null) {
    if (!Array.isArray(extsRaw)) c.err(`${path}.extensions`, `must be a list, got ${typeName(extsRaw)}`);
    else {
      const seen = new Map<string, number>();
      extsRaw.forEach((e, k) => {
        const x = checkExtension(c, e, `${path}.extensions[${k}]`);
        const raw = rawName(e);
        if (raw !== null) {
          const prev = seen.get(raw);
          if (prev !== undefined) c.err(`${path}.extensions[${k}].name`, `extension "${raw}" is already defined at ${path}.extensions[${prev}]`);
          else seen.set(raw, k);
        }
        if (x !== null) extensions.push(x);
      });
    }
  }
  const ports: PortSpec[] = [];
  const portsRaw = v['ports'];
  if (portsRaw !== undefined && portsRaw !== null) {
    if (!Array.isArray(portsRaw)) c.err(`${path}.ports`, `must be a list, got ${typeName(portsRaw)}`);
    else {
      const seen = new Map<string, number>();
      portsRaw.forEach((p, k) => {
        const x = checkPort(c, p, `${path}.ports[${k}]`);
        const raw = rawName(p);
        if (raw !== null) {
          const prev = seen.get(raw);
          if (prev !== undefined) c.err(`${path}.ports[${k}].name`, `port "${raw}" is already defined at ${path}.ports[${prev}]`);
          else if (uplink !== null && raw === UPLINK_PORT) c.err(`${path}.ports[${k}].name`, `"${UPLINK_PORT}" is the name of the switch's external port`);
          else seen.set(raw, k);
        }
        if (x === null) return;
        if (name !== null && 'internal' in x.interface && x.interface.name === undefined) {
          const p2 = ifnameProblem(`${name}-int`);
          if (p2 !== null) c.err(`${path}.ports[${k}].interface.name`, `default internal TAP name ${p2}: give a name`);
        }
        ports.push(x);
      });
    }
  }
  if (c.errors.length !== before || name === null) return null;
  return { name, uplink, extensions, ports };
}

/** Validate a parsed document (from YAML/JSON). Lists every error with its path; never throws. */
export function validateDocument(doc: unknown): Validated {
  const c = new Checker();
  if (doc === null || doc === undefined) return { ok: true, value: EMPTY_DESIRED };
  if (!c.object(doc, '', ['host', 'switches'])) return { ok: false, errors: c.errors };
  let host: string | null = null;
  if (doc['host'] !== undefined && doc['host'] !== null) host = c.objectName(doc['host'], 'host');
  const switches: SwitchSpec[] = [];
  const raw = doc['switches'];
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw)) c.err('switches', `must be a list, got ${typeName(raw)}`);
    else {
      const seen = new Map<string, number>();
      raw.forEach((s, k) => {
        const x = checkSwitch(c, s, `switches[${k}]`);
        const rn = rawName(s);
        if (rn !== null) {
          const prev = seen.get(rn);
          if (prev !== undefined) c.err(`switches[${k}].name`, `switch "${rn}" is already defined at switches[${prev}]`);
          else seen.set(rn, k);
        }
        if (x !== null) switches.push(x);
      });
    }
  }
  // Interface names are host-wide: one TAP/veth/NIC serves one port of one switch.
  const owners = new Map<string, string>();
  const claim = (ifname: string, path: string): void => {
    const prev = owners.get(ifname);
    if (prev !== undefined) c.err(path, `interface "${ifname}" is already used at ${prev}`);
    else owners.set(ifname, path);
  };
  if (Array.isArray(raw)) {
    raw.forEach((s, k) => {
      if (!isRecord(s)) return;
      const sname = typeof s['name'] === 'string' ? s['name'] : '';
      const u = s['uplink'];
      if (isRecord(u) && typeof u['interface'] === 'string') claim(u['interface'], `switches[${k}].uplink.interface`);
      const ps = s['ports'];
      if (!Array.isArray(ps)) return;
      ps.forEach((p, j) => {
        if (!isRecord(p) || !isRecord(p['interface'])) return;
        const i = p['interface'];
        const base = `switches[${k}].ports[${j}].interface`;
        if (typeof i['tap'] === 'string') claim(i['tap'], `${base}.tap`);
        else if (typeof i['veth'] === 'string') claim(i['veth'], `${base}.veth`);
        else if (i['internal'] === true) claim(typeof i['name'] === 'string' ? i['name'] : `${sname}-int`, `${base}${typeof i['name'] === 'string' ? '.name' : ''}`);
      });
    });
  }
  if (c.errors.length > 0) return { ok: false, errors: c.errors };
  return { ok: true, value: { host, switches } };
}

function vlanDoc(v: VlanSpec): Record<string, unknown> {
  switch (v.mode) {
    case 'none': return { mode: 'none' };
    case 'access': return { mode: 'access', id: v.id };
    case 'trunk': return v.native === undefined ? { mode: 'trunk', allowed: [...v.allowed] } : { mode: 'trunk', allowed: [...v.allowed], native: v.native };
    default: return assertNever(v);
  }
}

export function portDoc(p: PortSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { name: p.name, interface: { ...p.interface } };
  if (p.mac !== null) o['mac'] = p.mac;
  if (p.vlan.mode !== 'none') o['vlan'] = vlanDoc(p.vlan);
  if (p.vsid !== 0) o['vsid'] = p.vsid;
  if (!p.offload) o['offload'] = false;
  if (!p.up) o['up'] = false;
  if (p.macLimit !== 0) o['macLimit'] = p.macLimit;
  return o;
}

export function extensionDoc(e: ExtensionSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { name: e.name, path: e.path };
  if (!e.enabled) o['enabled'] = false;
  if (Object.keys(e.config).length > 0) o['config'] = e.config;
  return o;
}

export function switchDoc(s: SwitchSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { name: s.name };
  if (s.uplink !== null) o['uplink'] = s.uplink.offload ? { interface: s.uplink.interface } : { ...s.uplink };
  if (s.extensions.length > 0) o['extensions'] = s.extensions.map(extensionDoc);
  o['ports'] = s.ports.map(portDoc);
  return o;
}

/** The plain document for a Desired value (defaults left out); validateDocument(toDocument(d)) gives d back. */
export function toDocument(d: Desired): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (d.host !== null) o['host'] = d.host;
  o['switches'] = d.switches.map(switchDoc);
  return o;
}

/** Parse YAML or JSON text (JSON is YAML). Never throws. */
export function parseDocumentText(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    if (doc.errors.length > 0) return { ok: false, error: doc.errors.map((e) => e.message).join('\n') };
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (err: unknown) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Resolve every relative `switches[*].extensions[*].path` against `baseDir`, in place on a raw (unvalidated)
 * document. Leaves anything malformed for validateDocument to report.
 */
export function resolveExtensionPaths(doc: unknown, baseDir: string): void {
  if (!isRecord(doc) || !Array.isArray(doc['switches'])) return;
  for (const s of doc['switches']) {
    if (!isRecord(s) || !Array.isArray(s['extensions'])) continue;
    for (const e of s['extensions']) {
      if (isRecord(e) && typeof e['path'] === 'string' && e['path'] !== '' && !isAbsolute(e['path'])) {
        e['path'] = resolve(baseDir, e['path']);
      }
    }
  }
}
