// policy/config.ts: validation of a port's `policy:` object and of a private VLAN (`vlan: { mode: private }`) in
// the declarative document. Called by control/config.ts with its error sink; every error carries its path.

import { QOS_KEYS } from './qos.js';
import { DEFAULT_POLICY, POLICY_KEYS, POLICY_NOT_YET, STORM_LIMIT_MAX, type PortPolicy } from './policy.js';
import { PRIVATE_VLAN_TYPES, type PrivateVlanConfig, type PrivateVlanType } from './pvlan.js';

export type ErrorSink = (path: string, message: string) => void;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function unknownKeys(v: Record<string, unknown>, path: string, allowed: readonly string[], err: ErrorSink, notYet: Readonly<Record<string, string>> = {}): void {
  for (const k of Object.keys(v)) {
    if (allowed.includes(k)) continue;
    err(`${path}.${k}`, notYet[k] ?? `unknown key "${k}" (allowed: ${allowed.join(', ')})`);
  }
}

function bool(v: unknown, path: string, dflt: boolean, err: ErrorSink): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  err(path, `must be true or false, got ${typeName(v)}`);
  return dflt;
}

/**
 * A port's `policy:` (null/absent = none). `hasMac`: whether the port has a `mac` (MAC spoofing guard needs it: a
 * port whose MAC the switch does not know has nothing to compare a source with, and locking whatever MAC comes
 * first would let the first frame, possibly a spoofed one, decide). Returns the normalized policy, or null when
 * there is none or it is all defaults.
 */
export function checkPolicy(v: unknown, path: string, hasMac: boolean, err: ErrorSink): PortPolicy | null {
  if (v === undefined || v === null) return null;
  if (!isRecord(v)) {
    err(path, `must be an object like { dhcpGuard: true, routerGuard: true, macSpoofing: false, stormLimit: 1000 }, got ${typeName(v)}`);
    return null;
  }
  // mirror: checked by control/config.ts; QoS keys: checkQos (qos.ts)
  unknownKeys(v, path, [...POLICY_KEYS, ...QOS_KEYS, 'mirror'], err, POLICY_NOT_YET);
  const dhcpGuard = bool(v['dhcpGuard'], `${path}.dhcpGuard`, DEFAULT_POLICY.dhcpGuard, err);
  const routerGuard = bool(v['routerGuard'], `${path}.routerGuard`, DEFAULT_POLICY.routerGuard, err);
  const macSpoofing = bool(v['macSpoofing'], `${path}.macSpoofing`, DEFAULT_POLICY.macSpoofing, err);
  const trustPriority = bool(v['trustPriority'], `${path}.trustPriority`, DEFAULT_POLICY.trustPriority, err);
  let stormLimit = DEFAULT_POLICY.stormLimit;
  const s = v['stormLimit'];
  if (s !== undefined && s !== null) {
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > STORM_LIMIT_MAX) {
      err(`${path}.stormLimit`, `must be frames per second, an integer 0..${STORM_LIMIT_MAX} (0 = no limit), got ${typeName(s)}`);
    } else {
      stormLimit = s;
    }
  }
  if (!macSpoofing && !hasMac) {
    err(`${path}.macSpoofing`, "false needs the port's mac (the MAC spoofing guard compares each source MAC with it): add mac to the port");
  }
  const p: PortPolicy = { dhcpGuard, routerGuard, macSpoofing, stormLimit, trustPriority };
  for (const k of POLICY_KEYS) if (p[k] !== DEFAULT_POLICY[k]) return p;
  return null;
}

function vlanId(v: unknown, path: string, err: ErrorSink): number | null {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4094) return v;
  err(path, `must be a VLAN id 1..4094, got ${typeName(v)}`);
  return null;
}

