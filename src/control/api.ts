// control/api.ts: the HTTP/1.1 JSON API (node:http) on a Unix socket. Routes map requests onto the Controller;
// every imperative change becomes a new whole document applied through the same path as `xsctl apply`.

import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { connect } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address, parseIpv6Address } from '../wire/addresses.js';
import { resolveExtensionPaths } from './config.js';
import { type ControlLogger, type Controller, type Outcome, type PlainDoc, fail } from './controller.js';

/** Largest request body: a document with tens of thousands of ACL rules or lookup records fits (about 100 B each). */
export const MAX_BODY_BYTES = 16 << 20;

type Handler = (req: Request) => Promise<Outcome> | Outcome;
interface Request {
  readonly method: string;
  readonly params: string[];
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** The parsed JSON body (undefined when there was none). */
  readonly body: unknown;
}

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly handler: Handler;
}

const SEG = '([^/]+)';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function swIndex(doc: PlainDoc, name: string): number {
  return doc.switches.findIndex((s) => s['name'] === name);
}

function list(sw: Record<string, unknown>, key: 'ports' | 'extensions'): Record<string, unknown>[] {
  const v = sw[key];
  if (Array.isArray(v)) return v as Record<string, unknown>[];
  const l: Record<string, unknown>[] = [];
  sw[key] = l;
  return l;
}

/** A list of the plain document's network section (created when absent). */
function networkList(doc: PlainDoc, key: string): Record<string, unknown>[] {
  const n = doc.network ?? {};
  doc.network = n;
  const v = n[key];
  if (Array.isArray(v)) return v as Record<string, unknown>[];
  const l: Record<string, unknown>[] = [];
  n[key] = l;
  return l;
}

/** A CA (IPv4 or IPv6) in canonical form, or null. */
function canonicalCa(s: string): string | null {
  if (s.includes(':')) {
    const a6 = parseIpv6Address(s);
    return a6 === null ? null : formatIpv6Address(a6);
  }
  const a = parseIpv4Address(s);
  return a === null ? null : formatIpv4Address(a);
}

function needObject(body: unknown): Outcome | undefined {
  return isRecord(body) ? undefined : fail(400, 'the request body must be a JSON object');
}

