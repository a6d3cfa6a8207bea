// control/config.ts: the declarative document (DESIGN.md §3): its types, parsing from YAML/JSON, and hand-written
// validation that lists every error with its path and returns a normalized Desired value (network: canonical).

import { isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { assertNever } from '../dataplane/types.js';
import {
  type CustomerRouteSpec, EMPTY_NETWORK, LOOKUP_RULES, type LookupRecordSpec, type LookupRule, type NetworkSpec,
  type ProviderAddressSpec, type ProviderRouteSpec, type RemoteSpec, type RoutingDomainSpec, type SubnetSpec,
  DEFAULT_ROUTER_MAC, VSID_MAX, VSID_MIN,
} from '../virtualization/model.js';
import {
  type Ipv4Prefix,
  type Ipv6Prefix,
  formatIpv4Address,
  formatIpv6Address,
  ipv4PrefixContains,
  ipv6PrefixContains,
  parseIpv4Address,
  parseIpv4Prefix,
  parseIpv6Address,
  parseIpv6Prefix,
} from '../wire/addresses.js';
import { formatMac, isMulticastMac, parseMac } from '../wire/ethernet.js';
import { type AclSpec, checkAcls } from '../policy/acl.js';
import { checkExtendedAcls, type ExtendedAclSpec } from '../policy/extended-acl.js';
import { checkQos, QOS_KEYS, type QosSpec } from '../policy/qos.js';
import { checkPolicy, checkPrivateVlan, checkPrivateVlansAcross, privateVlanDoc } from '../policy/config.js';
import { type PortPolicy, policyDoc } from '../policy/policy.js';
import type { PrivateVlanConfig } from '../policy/pvlan.js';
import { MIRROR_MODES, type MirrorMode } from '../policy/mirror.js';

export { VSID_MAX, VSID_MIN } from '../virtualization/model.js';

export type ConfigError = { readonly path: string; readonly message: string };

export type InterfaceSpec =
  | { readonly tap: string }
  | { readonly veth: string }
  | { readonly internal: true; readonly name?: string };

export type VlanSpec =
  | { readonly mode: 'none' }
  | { readonly mode: 'access'; readonly id: number }
  | { readonly mode: 'trunk'; readonly allowed: readonly number[]; readonly native?: number }
  | PrivateVlanConfig;

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
  /** Port ACLs and extended ACLs (src/policy), normalized; empty lists when none. */
  readonly acls: readonly AclSpec[];
  readonly extendedAcls: readonly ExtendedAclSpec[];
  /** Guards, storm control, 802.1p trust (src/policy); null = none (all defaults). */
  readonly policy: PortPolicy | null;
  /** `policy: { mirror }`: port mirroring (src/policy/mirror.ts); 'none' when absent. */
  readonly mirror: MirrorMode;
  /** QoS keys of the same `policy:` object (src/policy/qos.ts); {} when none. */
  readonly qos: QosSpec;
}

export interface ExtensionSpec {
  readonly name: string;
  /** Absolute path of the module (relative paths are resolved against the document's directory). */
  readonly path: string;
  readonly enabled: boolean;
  readonly config: Readonly<Record<string, unknown>>;
}

/**
 * A switch's external port: `uplink: { interface: up0, offload?: true, tunnelOffload?: false }`.
 * - offload: the switch may send TCP super-frames and partial checksums to the interface (the AF_PACKET socket
 *   always reads them whole, src/io/packet.ts); off, it sends plain frames, segmented and checksummed in software.
 * - tunnelOffload (opt-in; needs offload and kernel 6.18+): VXLAN-rule TCP super-frames cross the underlay whole, as
 *   UDP-tunnel GSO, the way the kernel's own vxlan sends them. xswitchd makes a bridge `xsbr-<hash>` holding the
 *   interface and a TAP `xstx-<hash>` (24-byte virtio-net header, TUN_F_UDP_TUNNEL_GSO) that never receives
 *   (learning and flooding off on that port), writes those frames to the TAP, and the kernel hands them to the
 *   interface's driver, which sends them as they are (tunnel TSO) or segments them. Everything else still goes
 *   through the AF_PACKET socket. The bridge goes away with the option, the switch, or a clean daemon stop (after a
 *   crash it is adopted on restart). While the interface is a bridge port the host's own stack no longer receives
 *   on it: an address the host itself uses belongs elsewhere (xswitch's PAs live in the switch, not on the NIC).
 *
 *     switches:
 *       - name: sw0
 *         uplink: { interface: up0, tunnelOffload: true }
 */
export interface UplinkSpec {
  readonly interface: string;
  readonly offload: boolean;
  readonly tunnelOffload: boolean;
  /** Port mirroring of the external port (`uplink.policy.mirror`, src/policy/mirror.ts); 'none' when absent. With
   *  network virtualization a source uplink copies the customer frames (decapsulated in, before encapsulation
   *  out); a destination uplink gets no copies (its sends belong to the virtualization layer). Absent = none. */
  readonly mirror?: MirrorMode;
  /** `policy:` of the external port: QoS keys only (linkMbps, pcpWeights, maxMbps; src/policy/qos.ts); {} = none. */
  readonly qos: QosSpec;
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
  /** The network virtualization policy (the same section on every host); EMPTY_NETWORK when none. */
  readonly network: NetworkSpec;
}

export type Validated = { ok: true; value: Desired } | { ok: false; errors: ConfigError[] };

/** The external port's name inside a switch with an uplink. */
export const UPLINK_PORT = 'uplink';
export const MAC_LIMIT_MAX = 1_000_000;