/** `vlan: { mode: private, primary: 10, type: isolated|community|promiscuous, secondary: 11 | [11, 12] }`. */
export function checkPrivateVlan(v: Record<string, unknown>, path: string, err: ErrorSink): PrivateVlanConfig | null {
  unknownKeys(v, path, ['mode', 'primary', 'secondary', 'type'], err);
  const primary = vlanId(v['primary'], `${path}.primary`, err);
  const t = v['type'];
  let type: PrivateVlanType | null = null;
  if (typeof t === 'string' && (PRIVATE_VLAN_TYPES as readonly string[]).includes(t)) type = t as PrivateVlanType;
  else err(`${path}.type`, `must be one of ${PRIVATE_VLAN_TYPES.join(', ')}, got ${typeName(t)}`);
  const secondary: number[] = [];
  const raw = v['secondary'];
  if (type === 'promiscuous') {
    // Hyper-V's SecondaryVlanIdList: the communities / isolated VLANs this port serves; absent = all of them
    if (raw !== undefined && raw !== null) {
      const list = Array.isArray(raw) ? raw : [raw];
      list.forEach((x, k) => {
        const p = Array.isArray(raw) ? `${path}.secondary[${k}]` : `${path}.secondary`;
        const id = vlanId(x, p, err);
        if (id === null) return;
        if (id === primary) err(p, `secondary VLAN ${id} is the primary VLAN`);
        else if (secondary.includes(id)) err(p, `VLAN ${id} is listed twice`);
        else secondary.push(id);
      });
    }
  } else if (type !== null) {
    if (raw === undefined || raw === null) err(`${path}.secondary`, `an ${type} port needs its secondary VLAN id`);
    else if (Array.isArray(raw)) err(`${path}.secondary`, `an ${type} port has one secondary VLAN, got a list`);
    else {
      const id = vlanId(raw, `${path}.secondary`, err);
      if (id !== null && id === primary) err(`${path}.secondary`, `secondary VLAN ${id} is the primary VLAN`);
      else if (id !== null) secondary.push(id);
    }
  }
  if (primary === null || type === null || (type !== 'promiscuous' && secondary.length !== 1)) return null;
  return { mode: 'private', primary, type, secondary };
}

/**
 * Across the ports of one switch: a secondary VLAN is isolated or community, never both, belongs to one primary,
 * is not also some private VLAN's primary, and is no access port's VLAN (frames of a secondary are the private
 * VLAN's: a trunk may carry it, an ordinary access port would silently become an isolated/community host).
 */
export function checkPrivateVlansAcross(ports: readonly { readonly vlan: { readonly mode: string } }[], path: string, err: ErrorSink): void {
  const role = new Map<number, { type: PrivateVlanType; primary: number; k: number }>();
  const primaries = new Map<number, number>();
  ports.forEach((p, k) => {
    if (p.vlan.mode !== 'private') return;
    const pv = p.vlan as PrivateVlanConfig;
    if (!primaries.has(pv.primary)) primaries.set(pv.primary, k);
  });
  ports.forEach((p, k) => {
    if (p.vlan.mode !== 'private') return;
    const pv = p.vlan as PrivateVlanConfig;
    if (pv.type === 'promiscuous') return;
    const s = pv.secondary[0]!;
    const at = `${path}[${k}].vlan.secondary`;
    const prim = primaries.get(s);
    if (prim !== undefined) err(at, `VLAN ${s} is the primary VLAN of ${path}[${prim}]`);
    const prev = role.get(s);
    if (prev === undefined) role.set(s, { type: pv.type, primary: pv.primary, k });
    else if (prev.type !== pv.type) err(at, `secondary VLAN ${s} is ${prev.type} at ${path}[${prev.k}]: a secondary VLAN is isolated or community, not both`);
    else if (prev.primary !== pv.primary) err(at, `secondary VLAN ${s} belongs to primary ${prev.primary} at ${path}[${prev.k}]`);
  });
  ports.forEach((p, k) => {
    if (p.vlan.mode !== 'access') return;
    const id = (p.vlan as unknown as { readonly id: number }).id;
    const r = role.get(id);
    if (r !== undefined) err(`${path}[${k}].vlan.id`, `VLAN ${id} is a private VLAN secondary (${r.type}, primary ${r.primary}, at ${path}[${r.k}]): use mode private for this port`);
  });
}

export function privateVlanDoc(v: PrivateVlanConfig): Record<string, unknown> {
  if (v.type !== 'promiscuous') return { mode: 'private', primary: v.primary, type: v.type, secondary: v.secondary[0] };
  return v.secondary.length === 0 ? { mode: 'private', primary: v.primary, type: v.type } : { mode: 'private', primary: v.primary, type: v.type, secondary: [...v.secondary] };
}