/** The routes of /v1, in order. */
function routes(ctl: Controller): Route[] {
  const r: Route[] = [];
  const add = (method: string, path: string, handler: Handler): void => {
    r.push({ method, pattern: new RegExp(`^${path.replaceAll(':x', SEG)}$`), handler });
  };
  const noSwitch = (name: string): Outcome => fail(404, `no switch named ${name}`, 'switch');

  add('GET', '/v1/status', () => ({ status: 200, body: ctl.status() }));
  add('GET', '/v1/desired', () => ctl.getDesired());
  add('PUT', '/v1/desired', (q) => {
    const ifMatch = q.headers['if-match'];
    let expectedRevision: number | undefined;
    if (typeof ifMatch === 'string' && ifMatch !== '*') {
      const n = Number(ifMatch.replace(/^W\//, '').replaceAll('"', ''));
      if (!Number.isSafeInteger(n) || n < 0) return fail(400, `If-Match must be a store revision number, got ${ifMatch}`, 'If-Match');
      expectedRevision = n;
    }
    const base = q.query.get('base');
    if (base !== null) {
      if (!isAbsolute(base)) return fail(400, `base must be an absolute directory, got ${base}`, 'base');
      resolveExtensionPaths(q.body, base);
    }
    const dryRun = q.query.get('dryRun');
    const opts: { expectedRevision?: number; dryRun?: boolean } = { dryRun: dryRun === '1' || dryRun === 'true' };
    if (expectedRevision !== undefined) opts.expectedRevision = expectedRevision;
    return ctl.applyDocument(q.body ?? null, opts);
  });

  add('GET', '/v1/switches', () => ({ status: 200, body: ctl.switchList() }));
  add('POST', '/v1/switches', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const b = q.body as Record<string, unknown>;
    if (typeof b['name'] === 'string' && swIndex(doc, b['name']) >= 0) return fail(409, `switch ${b['name']} already exists`, 'name');
    doc.switches.push({ ports: [], ...b });
    return undefined;
  }, true));
  add('GET', '/v1/switches/:x', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    if (s === undefined) return noSwitch(q.params[0]!);
    return { status: 200, body: { ...s, running: ctl.running(s.name) !== undefined } };
  });
  add('DELETE', '/v1/switches/:x', (q) => ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    doc.switches.splice(i, 1);
    return undefined;
  }));

  add('GET', '/v1/switches/:x/ports', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : { status: 200, body: ctl.portList(s) };
  });
  add('POST', '/v1/switches/:x/ports', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const ports = list(doc.switches[i]!, 'ports');
    const b = q.body as Record<string, unknown>;
    if (ports.some((p) => p['name'] === b['name'])) return fail(409, `switch ${q.params[0]!} already has a port ${String(b['name'])}`, 'name');
    ports.push(b);
    return undefined;
  }, true));
  add('GET', '/v1/switches/:x/ports/:x', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    if (s === undefined) return noSwitch(q.params[0]!);
    const p = (ctl.portList(s) as { name: string }[]).find((x) => x.name === q.params[1]);
    return p === undefined ? fail(404, `switch ${s.name} has no port ${q.params[1]!}`, 'port') : { status: 200, body: p };
  });
  add('PATCH', '/v1/switches/:x/ports/:x', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const p = list(doc.switches[i]!, 'ports').find((x) => x['name'] === q.params[1]);
    if (p === undefined) return fail(404, `switch ${q.params[0]!} has no port ${q.params[1]!}`, 'port');
    for (const [k, v] of Object.entries(q.body as Record<string, unknown>)) {
      if (k === 'name' && v !== q.params[1]) return fail(400, 'a port cannot be renamed (delete it and add it again)', 'name');
      if (k === 'policy' && isPlainObject(v) && isPlainObject(p[k])) {
        // policy keys are independent settings (mirror, guards, ...): merged key by key, null deletes one
        const merged: Record<string, unknown> = { ...p[k] };
        for (const [pk, pv] of Object.entries(v)) {
          if (pv === null) delete merged[pk];
          else merged[pk] = pv;
        }
        p[k] = merged;
      } else if (v === null) delete p[k];
      else p[k] = v;
    }
    return undefined;
  }));
  add('DELETE', '/v1/switches/:x/ports/:x', (q) => ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const ports = list(doc.switches[i]!, 'ports');
    const k = ports.findIndex((x) => x['name'] === q.params[1]);
    if (k < 0) return fail(404, `switch ${q.params[0]!} has no port ${q.params[1]!}`, 'port');
    ports.splice(k, 1);
    return undefined;
  }));

  add('GET', '/v1/switches/:x/extensions', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : { status: 200, body: ctl.extensionList(s) };
  });
  add('POST', '/v1/switches/:x/extensions', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const exts = list(doc.switches[i]!, 'extensions');
    const { position, ...b } = q.body as Record<string, unknown>;
    if (exts.some((e) => e['name'] === b['name'])) return fail(409, `switch ${q.params[0]!} already has an extension ${String(b['name'])}`, 'name');
    let at = exts.length;
    if (position !== undefined) {
      if (typeof position !== 'number' || !Number.isInteger(position) || position < 0 || position > exts.length) {
        return fail(400, `position must be an integer 0..${exts.length}`, 'position');
      }
      at = position;
    }
    exts.splice(at, 0, b);
    return undefined;
  }, true));
  add('PATCH', '/v1/switches/:x/extensions/:x', async (q) => {
    const o = await patchExtension(q);
    if (o.status === 200 && isRecord(q.body) && q.body['enabled'] === true) await ctl.clearFault(q.params[0]!, q.params[1]!);
    return o;
  });
  const patchExtension = (q: Request): Promise<Outcome> | Outcome => needObject(q.body) ?? ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const e = list(doc.switches[i]!, 'extensions').find((x) => x['name'] === q.params[1]);
    if (e === undefined) return fail(404, `switch ${q.params[0]!} has no extension ${q.params[1]!}`, 'extension');
    for (const [k, v] of Object.entries(q.body as Record<string, unknown>)) {
      if (k !== 'enabled' && k !== 'config') return fail(400, `only enabled and config can change (got ${k})`, k);
      e[k] = v;
    }
    return undefined;
  });
  add('DELETE', '/v1/switches/:x/extensions/:x', (q) => ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const exts = list(doc.switches[i]!, 'extensions');
    const k = exts.findIndex((x) => x['name'] === q.params[1]);
    if (k < 0) return fail(404, `switch ${q.params[0]!} has no extension ${q.params[1]!}`, 'extension');
    exts.splice(k, 1);
    return undefined;
  }));
  add('PUT', '/v1/switches/:x/extensions-order', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const i = swIndex(doc, q.params[0]!);
    if (i < 0) return noSwitch(q.params[0]!);
    const exts = list(doc.switches[i]!, 'extensions');
    const order = (q.body as Record<string, unknown>)['order'];
    if (!Array.isArray(order) || !order.every((n) => typeof n === 'string')) return fail(400, 'order must be a list of extension names', 'order');
    const names = exts.map((e) => String(e['name']));
    const missing = names.filter((n) => !order.includes(n));
    const unknown = (order as string[]).filter((n) => !names.includes(n));
    const dup = (order as string[]).filter((n, k) => order.indexOf(n) !== k);
    if (missing.length + unknown.length + dup.length > 0) {
      const why = [
        unknown.length > 0 ? `unknown: ${unknown.join(', ')}` : '',
        missing.length > 0 ? `missing: ${missing.join(', ')}` : '',
        dup.length > 0 ? `repeated: ${dup.join(', ')}` : '',
      ].filter((x) => x !== '').join('; ');
      return fail(400, `order must name every extension of ${q.params[0]!} once (${why})`, 'order');
    }
    doc.switches[i]!['extensions'] = (order as string[]).map((n) => exts[names.indexOf(n)]!);
    return undefined;
  }));

  add('GET', '/v1/switches/:x/virtualization', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : ctl.virtualization(s);
  });

  // The network policy: whole section, lookup records one by one (live: a PA change is a live migration).
  add('GET', '/v1/network', () => ({ status: 200, body: ctl.network }));
  add('PUT', '/v1/network', (q) => {
    if (q.body !== null && q.body !== undefined && !isRecord(q.body)) return fail(400, 'the request body must be the network section (a JSON object) or null', 'network');
    return ctl.edit((doc) => {
      if (q.body === null || q.body === undefined) delete doc.network;
      else doc.network = q.body as Record<string, unknown>;
      return undefined;
    });
  });
  add('GET', '/v1/network/records', () => ({ status: 200, body: ctl.recordList() }));
  add('GET', '/v1/network/vsids', () => ({ status: 200, body: ctl.vsidList() }));
  add('GET', '/v1/network/arp', () => ({ status: 200, body: ctl.arpList() }));
  add('POST', '/v1/network/records', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const b = q.body as Record<string, unknown>;
    const records = networkList(doc, 'lookupRecords');
    const ca = typeof b['ca'] === 'string' ? canonicalCa(b['ca']) : null;
    if (ca !== null && records.some((r) => r['vsid'] === b['vsid'] && r['ca'] === ca)) {
      return fail(409, `VSID ${String(b['vsid'])} already has a lookup record for CA ${ca} (change it with PATCH /v1/network/records/${String(b['vsid'])}/${ca})`, 'ca');
    }
    records.push(b);
    return undefined;
  }, true));
  const recordAt = (doc: PlainDoc, q: Request): number | Outcome => {
    const vsid = /^\d{1,8}$/.test(q.params[0]!) ? Number(q.params[0]) : null;
    if (vsid === null) return fail(400, `VSID must be a number, got ${q.params[0]!}`, 'vsid');
    const ca = canonicalCa(q.params[1]!);
    if (ca === null) return fail(400, `CA must be an IPv4 or IPv6 address, got ${q.params[1]!}`, 'ca');
    const k = networkList(doc, 'lookupRecords').findIndex((r) => r['vsid'] === vsid && r['ca'] === ca);
    return k >= 0 ? k : fail(404, `no lookup record for CA ${ca} in VSID ${vsid}`, 'ca');
  };
  add('PATCH', '/v1/network/records/:x/:x', (q) => needObject(q.body) ?? ctl.edit((doc) => {
    const k = recordAt(doc, q);
    if (typeof k !== 'number') return k;
    const r = networkList(doc, 'lookupRecords')[k]!;
    const entries = Object.entries(q.body as Record<string, unknown>);
    if (entries.length === 0) return fail(400, 'nothing to change: give pa, rule, mac or vm');
    for (const [key, v] of entries) {
      if (!['pa', 'rule', 'mac', 'vm'].includes(key)) return fail(400, `only pa, rule, mac and vm of a lookup record can change (got ${key}; ca and vsid name the record)`, key);
      if (v === null) delete r[key];
      else r[key] = v;
    }
    return undefined;
  }));
  add('DELETE', '/v1/network/records/:x/:x', (q) => ctl.edit((doc) => {
    const k = recordAt(doc, q);
    if (typeof k !== 'number') return k;
    networkList(doc, 'lookupRecords').splice(k, 1);
    return undefined;
  }));

  add('GET', '/v1/switches/:x/macs', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : { status: 200, body: ctl.macs(s) };
  });
  add('GET', '/v1/switches/:x/counters', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : ctl.counters(s, q.query.get('port') ?? undefined);
  });
  add('GET', '/v1/switches/:x/ports/:x/acl', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : ctl.acl(s, q.params[1]!, q.query.get('connections') === '1');
  });
  add('GET', '/v1/switches/:x/counters/:x', (q) => {
    const s = ctl.findSwitch(q.params[0]!);
    return s === undefined ? noSwitch(q.params[0]!) : ctl.counters(s, q.params[1]!);
  });
  return r;
}

