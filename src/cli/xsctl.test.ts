// cli/xsctl.test.ts: `node bin/xsctl` against a real `node bin/xswitchd` on a temp socket and SQLite file: every
// command, exit codes 0/1/2/3, --json shapes, restore after restart, and a corrupt store refused at start.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const XSCTL = join(ROOT, 'bin', 'xsctl');
const XSWITCHD = join(ROOT, 'bin', 'xswitchd');
const CAPTURE = join(ROOT, 'dist', 'src', 'control', 'fixtures', 'ext-capture.js');
const FILTER = join(ROOT, 'dist', 'src', 'control', 'fixtures', 'ext-filter.js');
const ROOT_USER = process.getuid?.() === 0;
const tag = `xs${randomBytes(2).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'xs-cli-'));
const socket = join(dir, 'run', 'xs.sock');
const db = join(dir, 'lib', 'xs.db');
let daemon: { proc: ChildProcess; out: string[]; err: string[]; exit: Promise<number | null> } | null = null;

function startDaemon(storePath = db) {
  const proc = spawn(process.execPath, [XSWITCHD, '--store', `sqlite:${storePath}`, '--socket', socket, '--host', 'h1', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const err: string[] = [];
  proc.stdout!.on('data', (b: Buffer) => out.push(b.toString()));
  proc.stderr!.on('data', (b: Buffer) => err.push(b.toString()));
  const exit = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  return { proc, out, err, exit };
}

function xsctl(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [XSCTL, '--socket', socket, ...args], { encoding: 'utf8', timeout: 20_000, cwd: dir });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function okJson<T>(...args: string[]): T {
  const r = xsctl('--json', ...args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function waitUp(): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (xsctl('status').code === 0) return;
    if (daemon !== null && daemon.proc.exitCode !== null) throw new Error(`xswitchd exited: ${daemon.err.join('')}`);
    if (Date.now() > deadline) throw new Error(`xswitchd did not answer: ${daemon?.err.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopDaemon(): Promise<number | null> {
  if (daemon === null) return null;
  const d = daemon;
  daemon = null;
  if (d.proc.exitCode !== null) return d.proc.exitCode;
  d.proc.kill('SIGTERM');
  const t = setTimeout(() => d.proc.kill('SIGKILL'), 10_000);
  const code = await d.exit;
  clearTimeout(t);
  return code;
}

function linkExists(name: string): boolean {
  return spawnSync('ip', ['link', 'show', name], { encoding: 'utf8' }).status === 0;
}

after(async () => {
  await stopDaemon();
  rmSync(dir, { recursive: true, force: true });
  // xswitchd's TAPs are persistent and this daemon runs in the root namespace: whatever a failed test left stays
  for (const n of [`${tag}-a`, `${tag}-b`, `${tag}-i`]) if (linkExists(n)) spawnSync('ip', ['link', 'del', n]);
});

describe('xsctl against xswitchd', () => {
  it('exits 3 when the daemon cannot be reached, 2 on usage errors', () => {
    const r = xsctl('status');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot reach xswitchd .* no such socket/);
    const j = xsctl('--json', 'switch', 'list');
    assert.equal(j.code, 3);
    assert.match((JSON.parse(j.stdout) as { error: string }).error, /cannot reach/);
    for (const args of [[], ['frobnicate'], ['switch'], ['switch', 'add'], ['port', 'add', 'sw0', 'p1'], ['port', 'add', 'sw0', 'p1', '--tap', 'a', '--veth', 'b'],
      ['port', 'add', 'sw0', 'p1', '--tap', 'a', '--vsid', 'many'], ['ext', 'add', 'sw0', 'x'], ['status', 'extra'], ['apply'], ['apply', '-f', join(dir, 'missing.yaml')],
      ['ext', 'add', 'sw0', 'x', '--path', 'p.js', '--config', '{nope']]) {
      const u = xsctl(...args);
      assert.equal(u.code, 2, `${args.join(' ')} -> ${u.code} ${u.stderr}`);
      assert.match(u.stderr, /usage: xsctl/);
    }
  });

  it('starts, prints where it listens and what to do next', async () => {
    daemon = startDaemon();
    await waitUp();
    // The human line follows the listen; poll for it with a deadline.
    const deadline = Date.now() + 10_000;
    while (!daemon.out.join('').includes('quickstart') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const out = daemon.out.join('');
    assert.match(out, new RegExp(`xswitchd: API on unix:${socket} \\(store sqlite:${db}\\)`));
    assert.match(out, /examples\/quickstart\.sh/);
    const s = okJson<Record<string, unknown>>('status');
    assert.equal(s['host'], 'h1');
    assert.equal(s['switches'], 0);
    assert.match(xsctl('status').stdout, /host\s+h1/);
    const line = daemon.err.join('').split('\n').find((l) => l.includes('xswitchd started'));
    assert.ok(line !== undefined);
    assert.equal((JSON.parse(line) as Record<string, unknown>)['level'], 'info');
  });

  it('applies a document (relative extension path), exports it, and rejects a bad one whole', () => {
    mkdirSync(join(dir, 'docs'), { recursive: true });
    const docPath = join(dir, 'docs', 'one.yaml');
    // ./count.js is resolved against the document's directory (dir/docs), not xsctl's working directory (dir).
    writeFileSync(join(dir, 'docs', 'count.js'), `export { default } from ${JSON.stringify(CAPTURE)};\n`);
    writeFileSync(docPath, [
      'host: h1',
      'switches:',
      '  - name: sw0',
      '    extensions:',
      '      - { name: count, path: ./count.js, config: { label: c } }',
      '    ports: []',
      '  - name: sw1',
      '',
    ].join('\n'));
    const dry = xsctl('apply', '-f', docPath, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /dry run: 3 actions/);
    assert.deepEqual(okJson('switch', 'list'), []);
    const r = xsctl('apply', '-f', docPath);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /applied: 3 actions \(revision 1\)/);
    const exported = okJson<{ switches: { name: string; extensions?: { path: string }[] }[] }>('export');
    assert.deepEqual(exported.switches.map((s) => s.name), ['sw0', 'sw1']);
    assert.equal(exported.switches[0]!.extensions![0]!.path, join(dir, 'docs', 'count.js'));
    assert.match(xsctl('export').stdout, /^# revision 1\nhost: h1\nswitches:\n {2}- name: sw0/);
    // Applying the export again changes nothing.
    writeFileSync(join(dir, 'exported.json'), JSON.stringify(exported));
    assert.match(xsctl('apply', '-f', join(dir, 'exported.json')).stdout, /unchanged \(revision 1\)/);

    const before = xsctl('--json', 'export').stdout;
    writeFileSync(join(dir, 'bad.yaml'), [
      'switches:',
      '  - name: sw0',
      '    ports:',
      '      - { name: p1, interface: { tap: ok1 }, vlan: { mode: access, id: 0 } }',
      '      - { name: p2, interface: { tap: ok1 }, vsid: 12 }',
      '      - { name: p3, interface: { tapp: x } }',
      'network: { routerMac: "01:00:5e:00:00:01" }',
    ].join('\n'));
    const bad = xsctl('apply', '-f', join(dir, 'bad.yaml'));
    assert.equal(bad.code, 1);
    for (const p of ['switches[0].ports[0].vlan.id', 'switches[0].ports[1].vsid', 'switches[0].ports[1].interface.tap', 'switches[0].ports[2].interface', 'network.routerMac']) {
      assert.ok(bad.stderr.includes(`  ${p}: `), `${p} listed in:\n${bad.stderr}`);
    }
    const badJson = xsctl('--json', 'apply', '-f', join(dir, 'bad.yaml'));
    assert.equal(badJson.code, 1);
    const body = JSON.parse(badJson.stdout) as { error: string; field: string; errors: { path: string }[] };
    assert.equal(body.errors.length, 6, JSON.stringify(body.errors));
    assert.equal(body.field, body.errors[0]!.path);
    writeFileSync(join(dir, 'syntax.yaml'), 'switches: [\n');
    assert.equal(xsctl('apply', '-f', join(dir, 'syntax.yaml')).code, 1);
    assert.equal(xsctl('--json', 'export').stdout, before, 'nothing changed');
  });

  it('manages switches, extensions, MACs and counters imperatively', () => {
    assert.equal(xsctl('switch', 'add', 'sw2').code, 0);
    assert.equal(xsctl('switch', 'add', 'sw2').code, 1);
    assert.equal(xsctl('switch', 'del', 'nope').code, 1);
    assert.deepEqual(okJson<{ name: string; ports: number; extensions: number }[]>('switch', 'list').map((s) => [s.name, s.ports, s.extensions]),
      [['sw0', 0, 1], ['sw1', 0, 0], ['sw2', 0, 0]]);
    assert.match(xsctl('switch', 'list').stdout, /^NAME\s+PORTS\s+EXTENSIONS\s+UPLINK\nsw0\s+0\s+1\s+-\n/);
    assert.equal(xsctl('ext', 'add', 'sw2', 'filt', '--path', FILTER, '--disabled').code, 0);
    assert.equal(xsctl('ext', 'add', 'sw2', 'cap', '--path', CAPTURE, '--config', '{"label":"x"}', '--position', '0').code, 0);
    let exts = okJson<{ name: string; kind: string; enabled: boolean; position: number; faults: number; disabledReason: null; stats: object; path: string }[]>('ext', 'list', 'sw2');
    assert.deepEqual(exts.map((e) => [e.name, e.kind, e.enabled, e.position, e.faults, e.disabledReason, e.path]),
      [['cap', 'capture', true, 0, 0, null, CAPTURE], ['filt', 'filter', false, 1, 0, null, FILTER]]);
    const bad = xsctl('ext', 'order', 'sw2', 'filt,cap');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /switches\[2\]\.extensions\[1\]: capture extension "cap" comes after filter extension "filt"/);
    assert.equal(xsctl('ext', 'enable', 'sw2', 'filt').code, 0);
    assert.equal(xsctl('ext', 'disable', 'sw2', 'cap').code, 0);
    exts = okJson('ext', 'list', 'sw2');
    assert.deepEqual(exts.map((e) => [e.name, e.enabled]), [['cap', false], ['filt', true]]);
    assert.match(xsctl('ext', 'list', 'sw2').stdout, /^NAME\s+KIND\s+ENABLED\s+POSITION\s+FAULTS\s+DISABLED-REASON\s+STATS\ncap\s+capture\s+no\s+0/);
    assert.equal(xsctl('ext', 'del', 'sw2', 'cap').code, 0);
    assert.equal(xsctl('ext', 'del', 'sw2', 'cap').code, 1);
    assert.deepEqual(okJson('mac', 'sw2'), []);
    assert.deepEqual(okJson('counters', 'sw2'), {
      switch: { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, drops: {}, gro: { segments: 0, superFrames: 0 }, mirrored: 0 },
      ports: {},
    });
    assert.match(xsctl('counters', 'sw2').stdout, /\nGRO \(switch sw2\): 0 segments coalesced into 0 super-frames\nMIRRORED \(switch sw2\): 0 copies sent to mirror destinations\n$/);
    assert.equal(xsctl('mac', 'nope').code, 1);
    const nf = xsctl('--json', 'counters', 'nope');
    assert.equal(nf.code, 1);
    assert.match((JSON.parse(nf.stdout) as { error: string }).error, /no switch named nope/);
    assert.equal(xsctl('switch', 'del', 'sw2').code, 0);
  });

  it('shows and edits the network policy: network, record list/add/set/del, vsid list, arp, virt', () => {
    const doc = okJson<Record<string, unknown>>('export');
    doc['network'] = {
      providerAddresses: [{ host: 'h2', switch: 'sw0', address: '192.0.2.2/24' }, { host: 'h3', switch: 'sw0', address: '192.0.2.3/24' }],
      remotes: [{ pa: '192.0.2.3', flowId: 7 }],
      routingDomains: [{ id: '{11111111-2222-3333-4444-00000000000A}', name: 'red', subnets: [{ vsid: 5001, prefix: '10.0.0.0/24', gateway: '10.0.0.1' }] }],
      lookupRecords: [
        { ca: '10.0.0.6', vsid: 5001, mac: '02:00:00:00:00:06', pa: '192.0.2.3', rule: 'vxlan' },
        { ca: '10.0.0.5', vsid: 5001, mac: '02:00:00:00:00:05', pa: '192.0.2.2', rule: 'encap', vm: 'vm1' },
      ],
    };
    writeFileSync(join(dir, 'net.json'), JSON.stringify(doc));
    const r = xsctl('apply', '-f', join(dir, 'net.json'));
    assert.equal(r.code, 0, r.stderr);
    const n = okJson<{ routingDomains: { id: string }[]; lookupRecords: { ca: string; pa: string; rule: string; vm: string | null }[] }>('network');
    assert.equal(n.routingDomains[0]!.id, '{11111111-2222-3333-4444-00000000000a}');
    assert.deepEqual(n.lookupRecords.map((x) => [x.ca, x.pa, x.rule, x.vm]), [['10.0.0.5', '192.0.2.2', 'encap', 'vm1'], ['10.0.0.6', '192.0.2.3', 'vxlan', null]]);
    const text = xsctl('network').stdout;
    assert.match(text, /^router MAC 02:58:53:00:00:01\n/);
    assert.match(text, /LOOKUP RECORDS\nCA\s+VSID\s+MAC\s+PA\s+RULE\s+VM\n10\.0\.0\.5\s+5001\s+02:00:00:00:00:05\s+192\.0\.2\.2\s+encap\s+vm1\n/);
    assert.match(text, /REMOTES\nPA\s+FLOW-ID\n192\.0\.2\.3\s+7\n/);
    type R = { switch: string | null; ca: string; vsid: number; mac: string; pa: string; rule: string; local: boolean };
    assert.deepEqual(okJson<R[]>('record', 'list').map((x) => [x.switch, x.ca, x.pa, x.local]), [[null, '10.0.0.5', '192.0.2.2', false], [null, '10.0.0.6', '192.0.2.3', false]]);
    assert.match(xsctl('record', 'list').stdout, /^SWITCH\s+CA\s+VSID\s+MAC\s+PA\s+RULE\s+VM\s+WHERE\n-\s+10\.0\.0\.5\s+5001\s+02:00:00:00:00:05\s+192\.0\.2\.2\s+encap\s+vm1\s+remote\n/);

    // Live migration of 10.0.0.5 to h3, and a rule change.
    const set = xsctl('record', 'set', '10.0.0.5', '--vsid', '5001', '--pa', '192.0.2.3', '--rule', 'vxlan', '--vm', 'none');
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /record 10\.0\.0\.5 \(VSID 5001\) updated \(revision \d+\)/);
    assert.deepEqual(okJson<R[]>('record', 'list').map((x) => [x.ca, x.pa, x.rule]), [['10.0.0.5', '192.0.2.3', 'vxlan'], ['10.0.0.6', '192.0.2.3', 'vxlan']]);
    assert.equal(okJson<{ lookupRecords: { vm: string | null }[] }>('network').lookupRecords[0]!.vm, null);
    // Refusals: not found and invalid are the daemon's (1); usage errors are 2.
    const nf = xsctl('--json', 'record', 'set', '10.0.0.99', '--vsid', '5001', '--pa', '192.0.2.3');
    assert.equal(nf.code, 1);
    assert.deepEqual(JSON.parse(nf.stdout), { error: 'no lookup record for CA 10.0.0.99 in VSID 5001', field: 'ca' });
    const bad = xsctl('record', 'set', '10.0.0.5', '--vsid', '5001', '--mac', 'ff:ff:ff:ff:ff:ff');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /network\.lookupRecords\[0\]\.mac: ff:ff:ff:ff:ff:ff is a multicast\/broadcast address/);
    for (const args of [['record', 'set', '10.0.0.5', '--pa', '192.0.2.3'], ['record', 'set', '10.0.0.5', '--vsid', '5001'], ['record', 'set', '10.0.0.5', '--vsid', '5001', '--rule', 'gre'],
      ['record', 'add', '10.0.0.9', '--vsid', '5001'], ['record'], ['record', 'frob'], ['vsid', 'frob'], ['virt'], ['network', 'extra']]) {
      const u = xsctl(...args);
      assert.equal(u.code, 2, `${args.join(' ')} -> ${u.code} ${u.stderr}`);
    }
    assert.equal(xsctl('record', 'add', '10.0.0.9', '--vsid', '5001', '--mac', '02:00:00:00:00:09', '--pa', '192.0.2.2', '--rule', 'rewrite').code, 0);
    assert.equal(xsctl('record', 'add', '10.0.0.9', '--vsid', '5001', '--mac', '02:00:00:00:00:09', '--pa', '192.0.2.2').code, 1, 'already there');
    assert.equal(okJson<R[]>('record', 'list').length, 3);
    assert.equal(xsctl('record', 'del', '10.0.0.9', '--vsid', '5001').code, 0);
    assert.equal(xsctl('record', 'del', '10.0.0.9', '--vsid', '5001').code, 1);

    // This host (h1) owns no PA: no switch is virtualized.
    assert.deepEqual(okJson('vsid', 'list'), []);
    assert.match(xsctl('vsid').stdout, /no virtualized switch/);
    assert.deepEqual(okJson('arp'), []);
    assert.match(xsctl('arp').stdout, /^SWITCH\s+ADDRESS\s+MAC\s+STATE\s+AGE\n$/);
    const v = xsctl('virt', 'sw0');
    assert.equal(v.code, 1);
    assert.match(v.stderr, /switch sw0 has no virtualization policy: it has no uplink/);
    assert.equal(xsctl('virt', 'nope').code, 1);
    assert.match(xsctl('export').stdout, /\nnetwork:\n {2}providerAddresses:\n/);
  });

  it('manages TAP ports and restores them after a restart', { skip: !ROOT_USER && 'needs root for TAP devices' }, async () => {
    const t1 = `${tag}-a`;
    const t2 = `${tag}-b`;
    const r = xsctl('port', 'add', 'sw1', 'vm1', '--tap', t1, '--mac', '02:00:00:00:00:01', '--access', '10');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(xsctl('port', 'add', 'sw1', 'vm2', '--tap', t2, '--trunk', '10,20', '--native', '10', '--no-offload', '--mac-limit', '7', '--down').code, 0);
    assert.equal(xsctl('port', 'add', 'sw1', 'host', '--internal', `${tag}-i`, '--vsid', '5001').code, 0);
    assert.ok(linkExists(t1) && linkExists(t2) && linkExists(`${tag}-i`));
    const dup = xsctl('port', 'add', 'sw1', 'vm3', '--tap', t1);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /switches\[1\]\.ports\[3\]\.interface\.tap: interface ".*" is already used at switches\[1\]\.ports\[0\]/);
    const badVlan = xsctl('--json', 'port', 'set', 'sw1', 'vm1', '--access', '4095');
    assert.equal(badVlan.code, 1);
    assert.equal((JSON.parse(badVlan.stdout) as { field: string }).field, 'switches[1].ports[0].vlan.id');
    assert.equal(xsctl('port', 'set', 'sw1', 'vm2', '--up', '--access', '20').code, 0);
    type P = { name: string; interface: Record<string, unknown>; mac: string | null; vsid: number; vlan: Record<string, unknown>; up: boolean; offload: boolean; id: number };
    const ports = okJson<P[]>('port', 'list', 'sw1');
    assert.deepEqual(ports.map((p) => [p.name, p.interface, p.mac, p.vsid, p.vlan, p.up, p.offload]), [
      ['vm1', { tap: t1 }, '02:00:00:00:00:01', 0, { mode: 'access', id: 10 }, true, true],
      ['vm2', { tap: t2 }, null, 0, { mode: 'access', id: 20 }, true, false],
      ['host', { internal: true, name: `${tag}-i` }, null, 5001, { mode: 'none' }, true, true],
    ]);
    assert.ok(ports.every((p) => typeof p.id === 'number' && p.id >= 0));
    assert.match(xsctl('port', 'list', 'sw1').stdout, new RegExp(`vm1\\s+\\d+\\s+tap ${t1}\\s+02:00:00:00:00:01\\s+access 10\\s+-\\s+up\\s+on`));
    const counters = okJson<{ ports: Record<string, { rxFrames: number }> }>('counters', 'sw1', 'vm2');
    assert.deepEqual(Object.keys(counters.ports), ['vm2']);
    assert.match(xsctl('counters', 'sw1').stdout, /^PORT\s+RX-FRAMES\s+RX-BYTES\s+TX-FRAMES\s+TX-BYTES\s+DROPS\nvm1\s+/);
    assert.equal(xsctl('counters', 'sw1', 'nope').code, 1);
    // port mirroring: set, listed, exported as policy, turned off; bad values refused
    assert.equal(xsctl('port', 'set', 'sw1', 'vm1', '--mirror', 'source').code, 0);
    assert.equal(xsctl('port', 'set', 'sw1', 'host', '--mirror', 'destination').code, 0);
    const mirrors = (): string[][] => okJson<{ name: string; mirror: string }[]>('port', 'list', 'sw1').map((p) => [p.name, p.mirror]);
    assert.deepEqual(mirrors(), [['vm1', 'source'], ['vm2', 'none'], ['host', 'destination']]);
    assert.match(xsctl('port', 'list', 'sw1').stdout, /\s+MIRROR\n(.*\n)*vm1\s+.*\s+source\n(.*\n)*host\s+.*\s+destination\n/);
    const mirrorDoc = okJson<{ switches: { name: string; ports: { name: string; policy?: unknown }[] }[] }>('export');
    assert.deepEqual(mirrorDoc.switches.find((s) => s.name === 'sw1')!.ports.map((p) => p.policy ?? null), [{ mirror: 'source' }, null, { mirror: 'destination' }]);
    assert.equal(xsctl('port', 'set', 'sw1', 'vm1', '--mirror', 'both').code, 2);
    assert.equal(xsctl('port', 'set', 'sw1', 'vm1', '--mirror', 'none').code, 0);
    assert.deepEqual(mirrors(), [['vm1', 'none'], ['vm2', 'none'], ['host', 'destination']]);
    assert.equal(xsctl('port', 'set', 'sw1', 'host', '--mirror', 'none').code, 0);
    // QoS flags merge into the port's policy; 0 removes one; the counters show a QOS table for ports with QoS
    assert.equal(xsctl('port', 'set', 'sw1', 'vm1', '--max-mbps', '50', '--min-weight', '3', '--link-mbps', '100').code, 0);
    assert.equal(xsctl('port', 'set', 'sw1', 'vm1', '--pcp-weights', '1,2').code, 1, 'eight weights');
    assert.equal(xsctl('port', 'set', 'sw1', 'vm1', '--link-mbps', '0').code, 0);
    assert.deepEqual((okJson<(P & { policy?: unknown })[]>('port', 'list', 'sw1')).find((p) => p.name === 'vm1')?.policy, { maxMbps: 50, minWeight: 3 });
    assert.match(xsctl('port', 'list', 'sw1').stdout, /max=50Mbps min-weight=3/);
    assert.match(xsctl('counters', 'sw1').stdout, /\nQOS\nPORT\s+THROTTLES\s+QUEUED\s+DEQUEUED\s+WAITING\s+QUEUE-DROPS\s+SOURCES\nvm1\s+0\s+0/);

    const exported = xsctl('--json', 'export').stdout;
    const ifindex = (n: string): string => readFileSync(`/sys/class/net/${n}/ifindex`, 'utf8').trim();
    const before = [t1, t2, `${tag}-i`].map(ifindex);
    assert.equal(await stopDaemon(), 0, 'clean shutdown');
    assert.ok(linkExists(t1) && linkExists(t2) && linkExists(`${tag}-i`), 'TAPs are persistent: they outlive the daemon');
    daemon = startDaemon();
    await waitUp();
    assert.equal(xsctl('--json', 'export').stdout, exported, 'the store kept the document');
    assert.deepEqual([t1, t2, `${tag}-i`].map(ifindex), before, 'the same TAPs are attached again on start, not re-created');
    assert.deepEqual(okJson<P[]>('port', 'list', 'sw1').map((p) => p.name), ['vm1', 'vm2', 'host']);
    assert.equal(xsctl('port', 'del', 'sw1', 'vm1').code, 0);
    assert.equal(linkExists(t1), false);
    assert.equal(xsctl('port', 'del', 'sw1', 'vm1').code, 1);
    assert.equal(xsctl('switch', 'del', 'sw1').code, 0);
    assert.equal(linkExists(t2), false);
    assert.equal(linkExists(`${tag}-i`), false, 'switch del deletes its persistent TAPs');
  });

  it('refuses to start on a corrupt store and leaves the file alone', async () => {
    await stopDaemon();
    const bad = join(dir, 'corrupt.db');
    const junk = Buffer.from('SQLite format 3\0'.padEnd(4096, 'garbage'));
    writeFileSync(bad, junk);
    daemon = startDaemon(bad);
    const code = await daemon.exit;
    assert.equal(code, 1);
    assert.match(daemon.err.join(''), /store sqlite:.*corrupt\.db is unreadable: .*refusing to start/);
    assert.deepEqual(readFileSync(bad), junk);
    daemon = null;
  });
});