export const EMPTY_DESIRED: Desired = { host: null, switches: [], network: EMPTY_NETWORK };

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

/** Keys of the document shape (DESIGN §3) not implemented yet, with the message given instead of "unknown key". */
const NOT_YET: Record<string, string> = {
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
  /** A unicast, non-zero MAC in canonical form ("02:00:00:00:00:0a"), or null (error reported). */
  unicastMac(v: unknown, path: string, what: string): string | null {
    const s = this.string(v, path);
    if (s === null) return null;
    const n = parseMac(s);
    if (n === null) this.err(path, `"${s}" is not a MAC address like 02:00:00:00:00:01`);
    else if (isMulticastMac(n)) this.err(path, `${s} is a multicast/broadcast address: ${what} must be unicast`);
    else if (n === 0) this.err(path, `${s} is the all-zero address`);
    else return formatMac(n);
    return null;
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
  if (mode === 'private') return checkPrivateVlan(v, path, (p, m) => c.err(p, m)) ?? { mode: 'none' };
  c.err(`${path}.mode`, `must be one of none, access, trunk, private, got ${typeName(mode)}`);
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
  if (!c.object(v, path, ['name', 'interface', 'mac', 'vlan', 'vsid', 'offload', 'up', 'macLimit', 'policy', 'acls', 'extendedAcls'])) return null;
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
  if (v['mac'] !== undefined && v['mac'] !== null) mac = c.unicastMac(v['mac'], `${path}.mac`, 'a port MAC');
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
  const acls = checkAcls(v['acls'], `${path}.acls`);
  const extendedAcls = checkExtendedAcls(v['extendedAcls'], `${path}.extendedAcls`);
  for (const e of [...acls.errors, ...extendedAcls.errors]) c.err(e.path, e.message);
  const hasMac = v['mac'] !== undefined && v['mac'] !== null;
  const policy = checkPolicy(v['policy'], `${path}.policy`, hasMac, (p, m) => c.err(p, m));
  const pv = v['policy'];
  const mirror = isRecord(pv) ? checkMirror(c, pv['mirror'], `${path}.policy.mirror`) : 'none';
  const qos = isRecord(pv) ? checkQos(pv, `${path}.policy`) : { value: {}, errors: [] };
  for (const e of qos.errors) c.err(e.path, e.message);
  if (c.errors.length !== before || name === null || iface === null) return null;
  return { name, interface: iface, mac, vlan, vsid, offload, up, macLimit, policy, qos: qos.value, acls: acls.value, extendedAcls: extendedAcls.value, mirror };
}

/** `policy.mirror` of a port or of the uplink: source | destination | none (Hyper-V PortMirroring). */
function checkMirror(c: Checker, m: unknown, path: string): MirrorMode {
  if (m === undefined || m === null) return 'none';
  if (typeof m === 'string' && (MIRROR_MODES as readonly string[]).includes(m)) return m as MirrorMode;
  c.err(path, `must be source, destination or none, got ${typeName(m)}`);
  return 'none';
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
    if (c.object(u, `${path}.uplink`, ['interface', 'offload', 'tunnelOffload', 'policy'])) {
      const ifn = c.ifname(u['interface'], `${path}.uplink.interface`);
      const offload = c.bool(u['offload'], `${path}.uplink.offload`, true);
      const tunnelOffload = c.bool(u['tunnelOffload'], `${path}.uplink.tunnelOffload`, false);
      if (tunnelOffload && !offload) c.err(`${path}.uplink.tunnelOffload`, 'needs offload (super-frames reach the uplink only with offload on)');
      // the uplink's own egress scheduler (linkMbps, 802.1p pcpWeights), cap and mirroring; guards do not apply to it
      let qos: QosSpec = {};
      let mirror: MirrorMode = 'none';
      const pv = u['policy'];
      if (pv !== undefined && pv !== null && c.object(pv, `${path}.uplink.policy`, [...QOS_KEYS, 'mirror'])) {
        const r = checkQos(pv, `${path}.uplink.policy`);
        for (const e of r.errors) c.err(e.path, e.message);
        qos = r.value;
        mirror = checkMirror(c, pv['mirror'], `${path}.uplink.policy.mirror`);
      }
      if (ifn !== null) uplink = { interface: ifn, offload, tunnelOffload, qos, ...(mirror !== 'none' ? { mirror } : {}) };
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
  checkPrivateVlansAcross(ports, `${path}.ports`, (p, m) => c.err(p, m));
  if (c.errors.length !== before || name === null) return null;
  return { name, uplink, extensions, ports };
}

// ---------------------------------------------------------------------------------------------------------
// network: the virtualization policy (DESIGN.md §2). Checked field by field, then across objects, then against
// this document's switches; the value is canonical (addresses via wire/addresses, MACs via formatMac, GUIDs
// braced lower case) and sorted, so the same policy always reads back the same.

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

/** "{11111111-2222-3333-4444-000000000001}" (braces optional, any case) -> canonical braced lower case, or null. */
export function canonicalGuid(s: string): string | null {
  const m = GUID.exec(s);
  if (m === null || s.startsWith('{') !== s.endsWith('}')) return null;
  return `{${m[1]!.toLowerCase()}}`;
}

/** A CA / PA / next hop: an IPv4 address (IPv6 is refused as not supported yet). */
function checkIpv4(c: Checker, v: unknown, path: string, what: string): number | null {
  const s = c.string(v, path);
  if (s === null) return null;
  if (s.includes(':')) {
    c.err(path, `"${s}" is an IPv6 address: IPv6 ${what}s are not supported yet`);
    return null;
  }
  const a = parseIpv4Address(s);
  if (a === null) c.err(path, `"${s}" is not an IPv4 address like 10.0.0.5`);
  return a;
}

/** A network prefix "10.0.0.0/24" (host bits must be zero). */
function checkPrefix(c: Checker, v: unknown, path: string): Ipv4Prefix | null {
  const s = c.string(v, path);
  if (s === null) return null;
  if (s.includes(':')) {
    c.err(path, `"${s}" is an IPv6 prefix: IPv6 is not supported yet`);
    return null;
  }
  if (!s.includes('/')) {
    c.err(path, `"${s}" is not a prefix like 10.0.0.0/24 (needs /LENGTH)`);
    return null;
  }
  const p = parseIpv4Prefix(s, true);
  if (p.ok) return p.value;
  const loose = parseIpv4Prefix(s);
  if (loose.ok) c.err(path, `"${s}" has host bits set (did you mean ${formatIpv4Address(loose.value.addr)}/${loose.value.length}?)`);
  else c.err(path, `"${s}" is not a prefix like 10.0.0.0/24: ${p.reason}`);
  return null;
}

function prefixText(p: Ipv4Prefix): string {
  return `${formatIpv4Address(p.addr)}/${p.length}`;
}

/** An IPv6 CA or gateway: a unicast address (not unspecified, loopback or multicast), canonical bytes. */
function checkIpv6(c: Checker, s: string, path: string): Uint8Array | null {
  const a = parseIpv6Address(s);
  if (a === null) {
    c.err(path, `"${s}" is not an IPv6 address like fd00:1::5`);
    return null;
  }
  const zeroTo15 = a.subarray(0, 15).every((x) => x === 0);
  if (a[0] === 0xff || (zeroTo15 && (a[15] === 0 || a[15] === 1))) {
    c.err(path, `${formatIpv6Address(a)} is not a unicast address`);
    return null;
  }
  return a;
}

/** An IPv6 subnet prefix "fd00:1::/64" (host bits zero, length 1..128). */
function checkPrefix6(c: Checker, v: unknown, path: string): Ipv6Prefix | null {
  const s = c.string(v, path);
  if (s === null) return null;
  if (!s.includes(':')) {
    c.err(path, `"${s}" is not an IPv6 prefix like fd00:1::/64 (an IPv4 prefix goes under prefix)`);
    return null;
  }
  if (!s.includes('/')) {
    c.err(path, `"${s}" is not a prefix like fd00:1::/64 (needs /LENGTH)`);
    return null;
  }
  const p = parseIpv6Prefix(s, true);
  if (p.ok) {
    if (p.value.length === 0) c.err(path, `${s} covers every IPv6 address: a subnet prefix needs a length of 1..128`);
    return p.value.length === 0 ? null : p.value;
  }
  const loose = parseIpv6Prefix(s);
  if (loose.ok) c.err(path, `"${s}" has host bits set (did you mean ${prefix6Text(loose.value)}?)`);
  else c.err(path, `"${s}" is not a prefix like fd00:1::/64: ${p.reason}`);
  return null;
}

function prefix6Text(p: Ipv6Prefix): string {
  return `${formatIpv6Address(p.addr)}/${p.length}`;
}

function overlaps6(a: Ipv6Prefix, b: Ipv6Prefix): boolean {
  return a.length < b.length ? ipv6PrefixContains(a, b.addr) : ipv6PrefixContains(b, a.addr);
}

function overlaps(a: Ipv4Prefix, b: Ipv4Prefix): boolean {
  const mask = a.length < b.length ? a.mask : b.mask;
  return ((a.addr & mask) >>> 0) === ((b.addr & mask) >>> 0);
}

/** A list under network.KEY: [] when absent; null entries are the caller's to report. */
function netList(c: Checker, n: Record<string, unknown>, key: string): unknown[] {
  const v = n[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    c.err(`network.${key}`, `must be a list, got ${typeName(v)}`);
    return [];
  }
  return v;
}

const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const ipNum = (s: string): number => parseIpv4Address(s.split('/')[0]!) ?? 0;

/** What the network cross-checks need of a switch of this document. */
interface SwitchFacts {
  readonly valid: SwitchSpec | null;
}

function checkNetwork(c: Checker, v: unknown, host: string | null, switches: ReadonlyMap<string, SwitchFacts>): NetworkSpec {
  if (v === undefined || v === null) return EMPTY_NETWORK;
  const keys = ['routerMac', 'providerAddresses', 'providerRoutes', 'remotes', 'routingDomains', 'lookupRecords', 'customerRoutes'];
  if (!c.object(v, 'network', keys)) return EMPTY_NETWORK;
  const before = c.errors.length;
  let routerMac = DEFAULT_ROUTER_MAC;
  if (v['routerMac'] !== undefined && v['routerMac'] !== null) routerMac = c.unicastMac(v['routerMac'], 'network.routerMac', 'the router MAC') ?? routerMac;

  // Routing domains and their subnets.
  const routingDomains: RoutingDomainSpec[] = [];
  const rdAt = new Map<string, number>();
  /** vsid -> its subnet, owning RDID and path. */
  const subnetOf = new Map<number, { rdid: string; prefix: Ipv4Prefix | null; prefix6: Ipv6Prefix | null; path: string }>();
  /** Every VSID a subnet names, valid or not (a subnet with errors is not reported again through its records). */
  const mentioned = new Set<number>();
  netList(c, v, 'routingDomains').forEach((raw, k) => {
    const path = `network.routingDomains[${k}]`;
    if (!c.object(raw, path, ['id', 'name', 'subnets'])) return;
    const b = c.errors.length;
    let id: string | null = null;
    const idRaw = c.string(raw['id'], `${path}.id`);
    if (idRaw !== null) {
      id = canonicalGuid(idRaw);
      if (id === null) c.err(`${path}.id`, `"${idRaw}" is not a GUID like {11111111-2222-3333-4444-000000000001}`);
      else if (rdAt.has(id)) {
        c.err(`${path}.id`, `routing domain ${id} is already defined at network.routingDomains[${rdAt.get(id)!}]`);
        id = null;
      } else rdAt.set(id, k);
    }
    let name = '';
    if (raw['name'] !== undefined && raw['name'] !== null) {
      const n = c.string(raw['name'], `${path}.name`);
      if (n !== null && (n.length === 0 || n.length > 64 || /[\u0000-\u001f]/.test(n))) c.err(`${path}.name`, 'must be 1-64 printable characters');
      else if (n !== null) name = n;
    }
    const subnets: SubnetSpec[] = [];
    const prefixes: { p: Ipv4Prefix; path: string }[] = [];
    const prefixes6: { p: Ipv6Prefix; path: string }[] = [];
    netList(c, raw, 'subnets').forEach((sr, j) => {
      const sp = `${path}.subnets[${j}]`;
      if (!c.object(sr, sp, ['vsid', 'prefix', 'gateway', 'prefix6', 'gateway6'])) return;
      const sb = c.errors.length;
      if (typeof sr['vsid'] === 'number') mentioned.add(sr['vsid']);
      const vsid = c.int(sr['vsid'], `${sp}.vsid`, VSID_MIN, VSID_MAX, 'a VSID');
      // A subnet has an IPv4 prefix, an IPv6 prefix (prefix6) or both.
      const has4 = sr['prefix'] !== undefined && sr['prefix'] !== null;
      const has6 = sr['prefix6'] !== undefined && sr['prefix6'] !== null;
      if (!has4 && !has6) c.err(`${sp}.prefix`, 'a subnet needs an IPv4 prefix (prefix), an IPv6 prefix (prefix6) or both');
      let prefix: Ipv4Prefix | null = null;
      if (has4) {
        const ps = sr['prefix'];
        if (typeof ps === 'string' && ps.includes(':')) c.err(`${sp}.prefix`, `"${ps}" is an IPv6 prefix: give it as prefix6 (prefix is the IPv4 prefix)`);
        else prefix = checkPrefix(c, ps, `${sp}.prefix`);
      }
      const prefix6 = has6 ? checkPrefix6(c, sr['prefix6'], `${sp}.prefix6`) : null;
      let gateway: string | null = null;
      if (sr['gateway'] !== undefined && sr['gateway'] !== null) {
        const g = checkIpv4(c, sr['gateway'], `${sp}.gateway`, 'gateway');
        if (g !== null && !has4) c.err(`${sp}.gateway`, 'an IPv4 gateway needs an IPv4 prefix (an IPv6 gateway goes under gateway6)');
        else if (g !== null && prefix !== null && !ipv4PrefixContains(prefix, g)) c.err(`${sp}.gateway`, `${formatIpv4Address(g)} is outside the subnet ${prefixText(prefix)}`);
        else if (g !== null) gateway = formatIpv4Address(g);
      }
      let gateway6: string | null = null;
      if (sr['gateway6'] !== undefined && sr['gateway6'] !== null) {
        const gs = c.string(sr['gateway6'], `${sp}.gateway6`);
        const g = gs === null ? null : checkIpv6(c, gs, `${sp}.gateway6`);
        if (g !== null && !has6) c.err(`${sp}.gateway6`, 'an IPv6 gateway needs an IPv6 prefix (prefix6)');
        else if (g !== null && prefix6 !== null && !ipv6PrefixContains(prefix6, g)) c.err(`${sp}.gateway6`, `${formatIpv6Address(g)} is outside the subnet ${prefix6Text(prefix6)}`);
        else if (g !== null) gateway6 = formatIpv6Address(g);
      }
      const whole = c.errors.length === sb;
      if (vsid !== null) {
        const prev = subnetOf.get(vsid);
        if (prev !== undefined) c.err(`${sp}.vsid`, `VSID ${vsid} is already a subnet at ${prev.path}: a VSID is one subnet`);
        else if (id !== null && whole) subnetOf.set(vsid, { rdid: id, prefix, prefix6, path: sp });
      }
      if (prefix !== null) {
        const o = prefixes.find((x) => overlaps(x.p, prefix));
        if (o !== undefined) c.err(`${sp}.prefix`, `${prefixText(prefix)} overlaps ${prefixText(o.p)} at ${o.path} in the same routing domain`);
        prefixes.push({ p: prefix, path: sp });
      }
      if (prefix6 !== null) {
        const o = prefixes6.find((x) => overlaps6(x.p, prefix6));
        if (o !== undefined) c.err(`${sp}.prefix6`, `${prefix6Text(prefix6)} overlaps ${prefix6Text(o.p)} at ${o.path} in the same routing domain`);
        prefixes6.push({ p: prefix6, path: sp });
      }
      if (vsid === null || !whole) return;
      const spec: SubnetSpec = { vsid, prefix: prefix === null ? null : prefixText(prefix), gateway };
      subnets.push(prefix6 === null ? spec : { ...spec, prefix6: prefix6Text(prefix6), gateway6 });
    });
    if (c.errors.length !== b || id === null) return;
    routingDomains.push({ id, name, subnets: subnets.sort((a, x) => a.vsid - x.vsid) });
  });

  // Provider addresses.
  const providerAddresses: ProviderAddressSpec[] = [];
  /** PA address -> its entry and path. */
  const paAt = new Map<number, { spec: ProviderAddressSpec; path: string }>();
  netList(c, v, 'providerAddresses').forEach((raw, k) => {
    const path = `network.providerAddresses[${k}]`;
    if (!c.object(raw, path, ['host', 'switch', 'address', 'vlan'])) return;
    const b = c.errors.length;
    const h = c.objectName(raw['host'], `${path}.host`);
    const sw = c.objectName(raw['switch'], `${path}.switch`);
    let address: string | null = null;
    let addr: number | null = null;
    const s = c.string(raw['address'], `${path}.address`);
    if (s !== null) {
      if (s.includes(':')) c.err(`${path}.address`, `"${s}" is an IPv6 address: IPv6 provider addresses are not supported yet`);
      else {
        const slash = s.indexOf('/');
        const a = parseIpv4Address(slash < 0 ? s : s.slice(0, slash));
        const p = parseIpv4Prefix(s);
        if (a === null || !p.ok) c.err(`${path}.address`, `"${s}" is not an address with its underlay prefix length like 192.0.2.1/24`);
        else if (a === 0 || a >= 0xe0000000) c.err(`${path}.address`, `${s} is not a unicast address`);
        else {
          addr = a;
          address = `${formatIpv4Address(a)}/${p.value.length}`;
        }
      }
    }
    let vlan = 0;
    if (raw['vlan'] !== undefined && raw['vlan'] !== null && raw['vlan'] !== 0) vlan = c.int(raw['vlan'], `${path}.vlan`, 1, 4094, 'a VLAN id (or 0 for untagged)') ?? 0;
    if (addr !== null) {
      const prev = paAt.get(addr);
      if (prev !== undefined) c.err(`${path}.address`, `${formatIpv4Address(addr)} is already a provider address at ${prev.path}`);
    }
    if (h !== null && sw !== null && host !== null && h === host) {
      const f = switches.get(sw);
      if (f === undefined) c.err(`${path}.switch`, `this host (${host}) has no switch "${sw}"`);
      else if (f.valid !== null && f.valid.uplink === null) c.err(`${path}.switch`, `switch ${sw} has no uplink: a provider address lives on the switch's external port`);
    }
    if (c.errors.length !== b || h === null || sw === null || address === null || addr === null) return;
    const spec = { host: h, switch: sw, address, vlan };
    paAt.set(addr, { spec, path });
    providerAddresses.push(spec);
  });
  const ours = (pa: number): ProviderAddressSpec | null => {
    const e = paAt.get(pa);
    return e !== undefined && host !== null && e.spec.host === host ? e.spec : null;
  };

  // Provider routes.
  const providerRoutes: ProviderRouteSpec[] = [];
  const prAt = new Map<string, string>();
  netList(c, v, 'providerRoutes').forEach((raw, k) => {
    const path = `network.providerRoutes[${k}]`;
    if (!c.object(raw, path, ['host', 'prefix', 'nextHop'])) return;
    const b = c.errors.length;
    const h = c.objectName(raw['host'], `${path}.host`);
    const prefix = checkPrefix(c, raw['prefix'], `${path}.prefix`);
    const nh = checkIpv4(c, raw['nextHop'], `${path}.nextHop`, 'next hop');
    if (h !== null && prefix !== null) {
      const key = `${h} ${prefixText(prefix)}`;
      const prev = prAt.get(key);
      if (prev !== undefined) c.err(`${path}.prefix`, `host ${h} already has a provider route for ${prefixText(prefix)} at ${prev}`);
      else prAt.set(key, path);
    }
    if (c.errors.length !== b || h === null || prefix === null || nh === null) return;
    providerRoutes.push({ host: h, prefix: prefixText(prefix), nextHop: formatIpv4Address(nh) });
  });

  // Remotes with a fixed FlowID.
  const remotes: RemoteSpec[] = [];
  const remAt = new Map<number, string>();
  netList(c, v, 'remotes').forEach((raw, k) => {
    const path = `network.remotes[${k}]`;
    if (!c.object(raw, path, ['pa', 'flowId'])) return;
    const b = c.errors.length;
    const pa = checkIpv4(c, raw['pa'], `${path}.pa`, 'provider address');
    const flowId = c.int(raw['flowId'], `${path}.flowId`, 0, 255, 'an NVGRE FlowID');
    if (pa !== null) {
      const prev = remAt.get(pa);
      if (prev !== undefined) c.err(`${path}.pa`, `${formatIpv4Address(pa)} is already listed at ${prev}`);
      else remAt.set(pa, path);
    }
    if (c.errors.length !== b || pa === null || flowId === null) return;
    remotes.push({ pa: formatIpv4Address(pa), flowId });
  });

  // Lookup records.
  const lookupRecords: LookupRecordSpec[] = [];
  /** "rdid ca" -> path (a CA is unique in its routing domain). */
  const caAt = new Map<string, string>();
  /** PA -> the paths of the records using it, and whether one of them is a rewrite record. */
  const paUse = new Map<number, { path: string; rewrite: boolean }[]>();
  netList(c, v, 'lookupRecords').forEach((raw, k) => {
    const path = `network.lookupRecords[${k}]`;
    if (!c.object(raw, path, ['ca', 'vsid', 'mac', 'pa', 'rule', 'vm'])) return;
    const b = c.errors.length;
    // An IPv4 CA (ca) or an IPv6 CA (ca6): a VM with both has one record for each.
    let ca: number | null = null;
    let ca6: Uint8Array | null = null;
    const caRaw = raw['ca'];
    if (typeof caRaw === 'string' && caRaw.includes(':')) ca6 = checkIpv6(c, caRaw, `${path}.ca`);
    else ca = checkIpv4(c, caRaw, `${path}.ca`, 'CA');
    const caText = ca !== null ? formatIpv4Address(ca) : ca6 !== null ? formatIpv6Address(ca6) : null;
    const vsid = c.int(raw['vsid'], `${path}.vsid`, VSID_MIN, VSID_MAX, 'a VSID');
    const mac = c.unicastMac(raw['mac'], `${path}.mac`, 'a VM MAC');
    const pa = checkIpv4(c, raw['pa'], `${path}.pa`, 'provider address');
    let rule: LookupRule = 'encap';
    if (raw['rule'] !== undefined && raw['rule'] !== null) {
      const r = raw['rule'];
      if (typeof r === 'string' && (LOOKUP_RULES as readonly string[]).includes(r)) rule = r as LookupRule;
      else c.err(`${path}.rule`, `must be one of ${LOOKUP_RULES.join(', ')}, got ${typeName(r)}`);
    }
    let vm: string | null = null;
    if (raw['vm'] !== undefined && raw['vm'] !== null) {
      const s = c.string(raw['vm'], `${path}.vm`);
      if (s !== null) {
        const p = ifnameProblem(s);
        if (p !== null) c.err(`${path}.vm`, `invalid port name: ${p}`);
        else vm = s;
      }
    }
    const sub = vsid === null ? undefined : subnetOf.get(vsid);
    if (vsid !== null && sub === undefined && !mentioned.has(vsid)) {
      c.err(`${path}.vsid`, `VSID ${vsid} is no subnet of any routing domain`);
    }
    if (ca6 !== null && rule === 'rewrite') c.err(`${path}.rule`, `IP rewrite is IPv4-only: the IPv6 CA ${caText!} needs rule encap or vxlan`);
    if (caText !== null && sub !== undefined) {
      let inside = false;
      if (ca !== null) {
        if (sub.prefix === null) c.err(`${path}.ca`, `${caText} is an IPv4 CA but its subnet (VSID ${vsid!}) has no IPv4 prefix`);
        else if (!ipv4PrefixContains(sub.prefix, ca)) c.err(`${path}.ca`, `${caText} is outside its subnet ${prefixText(sub.prefix)} (VSID ${vsid!})`);
        else inside = true;
      } else if (ca6 !== null) {
        if (sub.prefix6 === null) c.err(`${path}.ca`, `${caText} is an IPv6 CA but its subnet (VSID ${vsid!}) has no IPv6 prefix (prefix6)`);
        else if (!ipv6PrefixContains(sub.prefix6, ca6)) c.err(`${path}.ca`, `${caText} is outside its subnet ${prefix6Text(sub.prefix6)} (VSID ${vsid!})`);
        else inside = true;
      }
      if (inside) {
        const key = `${sub.rdid} ${caText}`;
        const prev = caAt.get(key);
        if (prev !== undefined) c.err(`${path}.ca`, `CA ${caText} is already used at ${prev} in routing domain ${sub.rdid}`);
        else caAt.set(key, path);
      }
    }
    if (pa !== null) {
      const uses = paUse.get(pa) ?? [];
      const clash = uses.find((u) => u.rewrite || rule === 'rewrite');
      if (clash !== undefined) c.err(`${path}.pa`, `${formatIpv4Address(pa)} is also the PA of ${clash.path}: an IP rewrite record needs a PA of its own`);
      uses.push({ path, rewrite: rule === 'rewrite' });
      paUse.set(pa, uses);
    }
    if (pa !== null && vm !== null && vsid !== null) {
      const own = ours(pa);
      const f = own === null ? undefined : switches.get(own.switch);
      if (own !== null && f !== undefined && f.valid !== null) {
        const port = f.valid.ports.find((p) => p.name === vm);
        if (port === undefined) c.err(`${path}.vm`, `switch ${own.switch} (owner of PA ${formatIpv4Address(pa)} on this host) has no port "${vm}"`);
        else if (port.vsid !== vsid) c.err(`${path}.vm`, `port ${vm} of switch ${own.switch} is in VSID ${port.vsid === 0 ? 'none (0)' : port.vsid}, the record's VSID is ${vsid}`);
        else if (port.mac !== null && mac !== null && port.mac !== mac) c.err(`${path}.mac`, `${mac} is not the MAC of port ${vm} of switch ${own.switch} (${port.mac})`);
      }
    }
    if (c.errors.length !== b || caText === null || vsid === null || mac === null || pa === null) return;
    lookupRecords.push({ ca: caText, vsid, mac, pa: formatIpv4Address(pa), rule, vm });
  });

  // Customer routes.
  const customerRoutes: CustomerRouteSpec[] = [];
  const crAt = new Map<string, string>();
  netList(c, v, 'customerRoutes').forEach((raw, k) => {
    const path = `network.customerRoutes[${k}]`;
    if (!c.object(raw, path, ['rdid', 'vsid', 'prefix', 'nextHop'])) return;
    const b = c.errors.length;
    let rdid: string | null = null;
    const rs = c.string(raw['rdid'], `${path}.rdid`);
    if (rs !== null) {
      rdid = canonicalGuid(rs);
      if (rdid === null) c.err(`${path}.rdid`, `"${rs}" is not a GUID like {11111111-2222-3333-4444-000000000001}`);
      else if (!rdAt.has(rdid)) {
        c.err(`${path}.rdid`, `unknown routing domain ${rdid}`);
        rdid = null;
      }
    }
    const vsid = c.int(raw['vsid'], `${path}.vsid`, VSID_MIN, VSID_MAX, 'a VSID');
    const sub = vsid === null ? undefined : subnetOf.get(vsid);
    if (vsid !== null && sub === undefined && !mentioned.has(vsid)) c.err(`${path}.vsid`, `VSID ${vsid} is no subnet of any routing domain`);
    else if (sub !== undefined && rdid !== null && sub.rdid !== rdid) c.err(`${path}.vsid`, `VSID ${vsid!} belongs to routing domain ${sub.rdid}, not ${rdid}`);
    if (typeof raw['prefix'] === 'string' && raw['prefix'].includes(':')) {
      // An IPv6 customer route: IPv6 prefix, next hop "::" (on-link) or an IPv6 CA inside a subnet of the domain.
      const p6 = checkPrefix6(c, raw['prefix'], `${path}.prefix`);
      const nhs = c.string(raw['nextHop'], `${path}.nextHop`);
      let nh6: string | null = null;
      if (nhs !== null && !nhs.includes(':')) c.err(`${path}.nextHop`, `"${nhs}" is not an IPv6 address: an IPv6 route needs an IPv6 next hop (:: = on-link)`);
      else if (nhs !== null) {
        const a = parseIpv6Address(nhs);
        if (a === null) c.err(`${path}.nextHop`, `"${nhs}" is not an IPv6 address like fd00:1::5`);
        else if (a.every((x) => x === 0)) nh6 = '::';
        else {
          const u = checkIpv6(c, nhs, `${path}.nextHop`);
          if (u !== null && rdid !== null && ![...subnetOf.values()].some((x) => x.rdid === rdid && x.prefix6 !== null && ipv6PrefixContains(x.prefix6, u))) {
            c.err(`${path}.nextHop`, `${formatIpv6Address(u)} is in no IPv6 subnet of routing domain ${rdid} (:: = on-link)`);
          } else if (u !== null) nh6 = formatIpv6Address(u);
        }
      }
      if (rdid !== null && vsid !== null && p6 !== null) {
        const key = `${rdid} ${vsid} ${prefix6Text(p6)}`;
        const prev = crAt.get(key);
        if (prev !== undefined) c.err(`${path}.prefix`, `the same route is already defined at ${prev}`);
        else crAt.set(key, path);
      }
      if (c.errors.length !== b || rdid === null || vsid === null || p6 === null || nh6 === null) return;
      customerRoutes.push({ rdid, vsid, prefix: prefix6Text(p6), nextHop: nh6 });
      return;
    }
    const prefix = checkPrefix(c, raw['prefix'], `${path}.prefix`);
    const nh = checkIpv4(c, raw['nextHop'], `${path}.nextHop`, 'next hop');
    if (nh !== null && nh !== 0 && rdid !== null) {
      const inside = [...subnetOf.values()].some((x) => x.rdid === rdid && x.prefix !== null && ipv4PrefixContains(x.prefix, nh));
      if (!inside) c.err(`${path}.nextHop`, `${formatIpv4Address(nh)} is in no subnet of routing domain ${rdid} (0.0.0.0 = on-link)`);
    }
    if (rdid !== null && vsid !== null && prefix !== null) {
      const key = `${rdid} ${vsid} ${prefixText(prefix)}`;
      const prev = crAt.get(key);
      if (prev !== undefined) c.err(`${path}.prefix`, `the same route is already defined at ${prev}`);
      else crAt.set(key, path);
    }
    if (c.errors.length !== b || rdid === null || vsid === null || prefix === null || nh === null) return;
    customerRoutes.push({ rdid, vsid, prefix: prefixText(prefix), nextHop: formatIpv4Address(nh) });
  });

  if (c.errors.length !== before) return EMPTY_NETWORK;
  return {
    routerMac,
    providerAddresses: providerAddresses.sort((a, b) => cmpStr(a.host, b.host) || cmpStr(a.switch, b.switch) || ipNum(a.address) - ipNum(b.address)),
    providerRoutes: providerRoutes.sort((a, b) => cmpStr(a.host, b.host) || ipNum(a.prefix) - ipNum(b.prefix) || Number(a.prefix.split('/')[1]) - Number(b.prefix.split('/')[1])),
    remotes: remotes.sort((a, b) => ipNum(a.pa) - ipNum(b.pa)),
    routingDomains: routingDomains.sort((a, b) => cmpStr(a.id, b.id)),
    lookupRecords: lookupRecords.sort((a, b) => a.vsid - b.vsid || Number(a.ca.includes(':')) - Number(b.ca.includes(':')) || ipNum(a.ca) - ipNum(b.ca) || cmpStr(a.ca, b.ca)),
    customerRoutes: customerRoutes.sort((a, b) => cmpStr(a.rdid, b.rdid) || a.vsid - b.vsid || Number(a.prefix.includes(':')) - Number(b.prefix.includes(':')) ||
      ipNum(a.prefix) - ipNum(b.prefix) || cmpStr(a.prefix.split('/')[0]!, b.prefix.split('/')[0]!) || Number(a.prefix.split('/')[1]) - Number(b.prefix.split('/')[1])),
  };
}

export interface ValidateOptions {
  /** The host the document is for when it names none (the daemon's): decides which provider addresses are ours. */
  readonly host?: string;
}

/** Validate a parsed document (from YAML/JSON). Lists every error with its path; never throws. */
export function validateDocument(doc: unknown, opts: ValidateOptions = {}): Validated {
  const c = new Checker();
  if (doc === null || doc === undefined) return { ok: true, value: EMPTY_DESIRED };
  if (!c.object(doc, '', ['host', 'switches', 'network'])) return { ok: false, errors: c.errors };
  let host: string | null = null;
  if (doc['host'] !== undefined && doc['host'] !== null) host = c.objectName(doc['host'], 'host');
  const switches: SwitchSpec[] = [];
  const facts = new Map<string, SwitchFacts>();
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
          if (!facts.has(rn)) facts.set(rn, { valid: x });
        }
        if (x !== null) switches.push(x);
      });
    }
  }
  const hostForNetwork = host ?? (opts.host !== undefined && objectNameProblem(opts.host) === null ? opts.host : null);
  const network = checkNetwork(c, doc['network'], hostForNetwork, facts);
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
  return { ok: true, value: { host, switches, network } };
}

