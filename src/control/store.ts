// control/store.ts: where the desired state lives. One Store interface shaped for etcd (keys under a prefix, a
// store-wide revision, create/mod revisions on every object, a change log) and its embedded SQLite back end.

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { NetworkSpec } from '../virtualization/model.js';
import {
  type ConfigError, type Desired, EMPTY_DESIRED, extensionDoc, isEmptyNetwork, lookupRecordDoc, portDoc, providerAddressDoc, uplinkDoc,
  routingDomainDoc, validateDocument,
} from './config.js';

export interface StoredObject {
  readonly key: string;
  readonly value: unknown;
  /** Store revision that created the key (etcd create_revision). */
  readonly createRevision: number;
  /** Store revision of its last change (etcd mod_revision). */
  readonly modRevision: number;
}

export interface Change {
  readonly revision: number;
  readonly key: string;
  readonly op: 'put' | 'delete';
}

export type LoadResult = { ok: true; revision: number; desired: Desired } | { ok: false; error: string };
export type PutResult =
  | { ok: true; revision: number; changed: number }
  | { ok: false; conflict: true; revision: number }
  | { ok: false; conflict: false; error: string };

export interface Store {
  /** "sqlite:/var/lib/xswitch/xswitch.db", later "etcd:http://...". */
  readonly url: string;
  readonly host: string;
  /** Key prefix of this host's objects: /xswitch/hosts/<host>/ */
  readonly prefix: string;
  /** Key prefix of the network policy, shared by every host: /xswitch/network/ */
  readonly networkPrefix: string;
  /** The desired document and the store revision it was read at. */
  load(): Promise<LoadResult>;
  /**
   * Replace the whole desired document in one transaction. With `expectedRevision`, refuse (conflict) unless the
   * store is still at that revision. Unchanged objects keep their modRevision; the store revision moves only if
   * something changed.
   */
  put(desired: Desired, expectedRevision?: number): Promise<PutResult>;
  revision(): Promise<number>;
  objects(): Promise<StoredObject[]>;
  /** Changes after `revision` (oldest first); the log keeps the last CHANGE_LOG_KEEP entries. */
  changes(afterRevision: number): Promise<Change[]>;
  close(): void;
}

export const CHANGE_LOG_KEEP = 10_000;
const SCHEMA_VERSION = 1;

export function hostPrefix(host: string): string {
  return `/xswitch/hosts/${host}/`;
}

/** The network policy is one set of objects for every host (each host's daemon reads the same keys). */
export const NETWORK_PREFIX = '/xswitch/network/';

/** A prefix as a key segment: "10.0.0.0/24" -> "10.0.0.0_24". */
const prefixKey = (p: string): string => p.replace('/', '_');

/**
 * The network policy as objects: meta (routerMac), routing-domains/<rdid> (with its subnets),
 * records/<vsid>/<ca>, provider-addresses/<address>, provider-routes/<host>/<prefix>, remotes/<pa>,
 * customer-routes/<rdid>/<vsid>/<prefix>. An empty policy is no objects at all.
 */
export function networkToObjects(n: NetworkSpec, prefix = NETWORK_PREFIX): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (isEmptyNetwork(n)) return m;
  m.set(`${prefix}meta`, { routerMac: n.routerMac });
  for (const r of n.routingDomains) m.set(`${prefix}routing-domains/${r.id}`, routingDomainDoc(r));
  for (const r of n.lookupRecords) m.set(`${prefix}records/${r.vsid}/${r.ca}`, lookupRecordDoc(r));
  for (const p of n.providerAddresses) m.set(`${prefix}provider-addresses/${p.address.split('/')[0]!}`, providerAddressDoc(p));
  for (const r of n.providerRoutes) m.set(`${prefix}provider-routes/${r.host}/${prefixKey(r.prefix)}`, { ...r });
  for (const r of n.remotes) m.set(`${prefix}remotes/${r.pa}`, { ...r });
  for (const r of n.customerRoutes) m.set(`${prefix}customer-routes/${r.rdid}/${r.vsid}/${prefixKey(r.prefix)}`, { ...r });
  return m;
}

