// cli/xsctl.ts: the command-line client of xswitchd's API (cli-contract.md). Readable tables, --json on every
// read, exit codes scripts can trust: 0 ok, 1 refused by the daemon, 2 usage error, 3 daemon unreachable.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { ApiClient, type ApiResponse, DEFAULT_SOCKET } from '../control/client.js';
import { parseDocumentText, resolveExtensionPaths } from '../control/config.js';
import { policyText } from '../policy/policy.js';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

export const USAGE = `usage: xsctl [--socket PATH] [--json] COMMAND ...     (env XSWITCH_SOCKET; default ${DEFAULT_SOCKET})
  status                                  daemon version, host, store, switch count
  apply -f FILE [--dry-run]               apply a whole YAML/JSON document (what is not in it is removed)
  export                                  print the desired-state document (YAML; JSON with --json)
  switch add NAME | switch del NAME | switch list
  port add SWITCH NAME (--tap IFNAME | --veth IFNAME | --internal [IFNAME]) [--mac MAC] [--vsid N]
           [--access VID | --trunk VID,VID,... [--native VID]] [--no-offload] [--mac-limit N] [--down]
  port del SWITCH NAME | port list SWITCH
  port set SWITCH NAME [--up|--down] [--access VID | --trunk LIST [--native VID] | --no-vlan] [--mac MAC|none]
                      [--mirror source|destination|none]
           [--vsid N] [--mac-limit N] [--offload|--no-offload]
           [--dhcp-guard on|off] [--router-guard on|off] [--mac-spoofing on|off] [--storm-limit PPS]
           [--trust-priority on|off] [--pvlan isolated:PRIMARY:SECONDARY | community:P:S | promiscuous:P[:S,S...]]
           [--max-mbps N [--max-burst-kb N]] [--min-weight 1..100 | --min-mbps N] [--link-mbps N]   (0 = off)
           [--pcp-weights W0,W1,...,W7 | none]   (802.1p classes at this port's scheduler)
  ext add SWITCH NAME --path FILE [--config JSON] [--disabled] [--position N]
  ext del SWITCH NAME | ext enable SWITCH NAME | ext disable SWITCH NAME | ext list SWITCH
  ext order SWITCH NAME,NAME,...          new full order (capture*, filter*, forwarding?)
  mac SWITCH                              MAC table
  counters SWITCH [PORT]                  rx/tx frames and bytes, drops by reason; the switch's GRO and mirror totals
  acl SWITCH PORT [--connections]         port ACLs and extended ACLs with hits, connection table, ACL drops
  network                                 the network virtualization policy as stored
  vsid list                               each virtualized switch's VSIDs: routing domain, prefix, tenant MTU, records
  record list                             lookup records, local or remote
  record add CA --vsid N --mac MAC --pa PA [--rule encap|rewrite|vxlan] [--vm NAME]
  record set CA --vsid N [--pa PA] [--rule encap|rewrite|vxlan] [--mac MAC] [--vm NAME|none]   (applied live)
  record del CA --vsid N
  arp                                     provider-address ARP cache per switch
  virt SWITCH                             a switch's virtualization layer: PAs, VSIDs, records, ARP, counters
exit codes: 0 ok, 1 refused by xswitchd, 2 usage error, 3 cannot reach xswitchd`;

class UsageError extends Error {}

interface Io {
  out(s: string): void;
  err(s: string): void;
}

/** Command-line words after the command, with flag helpers. */
class Args {
  private readonly used = new Set<number>();
  constructor(private readonly words: string[]) {}

  /** Value of `--name V` or `--name=V`; undefined when absent. */
  value(name: string): string | undefined {
    for (let i = 0; i < this.words.length; i++) {
      const w = this.words[i]!;
      if (w === name) {
        const v = this.words[i + 1];
        if (v === undefined || this.used.has(i + 1)) throw new UsageError(`${name} needs a value`);
        this.used.add(i).add(i + 1);
        return v;
      }
      if (w.startsWith(`${name}=`)) {
        this.used.add(i);
        return w.slice(name.length + 1);
      }
    }
    return undefined;
  }

  /** `--name` with an optional value (taken only if the next word is not a flag). */
  optionalValue(name: string): { present: boolean; value?: string } {
    for (let i = 0; i < this.words.length; i++) {
      if (this.words[i] !== name) continue;
      this.used.add(i);
      const v = this.words[i + 1];
      if (v !== undefined && !v.startsWith('-') && !this.used.has(i + 1)) {
        this.used.add(i + 1);
        return { present: true, value: v };
      }
      return { present: true };
    }
    return { present: false };
  }

  flag(name: string): boolean {
    const i = this.words.indexOf(name);
    if (i < 0) return false;
    this.used.add(i);
    return true;
  }