/** Most bytes drained from an oversized body before the connection is cut (the client gets its 413 first). */
const DRAIN_LIMIT = 64 << 20;

/** The body, or null when it exceeds MAX_BODY_BYTES (drained, so the client can read the 413). */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n <= MAX_BODY_BYTES) chunks.push(c);
      else if (n > DRAIN_LIMIT) req.destroy();
    });
    req.on('end', () => res(n > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    req.on('error', rej);
  });
}

function send(res: ServerResponse, o: Outcome, close = false): void {
  const text = `${JSON.stringify(o.body, null, 2)}\n`;
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (close) headers['connection'] = 'close';
  res.writeHead(o.status, headers);
  res.end(text);
}

export interface ApiServer {
  readonly socket: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Listen on Unix socket `path` (its directory created; mode 0600). Refuses if another process answers on it;
 * a stale socket file is replaced.
 */
/**
 * Make `path` ready to listen on: its directory created; refused if another process answers on it; a stale
 * socket file removed. The daemon calls it before restoring the data path, so a second daemon touches nothing.
 */
export async function claimSocket(path: string): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (err: unknown) {
    return { ok: false, error: `cannot create ${dirname(path)}: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!existsSync(path)) return { ok: true };
  if (!lstatSync(path).isSocket()) return { ok: false, error: `${path} exists and is not a socket; refusing to replace it` };
  const alive = await new Promise<boolean>((res) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
  if (alive) return { ok: false, error: `another process (an xswitchd?) already listens on ${path}` };
  unlinkSync(path);
  return { ok: true };
}

/** Listen on Unix socket `path` (mode 0600) after claimSocket. */
export async function startApi(ctl: Controller, path: string, log: ControlLogger): Promise<{ ok: true; api: ApiServer } | { ok: false; error: string }> {
  const table = routes(ctl);
  const server = createServer((req, res) => {
    void handle(table, req, res, log);
  });
  server.keepAliveTimeout = 5000;
  const claimed = await claimSocket(path);
  if (!claimed.ok) return claimed;
  const listened = await new Promise<Error | null>((res) => {
    server.once('error', (e) => res(e));
    // The umask narrows the socket's mode before chmod runs: no window where others can connect.
    const old = process.umask(0o177);
    server.listen(path, () => res(null));
    process.umask(old);
  });
  if (listened !== null) return { ok: false, error: `cannot listen on ${path}: ${listened.message}` };
  chmodSync(path, 0o600);
  return {
    ok: true,
    api: {
      socket: path,
      server,
      close: () => new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections();
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
    },
  };
}

async function handle(table: Route[], req: IncomingMessage, res: ServerResponse, log: ControlLogger): Promise<void> {
  const method = req.method ?? 'GET';
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://xswitchd');
  } catch {
    send(res, fail(400, `malformed request target ${String(req.url)}`));
    return;
  }
  let body: Buffer | null;
  try {
    body = await readBody(req);
  } catch (err: unknown) {
    send(res, fail(400, `cannot read the request body: ${err instanceof Error ? err.message : String(err)}`), true);
    return;
  }
  if (body === null) {
    send(res, fail(413, `request body larger than ${MAX_BODY_BYTES} bytes (${MAX_BODY_BYTES >> 20} MiB)`), true);
    return;
  }
  let parsed: unknown;
  if (body.length > 0) {
    try {
      parsed = JSON.parse(body.toString('utf8')) as unknown;
    } catch (err: unknown) {
      send(res, fail(400, `the request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
  }
  const path = url.pathname;
  let allowed: string[] = [];
  for (const r of table) {
    const m = r.pattern.exec(path);
    if (m === null) continue;
    if (r.method !== method) {
      allowed.push(r.method);
      continue;
    }
    let params: string[];
    try {
      params = m.slice(1).map((s) => decodeURIComponent(s));
    } catch {
      send(res, fail(400, `malformed percent-encoding in ${path}`));
      return;
    }
    try {
      const o = await r.handler({ method, params, query: url.searchParams, headers: req.headers, body: parsed });
      log.debug('api', { method, path, status: o.status });
      send(res, o);
    } catch (err: unknown) {
      // A throw here is a bug: answer 500 and keep serving.
      log.error('api handler failed', { method, path, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      send(res, fail(500, `internal error: ${err instanceof Error ? err.message : String(err)}`));
    }
    return;
  }
  allowed = [...new Set(allowed)];
  if (allowed.length > 0) {
    res.setHeader('allow', allowed.join(', '));
    send(res, fail(405, `method ${method} not allowed on ${path} (allowed: ${allowed.join(', ')})`));
    return;
  }
  send(res, fail(404, `no such API route: ${method} ${path}`));
}

/** Resolve a relative socket/store path against the working directory. */
export function absolute(p: string): string {
  return isAbsolute(p) ? p : resolve(p);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