const NETWORK_KINDS: Record<string, string> = {
  'routing-domains': 'routingDomains',
  records: 'lookupRecords',
  'provider-addresses': 'providerAddresses',
  'provider-routes': 'providerRoutes',
  remotes: 'remotes',
  'customer-routes': 'customerRoutes',
};

/** The raw `network:` section from its objects (validated by the caller), or errors; null when there are none. */
export function objectsToNetworkDoc(objs: ReadonlyMap<string, unknown>, prefix = NETWORK_PREFIX): { ok: true; doc: Record<string, unknown> | null } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const keys = [...objs.keys()].filter((k) => k.startsWith(prefix));
  if (keys.length === 0) return { ok: true, doc: null };
  const meta = objs.get(`${prefix}meta`);
  if (meta === undefined) return { ok: false, errors: [`${prefix}meta is missing but ${keys.length} network objects exist`] };
  if (!isRecord(meta)) return { ok: false, errors: [`${prefix}meta: malformed`] };
  const doc: Record<string, unknown[] | unknown> = { routerMac: meta['routerMac'] };
  for (const k of keys) {
    if (k === `${prefix}meta`) continue;
    const kind = NETWORK_KINDS[k.slice(prefix.length).split('/')[0]!];
    if (kind === undefined) {
      errors.push(`${k}: not a network object`);
      continue;
    }
    const l = (doc[kind] ?? []) as unknown[];
    l.push(objs.get(k));
    doc[kind] = l;
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, doc };
}