  int(name: string): number | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new UsageError(`${name} needs an integer, got ${v}`);
    return Number(v);
  }

  intList(name: string): number[] | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    const parts = v.split(',').map((s) => s.trim());
    if (parts.some((p) => !/^\d+$/.test(p))) throw new UsageError(`${name} needs a comma-separated list of VLAN ids, got ${v}`);
    return parts.map(Number);
  }

  flagIndex(name: string): number {
    return this.words.indexOf(name);
  }

  /** The next `n` positional words (words not starting with '-' that no flag took; not the word after `skipAfter`). */
  positionals(n: number, names: string[], skipAfter = -2): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.words.length && out.length < n; i++) {
      if (this.used.has(i) || (i === skipAfter + 1 && this.words.filter((w, k) => k > i && !this.used.has(k) && !w.startsWith('-')).length >= n - out.length)) continue;
      const w = this.words[i]!;
      if (w.startsWith('-') && w !== '-') continue;
      this.used.add(i);
      out.push(w);
    }
    if (out.length < n) throw new UsageError(`missing ${names.slice(out.length).join(' ')}`);
    return out;
  }

  optionalPositional(): string | undefined {
    for (let i = 0; i < this.words.length; i++) {
      if (this.used.has(i) || this.words[i]!.startsWith('-')) continue;
      this.used.add(i);
      return this.words[i];
    }
    return undefined;
  }

  /** Refuse anything left over (typo-safety). */
  done(): void {
    const left = this.words.filter((_, i) => !this.used.has(i));
    if (left.length > 0) throw new UsageError(`unexpected argument${left.length > 1 ? 's' : ''}: ${left.join(' ')}`);
  }
}