function vlanDoc(v: VlanSpec): Record<string, unknown> {
  switch (v.mode) {
    case 'none': return { mode: 'none' };
    case 'access': return { mode: 'access', id: v.id };
    case 'trunk': return v.native === undefined ? { mode: 'trunk', allowed: [...v.allowed] } : { mode: 'trunk', allowed: [...v.allowed], native: v.native };
    case 'private': return privateVlanDoc(v);
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
  if (p.policy !== null || Object.keys(p.qos).length > 0 || p.mirror !== 'none') {
    o['policy'] = { ...(p.policy !== null ? policyDoc(p.policy) : {}), ...p.qos, ...(p.mirror !== 'none' ? { mirror: p.mirror } : {}) };
  }
  if (p.acls.length > 0) o['acls'] = p.acls.map((r) => ({ ...r }));
  if (p.extendedAcls.length > 0) o['extendedAcls'] = p.extendedAcls.map((r) => ({ ...r }));
  return o;
}

export function extensionDoc(e: ExtensionSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { name: e.name, path: e.path };
  if (!e.enabled) o['enabled'] = false;
  if (Object.keys(e.config).length > 0) o['config'] = e.config;
  return o;
}

export function uplinkDoc(up: UplinkSpec): Record<string, unknown> {
  const u: Record<string, unknown> = { interface: up.interface };
  if (!up.offload) u['offload'] = false;
  if (up.tunnelOffload) u['tunnelOffload'] = true;
  const mirror = up.mirror !== undefined && up.mirror !== 'none' ? { mirror: up.mirror } : {};
  if (Object.keys(up.qos).length > 0 || 'mirror' in mirror) u['policy'] = { ...up.qos, ...mirror };
  return u;
}

export function switchDoc(s: SwitchSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { name: s.name };
  if (s.uplink !== null) o['uplink'] = uplinkDoc(s.uplink);
  if (s.extensions.length > 0) o['extensions'] = s.extensions.map(extensionDoc);
  o['ports'] = s.ports.map(portDoc);
  return o;
}

export function subnetDoc(s: SubnetSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { vsid: s.vsid };
  if (s.prefix !== null) o['prefix'] = s.prefix;
  if (s.gateway !== null) o['gateway'] = s.gateway;
  if (s.prefix6 !== undefined && s.prefix6 !== null) o['prefix6'] = s.prefix6;
  if (s.gateway6 !== undefined && s.gateway6 !== null) o['gateway6'] = s.gateway6;
  return o;
}

export function routingDomainDoc(r: RoutingDomainSpec): Record<string, unknown> {
  return { id: r.id, name: r.name, subnets: r.subnets.map(subnetDoc) };
}

export function providerAddressDoc(p: ProviderAddressSpec): Record<string, unknown> {
  return p.vlan === 0 ? { host: p.host, switch: p.switch, address: p.address } : { host: p.host, switch: p.switch, address: p.address, vlan: p.vlan };
}

export function lookupRecordDoc(r: LookupRecordSpec): Record<string, unknown> {
  const o: Record<string, unknown> = { ca: r.ca, vsid: r.vsid, mac: r.mac, pa: r.pa, rule: r.rule };
  if (r.vm !== null) o['vm'] = r.vm;
  return o;
}

export function isEmptyNetwork(n: NetworkSpec): boolean {
  return n.routerMac === DEFAULT_ROUTER_MAC && n.providerAddresses.length === 0 && n.providerRoutes.length === 0 && n.remotes.length === 0 &&
    n.routingDomains.length === 0 && n.lookupRecords.length === 0 && n.customerRoutes.length === 0;
}

/** The `network:` section for a NetworkSpec (default router MAC and empty optional lists left out). */
export function networkDoc(n: NetworkSpec): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (n.routerMac !== DEFAULT_ROUTER_MAC) o['routerMac'] = n.routerMac;
  o['providerAddresses'] = n.providerAddresses.map(providerAddressDoc);
  if (n.providerRoutes.length > 0) o['providerRoutes'] = n.providerRoutes.map((r) => ({ ...r }));
  if (n.remotes.length > 0) o['remotes'] = n.remotes.map((r) => ({ ...r }));
  o['routingDomains'] = n.routingDomains.map(routingDomainDoc);
  o['lookupRecords'] = n.lookupRecords.map(lookupRecordDoc);
  if (n.customerRoutes.length > 0) o['customerRoutes'] = n.customerRoutes.map((r) => ({ ...r }));
  return o;
}

/** The plain document for a Desired value (defaults left out); validateDocument(toDocument(d)) gives d back. */
export function toDocument(d: Desired): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (d.host !== null) o['host'] = d.host;
  o['switches'] = d.switches.map(switchDoc);
  if (!isEmptyNetwork(d.network)) o['network'] = networkDoc(d.network);
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