/** Split a Desired value into per-object key/values (etcd-shaped): the host's objects, then the network's. */
export function desiredToObjects(prefix: string, d: Desired): Map<string, unknown> {
  const m = new Map<string, unknown>();
  m.set(`${prefix}meta`, { switches: d.switches.map((s) => s.name) });
  for (const s of d.switches) {
    const sw: Record<string, unknown> = { name: s.name, ports: s.ports.map((p) => p.name), extensions: s.extensions.map(extensionDoc) };
    if (s.uplink !== null) sw['uplink'] = uplinkDoc(s.uplink);
    m.set(`${prefix}switches/${s.name}`, sw);
    for (const p of s.ports) m.set(`${prefix}switches/${s.name}/ports/${p.name}`, portDoc(p));
  }
  for (const [k, v] of networkToObjects(d.network)) m.set(k, v);
  return m;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rebuild the document from per-object values; every inconsistency is an error, never silently skipped. */
export function objectsToDesired(prefix: string, host: string, all: ReadonlyMap<string, unknown>): { ok: true; desired: Desired } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  const net = objectsToNetworkDoc(all);
  if (!net.ok) errors.push(...net.errors);
  const objs = new Map([...all].filter(([k]) => !k.startsWith(NETWORK_PREFIX)));
  const meta = objs.get(`${prefix}meta`);
  if (meta === undefined) {
    if (objs.size > 0) return { ok: false, errors: [...errors, `${prefix}meta is missing but ${objs.size} other objects exist`] };
    if (errors.length > 0) return { ok: false, errors };
    if (!net.ok || net.doc === null) return { ok: true, desired: EMPTY_DESIRED };
  }
  const used = new Set<string>([`${prefix}meta`]);
  const switches: unknown[] = [];
  if (meta === undefined) {
    // network objects only (no switches on this host yet)
  } else if (!isRecord(meta) || !Array.isArray(meta['switches'])) errors.push(`${prefix}meta: malformed`);
  else {
    for (const name of meta['switches']) {
      const key = `${prefix}switches/${String(name)}`;
      const sw = objs.get(key);
      used.add(key);
      if (!isRecord(sw) || !Array.isArray(sw['ports'])) {
        errors.push(`${key}: ${sw === undefined ? 'missing' : 'malformed'}`);
        continue;
      }
      const ports: unknown[] = [];
      for (const pn of sw['ports']) {
        const pk = `${key}/ports/${String(pn)}`;
        used.add(pk);
        const p = objs.get(pk);
        if (p === undefined) errors.push(`${pk}: missing`);
        else ports.push(p);
      }
      const doc: Record<string, unknown> = { name: sw['name'], ports };
      if (sw['uplink'] !== undefined) doc['uplink'] = sw['uplink'];
      if (sw['extensions'] !== undefined) doc['extensions'] = sw['extensions'];
      switches.push(doc);
    }
  }
  for (const k of objs.keys()) if (!used.has(k)) errors.push(`${k}: not referenced by its parent`);
  if (errors.length > 0) return { ok: false, errors };
  const doc: Record<string, unknown> = { host, switches };
  if (net.ok && net.doc !== null) doc['network'] = net.doc;
  const v = validateDocument(doc);
  if (!v.ok) return { ok: false, errors: v.errors.map((e: ConfigError) => `${e.path}: ${e.message}`) };
  return { ok: true, desired: v.value };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Open (or create) the SQLite store at `path` for `host`. A file that is not a readable xswitch store gives a clear
 * error; it is never emptied or replaced.
 */
export function openSqliteStore(path: string, host: string): { ok: true; store: SqliteStore } | { ok: false; error: string } {
  const url = `sqlite:${path}`;
  const refuse = (why: string): { ok: false; error: string } => ({
    ok: false,
    error: `store ${url} is unreadable: ${why}; refusing to start (nothing was changed; move the file away to start empty)`,
  });
  let db: Database.Database | null = null;
  try {
    if (existsSync(path) && !statSync(path).isFile()) return refuse('not a regular file');
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path);
    // One daemon per store: an exclusive lock held for the connection's life (released if the process dies).
    db.pragma('busy_timeout = 1000');
    db.pragma('locking_mode = EXCLUSIVE');
    try {
      db.exec('BEGIN EXCLUSIVE; COMMIT;');
    } catch (err: unknown) {
      db.close();
      if ((err as { code?: unknown }).code === 'SQLITE_BUSY') {
        return { ok: false, error: `store ${url} is locked by another process (another xswitchd on this store?); refusing to start` };
      }
      throw err;
    }
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      db.close();
      return refuse(`integrity check failed: ${String(check)}`);
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    if (version === 0) {
      if (tables.length > 0) {
        db.close();
        return refuse(`it holds tables (${tables.join(', ')}) but no xswitch schema`);
      }
      db.exec(`
        BEGIN;
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('revision', 0);
        CREATE TABLE objects (key TEXT PRIMARY KEY, value TEXT NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL);
        CREATE TABLE changes (rev INTEGER NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL);
        CREATE INDEX changes_rev ON changes (rev);
        PRAGMA user_version = ${SCHEMA_VERSION};
        COMMIT;`);
    } else if (version !== SCHEMA_VERSION) {
      db.close();
      return refuse(`schema version ${version}, this xswitchd understands ${SCHEMA_VERSION}`);
    } else {
      for (const t of ['meta', 'objects', 'changes']) {
        if (!tables.includes(t)) {
          db.close();
          return refuse(`table ${t} is missing`);
        }
      }
    }
    return { ok: true, store: new SqliteStore(db, url, host) };
  } catch (err: unknown) {
    try {
      db?.close();
    } catch {
      // already broken; the error below says why
    }
    return refuse(message(err));
  }
}

export class SqliteStore implements Store {
  readonly prefix: string;
  readonly networkPrefix = NETWORK_PREFIX;
  private readonly getRev: Database.Statement<[], { value: number }>;
  private readonly setRev: Database.Statement<[number]>;
  private readonly list: Database.Statement<[string, string], { key: string; value: string; create_rev: number; mod_rev: number }>;
  private readonly upsert: Database.Statement<[string, string, number, number]>;
  private readonly del: Database.Statement<[string]>;
  private readonly log: Database.Statement<[number, string, string]>;
  private readonly trim: Database.Statement<[number]>;
  private readonly since: Database.Statement<[number], { rev: number; key: string; op: string }>;