/** Aligned columns, two spaces apart. */
export function table(headers: string[], rows: string[][]): string {
  const w = headers.map((h, k) => Math.max(h.length, ...rows.map((r) => (r[k] ?? '').length)));
  const line = (r: string[]): string => r.map((c, k) => (k === r.length - 1 ? c : c.padEnd(w[k]!))).join('  ').trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function vlanText(v: unknown): string {
  if (!isRecord(v) || v['mode'] === 'none' || v['mode'] === undefined) return '-';
  if (v['mode'] === 'access') return `access ${str(v['id'])}`;
  if (v['mode'] === 'private') return `private ${str(v['primary'])}/${Array.isArray(v['secondary']) ? v['secondary'].join(',') : str(v['secondary'])} ${str(v['type'])}`;
  const allowed = Array.isArray(v['allowed']) ? v['allowed'].join(',') : '';
  return `trunk ${allowed}${v['native'] !== undefined ? ` native ${str(v['native'])}` : ''}`;
}

function ifaceText(v: unknown, ifname?: unknown): string {
  if (!isRecord(v)) return '-';
  if (typeof v['tap'] === 'string') return `tap ${v['tap']}`;
  if (typeof v['veth'] === 'string') return `veth ${v['veth']}`;
  if (typeof v['uplink'] === 'string') return `uplink ${v['uplink']}`;
  if (v['internal'] === true) return `internal ${typeof ifname === 'string' ? ifname : str(v['name'])}`;
  return str(v);
}

function dropsText(v: unknown): string {
  if (!isRecord(v)) return '-';
  const e = Object.entries(v).filter(([, n]) => typeof n === 'number' && n > 0);
  return e.length === 0 ? '-' : e.map(([k, n]) => `${k}=${String(n)}`).join(' ');
}

const enc = encodeURIComponent;

export interface CliEnv {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly io: Io;
}

/** Run one xsctl invocation; returns the exit code. */
export async function run(argv: readonly string[], ctx: CliEnv): Promise<number> {
  const { io } = ctx;
  let socket = ctx.env['XSWITCH_SOCKET'] ?? DEFAULT_SOCKET;
  let json = false;
  const words: string[] = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--json') json = true;
      else if (a === '--socket') {
        const v = argv[++i];
        if (v === undefined) throw new UsageError('--socket needs a path');
        socket = v;
      } else if (a.startsWith('--socket=')) socket = a.slice('--socket='.length);
      else if (a === '-h' || a === '--help' || a === 'help') {
        io.out(`${USAGE}\n`);
        return EXIT_OK;
      } else words.push(a);
    }
    if (words.length === 0) throw new UsageError('missing command');
    const client = new ApiClient({ socket: resolve(ctx.cwd, socket) });
    return await command(words, client, json, ctx);
  } catch (err: unknown) {
    if (err instanceof UsageError) {
      io.err(`xsctl: ${err.message}\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

/** Print a response: the daemon's refusal (exit 1), unreachable (exit 3), or `show` of the body. */
function finish(r: ApiResponse, json: boolean, io: Io, show: (body: unknown) => string): number {
  if (!r.ok) {
    if (json) io.out(`${JSON.stringify({ error: r.error })}\n`);
    io.err(`xsctl: ${r.error}\n`);
    return EXIT_UNREACHABLE;
  }
  if (r.status >= 200 && r.status < 300) {
    io.out(json ? `${JSON.stringify(r.body, null, 2)}\n` : show(r.body));
    return EXIT_OK;
  }
  const b = isRecord(r.body) ? r.body : { error: str(r.body) };
  const body: Record<string, unknown> = { error: typeof b['error'] === 'string' ? b['error'] : `HTTP ${r.status}` };
  if (b['field'] !== undefined) body['field'] = b['field'];
  if (Array.isArray(b['errors'])) body['errors'] = b['errors'];
  if (json) io.out(`${JSON.stringify(body, null, 2)}\n`);
  const errors = Array.isArray(body['errors']) ? (body['errors'] as unknown[]) : [];
  if (errors.length > 0) {
    io.err(`xsctl: refused: ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
    for (const e of errors) io.err(isRecord(e) ? `  ${str(e['path'])}: ${str(e['message'])}\n` : `  ${str(e)}\n`);
  } else {
    io.err(`xsctl: ${String(body['error'])}\n`);
  }
  return EXIT_REFUSED;
}

function revisionLine(what: string): (b: unknown) => string {
  return (b) => `${what}${isRecord(b) && typeof b['revision'] === 'number' ? ` (revision ${b['revision']})` : ''}\n`;
}

async function command(words: string[], c: ApiClient, json: boolean, ctx: CliEnv): Promise<number> {
  const { io } = ctx;
  const [cmd, ...rest] = words;
  const sub = rest[0];
  const a = new Args(rest);
  const subArgs = new Args(rest.slice(1));
  switch (cmd) {
    case 'status': {
      a.done();
      return finish(await c.call('GET', '/v1/status'), json, io, (b) => {
        const s = isRecord(b) ? b : {};
        const degraded = Array.isArray(s['degraded']) ? s['degraded'] : null;
        return table(['KEY', 'VALUE'], [
          ['version', str(s['version'])], ['host', str(s['host'])], ['store', str(s['store'])], ['socket', str(s['socket'])],
          ['revision', str(s['revision'])], ['switches', str(s['switches'])], ['pid', str(s['pid'])],
          ['state', degraded === null ? 'ok' : `degraded: ${degraded.map((e) => (isRecord(e) ? `${str(e['path'])}: ${str(e['message'])}` : str(e))).join('; ')}`],
        ]);
      });
    }
    case 'apply': {
      const file = a.value('-f') ?? a.value('--file');
      const dryRun = a.flag('--dry-run');
      a.done();
      if (file === undefined) throw new UsageError('apply needs -f FILE');
      let text: string;
      const path = resolve(ctx.cwd, file);
      try {
        text = readFileSync(file === '-' ? 0 : path, 'utf8');
      } catch (err: unknown) {
        throw new UsageError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const parsed = parseDocumentText(text);
      if (!parsed.ok) {
        const body = { error: `${file} is not valid YAML/JSON: ${parsed.error}`, field: '', errors: [{ path: '', message: parsed.error }] };
        if (json) io.out(`${JSON.stringify(body, null, 2)}\n`);
        io.err(`xsctl: ${body.error}\n`);
        return EXIT_REFUSED;
      }
      resolveExtensionPaths(parsed.value, file === '-' ? ctx.cwd : dirname(path));
      return finish(await c.call('PUT', `/v1/desired${dryRun ? '?dryRun=1' : ''}`, parsed.value ?? null), json, io, (b) => {
        const r = isRecord(b) ? b : {};
        const actions = Array.isArray(r['actions']) ? (r['actions'] as Record<string, unknown>[]) : [];
        const head = dryRun
          ? `dry run: ${actions.length} action${actions.length === 1 ? '' : 's'} would apply (nothing changed)\n`
          : actions.length === 0 ? `unchanged (revision ${str(r['revision'])})\n` : `applied: ${actions.length} action${actions.length === 1 ? '' : 's'} (revision ${str(r['revision'])})\n`;
        return head + actions.map((x) => `  ${str(x['op'])} ${str(x['switch'])}${x['port'] !== undefined ? `/${str(x['port'])}` : ''}${Array.isArray(x['order']) ? ` [${(x['order'] as string[]).join(', ')}]` : ''}` +
          `${Array.isArray(x['providerAddresses']) ? ` (PA ${(x['providerAddresses'] as string[]).join(', ')})` : ''}\n`).join('');
      });
    }
    case 'export': {
      a.done();
      const r = await c.call('GET', '/v1/desired');
      if (r.ok && r.status === 200 && isRecord(r.body)) {
        const doc = r.body['document'];
        io.out(json ? `${JSON.stringify(doc, null, 2)}\n` : `# revision ${str(r.body['revision'])}\n${yamlStringify(doc)}`);
        return EXIT_OK;
      }
      return finish(r, json, io, () => '');
    }
    case 'switch': {
      switch (sub) {
        case 'add': {
          const [name] = subArgs.positionals(1, ['NAME']);
          subArgs.done();
          return finish(await c.call('POST', '/v1/switches', { name }), json, io, revisionLine(`switch ${name!} added`));
        }
        case 'del': {
          const [name] = subArgs.positionals(1, ['NAME']);
          subArgs.done();
          return finish(await c.call('DELETE', `/v1/switches/${enc(name!)}`), json, io, revisionLine(`switch ${name!} deleted`));
        }
        case 'list': {
          subArgs.done();
          return finish(await c.call('GET', '/v1/switches'), json, io, (b) => table(['NAME', 'PORTS', 'EXTENSIONS', 'UPLINK'],
            (Array.isArray(b) ? b : []).map((s: Record<string, unknown>) => [str(s['name']), str(s['ports']), str(s['extensions']), str(s['uplink'])])));
        }
        default:
          throw new UsageError(`switch needs add, del or list${sub === undefined ? '' : ` (got ${sub})`}`);
      }
    }
    case 'port':
      return portCommand(sub, subArgs, c, json, io);
    case 'network': {
      a.done();
      return finish(await c.call('GET', '/v1/network'), json, io, networkText);
    }
    case 'vsid': {
      if (sub !== undefined && sub !== 'list') throw new UsageError(`vsid needs list (got ${sub})`);
      (sub === undefined ? a : subArgs).done();
      return finish(await c.call('GET', '/v1/network/vsids'), json, io, (b) => rows(b).length === 0 ? 'no virtualized switch (no provider address of this host on a switch with an uplink)\n' : vsidTable(rows(b), true));
    }
    case 'record':
      return recordCommand(sub, subArgs, c, json, io);
    case 'arp': {
      a.done();
      return finish(await c.call('GET', '/v1/network/arp'), json, io, (b) => arpTable(rows(b), true));
    }
    case 'virt': {
      const [sw] = a.positionals(1, ['SWITCH']);
      a.done();
      return finish(await c.call('GET', `/v1/switches/${enc(sw!)}/virtualization`), json, io, virtText);
    }
    case 'ext':
      return extCommand(sub, subArgs, c, json, ctx);
    case 'mac': {
      const [sw] = a.positionals(1, ['SWITCH']);
      a.done();
      return finish(await c.call('GET', `/v1/switches/${enc(sw!)}/macs`), json, io, (b) => table(['MAC', 'VLAN', 'VSID', 'PORT', 'AGE'],
        (Array.isArray(b) ? b : []).map((m: Record<string, unknown>) => [str(m['mac']), str(m['vlan']), str(m['vsid']), str(m['port']),
          typeof m['ageMs'] === 'number' ? `${(m['ageMs'] / 1000).toFixed(1)}s` : '-'])));
    }
    case 'acl': {
      const [sw, port] = a.positionals(2, ['SWITCH', 'PORT']);
      const conns = a.flag('--connections');
      a.done();
      const path = `/v1/switches/${enc(sw!)}/ports/${enc(port!)}/acl${conns ? '?connections=1' : ''}`;
      return finish(await c.call('GET', path), json, io, aclText);
    }
    case 'counters': {
      const [sw] = a.positionals(1, ['SWITCH']);
      const port = a.optionalPositional();
      a.done();
      const path = `/v1/switches/${enc(sw!)}/counters${port === undefined ? '' : `?port=${enc(port)}`}`;
      return finish(await c.call('GET', path), json, io, (b) => {
        const r = isRecord(b) ? b : {};
        const rows: string[][] = [];
        const row = (name: string, x: unknown): void => {
          const p = isRecord(x) ? x : {};
          rows.push([name, str(p['rxFrames']), str(p['rxBytes']), str(p['txFrames']), str(p['txBytes']), dropsText(p['drops'])]);
        };
        for (const [n, x] of Object.entries(isRecord(r['ports']) ? r['ports'] : {})) row(n, x);
        if (port === undefined) row(`(switch ${sw!})`, r['switch']);
        const out = table(['PORT', 'RX-FRAMES', 'RX-BYTES', 'TX-FRAMES', 'TX-BYTES', 'DROPS'], rows);
        const sc = isRecord(r['switch']) ? r['switch'] : {};
        const gro = isRecord(sc['gro']) ? sc['gro'] : null;
        const qos = qosCountersText(isRecord(r['ports']) ? r['ports'] : {});
        if (port !== undefined) return out + qos;
        let tail = out.endsWith('\n') ? out : `${out}\n`;
        if (gro !== null) tail += `GRO (switch ${sw!}): ${str(gro['segments'])} segments coalesced into ${str(gro['superFrames'])} super-frames\n`;
        if (typeof sc['mirrored'] === 'number') tail += `MIRRORED (switch ${sw!}): ${str(sc['mirrored'])} copies sent to mirror destinations\n`;
        return tail + qos;
      });
    }
    default:
      throw new UsageError(`unknown command ${cmd!}`);
  }
}

/** Ports with QoS (src/policy/qos.ts): reads paused, policed, scheduler queue counts. */
function qosCountersText(ports: Record<string, unknown>): string {
  const rows: string[][] = [];
  for (const [n, x] of Object.entries(ports)) {
    const q = isRecord(x) && isRecord(x['qos']) ? x['qos'] : null;
    if (q === null) continue;
    const srcs = Array.isArray(q['sources']) ? q['sources'].filter(isRecord).map((s) => `#${str(s['port'])}${typeof s['pcp'] === 'number' ? `/p${s['pcp']}` : ''}(w${str(s['weight'])}):${str(s['dequeued'])}`).join(' ') : '';
    rows.push([n, str(q['throttles']), str(q['queued']), str(q['dequeued']), str(q['waiting']), str(q['queueDrops']), srcs === '' ? '-' : srcs]);
  }
  return rows.length === 0 ? '' : `QOS\n${table(['PORT', 'THROTTLES', 'QUEUED', 'DEQUEUED', 'WAITING', 'QUEUE-DROPS', 'SOURCES'], rows)}`;
}

function aclText(b: unknown): string {
  const r = isRecord(b) ? b : {};
  const addr = (x: unknown, p: unknown): string => (x === undefined && p === undefined ? 'any' : `${str(x ?? 'any')}${p === undefined ? '' : ` port ${str(p)}`}`);
  let out = `ACLS (most specific allow/deny decides; meter counts)\n`;
  out += table(['#', 'DIRECTION', 'ACTION', 'LOCAL', 'REMOTE', 'FRAMES', 'BYTES'], list(r['acls']).map((x) => {
    const rule = isRecord(x['rule']) ? x['rule'] : {};
    return [str(x['index']), str(rule['direction']), str(rule['action']), str(rule['local'] ?? 'any'), str(rule['remote'] ?? 'any'), str(x['frames']), str(x['bytes'])];
  }));
  out += `\nEXTENDED ACLS (highest weight decides; evaluated first)\n`;
  out += table(['#', 'WEIGHT', 'DIRECTION', 'ACTION', 'PROTOCOL', 'LOCAL', 'REMOTE', 'STATEFUL', 'FRAMES', 'BYTES'], list(r['extendedAcls']).map((x) => {
    const rule = isRecord(x['rule']) ? x['rule'] : {};
    return [str(x['index']), str(rule['weight']), str(rule['direction']), str(rule['action']), str(rule['protocol'] ?? 'any'),
      addr(rule['localAddress'], rule['localPort']), addr(rule['remoteAddress'], rule['remotePort']),
      rule['stateful'] === true ? `yes (idle ${str(rule['idleTimeoutSec'] ?? 240)}s)` : 'no', str(x['frames']), str(x['bytes'])];
  }));
  const ct = isRecord(r['connections']) ? r['connections'] : null;
  out += ct === null ? '\nCONNECTIONS  none tracked (no stateful rule)\n'
    : `\nCONNECTIONS  ${str(ct['size'])}/${str(ct['limit'])} tracked, ${str(ct['created'])} created, ${str(ct['expired'])} expired, ${str(ct['refused'])} refused (table full), ${str(ct['hits'])} frames admitted (${str(ct['related'] ?? 0)} related ICMP errors)\n`;
  const fr = isRecord(r['fragments']) ? r['fragments'] : null;
  if (fr !== null) {
    out += `FRAGMENTS  ${str(fr['size'])}/${str(fr['limit'])} datagrams, ${str(fr['stored'])} first fragments stored, ${str(fr['hits'])} later fragments judged as their first, ${str(fr['completed'])} datagrams complete, ${str(fr['unknown'])} with no first seen (${str(fr['unknownDropped'])} dropped acl-fragment-unknown), ${str(fr['full'])} refused (table full), ${str(fr['expired'])} expired\n`;
  }
  const conns = list(r['connectionList']);
  if (conns.length > 0) {
    out += table(['PROTO', 'LOCAL', 'REMOTE', 'OPENED', 'STATE', 'RULE', 'EXPIRES'], conns.map((x) => [str(x['protocol']), str(x['local']), str(x['remote']),
      str(x['opened']), str(x['state']), str(x['rule']), typeof x['expiresInMs'] === 'number' ? `${(x['expiresInMs'] / 1000).toFixed(1)}s` : '-']));
  }
  out += `DROPS  ${dropsText(r['drops'])}\n`;
  return out;
}

function rows(b: unknown): Record<string, unknown>[] {
  return Array.isArray(b) ? b.filter(isRecord) : [];
}

function list(v: unknown): Record<string, unknown>[] {
  return rows(v);
}

function vsidTable(vs: Record<string, unknown>[], withSwitch: boolean): string {
  return table([...(withSwitch ? ['SWITCH'] : []), 'VSID', 'ROUTING-DOMAIN', 'PREFIX', 'GATEWAY', 'TENANT-MTU', 'RECORDS', 'LOCAL'],
    vs.map((v) => [...(withSwitch ? [str(v['switch'])] : []), str(v['vsid']), `${str(v['rdName'])} ${str(v['rdid'])}`, str(v['prefix']), str(v['gateway']),
      str(v['tenantMtu']), str(v['records']), str(v['localRecords'])]));
}

function recordTable(rs: Record<string, unknown>[], withSwitch: boolean): string {
  return table([...(withSwitch ? ['SWITCH'] : []), 'CA', 'VSID', 'MAC', 'PA', 'RULE', ...(withSwitch ? ['VM'] : []), 'WHERE'],
    rs.map((r) => [...(withSwitch ? [str(r['switch'])] : []), str(r['ca']), str(r['vsid']), str(r['mac']), str(r['pa']), str(r['rule']),
      ...(withSwitch ? [str(r['vm'])] : []), r['local'] === true ? 'local' : 'remote']));
}

function arpTable(es: Record<string, unknown>[], withSwitch: boolean): string {
  return table([...(withSwitch ? ['SWITCH'] : []), 'ADDRESS', 'MAC', 'STATE', 'AGE'],
    es.map((e) => [...(withSwitch ? [str(e['switch'])] : []), str(e['address']), str(e['mac']), str(e['state']),
      typeof e['ageMs'] === 'number' ? `${(e['ageMs'] / 1000).toFixed(1)}s` : '-']));
}

/** `xsctl network`: the stored policy, one table per kind of object. */
function networkText(b: unknown): string {
  const n = isRecord(b) ? b : {};
  const out: string[] = [`router MAC ${str(n['routerMac'])}\n`];
  const section = (title: string, headers: string[], body: string[][]): void => {
    out.push(`\n${title}\n`, body.length === 0 ? '(none)\n' : table(headers, body));
  };
  section('PROVIDER ADDRESSES', ['HOST', 'SWITCH', 'ADDRESS', 'VLAN'], list(n['providerAddresses']).map((p) => [str(p['host']), str(p['switch']), str(p['address']), p['vlan'] === 0 ? '-' : str(p['vlan'])]));
  if (list(n['providerRoutes']).length > 0) section('PROVIDER ROUTES', ['HOST', 'PREFIX', 'NEXT-HOP'], list(n['providerRoutes']).map((r) => [str(r['host']), str(r['prefix']), str(r['nextHop'])]));
  if (list(n['remotes']).length > 0) section('REMOTES', ['PA', 'FLOW-ID'], list(n['remotes']).map((r) => [str(r['pa']), str(r['flowId'])]));
  section('ROUTING DOMAINS', ['RDID', 'NAME', 'VSID', 'PREFIX', 'GATEWAY'], list(n['routingDomains']).flatMap((d) => {
    const subnets = list(d['subnets']);
    if (subnets.length === 0) return [[str(d['id']), str(d['name']), '-', '-', '-']];
    // a dual-stack subnet shows both prefixes (and gateways), an IPv6-only one its IPv6 prefix
    const both = (a: unknown, b: unknown): string => [a, b].filter((v) => typeof v === 'string').join(' ') || '-';
    return subnets.map((x) => [str(d['id']), str(d['name']), str(x['vsid']), both(x['prefix'], x['prefix6']), both(x['gateway'], x['gateway6'])]);
  }));
  section('LOOKUP RECORDS', ['CA', 'VSID', 'MAC', 'PA', 'RULE', 'VM'], list(n['lookupRecords']).map((r) => [str(r['ca']), str(r['vsid']), str(r['mac']), str(r['pa']), str(r['rule']), str(r['vm'])]));
  if (list(n['customerRoutes']).length > 0) {
    section('CUSTOMER ROUTES', ['RDID', 'VSID', 'PREFIX', 'NEXT-HOP'], list(n['customerRoutes']).map((r) => [str(r['rdid']), str(r['vsid']), str(r['prefix']), r['nextHop'] === '0.0.0.0' || r['nextHop'] === '::' ? 'on-link' : str(r['nextHop'])]));
  }
  return out.join('');
}

/** `xsctl virt SW`: the whole VirtualizationStatus. */
function virtText(b: unknown): string {
  const v = isRecord(b) ? b : {};
  const pas = Array.isArray(v['providerAddresses']) ? v['providerAddresses'].map(str).join(', ') : '-';
  const out = [table(['KEY', 'VALUE'], [
    ['switch', str(v['switchName'])], ['host', str(v['host'])], ['provider addresses', pas || '-'],
    ['underlay MTU', str(v['underlayMtu'])], ['router MAC', str(v['routerMac'])],
  ])];
  out.push('\nVSIDS\n', vsidTable(list(v['vsids']), false));
  out.push('\nLOOKUP RECORDS\n', recordTable(list(v['records']), false));
  out.push('\nPA ARP CACHE\n', list(v['arp']).length === 0 ? '(empty)\n' : arpTable(list(v['arp']), false));
  const counters = isRecord(v['counters']) ? Object.entries(v['counters']) : [];
  out.push('\nCOUNTERS\n', counters.length === 0 ? '(none)\n' : table(['COUNTER', 'VALUE'], counters.map(([k, x]) => [k, str(x)])));
  return out.join('');
}

async function recordCommand(sub: string | undefined, a: Args, c: ApiClient, json: boolean, io: Io): Promise<number> {
  switch (sub) {
    case 'list': {
      a.done();
      return finish(await c.call('GET', '/v1/network/records'), json, io, (b) => recordTable(rows(b), true));
    }
    case 'add':
    case 'set': {
      const vsid = a.int('--vsid');
      const pa = a.value('--pa');
      const rule = a.value('--rule');
      const mac = a.value('--mac');
      const vm = a.value('--vm');
      const [ca] = a.positionals(1, ['CA']);
      a.done();
      if (vsid === undefined) throw new UsageError(`record ${sub} needs --vsid N`);
      if (rule !== undefined && !['encap', 'rewrite', 'vxlan'].includes(rule)) throw new UsageError(`--rule must be encap, rewrite or vxlan, got ${rule}`);
      const body: Record<string, unknown> = {};
      if (pa !== undefined) body['pa'] = pa;
      if (rule !== undefined) body['rule'] = rule;
      if (mac !== undefined) body['mac'] = mac;
      if (vm !== undefined) body['vm'] = vm === 'none' ? null : vm;
      if (sub === 'add') {
        if (mac === undefined || pa === undefined) throw new UsageError('record add needs --mac MAC and --pa PA');
        if (vm === 'none') delete body['vm'];
        return finish(await c.call('POST', '/v1/network/records', { ca, vsid, ...body }), json, io, revisionLine(`record ${ca!} (VSID ${vsid}) added`));
      }
      if (Object.keys(body).length === 0) throw new UsageError('record set needs something to change (--pa, --rule, --mac, --vm)');
      return finish(await c.call('PATCH', `/v1/network/records/${vsid}/${enc(ca!)}`, body), json, io, revisionLine(`record ${ca!} (VSID ${vsid}) updated`));
    }
    case 'del': {
      const vsid = a.int('--vsid');
      const [ca] = a.positionals(1, ['CA']);
      a.done();
      if (vsid === undefined) throw new UsageError('record del needs --vsid N');
      return finish(await c.call('DELETE', `/v1/network/records/${vsid}/${enc(ca!)}`), json, io, revisionLine(`record ${ca!} (VSID ${vsid}) deleted`));
    }
    default:
      throw new UsageError(`record needs list, add, set or del${sub === undefined ? '' : ` (got ${sub})`}`);
  }
}

/** The VLAN flags of port add/set: undefined when none was given. */
function vlanFlags(a: Args): Record<string, unknown> | null | undefined {
  const access = a.int('--access');
  const trunk = a.intList('--trunk');
  const native = a.int('--native');
  const none = a.flag('--no-vlan');
  if ([access !== undefined, trunk !== undefined, none].filter((x) => x).length > 1) throw new UsageError('choose one of --access, --trunk, --no-vlan');
  if (native !== undefined && trunk === undefined) throw new UsageError('--native goes with --trunk');
  if (access !== undefined) return { mode: 'access', id: access };
  if (trunk !== undefined) return native === undefined ? { mode: 'trunk', allowed: trunk } : { mode: 'trunk', allowed: trunk, native };
  return none ? null : undefined;
}

/** The guard flags of port set (merged into the port's current policy): undefined when none was given. */
function policyFlags(a: Args): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  const onOff = (flag: string, key: string): void => {
    const v = a.value(flag);
    if (v === undefined) return;
    if (v !== 'on' && v !== 'off') throw new UsageError(`${flag} needs on or off, got ${v}`);
    out[key] = v === 'on';
  };
  onOff('--dhcp-guard', 'dhcpGuard');
  onOff('--router-guard', 'routerGuard');
  onOff('--mac-spoofing', 'macSpoofing');
  onOff('--trust-priority', 'trustPriority');
  const storm = a.int('--storm-limit');
  if (storm !== undefined) out['stormLimit'] = storm;
  // QoS (src/policy/qos.ts): 0 removes the setting
  const pcp = a.value('--pcp-weights');
  if (pcp !== undefined) out['pcpWeights'] = pcp === 'none' ? null : pcp.split(',').map((x) => Number(x));
  for (const [flag, key] of [['--max-mbps', 'maxMbps'], ['--max-burst-kb', 'maxBurstKB'], ['--min-weight', 'minWeight'], ['--min-mbps', 'minMbps'], ['--link-mbps', 'linkMbps']] as const) {
    const n = a.int(flag);
    if (n !== undefined) out[key] = n === 0 ? null : n;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** `--pvlan TYPE:PRIMARY[:SECONDARY[,SECONDARY...]]` as a private VLAN document entry; undefined when absent. */
function pvlanFlag(a: Args): Record<string, unknown> | undefined {
  const v = a.value('--pvlan');
  if (v === undefined) return undefined;
  const m = /^(isolated|community|promiscuous):(\d+)(?::(\d+(?:,\d+)*))?$/.exec(v);
  if (m === null) throw new UsageError(`--pvlan needs isolated:PRIMARY:SECONDARY, community:PRIMARY:SECONDARY or promiscuous:PRIMARY[:SECONDARY,...], got ${v}`);
  const o: Record<string, unknown> = { mode: 'private', primary: Number(m[2]), type: m[1] };
  if (m[3] !== undefined) o['secondary'] = m[1] === 'promiscuous' ? m[3].split(',').map(Number) : Number(m[3]);
  return o;
}

async function portCommand(sub: string | undefined, a: Args, c: ApiClient, json: boolean, io: Io): Promise<number> {
  switch (sub) {
    case 'add': {
      const tap = a.value('--tap');
      const veth = a.value('--veth');
      const mac = a.value('--mac');
      const vsid = a.int('--vsid');
      const vlan = vlanFlags(a);
      const noOffload = a.flag('--no-offload');
      const macLimit = a.int('--mac-limit');
      const down = a.flag('--down');
      const internalAt = a.flagIndex('--internal');
      const [sw, name] = a.positionals(2, ['SWITCH', 'NAME'], internalAt);
      // After the positionals, so `port add sw0 p1 --internal` does not take p1 as the interface name.
      const internal = a.optionalValue('--internal');
      a.done();
      const kinds = [tap !== undefined, veth !== undefined, internal.present].filter((x) => x).length;
      if (kinds !== 1) throw new UsageError('port add needs exactly one of --tap IFNAME, --veth IFNAME, --internal [IFNAME]');
      const iface = tap !== undefined ? { tap } : veth !== undefined ? { veth } : internal.value === undefined ? { internal: true } : { internal: true, name: internal.value };
      const body: Record<string, unknown> = { name, interface: iface };
      if (mac !== undefined) body['mac'] = mac;
      if (vsid !== undefined) body['vsid'] = vsid;
      if (vlan !== undefined && vlan !== null) body['vlan'] = vlan;
      if (noOffload) body['offload'] = false;
      if (macLimit !== undefined) body['macLimit'] = macLimit;
      if (down) body['up'] = false;
      return finish(await c.call('POST', `/v1/switches/${enc(sw!)}/ports`, body), json, io, revisionLine(`port ${name!} added to ${sw!}`));
    }
    case 'del': {
      const [sw, name] = a.positionals(2, ['SWITCH', 'NAME']);
      a.done();
      return finish(await c.call('DELETE', `/v1/switches/${enc(sw!)}/ports/${enc(name!)}`), json, io, revisionLine(`port ${name!} deleted from ${sw!}`));
    }
    case 'list': {
      const [sw] = a.positionals(1, ['SWITCH']);
      a.done();
      return finish(await c.call('GET', `/v1/switches/${enc(sw!)}/ports`), json, io, (b) => {
        const ps: Record<string, unknown>[] = Array.isArray(b) ? b : [];
        // a stored port that could not be opened (after a restart) is down with its reason under the table
        const errs = ps.filter((p) => typeof p['error'] === 'string').map((p) => `${str(p['name'])}: down, not running: ${str(p['error'])}\n`);
        return table(['NAME', 'ID', 'INTERFACE', 'MAC', 'VLAN', 'VSID', 'UP', 'OFFLOAD', 'POLICY', 'MIRROR'],
          ps.map((p) => [str(p['name']), str(p['id']), ifaceText(p['interface'], p['ifname']), str(p['mac']),
            vlanText(p['vlan']), p['vsid'] === 0 ? '-' : str(p['vsid']), p['up'] === true && typeof p['error'] !== 'string' ? 'up' : 'down', p['offload'] === true ? 'on' : 'off', policyText(p['policy']),
            typeof p['mirror'] === 'string' && p['mirror'] !== 'none' ? p['mirror'] : '-'])) + errs.join('');
      });
    }
    case 'set': {
      const up = a.flag('--up');
      const down = a.flag('--down');
      const vlan = vlanFlags(a);
      const mac = a.value('--mac');
      const vsid = a.int('--vsid');
      const macLimit = a.int('--mac-limit');
      const offload = a.flag('--offload');
      const noOffload = a.flag('--no-offload');
      const policy = policyFlags(a);
      const pvlan = pvlanFlag(a);
      const mirror = a.value('--mirror');
      const [sw, name] = a.positionals(2, ['SWITCH', 'NAME']);
      a.done();
      if (pvlan !== undefined && vlan !== undefined) throw new UsageError('choose --pvlan or --access/--trunk/--no-vlan');
      if (up && down) throw new UsageError('choose --up or --down');
      if (mirror !== undefined && mirror !== 'source' && mirror !== 'destination' && mirror !== 'none') {
        throw new UsageError(`--mirror takes source, destination or none (got ${mirror})`);
      }
      if (offload && noOffload) throw new UsageError('choose --offload or --no-offload');
      const body: Record<string, unknown> = {};
      if (up || down) body['up'] = up;
      if (vlan !== undefined) body['vlan'] = vlan;
      if (mac !== undefined) body['mac'] = mac === 'none' ? null : mac;
      if (vsid !== undefined) body['vsid'] = vsid;
      if (macLimit !== undefined) body['macLimit'] = macLimit;
      if (offload || noOffload) body['offload'] = offload;
      if (pvlan !== undefined) body['vlan'] = pvlan;
      if (policy !== undefined) {
        // PATCH replaces the whole policy object: merge the flags into what the port has now
        const cur = await c.call('GET', `/v1/switches/${enc(sw!)}/ports/${enc(name!)}`);
        if (!cur.ok || cur.status !== 200) return finish(cur, json, io, () => '');
        const had = isRecord(cur.body) && isRecord(cur.body['policy']) ? cur.body['policy'] : {};
        body['policy'] = { ...had, ...policy };
      }
      if (mirror !== undefined) {
        // the API merges policy keys; null removes one
        body['policy'] = { ...(isRecord(body['policy']) ? body['policy'] : {}), mirror: mirror === 'none' ? null : mirror };
      }
      if (Object.keys(body).length === 0) throw new UsageError('port set needs something to change (--up, --down, --access, --trunk, ...)');
      return finish(await c.call('PATCH', `/v1/switches/${enc(sw!)}/ports/${enc(name!)}`, body), json, io, revisionLine(`port ${name!} of ${sw!} updated`));
    }
    default:
      throw new UsageError(`port needs add, del, list or set${sub === undefined ? '' : ` (got ${sub})`}`);
  }
}

async function extCommand(sub: string | undefined, a: Args, c: ApiClient, json: boolean, ctx: CliEnv): Promise<number> {
  const { io } = ctx;
  switch (sub) {
    case 'add': {
      const path = a.value('--path');
      const config = a.value('--config');
      const disabled = a.flag('--disabled');
      const position = a.int('--position');
      const [sw, name] = a.positionals(2, ['SWITCH', 'NAME']);
      a.done();
      if (path === undefined) throw new UsageError('ext add needs --path FILE');
      const body: Record<string, unknown> = { name, path: resolve(ctx.cwd, path) };
      if (config !== undefined) {
        try {
          body['config'] = JSON.parse(config) as unknown;
        } catch (err: unknown) {
          throw new UsageError(`--config is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      if (disabled) body['enabled'] = false;
      if (position !== undefined) body['position'] = position;
      return finish(await c.call('POST', `/v1/switches/${enc(sw!)}/extensions`, body), json, io, revisionLine(`extension ${name!} added to ${sw!}`));
    }
    case 'del': {
      const [sw, name] = a.positionals(2, ['SWITCH', 'NAME']);
      a.done();
      return finish(await c.call('DELETE', `/v1/switches/${enc(sw!)}/extensions/${enc(name!)}`), json, io, revisionLine(`extension ${name!} deleted from ${sw!}`));
    }
    case 'enable':
    case 'disable': {
      const [sw, name] = a.positionals(2, ['SWITCH', 'NAME']);
      a.done();
      return finish(await c.call('PATCH', `/v1/switches/${enc(sw!)}/extensions/${enc(name!)}`, { enabled: sub === 'enable' }), json, io,
        revisionLine(`extension ${name!} of ${sw!} ${sub}d`));
    }
    case 'order': {
      const [sw, list] = a.positionals(2, ['SWITCH', 'NAME,NAME,...']);
      a.done();
      const order = list!.split(',').map((s) => s.trim()).filter((s) => s !== '');
      return finish(await c.call('PUT', `/v1/switches/${enc(sw!)}/extensions-order`, { order }), json, io, revisionLine(`extensions of ${sw!} reordered: ${order.join(', ')}`));
    }
    case 'list': {
      const [sw] = a.positionals(1, ['SWITCH']);
      a.done();
      return finish(await c.call('GET', `/v1/switches/${enc(sw!)}/extensions`), json, io, (b) => table(['NAME', 'KIND', 'ENABLED', 'POSITION', 'FAULTS', 'DISABLED-REASON', 'STATS'],
        (Array.isArray(b) ? b : []).map((e: Record<string, unknown>) => [str(e['name']), str(e['kind']), e['enabled'] === true ? 'yes' : 'no', str(e['position']),
          str(e['faults']), str(e['disabledReason']), isRecord(e['stats']) ? Object.entries(e['stats']).map(([k, v]) => `${k}=${str(v)}`).join(' ') || '-' : '-'])));
    }
    default:
      throw new UsageError(`ext needs add, del, enable, disable, order or list${sub === undefined ? '' : ` (got ${sub})`}`);
  }
}

/** Entry point of bin/xsctl. */
export async function main(argv: readonly string[]): Promise<number> {
  return run(argv, {
    env: process.env,
    cwd: process.cwd(),
    io: { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) },
  });
}