  constructor(private readonly db: Database.Database, readonly url: string, readonly host: string) {
    this.prefix = hostPrefix(host);
    this.getRev = db.prepare("SELECT value FROM meta WHERE name = 'revision'");
    this.setRev = db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'");
    // Range [prefix, prefix + U+FFFF): every key under the prefix, as an etcd range read.
    this.list = db.prepare('SELECT key, value, create_rev, mod_rev FROM objects WHERE key >= ? AND key < ? ORDER BY key');
    this.upsert = db.prepare('INSERT INTO objects (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev');
    this.del = db.prepare('DELETE FROM objects WHERE key = ?');
    this.log = db.prepare('INSERT INTO changes (rev, key, op) VALUES (?, ?, ?)');
    this.trim = db.prepare('DELETE FROM changes WHERE rev <= ?');
    this.since = db.prepare('SELECT rev, key, op FROM changes WHERE rev > ? ORDER BY rev, rowid');
  }

  /** Every object of this host's document: its own keys and the network's (one etcd range read each). */
  private rows(): { key: string; value: string; create_rev: number; mod_rev: number }[] {
    return [...this.list.all(this.prefix, `${this.prefix}\uffff`), ...this.list.all(this.networkPrefix, `${this.networkPrefix}\uffff`)];
  }

  private currentRevision(): number {
    return this.getRev.get()?.value ?? 0;
  }

  load(): Promise<LoadResult> {
    try {
      const rev = this.currentRevision();
      const objs = new Map<string, unknown>();
      for (const r of this.rows()) {
        try {
          objs.set(r.key, JSON.parse(r.value) as unknown);
        } catch (err: unknown) {
          return Promise.resolve({ ok: false, error: `store ${this.url}: object ${r.key} is not valid JSON (${message(err)})` });
        }
      }
      const d = objectsToDesired(this.prefix, this.host, objs);
      if (!d.ok) return Promise.resolve({ ok: false, error: `store ${this.url} holds an inconsistent document: ${d.errors.join('; ')}` });
      return Promise.resolve({ ok: true, revision: rev, desired: d.desired });
    } catch (err: unknown) {
      return Promise.resolve({ ok: false, error: `store ${this.url}: ${message(err)}` });
    }
  }

  put(desired: Desired, expectedRevision?: number): Promise<PutResult> {
    const next = desiredToObjects(this.prefix, { ...desired, host: this.host });
    const tx = this.db.transaction((): PutResult => {
      const rev = this.currentRevision();
      if (expectedRevision !== undefined && expectedRevision !== rev) return { ok: false, conflict: true, revision: rev };
      const newRev = rev + 1;
      let changed = 0;
      const have = new Map(this.rows().map((r) => [r.key, r]));
      for (const [key, value] of next) {
        const text = JSON.stringify(value);
        const old = have.get(key);
        if (old !== undefined && old.value === text) continue;
        this.upsert.run(key, text, newRev, newRev);
        this.log.run(newRev, key, 'put');
        changed++;
      }
      for (const key of have.keys()) {
        if (next.has(key)) continue;
        this.del.run(key);
        this.log.run(newRev, key, 'delete');
        changed++;
      }
      if (changed === 0) return { ok: true, revision: rev, changed };
      this.setRev.run(newRev);
      if (newRev > CHANGE_LOG_KEEP) this.trim.run(newRev - CHANGE_LOG_KEEP);
      return { ok: true, revision: newRev, changed };
    });
    try {
      return Promise.resolve(tx.immediate());
    } catch (err: unknown) {
      return Promise.resolve({ ok: false, conflict: false, error: `store ${this.url}: ${message(err)}` });
    }
  }

  revision(): Promise<number> {
    return Promise.resolve(this.currentRevision());
  }

  objects(): Promise<StoredObject[]> {
    return Promise.resolve(this.rows().map((r) => ({ key: r.key, value: JSON.parse(r.value) as unknown, createRevision: r.create_rev, modRevision: r.mod_rev })));
  }

  changes(afterRevision: number): Promise<Change[]> {
    return Promise.resolve(this.since.all(afterRevision).map((r) => ({ revision: r.rev, key: r.key, op: r.op === 'delete' ? 'delete' as const : 'put' as const })));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
